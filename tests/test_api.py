"""The public API: round trips by mode and size, quality bands, batches, errors, pinned surface."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

import aecodec
from aecodec.weights import resolve
from aecodec import container
from aecodec.errors import AecError, AecFormatError, AecInputError, AecModelError, AecVersionError

FAST_MODEL = "conv-photos"


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(peak_signal_noise_ratio(a, b, data_range=255))


def _rewrite(data: bytes, **changes: Any) -> bytes:
    """The same file with header fields changed (and a valid checksum)."""
    f = container.read(data)
    return container.write(container.AecFile(dataclasses.replace(f.header, **changes), f.payload, f.alpha))


def test_public_surface_is_pinned() -> None:
    assert sorted(aecodec.__all__) == sorted([
        "__version__", "compress", "decompress", "info", "list_models", "model_info", "Codec", "denoise", "denoising_twin", "MAGIC",
        "FORMAT_VERSION", "AecError", "AecFormatError", "AecVersionError", "AecModelError",
        "AecInputError", "AecLimitError", "AecOutputError",
    ])
    assert aecodec.MAGIC == b"\x89AEC"
    assert aecodec.FORMAT_VERSION == 2
    for name in aecodec.__all__:
        assert hasattr(aecodec, name)
    # the subpackage is never shadowed by a function of the same name (it was: models())
    import importlib
    importlib.import_module("aecodec.models")
    assert aecodec.models.__name__ == "aecodec.models"


def test_import_does_not_register_a_pillow_plugin() -> None:
    assert not hasattr(aecodec, "register")


def test_rgb_round_trip_keeps_size_and_mode(astro64: np.ndarray) -> None:
    out = aecodec.decompress(aecodec.compress(astro64, model=FAST_MODEL))
    assert (out.mode, out.size) == ("RGB", (64, 64))
    assert _psnr(astro64, np.asarray(out)) > 24


def test_grayscale_decodes_as_grayscale(camera32: np.ndarray) -> None:
    out = aecodec.decompress(aecodec.compress(Image.fromarray(camera32, "L"), model=FAST_MODEL))
    assert (out.mode, out.size) == ("L", (32, 32))
    assert _psnr(camera32, np.asarray(out)) > 20


def test_rgba_alpha_is_exactly_preserved(rgba32: Image.Image) -> None:
    out = aecodec.decompress(aecodec.compress(rgba32, model=FAST_MODEL))
    assert (out.mode, out.size) == ("RGBA", rgba32.size)
    assert np.array_equal(np.asarray(out.getchannel("A")), np.asarray(rgba32.getchannel("A")))


def test_la_keeps_mode_and_alpha(rgba32: Image.Image) -> None:
    la = rgba32.convert("LA")
    out = aecodec.decompress(aecodec.compress(la, model=FAST_MODEL))
    assert (out.mode, out.size) == ("LA", la.size)
    assert np.array_equal(np.asarray(out.getchannel("A")), np.asarray(la.getchannel("A")))


def test_palette_image_decodes_as_rgb(astro64: np.ndarray) -> None:
    p = Image.fromarray(astro64).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    enc = aecodec.Codec(FAST_MODEL).encode(p)
    assert any("palette" in n for n in enc.notes)
    out = aecodec.decompress(enc.data)
    assert (out.mode, out.size) == ("RGB", (64, 64))


def test_16_bit_grayscale_decodes_as_8_bit_with_a_note(camera32: np.ndarray) -> None:
    im16 = Image.fromarray(camera32.astype(np.uint16) * 257)
    enc = aecodec.Codec(FAST_MODEL).encode(im16)
    assert any("16-bit" in n for n in enc.notes)
    out = aecodec.decompress(enc.data)
    assert (out.mode, out.size) == ("L", (32, 32))
    assert _psnr(camera32, np.asarray(out)) > 20


@pytest.mark.parametrize("size", [(1, 1), (17, 33), (33, 17)])
def test_odd_sizes_round_trip(astronaut: np.ndarray, size: tuple[int, int]) -> None:
    w, h = size
    img = np.ascontiguousarray(astronaut[200:200 + h, 200:200 + w])
    out = aecodec.decompress(aecodec.compress(img, model=FAST_MODEL))
    assert (out.mode, out.size) == ("RGB", (w, h))


def test_large_image_round_trip(astronaut: np.ndarray) -> None:
    big = np.concatenate([astronaut, astronaut[:, :256]], axis=1)  # 768x512
    data = aecodec.compress(big, quality=50, model="pca-block" if "pca-block" in aecodec.list_models() else FAST_MODEL)
    out = aecodec.decompress(data)
    assert (out.mode, out.size) == ("RGB", (768, 512))
    assert _psnr(big, np.asarray(out)) > 25


@pytest.mark.parametrize(("quality", "low", "high"), [(10, 22.0, 32.0), (50, 27.0, 37.0), (90, 28.0, 45.0)])
def test_conv_photos_psnr_band(astro64: np.ndarray, quality: float, low: float, high: float) -> None:
    out = aecodec.decompress(aecodec.compress(astro64, quality=quality, model="conv-photos"))
    assert low < _psnr(astro64, np.asarray(out)) < high


def test_rate_and_psnr_rise_with_quality(astro64: np.ndarray) -> None:
    codec = aecodec.Codec(FAST_MODEL)
    sizes, psnrs = [], []
    for q in (10, 40, 70, 100):
        data = codec.compress(astro64, quality=q)
        sizes.append(len(data))
        psnrs.append(_psnr(astro64, np.asarray(codec.decompress(data))))
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    assert psnrs == sorted(psnrs)


def test_float_array_input(astro64: np.ndarray) -> None:
    out = aecodec.decompress(aecodec.compress(astro64.astype(np.float32) / 255.0, model=FAST_MODEL))
    assert (out.mode, out.size) == ("RGB", (64, 64))
    assert _psnr(astro64, np.asarray(out)) > 24


def test_path_input_equals_array_input(png_path: Any, astro64: np.ndarray) -> None:
    assert aecodec.compress(png_path, model=FAST_MODEL) == aecodec.compress(astro64, model=FAST_MODEL)


def test_compress_many_yields_error_in_place_of_bad_input(astro64: np.ndarray, camera32: np.ndarray,
                                                          tmp_path: Any) -> None:
    results = list(aecodec.Codec(FAST_MODEL).compress_many(
        [astro64, tmp_path / "missing.png", camera32, astro64[:, :, 0]]))
    assert len(results) == 4
    assert isinstance(results[1], AecInputError) and "missing.png" in str(results[1])
    for r in (results[0], results[2], results[3]):
        assert isinstance(r, bytes) and aecodec.decompress(r).size in ((64, 64), (32, 32))


def test_fixed_size_model_refuses_other_sizes(astro64: np.ndarray) -> None:
    fixed = [(m, aecodec.model_info(m)["fixed_size"]) for m in aecodec.list_models()]
    fixed = [(m, fs) for m, fs in fixed if fs is not None]
    if not fixed:
        pytest.skip("no fixed-size model installed")
    name, (w, h) = fixed[0]
    with pytest.raises(AecInputError, match="only takes"):
        aecodec.compress(np.zeros((h + 1, w, 3), np.uint8), model=name)


def test_info_reads_the_header(aec64: bytes) -> None:
    h = aecodec.info(aec64)
    assert (h.model, h.width, h.height, h.mode, h.quality) == (resolve(FAST_MODEL), 64, 64, "RGB", 50.0)


def test_file_made_with_other_weights_raises_model_error(aec64: bytes) -> None:
    with pytest.raises(AecModelError, match="other weights"):
        aecodec.decompress(_rewrite(aec64, weights_hash=b"\x00" * 8))


def test_file_needing_an_uninstalled_model_raises_model_error(aec64: bytes) -> None:
    with pytest.raises(AecModelError, match="not installed"):
        aecodec.decompress(_rewrite(aec64, model="no-such-model"))


def test_unknown_model_name_raises_model_error() -> None:
    with pytest.raises(AecModelError):
        aecodec.Codec("no-such-model")
    with pytest.raises(AecModelError):
        aecodec.compress(np.zeros((8, 8, 3), np.uint8), model="no-such-model")


def test_unknown_format_version_raises_version_error(aec64: bytes) -> None:
    with pytest.raises(AecVersionError, match="version 3"):
        aecodec.decompress(aec64[:4] + b"\x03" + aec64[5:])


def test_truncated_file_raises_format_error(aec64: bytes) -> None:
    for n in (0, 3, 10, len(aec64) // 2, len(aec64) - 1):
        with pytest.raises(AecFormatError):
            aecodec.decompress(aec64[:n])


_BAD_CALLS: dict[str, Callable[[], object]] = {
    "quality too low": lambda: aecodec.compress(np.zeros((8, 8, 3), np.uint8), quality=0),
    "quality not a number": lambda: aecodec.Codec(quality="high"),  # type: ignore[arg-type]
    "quality NaN": lambda: aecodec.compress(np.zeros((8, 8, 3), np.uint8), quality=float("nan")),
    "unsupported input type": lambda: aecodec.compress(42),  # type: ignore[arg-type]
    "bad array shape": lambda: aecodec.compress(np.zeros((8, 8, 2), np.uint8)),
    "empty array": lambda: aecodec.compress(np.zeros((0, 8, 3), np.uint8)),
    "float out of range": lambda: aecodec.compress(np.full((8, 8), 2.0)),
    "decompress not bytes": lambda: aecodec.decompress("x.aec"),  # type: ignore[arg-type]
    "decompress garbage": lambda: aecodec.decompress(b"GIF89a" + bytes(50)),
    "info garbage": lambda: aecodec.info(b"\x89PNG\r\n\x1a\n"),
    "model_info unknown": lambda: aecodec.model_info("no-such-model"),
}


@pytest.mark.parametrize("name", sorted(_BAD_CALLS))
def test_every_deliberate_error_is_an_aec_error(name: str) -> None:
    with pytest.raises(AecError):
        _BAD_CALLS[name]()


def test_decompress_many_yields_errors_in_place(aec64: bytes, tmp_path: Any) -> None:
    out = list(aecodec.Codec(FAST_MODEL).decompress_many([aec64, b"junk", tmp_path / "missing.aec"]))
    assert isinstance(out[0], Image.Image)
    assert isinstance(out[1], AecFormatError) and isinstance(out[2], AecInputError)
