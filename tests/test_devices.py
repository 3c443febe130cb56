"""--device / device=: where the network runs. This machine has no GPU: the CUDA tests run only
where torch sees one (they were not run here); the CPU and error paths run everywhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import aecodec
from aecodec.cli import main
from aecodec.devices import check_device

CUDA = torch.cuda.is_available()


def test_cpu_and_auto_without_a_gpu_make_the_same_file(astro64: np.ndarray, aec64: bytes) -> None:
    assert aecodec.compress(astro64, quality=50, model="conv-photos", device="cpu") == aec64
    if not CUDA:
        assert aecodec.compress(astro64, quality=50, model="conv-photos", device="auto") == aec64
        assert np.array_equal(np.asarray(aecodec.decompress(aec64, device="auto")),
                              np.asarray(aecodec.decompress(aec64)))


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "CUDA", "", 0, "cpu "])
def test_a_malformed_device_is_a_clear_error(bad: object, astro64: np.ndarray) -> None:
    with pytest.raises(aecodec.AecInputError, match="device must be"):
        aecodec.compress(astro64, device=bad)
    with pytest.raises(aecodec.AecInputError, match="device must be"):
        check_device(bad)


@pytest.mark.skipif(CUDA, reason="a GPU is present")
def test_cuda_without_a_gpu_is_one_line(astro64: np.ndarray, aec64: bytes, png_path, tmp_path) -> None:
    with pytest.raises(aecodec.AecInputError, match="no CUDA GPU is available"):
        aecodec.compress(astro64, device="cuda")
    with pytest.raises(aecodec.AecInputError, match="no CUDA GPU is available"):
        aecodec.decompress(aec64, device="cuda:0")
    runner = CliRunner()
    r = runner.invoke(main, ["compress", str(png_path), "-o", str(tmp_path / "x.aec"), "--device", "cuda"])
    assert r.exit_code == 1 and r.stderr.startswith("aecodec: device cuda: no CUDA GPU") and len(r.stderr.splitlines()) == 1
    assert not (tmp_path / "x.aec").exists()
    (tmp_path / "a.aec").write_bytes(aec64)
    r = runner.invoke(main, ["decompress", str(tmp_path / "a.aec"), "--device", "cuda"])
    assert r.exit_code == 1 and len(r.stderr.splitlines()) == 1


def test_a_malformed_device_option_is_a_usage_error(png_path, tmp_path) -> None:
    for cmd in (["compress", str(png_path)], ["decompress", "x.aec"]):
        r = CliRunner().invoke(main, [*cmd, "--device", "gpu"])
        assert r.exit_code == 2 and "--device" in r.stderr


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_on_a_gpu_files_decode_alike_and_within_one_of_the_cpu(astronaut: np.ndarray) -> None:
    im = np.ascontiguousarray(astronaut[:200, :300])
    cpu = aecodec.compress(im, quality=50, model="conv-photos")
    gpu = aecodec.compress(im, quality=50, model="conv-photos", device="cuda")
    assert aecodec.info(gpu) == aecodec.info(cpu) or aecodec.info(gpu).latent_shape == aecodec.info(cpu).latent_shape
    a = np.asarray(aecodec.decompress(cpu)).astype(int)
    b = np.asarray(aecodec.decompress(cpu, device="cuda")).astype(int)
    assert np.abs(a - b).max() <= 1
