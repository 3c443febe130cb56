"""The long CPU training run: sessions resume where the last one stopped and add up."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from aecodec.train.longrun import RunConfig, latest_resume, load_resume, model_from_resume, run_session, split_of


def _cfg(tmp_path: Path) -> RunConfig:
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(skdata.astronaut()[:128, :128]).save(photos / "a.png")
    Image.fromarray(skdata.coffee()[:128, :160]).save(photos / "b.png")
    return RunConfig(name="tiny", model_config={"channels": 8, "latent_channels": 8, "levels": 2,
                                                "lambdas": [0.01, 0.05]},
                     photo_folders=[str(photos)], eval_photos=str(photos), face_fraction=0.0, tile=64, crop=32,
                     batch=2, warmup_steps=2, checkpoint_every_s=0.0, eval_every_s=1e9,
                     resume_point=str(tmp_path / "resume" / "tiny.pt"), curve=str(tmp_path / "curve.csv"))


def test_sessions_resume_and_add_up(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    cfg = _cfg(tmp_path)
    ck_dir = str(tmp_path / "ck")
    first = run_session(cfg, budget_s=600, log=lambda _: None, checkpoint_dir=ck_dir, max_steps=3)
    assert first["step"] == 3
    resume = load_resume(cfg.resume_point)
    assert resume["step"] == 3 and resume["exp_avg_sq"]
    assert all(v.dtype == torch.float32 for v in resume["ema"].values())
    assert all(v.dtype == torch.bfloat16 for v in resume["exp_avg_sq"].values())
    second = run_session(cfg, budget_s=600, log=lambda _: None, checkpoint_dir=ck_dir, max_steps=2)
    assert second["step"] == 5 and second["cpu_s"] > first["cpu_s"]
    log_lines = Path(cfg.resume_point).with_suffix(".log").read_text().splitlines()
    assert len(log_lines) == 2 and "steps 3 -> 5" in log_lines[1]
    rows = Path(cfg.curve).read_text().splitlines()
    assert rows[0].startswith("step,cpu_h,photos_L0_psnr") and len(rows) == 4  # start + 2 session ends
    model = model_from_resume(latest_resume(cfg, ck_dir))
    x = torch.rand(1, 3, 32, 32)
    assert model.decode(model.encode(x, 50.0), 50.0).shape == x.shape


def test_a_zero_budget_session_still_leaves_a_resume_point(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    out = run_session(cfg, budget_s=0, log=lambda _: None, checkpoint_dir=str(tmp_path / "ck"))
    assert out["steps_this_session"] == 0 and Path(cfg.resume_point).exists()


def test_split_of_is_deterministic_and_near_its_fraction() -> None:
    names = [f"photo_{i}" for i in range(2000)]
    test = [n for n in names if split_of(n) == "test"]
    assert test == [n for n in names if split_of(n) == "test"]
    assert 0.2 < len(test) / len(names) < 0.3


def test_run_config_rejects_unknown_keys(tmp_path: Path) -> None:
    p = tmp_path / "run.json"
    p.write_text(json.dumps({"name": "x", "learning_rate": 1}))
    from aecodec.errors import AecInputError
    with pytest.raises(AecInputError, match="learning_rate"):
        RunConfig.from_file(p)


def test_a_run_config_extends_another(tmp_path: Path) -> None:
    import json

    from aecodec.errors import AecInputError

    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "a.json").write_text(json.dumps({"name": "a", "lr": 1e-4, "batch": 4, "crop_sizes": [192]}))
    (tmp_path / "b.json").write_text(json.dumps({"extends": "base/a.json", "name": "b", "batch": 8}))
    (tmp_path / "c.json").write_text(json.dumps({"extends": "b.json", "lr": 5e-5}))
    c = RunConfig.from_file(tmp_path / "c.json")
    assert (c.name, c.lr, c.batch, c.crop_sizes) == ("b", 5e-5, 8, [192])
    (tmp_path / "loop.json").write_text(json.dumps({"extends": "loop2.json"}))
    (tmp_path / "loop2.json").write_text(json.dumps({"extends": "loop.json"}))
    for bad, why in (("loop.json", "loops back"), ("missing.json", "cannot read"), ("num.json", "must be a file name"),
                     ("typo.json", "unknown run config keys")):
        if bad == "missing.json":
            (tmp_path / bad).write_text(json.dumps({"extends": "nowhere.json"}))
        elif bad == "num.json":
            (tmp_path / bad).write_text(json.dumps({"extends": 3}))
        elif bad == "typo.json":
            (tmp_path / bad).write_text(json.dumps({"extends": "b.json", "bacth": 2}))
        with pytest.raises(AecInputError, match=why):
            RunConfig.from_file(tmp_path / bad)


def test_shipped_run_config_loads() -> None:
    cfg = RunConfig.from_file(Path(__file__).resolve().parent.parent / "configs" / "run-general.json")
    assert cfg.family == "conv-photos" and 0 < cfg.face_fraction < 1 and np.isfinite(cfg.lr)


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parent.parent / "configs").glob("run-*.json")),
                         ids=lambda p: p.stem)
def test_every_run_config_loads_and_starts_from_shipped_weights(path: Path) -> None:
    cfg = RunConfig.from_file(path)
    root = path.parent.parent
    assert cfg.init_weights is None or (root / cfg.init_weights).exists()
    assert cfg.resume_point.startswith("weights/resume/") and cfg.curve.startswith("benchmarks/training/")
    assert all(0 <= lv for lv in cfg.eval_levels)


def test_learning_rate_schedules() -> None:
    from aecodec.errors import AecInputError
    from aecodec.train.longrun import _lr_at

    const = RunConfig(lr=1e-4, warmup_steps=10)
    assert _lr_at(const, 0, 0.0) == pytest.approx(1e-5) and _lr_at(const, 50, 0.9) == 1e-4
    cos = RunConfig(lr=1e-4, lr_final=1e-5, lr_schedule="cosine", warmup_steps=1)
    assert _lr_at(cos, 5, 0.0) == pytest.approx(1e-4)
    assert _lr_at(cos, 5, 0.5) == pytest.approx(5.5e-5)
    assert _lr_at(cos, 5, 1.0) == pytest.approx(1e-5) == _lr_at(cos, 5, 2.0)
    with pytest.raises(AecInputError, match="lr_schedule"):
        _lr_at(RunConfig(lr_schedule="linear"), 0, 0.0)


def test_a_cpu_budget_ends_the_session(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    cfg = _cfg(tmp_path)
    out = run_session(cfg, budget_s=600, log=lambda _: None, checkpoint_dir=str(tmp_path / "ck"), cpu_budget_s=0.5)
    assert 0 < out["steps_this_session"] and out["cpu_s"] < 30


def test_a_run_from_a_hyperprior_model_trains_it_jointly(tmp_path: Path) -> None:
    from aecodec.models.hyper import HyperConfig, HyperPrior
    from aecodec.train.hyper import attach, side_sample
    from aecodec.weights import save_model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    from aecodec.models.conv import ConvAutoencoder, ConvConfig
    base = ConvAutoencoder(ConvConfig(channels=8, latent_channels=8, levels=2, lambdas=[0.01, 0.05]))
    hyper = HyperPrior(HyperConfig(latent_channels=8, channels=4))
    start = attach(base, hyper, side_sample(base, hyper, torch.randn(4, 8, 4, 4), n=4))
    save_model(start, tmp_path / "start.pt")
    cfg = _cfg(tmp_path)
    cfg.init_weights = str(tmp_path / "start.pt")
    out = run_session(cfg, budget_s=600, log=lambda _: None, checkpoint_dir=str(tmp_path / "ck"), max_steps=3)
    ck = load_resume(cfg.resume_point)
    assert out["step"] == 3 and ck["model_kind"] == "conv-hyper"
    assert any(k.startswith("hyper.") for k in ck["exp_avg_sq"])  # the hyperprior trained too
    model = model_from_resume(ck)
    assert not torch.equal(model.hyper.h_a[0].weight, hyper.h_a[0].weight)
    assert np.isfinite(out["eval"]["photos_L0_bpp"]) and out["eval"]["photos_L0_bpp"] > 0


def test_a_denoising_run_trains_on_noisy_inputs_and_scores_against_clean_ones(tmp_path: Path) -> None:
    from aecodec.train.longrun import add_noise, eval_loss
    torch.set_num_threads(1)
    x = torch.rand(2, 3, 32, 32)
    a = add_noise(x, 0.1, torch.Generator().manual_seed(5))
    assert torch.equal(a, add_noise(x, 0.1, torch.Generator().manual_seed(5))) and 0 <= a.min() and a.max() <= 1
    assert 0.07 < float((a - x).std()) < 0.11  # clipping trims a little of σ = 0.1
    cfg = _cfg(tmp_path)
    cfg.denoise_sigma = 0.2
    out = run_session(cfg, budget_s=600, log=lambda _: None, checkpoint_dir=str(tmp_path / "ck"), max_steps=2)
    assert out["step"] == 2 and np.isfinite(out["eval"]["photos_L0_psnr"])
    model = model_from_resume(load_resume(cfg.resume_point))
    same, other = eval_loss(model, a, levels=(0,)), eval_loss(model, a, levels=(0,), target=x)
    assert same["L0_bpp"] == other["L0_bpp"] and same["L0_psnr"] != other["L0_psnr"]


def _tiny_hyper(m: int = 8):
    from aecodec.models.conv import ConvAutoencoder, ConvConfig
    from aecodec.models.hyper import HyperConfig, HyperPrior
    from aecodec.train.hyper import attach, side_sample
    torch.manual_seed(0)
    base = ConvAutoencoder(ConvConfig(channels=8, latent_channels=m, levels=2, lambdas=[0.01, 0.05]))
    hyper = HyperPrior(HyperConfig(latent_channels=m, channels=4))
    return attach(base, hyper, side_sample(base, hyper, torch.randn(4, m, 4, 4), n=4))


def test_widened_latents_code_as_before_until_trained() -> None:
    from aecodec.train.surgery import widen_latents
    torch.set_num_threads(1)
    model = _tiny_hyper().eval()
    wide = widen_latents(model, 12).eval()
    assert wide.config.latent_channels == 12 and wide.hyper.h_s[4].out_channels == 12
    x = torch.rand(2, 3, 32, 32)
    with torch.inference_mode():
        for lv in (0, 1):
            level = torch.full((2,), lv)
            out = []
            for m in (model, wide):
                z = torch.round(m.g_a(x) * torch.exp(m._log_gains()[level])[:, :, None, None])
                xh = m.g_s(z * torch.exp(m.log_inv_gain[level])[:, :, None, None])
                out.append((z, xh, m.level_bits(z, level)))
            (z0, x0, b0), (z1, x1, b1) = out
            assert torch.equal(z1[:, :8], z0) and not z1[:, 8:].any()  # the new channels hold zeros
            torch.testing.assert_close(x1, x0, rtol=0, atol=1e-6)  # and change nothing
            assert torch.all(b1 >= b0) and torch.all(b1 < b0 * 1.5)  # their zeros cost little
    with pytest.raises(ValueError, match="already"):
        widen_latents(model, 8)


def test_a_widening_run_trains_the_new_channels(tmp_path: Path) -> None:
    from aecodec.weights import save_model
    torch.set_num_threads(1)
    save_model(_tiny_hyper(), tmp_path / "start.pt")
    cfg = _cfg(tmp_path)
    cfg.init_weights, cfg.widen_latents, cfg.eval_levels = str(tmp_path / "start.pt"), 12, [1]
    out = run_session(cfg, budget_s=600, log=lambda _: None, checkpoint_dir=str(tmp_path / "ck"), max_steps=3)
    model = model_from_resume(load_resume(cfg.resume_point))
    assert model.config.latent_channels == 12 and set(out["eval"]) - {"step", "cpu_h"} == {"photos_L1_psnr", "photos_L1_bpp", "photos_L1_loss"}
    assert model.g_a[-1].weight[8:].abs().sum() > 0  # the silent channels' analysis left zero


def test_relative_level_weighting_pulls_each_level_and_domain_alike() -> None:
    from aecodec.train.longrun import _RelativeWeights
    w = _RelativeWeights(levels=2, decay=0.5)
    level, domain = torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1])
    per = torch.tensor([0.5, 10.0, 40.0], requires_grad=True)
    loss = w(per, level, domain)
    assert loss.item() == pytest.approx(1.0)  # each pair's first loss is its own mean
    loss.backward()
    # d loss / d per_i = 1 / (n * mean_i): the small bottom-level loss gets the largest pull
    assert per.grad.tolist() == pytest.approx([1 / 1.5, 1 / 30, 1 / 120])
    w(torch.tensor([1.5, 10.0, 40.0]), level, domain)
    assert w.mean[0, 0].item() == pytest.approx(1.0) and w.mean[1, 1].item() == pytest.approx(40.0)
    assert torch.isnan(w.mean[0, 1])  # a pair never seen stays unset


def test_a_relative_run_resumes_from_another_runs_resume_point(tmp_path: Path) -> None:

    from aecodec.errors import AecInputError
    torch.set_num_threads(1)
    first = _cfg(tmp_path)
    run_session(first, budget_s=600, log=lambda _: None, checkpoint_dir=str(tmp_path / "ck"), max_steps=2)
    cfg = replace(first, name="rel", init_weights=first.resume_point, level_weighting="relative",
                     resume_point=str(tmp_path / "resume" / "rel.pt"), curve=str(tmp_path / "rel.csv"))
    out = run_session(cfg, budget_s=600, log=lambda _: None, checkpoint_dir=str(tmp_path / "ck"), max_steps=3)
    assert out["step"] == 3 and np.isfinite(out["eval"]["photos_L0_loss"])
    start = Path(cfg.curve).read_text().splitlines()[1].split(",")
    end = Path(first.curve).read_text().splitlines()[-1].split(",")
    assert start[2:] == end[2:]  # the new run's first curve point is the old run's last
    cfg.level_weighting = "per-pixel"
    with pytest.raises(AecInputError, match="level_weighting"):
        run_session(cfg, budget_s=600, log=lambda _: None, checkpoint_dir=str(tmp_path / "ck2"), max_steps=1)



def test_the_rounded_rate_proxy_counts_the_rate_of_the_stored_symbols() -> None:
    torch.set_num_threads(1)
    model = _tiny_hyper()
    x, level = torch.rand(2, 3, 32, 32), torch.tensor([0, 1])
    with torch.no_grad():
        z = torch.round(model.g_a(x) * torch.exp(model._log_gains()[level])[:, :, None, None])
        stored = model.level_bits(z, level)  # what the learning curve and the packer count
        noisy = model(x, level).bits
        model.rate_proxy = "ste"
        rounded = model(x, level).bits
    torch.testing.assert_close(rounded, stored, rtol=1e-5, atol=1e-3)
    assert not torch.allclose(noisy, stored, rtol=1e-3)  # the noise proxy counts other bits
    model.rate_proxy = "ste"
    model(x, level).bits.sum().backward()  # and the rounded rate still trains the analysis
    assert model.g_a[0].weight.grad.abs().sum() > 0


def test_a_run_checks_its_rate_proxy(tmp_path: Path) -> None:

    from aecodec.errors import AecInputError
    torch.set_num_threads(1)
    cfg = replace(_cfg(tmp_path), rate_proxy="round")
    out = run_session(cfg, budget_s=600, log=lambda _: None, checkpoint_dir=str(tmp_path / "ck"), max_steps=2)
    assert out["step"] == 2 and np.isfinite(out["eval"]["photos_L0_loss"])
    with pytest.raises(AecInputError, match="rate_proxy"):
        run_session(replace(cfg, rate_proxy="soft", name="bad"), budget_s=600, log=lambda _: None,
                    checkpoint_dir=str(tmp_path / "ck2"), max_steps=1)


def test_a_run_draws_its_crops_from_crop_sizes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    import aecodec.train.longrun as longrun
    from aecodec.errors import AecInputError
    torch.set_num_threads(1)
    seen = []
    real = longrun.random_batch

    def spy(stack, batch, crop, gen, hflip=True):
        out = real(stack, batch, crop, gen, hflip)
        seen.append(tuple(out.shape[2:]))
        return out

    monkeypatch.setattr(longrun, "random_batch", spy)
    cfg = replace(_cfg(tmp_path), crop_sizes=[16, 32, 48, 500])  # 500: capped at the tiles' 64
    run_session(cfg, budget_s=600, log=lambda _: None, checkpoint_dir=str(tmp_path / "ck"), max_steps=12)
    assert set(seen) <= {(a, b) for a in (16, 32, 48, 64) for b in (16, 32, 48, 64)}
    assert len({h for h, _ in seen}) > 1 and any(h != w for h, w in seen)  # heights and widths apart
    with pytest.raises(AecInputError, match="crop_sizes"):
        run_session(replace(cfg, crop_sizes=[8], name="bad"), budget_s=600, log=lambda _: None,
                    checkpoint_dir=str(tmp_path / "ck2"), max_steps=1)


def test_a_committed_resume_point_over_its_size_leaves_out_the_second_moments(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import aecodec.train.longrun as longrun
    torch.set_num_threads(1)
    monkeypatch.setattr(longrun, "COMMITTED_MAX_BYTES", 1000)  # under the tiny model's weights alone
    cfg = _cfg(tmp_path)
    said = []
    run_session(cfg, budget_s=600, log=said.append, checkpoint_dir=str(tmp_path / "ck"), max_steps=2)
    committed, local = load_resume(cfg.resume_point), load_resume(tmp_path / "ck" / "tiny.resume.pt")
    assert not committed["exp_avg_sq"] and local["exp_avg_sq"]  # the local checkpoint keeps them
    assert committed["ema"].keys() == local["ema"].keys()
    assert any("second moments" in line for line in said)
    out = run_session(cfg, budget_s=600, log=lambda _: None, checkpoint_dir=str(tmp_path / "ck2"), max_steps=1)
    assert out["step"] == 3  # and it resumes


def test_second_moments_are_estimated_from_gradients_without_moving_a_weight() -> None:
    from aecodec.train.longrun import estimate_second_moments
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    xs = iter([torch.randn(5, 4) for _ in range(3)] + [torch.full((5, 4), float("nan"))] + [torch.randn(5, 4)] * 3)
    grads = []

    def loss_fn() -> torch.Tensor:
        x = next(xs)
        loss = (model(x) ** 2).mean()
        if torch.isfinite(loss):  # the expected clipped gradients, the same way
            g = torch.autograd.grad(loss, list(model.parameters()), retain_graph=True)
            norm = torch.sqrt(sum((t ** 2).sum() for t in g))
            grads.append([t * min(1.0, 1.0 / (float(norm) + 1e-6)) for t in g])
        return loss

    assert estimate_second_moments(model, opt, loss_fn, 4, step=50_000) == 4  # the NaN batch skipped
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters()))
    for i, p in enumerate(model.parameters()):
        st = opt.state[p]
        want = sum(g[i] ** 2 for g in grads) / len(grads)
        assert torch.allclose(st["exp_avg_sq"], want, rtol=1e-5, atol=1e-12)
        assert float(st["step"]) == 10_000 and not st["exp_avg"].any()
    opt.step()  # and Adam takes it from there


def test_a_resume_without_second_moments_estimates_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import aecodec.train.longrun as longrun
    torch.set_num_threads(1)
    monkeypatch.setattr(longrun, "COMMITTED_MAX_BYTES", 1000)
    cfg = _cfg(tmp_path)
    run_session(cfg, budget_s=600, log=lambda _: None, checkpoint_dir=str(tmp_path / "ck"), max_steps=1)
    said: list[str] = []
    out = run_session(replace(cfg, moment_warmup_steps=3), budget_s=600, log=said.append,
                      checkpoint_dir=str(tmp_path / "ck2"), max_steps=1)
    assert out["step"] == 2 and any("estimated from 3 gradients" in line for line in said)
    said.clear()  # the local checkpoint of the same step holds them: taken over the committed one
    out = run_session(replace(cfg, moment_warmup_steps=3), budget_s=600, log=said.append,
                      checkpoint_dir=str(tmp_path / "ck2"), max_steps=1)
    assert out["step"] == 3 and not any("estimated" in line for line in said)
