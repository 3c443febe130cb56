"""The promotion gate's verdict (tools/promote.py): every gate set, every rival."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str):
    """A script of tools/ as a module."""
    spec = importlib.util.spec_from_file_location(f"{name}_tool", ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _promote():
    return _tool("promote")


def test_gate_needs_every_rival_on_every_gate_set() -> None:
    passes = _promote().passes
    bd = {"faces": {"candidate vs conv-faces": -12.0, "candidate vs conv-photos.v9": -0.4},
          "photos": {"candidate vs conv-faces": +3.0, "candidate vs conv-photos.v9": +9.0}}
    # beats the family's newest on faces, but not the default by the margin: nothing ships
    assert not passes(bd, ["faces"], ["conv-faces", "conv-photos.v9"], 1.0)
    assert passes(bd, ["faces"], ["conv-faces"], 1.0)
    assert passes(bd, ["faces"], ["conv-faces", "conv-photos.v9"], 0.3)
    # a set outside the gate sets does not count; one inside it does
    assert not passes(bd, ["faces", "photos"], ["conv-faces"], 1.0)


def test_gate_fails_without_a_measurement() -> None:
    passes = _promote().passes
    assert not passes({"faces": {"candidate vs conv-faces": None}}, ["faces"], ["conv-faces"], 1.0)
    assert not passes({}, ["faces"], ["conv-faces"], 1.0)
    assert not passes({"faces": {}}, ["faces"], ["conv-faces"], 1.0)


def test_a_denoising_gate_codes_seeded_noisy_inputs_against_clean_references() -> None:
    import numpy as np
    promote = _promote()
    rng = np.random.default_rng(0)
    clean = {"faces": [("a", rng.integers(40, 216, (64, 64, 3), dtype=np.uint8)),
                       ("b", rng.integers(40, 216, (64, 64, 3), dtype=np.uint8))]}
    one, two = promote.noisy_sets(clean, 0.1), promote.noisy_sets(clean, 0.1)
    (name, noisy, ref), (_, noisy_b, _) = one["faces"]
    assert name == "a" and ref is clean["faces"][0][1] and noisy.dtype == np.uint8
    assert np.array_equal(noisy, two["faces"][0][1])  # seeded: the same noise every gate run
    assert not np.array_equal(noisy - ref, noisy_b - clean["faces"][1][1])  # but not the same for each image
    assert abs((noisy.astype(float) - ref).std() / 255 - 0.1) < 0.01
    assert promote._input_and_reference(one["faces"][0]) == (noisy, ref)
    assert promote._input_and_reference(clean["faces"][0]) == (clean["faces"][0][1],) * 2


def test_a_run_candidate_keeps_its_family_name_through_the_hyperprior_export(tmp_path: Path) -> None:
    """tools/train_hyper.py --model-out on a promote.py candidate: the card names the family and
    the run, not the candidate file's stem (v10's card had said "cand-wide")."""
    import argparse

    import torch
    from _tiny import tiny_pair

    from aecodec.train.hyper import side_sample
    from aecodec.weights import load_model_file, save_model
    tool = _tool("train_hyper")
    base, hyper = tiny_pair()
    save_model(base, tmp_path / "cand-wide.pt", card={"name": "conv-photos", "run": "wide", "steps_in_run": 113150})
    lm = load_model_file(tmp_path / "cand-wide.pt")
    lat = torch.randn(8, 12, 6, 7)
    a = argparse.Namespace(batch=4, lr=1e-3, faces=8, photos=0)
    tool.save_candidate(lm, hyper, side_sample(base, hyper, lat, n=16), 0, 1.0, a, tmp_path / "cand-wide-h.pt")
    card = load_model_file(tmp_path / "cand-wide-h.pt").card
    assert card["name"] == "conv-photos" and card["run"] == "wide"
    assert card["transforms_from"] == "run wide at step 113,150 (cand-wide)"


def test_device_bundle_parks_the_weights_a_gpu_run_does_not_need_and_brings_them_back(tmp_path: Path,
                                                                                       monkeypatch) -> None:
    """tools/device_bundle.py park / unpark on a scratch repository: what a device call would send
    shrinks to the code and the run's own resume point, nothing tracked is lost, and the parked
    files are ignored (never committed, never sent)."""
    import subprocess

    dev = _tool("device_bundle")
    repo = tmp_path / "repo"
    (repo / "weights" / "resume").mkdir(parents=True)
    (repo / "code.py").write_text("x = 1\n")
    (repo / "weights" / "big.v1.pt").write_bytes(b"w" * 5000)
    (repo / "weights" / "resume" / "run.pt").write_bytes(b"r" * 3000)
    (repo / "weights" / "resume" / "other.pt").write_bytes(b"o" * 7000)
    (repo / "weights" / "card.json").write_text("{}")
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    monkeypatch.setattr(dev, "ROOT", repo)
    monkeypatch.setattr(dev, "BUNDLE", repo / ".device")
    monkeypatch.setattr(dev, "PARKED", repo / ".device-parked")
    before = dev.travelling_bytes([])
    assert before == 6 + 5000 + 3000 + 7000 + 2
    assert sorted(p.name for p in dev.parkable("weights/resume/run.pt")) == ["big.v1.pt", "other.pt"]
    (repo / "cfg.json").write_text('{"name": "run", "resume_point": "weights/resume/run.pt"}')
    dev.park(str(repo / "cfg.json"))
    assert not (repo / "weights" / "big.v1.pt").exists() and (repo / "weights" / "resume" / "run.pt").exists()
    assert dev.travelling_bytes([]) == before - 12000 + len((repo / "cfg.json").read_text())
    assert b".device-parked" in (repo / ".git" / "info" / "exclude").read_bytes()
    dev.unpark()
    assert (repo / "weights" / "big.v1.pt").read_bytes() == b"w" * 5000
    assert (repo / "weights" / "resume" / "other.pt").read_bytes() == b"o" * 7000
    assert not (repo / ".device-parked").exists()
    assert git("status", "--porcelain").stdout.decode().split() == ["??", "cfg.json"]
