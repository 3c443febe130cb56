"""Input images: each input kind, each mode conversion rule, and each bad input's error."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aecodec import images
from aecodec.errors import AecInputError, AecLimitError
from aecodec.images import load_image, to_pil


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_header_only(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` (its pixel data is a few bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(bytes(64)))
            + _chunk(b"IEND", b""))


def _encoded(im: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


# ---------------------------------------------------------------- input kinds

def test_path_str_path_pil_array_and_bytes_agree(png_path: Path, astro64: np.ndarray) -> None:
    for src in (png_path, str(png_path), Image.open(png_path), astro64, png_path.read_bytes()):
        prep = load_image(src)  # type: ignore[arg-type]
        assert prep.mode == "RGB" and prep.size == (64, 64) and prep.alpha is None
        assert np.array_equal(prep.rgb, astro64)


def test_unsupported_input_type_raises_input_error() -> None:
    with pytest.raises(AecInputError, match="cannot compress a list"):
        load_image([1, 2, 3])  # type: ignore[arg-type]


# ---------------------------------------------------------------- PIL modes

def test_rgb_and_l_keep_their_mode(astro64: np.ndarray, camera32: np.ndarray) -> None:
    assert load_image(Image.fromarray(astro64)).mode == "RGB"
    prep = load_image(Image.fromarray(camera32, "L"))
    assert prep.mode == "L" and prep.rgb.shape == (32, 32, 3)
    assert np.array_equal(prep.rgb[:, :, 1], camera32) and not prep.notes


def test_rgba_and_la_keep_alpha_losslessly(rgba32: Image.Image) -> None:
    for im in (rgba32, rgba32.convert("LA")):
        prep = load_image(im)
        assert prep.mode == im.mode
        assert prep.alpha is not None and np.array_equal(prep.alpha, np.asarray(im.getchannel("A")))


def test_palette_becomes_rgb_or_rgba_with_transparency(astro64: np.ndarray) -> None:
    p = Image.fromarray(astro64).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    prep = load_image(p)
    assert prep.mode == "RGB" and any("palette" in n for n in prep.notes)
    assert np.array_equal(prep.rgb, np.asarray(p.convert("RGB")))
    p.info["transparency"] = 0
    assert load_image(p).mode == "RGBA"


def test_one_bit_becomes_grayscale(camera32: np.ndarray) -> None:
    prep = load_image(Image.fromarray(camera32 > 128))
    assert prep.mode == "L" and set(np.unique(prep.rgb)) <= {0, 255}
    assert any("1-bit" in n for n in prep.notes)


def test_16_bit_grayscale_is_scaled_to_8_bits(camera32: np.ndarray) -> None:
    prep = load_image(Image.fromarray(camera32.astype(np.uint16) * 257))
    assert prep.mode == "L" and np.array_equal(prep.rgb[:, :, 0], camera32)
    assert any("16-bit" in n for n in prep.notes)


def test_32_bit_integer_grayscale_in_8_bit_range_is_kept(camera32: np.ndarray) -> None:
    prep = load_image(Image.fromarray(camera32.astype(np.int32)))
    assert prep.mode == "L" and np.array_equal(prep.rgb[:, :, 0], camera32) and not prep.notes


def test_float_mode_f_is_taken_as_unit_range(camera32: np.ndarray) -> None:
    prep = load_image(Image.fromarray(camera32.astype(np.float32) / 255.0))
    assert prep.mode == "L" and np.abs(prep.rgb[:, :, 0].astype(int) - camera32).max() <= 1


@pytest.mark.parametrize("mode", ["CMYK", "YCbCr", "HSV"])
def test_other_colour_modes_become_rgb_with_a_note(astro64: np.ndarray, mode: str) -> None:
    prep = load_image(Image.fromarray(astro64).convert(mode))
    assert prep.mode == "RGB" and any(mode in n for n in prep.notes)


def test_exif_orientation_is_applied(astronaut: np.ndarray) -> None:
    im = Image.fromarray(np.ascontiguousarray(astronaut[:20, :40]))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    loaded = Image.open(io.BytesIO(_encoded_with_exif(im, exif)))
    assert load_image(loaded).size == (20, 40)


def _encoded_with_exif(im: Image.Image, exif: Image.Exif) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", exif=exif)
    return buf.getvalue()


def test_animated_image_keeps_first_frame_with_a_note(astro64: np.ndarray) -> None:
    frames = [Image.fromarray(astro64), Image.fromarray(255 - astro64)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    prep = load_image(buf.getvalue())
    assert prep.size == (64, 64) and any("first frame" in n for n in prep.notes)


# ---------------------------------------------------------------- numpy arrays

def test_array_rules(astro64: np.ndarray, camera32: np.ndarray) -> None:
    assert load_image(camera32).mode == "L"
    assert load_image(camera32[:, :, None]).mode == "L"
    rgba = np.dstack([astro64, np.full((64, 64), 7, np.uint8)])
    prep = load_image(rgba)
    assert prep.mode == "RGBA" and prep.alpha is not None and (prep.alpha == 7).all()
    assert set(np.unique(load_image(camera32 > 100).rgb)) == {0, 255}
    prep16 = load_image(camera32.astype(np.uint16) * 257)
    assert np.array_equal(prep16.rgb[:, :, 0], camera32) and prep16.notes
    assert np.array_equal(load_image(astro64 / 255.0).rgb, astro64)


@pytest.mark.parametrize("arr", [
    np.zeros((4, 4, 2), np.uint8), np.zeros((4,), np.uint8), np.zeros((2, 4, 4, 3), np.uint8),
    np.zeros((4, 4), np.int64), np.zeros((4, 4), np.complex64), np.full((4, 4), 1.5),
    np.full((4, 4), -0.1), np.full((4, 4), np.nan), np.zeros((0, 4), np.uint8),
], ids=["2-channels", "1d", "4d", "int64", "complex", "float>1", "float<0", "nan", "empty"])
def test_bad_arrays_raise_input_error(arr: np.ndarray) -> None:
    with pytest.raises(AecInputError):
        load_image(arr)


# ---------------------------------------------------------------- bad files

def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AecInputError, match="no such file"):
        load_image(tmp_path / "nope.png")


def test_folder(tmp_path: Path) -> None:
    with pytest.raises(AecInputError, match="folder"):
        load_image(tmp_path)


def test_zero_byte_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(AecInputError, match="empty"):
        load_image(tmp_path / "empty.png")


def test_non_image_file(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("just text, not an image\n")
    with pytest.raises(AecInputError, match="not an image"):
        load_image(tmp_path / "notes.png")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image_raises_input_error(tmp_path: Path, astro64: np.ndarray, fmt: str) -> None:
    data = _encoded(Image.fromarray(astro64), fmt)
    p = tmp_path / f"cut.{fmt.lower()}"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(AecInputError, match="cut"):
        load_image(p)


@pytest.mark.parametrize("size", [(40000, 40000), (33000, 8), (8, 40000)])
def test_header_claiming_a_huge_size_raises_limit_error(tmp_path: Path, size: tuple[int, int]) -> None:
    p = tmp_path / "huge.png"
    p.write_bytes(_png_header_only(*size))
    with pytest.raises(AecLimitError):
        load_image(p)


def test_pixel_limit_applies_to_every_input_kind(monkeypatch: pytest.MonkeyPatch, png_path: Path,
                                                 astro64: np.ndarray) -> None:
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    for src in (png_path, Image.fromarray(astro64), astro64):
        with pytest.raises(AecLimitError, match="too large"):
            load_image(src)  # type: ignore[arg-type]


# ---------------------------------------------------------------- back to PIL

def test_to_pil_gives_each_mode(astro64: np.ndarray) -> None:
    alpha = np.full((64, 64), 9, np.uint8)
    assert to_pil(astro64, "RGB", None).mode == "RGB"
    gray = to_pil(np.repeat(astro64[:, :, :1], 3, axis=2), "L", None)
    assert gray.mode == "L" and np.array_equal(np.asarray(gray), astro64[:, :, 0])
    for mode in ("RGBA", "LA"):
        im = to_pil(astro64, mode, alpha)
        assert im.mode == mode and (np.asarray(im.getchannel("A")) == 9).all()
    with pytest.raises(AecInputError):
        to_pil(astro64, "RGBA", None)
