"""The study reproduction (benchmarks/study.py): its whole code path on tiny synthetic faces,
and the full run behind the slow marker."""

from __future__ import annotations

import importlib.util
import io
import sys
import tarfile
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Iterator

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
LFW = Path("/work/shared/data/lfw/lfw.tgz")


def _load_study() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aecodec_study_bench", ROOT / "benchmarks" / "study.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


study = _load_study()


def _faces(n: int, size: int, seed: int) -> np.ndarray:
    """Smooth low-rank "faces": a mean plus a few random smooth patterns with random weights."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    patterns = np.stack([np.sin(np.pi * (k + 1) * xx + c) * np.cos(np.pi * (j + 1) * yy)
                         for k, j, c in rng.uniform(0, 3, (6, 3))])  # (6, s, s)
    w = rng.standard_normal((n, 6, 3)) * 0.08
    img = 0.5 + np.einsum("npc,pyx->nyxc", w, patterns) + 0.01 * rng.standard_normal((n, size, size, 3))
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)


def _tiny_setups() -> list:
    small = {"pca": {}, "conv": {"code": 16, "channels": [4, 8]}}
    out = []
    for s in study.SETUPS:
        cfg = dict(s.model_config)
        if s.kind == "dense-ae":
            cfg["hidden"] = [64, 32]
        cfg.update(small.get(s.key, {}))
        out.append(replace(s, model_config=cfg, steps=min(s.steps, 15), batch=16))
    return out


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """Tiny models on a busy machine: one torch thread is many times faster than several."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("one_thread")
def test_tiny_study_produces_every_row_and_plausible_numbers(tmp_path: Path) -> None:
    train = {38: _faces(120, 38, 0), 44: _faces(120, 44, 1)}
    test = {38: _faces(40, 38, 2), 44: _faces(40, 44, 3)}
    res = study.run_study(train, test, setups=_tiny_setups(), qualities=(20.0, 100.0), jpeg_qualities=(50,),
                          codec_every=4, work=tmp_path)
    keys = [(r.key, r.inputs) for r in res.recon]
    assert keys == [("pca", "clean"), ("linear", "clean"), ("dense", "clean"), ("dense", "noisy"),
                    ("conv", "clean"), ("regularized", "clean"), ("denoising", "clean"), ("denoising", "noisy")]
    for r in res.recon:
        assert 0 < r.mse < 0.1 and r.psnr_of_mse == pytest.approx(10 * np.log10(1 / r.mse))
    assert len(res.codec) == 2 * len(keys) and len(res.jpeg) == 2
    for p in res.codec:
        # 10 faces each; the header alone is tens of bytes, so total > payload > 0.
        assert 0 < p.payload_bpp < p.total_bpp and 5 < p.psnr < 60
    by = {(p.key, p.inputs, p.quality): p for p in res.codec}
    pca_hi, pca_lo = by[("pca", "clean", 100.0)], by[("pca", "clean", 20.0)]
    assert pca_hi.total_bpp > pca_lo.total_bpp and pca_hi.psnr >= pca_lo.psnr
    pca = res.recon[0]
    assert pca_hi.psnr == pytest.approx(pca.mean_psnr, abs=1.0)  # fine steps cost almost nothing
    text = study.render(res, "python benchmarks/study.py --tiny", "test machine")
    assert text.startswith("# ") and "Command: `python benchmarks/study.py --tiny`" in text
    # One row in the setups table, one in the reconstruction table, one per codec quality.
    assert "Linear AE against PCA" in text and text.count("| linear AE, code 32 |") == 4


def test_aec_size_counts_a_real_container() -> None:
    symbols = np.arange(-16, 16, dtype=np.int32)
    payload, total = study.aec_size("linear-ae", symbols, 38, 38, 50.0)
    assert 0 < payload < total < payload + 64


def test_crops_are_decoded_once_and_cached(tmp_path: Path) -> None:
    path = tmp_path / "lfw.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for i, person in enumerate(["Ann_A", "Bob_B", "Cid_C", "Dee_D", "Eve_E", "Fay_F"]):
            buf = io.BytesIO()
            Image.fromarray(np.full((250, 250, 3), 40 * i, np.uint8)).save(buf, "JPEG")
            info = tarfile.TarInfo(f"lfw/{person}/{person}_0001.jpg")
            info.size = len(buf.getvalue())
            tar.addfile(info, io.BytesIO(buf.getvalue()))
    first = study.load_crops(path, "all", [38, 44], tmp_path / "cache")
    assert first[38].shape == (6, 38, 38, 3) and first[44].shape == (6, 44, 44, 3)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2
    path.write_bytes(bytes(path.stat().st_size))  # unreadable now: only the cache can answer
    again = study.load_crops(path, "all", [38, 44], tmp_path / "cache")
    assert np.array_equal(first[44], again[44])


@pytest.mark.slow
@pytest.mark.skipif(not LFW.exists(), reason="needs the LFW archive")
def test_full_study_linear_ae_is_within_two_percent_of_pca(tmp_path: Path) -> None:
    out = tmp_path / "study.md"
    assert study.main(["--out", str(out)]) == 0
    text = out.read_text()
    assert "within the 2%" in text and "NOT within" not in text


def test_random_batch_without_flips_returns_the_faces_as_they_are() -> None:
    from aecodec.train.data import random_batch

    stack = torch.from_numpy(_faces(8, 12, 5))
    gen = torch.Generator().manual_seed(0)
    batch = random_batch(stack, 32, 12, gen, hflip=False)
    faces = stack.permute(0, 3, 1, 2).float() / 255
    assert all(any(torch.equal(b, f) for f in faces) for b in batch)
    flipped = random_batch(stack, 32, 12, torch.Generator().manual_seed(0))
    assert not all(any(torch.equal(b, f) for f in faces) for b in flipped)


def test_random_batch_takes_a_height_and_a_width() -> None:
    from aecodec.train.data import random_batch

    stack = torch.from_numpy(_faces(4, 12, 5))
    batch = random_batch(stack, 6, (8, 12), torch.Generator().manual_seed(0), hflip=False)
    assert batch.shape == (6, 3, 8, 12)
    faces = stack.permute(0, 3, 1, 2).float() / 255
    assert all(any(torch.equal(b, f[:, y:y + 8]) for f in faces for y in range(5)) for b in batch)
