"""The Pillow plugin: opening and saving `.aec` files through Pillow after ``register()``."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

import aecodec
from aecodec.weights import resolve
from aecodec import pil_plugin


@pytest.fixture(autouse=True)
def _registered() -> None:
    pil_plugin.register()


def test_import_aecodec_registers_nothing() -> None:
    code = "import aecodec; from PIL import Image; Image.init(); print('AEC' in Image.OPEN)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(aecodec.__file__).parent.parent)
    assert out.stdout.strip() == "False"


def test_accept_checks_the_magic(aec64: bytes) -> None:
    assert pil_plugin._accept(aec64[:16])
    assert not pil_plugin._accept(b"\x89PNG\r\n\x1a\n")
    assert not pil_plugin._accept(b"")


def test_open_gives_size_mode_and_pixels(aec_path: Path, aec64: bytes) -> None:
    with Image.open(aec_path) as im:
        assert (im.format, im.size, im.mode) == ("AEC", (64, 64), "RGB")
        assert im.get_format_mimetype() == "image/x-aec"
        assert np.array_equal(np.asarray(im), np.asarray(aecodec.decompress(aec64)))


def test_open_reads_only_the_header_until_load(aec64: bytes) -> None:
    damaged = aec64[:-8] + bytes(8)  # payload and checksum broken, header intact
    im = Image.open(io.BytesIO(damaged))
    assert im.size == (64, 64)
    with pytest.raises(OSError, match="corrupt") as info:
        im.load()
    assert isinstance(info.value.__cause__, aecodec.AecFormatError)


def test_unreadable_header_is_not_identified(aec64: bytes) -> None:
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(aec64[:4] + b"\x07" + aec64[5:]))  # unknown format version


def test_rgba_and_l_open_in_their_modes(rgba32: Image.Image, camera32: np.ndarray) -> None:
    for im, mode in ((rgba32, "RGBA"), (Image.fromarray(camera32, "L"), "L"), (rgba32.convert("LA"), "LA")):
        out = Image.open(io.BytesIO(aecodec.compress(im)))
        assert out.mode == mode
        out.load()
        if mode.endswith("A"):
            assert np.array_equal(np.asarray(out.getchannel("A")), np.asarray(im.getchannel("A")))


def test_save_with_quality_and_model(tmp_path: Path, astro64: np.ndarray) -> None:
    p = tmp_path / "x.aec"
    Image.fromarray(astro64).save(p, quality=60, model="conv-photos")
    h = aecodec.info(p.read_bytes())
    assert (h.model, h.quality, h.width, h.height) == (resolve("conv-photos"), 60.0, 64, 64)
    with Image.open(p) as back:
        assert back.size == (64, 64) and back.info["aec_quality"] == 60.0


def test_save_to_a_stream_by_format_name(rgba32: Image.Image) -> None:
    buf = io.BytesIO()
    rgba32.save(buf, format="AEC")
    back = Image.open(io.BytesIO(buf.getvalue()))
    assert (back.format, back.mode, back.size) == ("AEC", "RGBA", rgba32.size)


def test_register_is_idempotent_and_leaves_other_formats_alone(png_path: Path) -> None:
    pil_plugin.register()
    pil_plugin.register()
    assert Image.registered_extensions()[".aec"] == "AEC"
    with Image.open(png_path) as im:
        assert im.format == "PNG"
