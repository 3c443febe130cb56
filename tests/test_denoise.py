"""Tests of denoising compression: the API, the twin mapping and the ``denoise`` command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from numpy.typing import NDArray
from PIL import Image
from skimage import data

from aecodec.api import compress, decompress, info
from aecodec.bench.metrics import psnr
from aecodec.cli.denoise import denoise as denoise_cmd
from aecodec.cli.denoise import denoised_path, plan_outputs
from aecodec.denoising import AUTO_SIGMA, DenoisingCodec, denoise, denoising_twin, estimate_noise, is_denoising
from aecodec.errors import AecError, AecInputError, AecModelError, AecOutputError

SIGMA = 0.1

from aecodec.weights import resolve  # noqa: E402

PHOTOS = resolve("conv-photos")  # the exact name a file records: the family's newest version
PHOTOS_TWIN = resolve("conv-photos-denoise")


def _noisy(clean: NDArray[np.uint8], sigma: float = SIGMA, seed: int = 0) -> NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    return np.round(np.clip(clean / 255.0 + sigma * rng.standard_normal(clean.shape), 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def sky() -> NDArray[np.uint8]:
    """A smooth 64×64 crop (sky behind the astronaut) of a bundled scikit-image sample."""
    return np.ascontiguousarray(data.astronaut()[0:64, 300:364])


@pytest.fixture(scope="module")
def noisy_sky(sky: NDArray[np.uint8]) -> NDArray[np.uint8]:
    return _noisy(sky)


# --- API ----------------------------------------------------------------------------------


def test_denoise_brings_a_noisy_smooth_crop_closer_to_the_clean_one(sky: NDArray[np.uint8],
                                                                     noisy_sky: NDArray[np.uint8]) -> None:
    out = denoise(noisy_sky, quality=50, model="conv-photos")
    assert isinstance(out, Image.Image) and out.size == (64, 64) and out.mode == "RGB"
    before, after = psnr(sky, noisy_sky), psnr(sky, np.asarray(out))
    # Measured: 20.1 dB noisy, 30.0 dB denoised (the plain codec gives about 25 dB here).
    assert 19.5 < before < 21.0
    assert 27.0 < after < 35.0
    assert after > before + 6.0


def test_denoise_beats_the_plain_codec_on_noisy_input(sky: NDArray[np.uint8], noisy_sky: NDArray[np.uint8]) -> None:
    plain = np.asarray(decompress(compress(noisy_sky, 50, "conv-photos")))
    cleaned = np.asarray(denoise(noisy_sky, quality=50, model="conv-photos"))
    # The margin was 2 dB against conv-photos v1-v3; v4 (the plain model, better trained) already
    # removes more of the noise itself at this quality: 27.48 dB against the twin's 29.35 here.
    assert psnr(sky, cleaned) > psnr(sky, plain) + 1.5


def test_denoise_is_compress_with_the_twin_then_decompress(noisy_sky: NDArray[np.uint8]) -> None:
    noisy_sky = noisy_sky[:32, :32]
    via_plain_name = np.asarray(denoise(noisy_sky, quality=70, model="conv-faces"))
    via_twin_name = np.asarray(denoise(noisy_sky, quality=70, model="conv-faces-denoise"))
    by_hand = np.asarray(decompress(compress(noisy_sky, 70, "conv-faces-denoise")))
    assert np.array_equal(via_plain_name, by_hand)
    assert np.array_equal(via_twin_name, by_hand)


# --- routing: noisy images to the twin, clean ones to the plain model ---------------------


@pytest.mark.parametrize("sigma", [0.02, 0.05, 0.1, 0.2])
def test_noise_estimate_tracks_the_added_noise(sky: NDArray[np.uint8], sigma: float) -> None:
    assert estimate_noise(sky) < 0.01  # a clean smooth crop
    got = estimate_noise(_noisy(np.full((128, 128, 3), 120, np.uint8), sigma, seed=3))
    assert abs(got - sigma) < 0.1 * sigma + 0.002


def test_noise_estimate_of_tiny_and_grayscale_images() -> None:
    assert estimate_noise(np.zeros((1, 5, 3), np.uint8)) == 0.0
    assert estimate_noise(np.full((8, 8), 7, np.uint8)) == 0.0


def test_clean_images_go_to_the_plain_model_noisy_ones_to_the_twin(sky: NDArray[np.uint8],
                                                                     noisy_sky: NDArray[np.uint8]) -> None:
    codec = DenoisingCodec("conv-photos", 50)
    assert estimate_noise(sky) < AUTO_SIGMA <= estimate_noise(noisy_sky)
    assert info(codec.compress(sky)).model == PHOTOS
    assert info(codec.compress(noisy_sky)).model == PHOTOS_TWIN
    assert info(DenoisingCodec("conv-photos-denoise", 50).compress(sky)).model == PHOTOS_TWIN
    assert np.array_equal(np.asarray(denoise(sky, 50, "conv-photos")),
                          np.asarray(decompress(compress(sky, 50, "conv-photos"))))


def test_denoising_batch_keeps_order_and_goes_on_after_a_bad_image(sky: NDArray[np.uint8],
                                                                   noisy_sky: NDArray[np.uint8]) -> None:
    out = list(DenoisingCodec("conv-photos", 50).compress_many([noisy_sky, sky, "no-such.png", noisy_sky, sky],
                                                              batch=2))
    assert isinstance(out[2], AecInputError)
    assert [info(d).model for d in out if isinstance(d, bytes)] == \
        [PHOTOS_TWIN, PHOTOS, PHOTOS_TWIN, PHOTOS]
    assert out[0] == out[3] and out[1] == out[4]


def test_denoise_keeps_size_and_grayscale_mode(noisy_sky: NDArray[np.uint8]) -> None:
    gray = Image.fromarray(noisy_sky[:19, :30]).convert("L")
    out = denoise(gray)
    assert out.mode == "L" and out.size == (30, 19)


def test_denoise_of_a_non_image_raises_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(AecInputError, match="bad.png"):
        denoise(bad)


@pytest.mark.parametrize("quality", [0, 101, float("nan")])
def test_denoise_rejects_a_bad_quality(noisy_sky: NDArray[np.uint8], quality: float) -> None:
    with pytest.raises(AecInputError, match="quality"):
        denoise(noisy_sky, quality=quality)


# --- denoising_twin -------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "twin"), [("conv-faces", "conv-faces-denoise"),
                                             ("conv-faces.v1", "conv-faces-denoise"),
                                             ("conv-photos", "conv-photos-denoise"),
                                             ("conv-faces-denoise", "conv-faces-denoise"),
                                             ("conv-photos-denoise", "conv-photos-denoise"),
                                             ("conv-photos-denoise.v1", "conv-photos-denoise.v1")])
def test_denoising_twin_maps_a_model_to_its_denoising_model(model: str, twin: str) -> None:
    # any version of a family maps to its twin's newest; a denoising version is its own twin
    assert denoising_twin(model) == resolve(twin)
    assert is_denoising(twin) and is_denoising(model) == (model == twin)


@pytest.mark.parametrize("model", ["eigenfaces", "pca-block"])
def test_model_without_a_twin_raises_model_error(model: str) -> None:
    with pytest.raises(AecModelError, match="no denoising twin") as info:
        denoising_twin(model)
    assert "conv-photos" in str(info.value)  # says which models do have one


def test_twin_of_an_unknown_model_raises_model_error() -> None:
    with pytest.raises(AecModelError, match="not installed"):
        denoising_twin("no-such-model")
    assert issubclass(AecModelError, AecError)


# --- the denoise command ---------------------------------------------------------------------


@pytest.fixture()
def noisy_files(tmp_path: Path, noisy_sky: NDArray[np.uint8]) -> tuple[Path, Path]:
    a, b = tmp_path / "a.png", tmp_path / "b.jpg"
    Image.fromarray(noisy_sky[:32, :32]).save(a)
    Image.fromarray(noisy_sky[:24, :20]).save(b, quality=95)
    return a, b


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(denoise_cmd, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_outputs_default_to_name_denoised_png_or_go_where_o_says(tmp_path: Path) -> None:
    assert denoised_path(Path("d/x.jpg")) == Path("d/x.denoised.png")
    assert plan_outputs(["d/x.jpg", "e/y.png"], None) == [Path("d/x.denoised.png"), Path("e/y.denoised.png")]
    assert plan_outputs(["d/x.png"], "o/") == [Path("o/x.denoised.png")]
    assert plan_outputs(["d/x.png"], str(tmp_path)) == [tmp_path / "x.denoised.png"]
    assert plan_outputs(["d/x.png"], "o/y.webp") == [Path("o/y.webp")]
    with pytest.raises(AecOutputError, match="must be a folder"):
        plan_outputs(["a.png", "b.png"], "o/y.png")


def test_cli_writes_name_denoised_png_next_to_the_input(noisy_files: tuple[Path, Path]) -> None:
    a, b = noisy_files
    code, out, err = _run(str(a), "-v")
    assert code == 0, err
    dst = a.with_name("a.denoised.png")
    with Image.open(dst) as im:
        assert im.format == "PNG" and im.size == (32, 32)
    assert "bpp" in out and "conv-photos-denoise" in out and err == ""
    assert np.array_equal(np.asarray(Image.open(dst)), np.asarray(denoise(a)))
    assert _no_temp_files(a.parent)


def test_cli_output_option_names_the_file(noisy_files: tuple[Path, Path], tmp_path: Path) -> None:
    _, b = noisy_files
    dst = tmp_path / "clean.png"
    code, _, err = _run(str(b), "-o", str(dst), "-q", "80", "-m", "conv-faces")
    assert code == 0, err
    with Image.open(dst) as im:
        assert im.size == (20, 24)
    assert not b.with_name("b.denoised.png").exists()


def test_cli_several_inputs_go_into_the_output_folder(noisy_files: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = noisy_files
    code, _, err = _run(str(a), str(b), "-o", str(tmp_path / "out") + "/")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.denoised.png", "b.denoised.png"]


def test_cli_does_not_overwrite_without_force(noisy_files: tuple[Path, Path]) -> None:
    a, _ = noisy_files
    dst = a.with_name("a.denoised.png")
    dst.write_bytes(b"keep me")
    code, _, err = _run(str(a))
    assert code != 0
    assert err.startswith("aecodec: ") and err.strip().count("\n") == 0
    assert "exists" in err and "-f" in err
    assert dst.read_bytes() == b"keep me"
    code, _, err = _run(str(a), "-f")
    assert code == 0, err
    with Image.open(dst) as im:
        assert im.size == (32, 32)
    assert _no_temp_files(a.parent)


def test_cli_reports_a_bad_input_and_does_the_others(noisy_files: tuple[Path, Path]) -> None:
    a, b = noisy_files
    bad = a.with_name("broken.png")
    bad.write_bytes(b"\x89PNG broken")
    missing = a.with_name("missing.png")
    code, _, err = _run(str(a), str(bad), str(missing), str(b))
    assert code == 1
    assert a.with_name("a.denoised.png").exists() and b.with_name("b.denoised.png").exists()
    assert not bad.with_name("broken.denoised.png").exists()
    lines = [ln for ln in err.splitlines() if ln.startswith("aecodec: ")]
    assert any("broken.png" in ln for ln in lines) and any("missing.png" in ln for ln in lines)
    assert any("2 of 4" in ln for ln in lines)


@pytest.mark.parametrize(("args", "message"), [(["-m", "eigenfaces"], "no denoising twin"),
                                               (["-m", "nope"], "not installed")])
def test_cli_bad_model_is_a_one_line_error(noisy_files: tuple[Path, Path], args: list[str],
                                                      message: str) -> None:
    a, _ = noisy_files
    code, _, err = _run(str(a), *args)
    assert code == 1
    assert err.startswith("aecodec: ") and message in err and err.strip().count("\n") == 0
    assert not a.with_name("a.denoised.png").exists()


@pytest.mark.parametrize("name", ["x.aec", "x.nosuchformat"])
def test_cli_refuses_an_output_it_cannot_write_as_an_image(noisy_files: tuple[Path, Path], name: str) -> None:
    a, _ = noisy_files
    code, _, err = _run(str(a), "-o", str(a.with_name(name)))
    assert code == 1 and err.startswith("aecodec: ")
    assert not a.with_name(name).exists()


def test_cli_several_inputs_need_a_folder_output(noisy_files: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = noisy_files
    code, _, err = _run(str(a), str(b), "-o", str(tmp_path / "one.png"))
    assert code == 2 and "must be a folder" in err  # a usage error, as for compress
    assert not (tmp_path / "one.png").exists()


def test_cli_refuses_to_overwrite_its_own_input(noisy_files: tuple[Path, Path]) -> None:
    a, _ = noisy_files
    before = a.read_bytes()
    code, _, err = _run(str(a), "-o", str(a), "-f")
    assert code == 1 and "its own input" in err
    assert a.read_bytes() == before


def test_cli_compress_denoise_routes_each_file_and_says_which_model(tmp_path: Path, sky: NDArray[np.uint8],
                                                                    noisy_sky: NDArray[np.uint8]) -> None:
    from aecodec.cli import main
    Image.fromarray(sky).save(tmp_path / "clean.png")
    Image.fromarray(noisy_sky).save(tmp_path / "noisy.png")
    result = CliRunner().invoke(main, ["compress", "--denoise", "-m", "conv-photos", "-v",
                                       str(tmp_path / "clean.png"), str(tmp_path / "noisy.png")])
    assert result.exit_code == 0, result.output
    assert info((tmp_path / "clean.aec").read_bytes()).model == PHOTOS
    assert info((tmp_path / "noisy.aec").read_bytes()).model == PHOTOS_TWIN
    assert f"model {PHOTOS_TWIN}" in result.stdout and f"model {PHOTOS}\n" in result.stdout


def test_cli_denoise_verbose_names_the_model_each_image_went_through(tmp_path: Path, sky: NDArray[np.uint8],
                                                                    noisy_sky: NDArray[np.uint8]) -> None:
    Image.fromarray(sky).save(tmp_path / "clean.png")
    Image.fromarray(noisy_sky).save(tmp_path / "noisy.png")
    code, out, _ = _run("-m", "conv-photos", "-v", str(tmp_path / "clean.png"), str(tmp_path / "noisy.png"))
    assert code == 0
    assert f"clean.denoised.png: 64x64 RGB, {PHOTOS} quality" in out
    assert f"noisy.denoised.png: 64x64 RGB, {PHOTOS_TWIN} quality" in out
