"""A Pillow plugin for `.aec` files: ``Image.open`` and ``Image.save`` after ``register()``.

Modelled on Pillow's ``QoiImagePlugin``: ``_accept`` checks the magic, ``AecImageFile`` reads
size and mode from the header when the file is opened, and a decoder decodes the whole file
through ``aecodec.decompress`` when the pixels are first needed::

    import aecodec.pil_plugin
    aecodec.pil_plugin.register()
    Image.open("face.aec")                                   # RGB, L, RGBA or LA
    img.save("face.aec", quality=60, model="conv-photos")    # via aecodec.compress

Nothing is registered by ``import aecodec``. Errors follow Pillow's conventions: a file whose
header cannot be parsed is not identified (``UnidentifiedImageError``), and a file that fails
to decode raises ``OSError`` from ``load()``, with the AecError as its ``__cause__``.
"""

from __future__ import annotations

from typing import IO

from PIL import Image, ImageFile

from aecodec.container import looks_like_aec
from aecodec.errors import AecError

__all__ = ["FORMAT", "MIME", "EXTENSION", "AecImageFile", "AecDecoder", "register"]

FORMAT = "AEC"
MIME = "image/x-aec"
EXTENSION = ".aec"
_HEADER_PROBE = 512  # more than the longest possible prefix and header (112 bytes)


def _accept(prefix: bytes) -> bool:
    return looks_like_aec(prefix)


class AecImageFile(ImageFile.ImageFile):
    """An `.aec` file opened by Pillow; its header is parsed at open, its pixels at load."""

    format = FORMAT
    format_description = "aecodec learned image codec"

    def _open(self) -> None:
        from aecodec.api import info

        assert self.fp is not None
        start = self.fp.tell()
        probe = self.fp.read(_HEADER_PROBE)
        if not looks_like_aec(probe):
            raise SyntaxError("not an .aec file")
        try:
            header = info(probe)
        except AecError as exc:  # Pillow's way to say "not a file this plugin can open"
            raise SyntaxError(f"cannot read the .aec header: {exc}") from exc
        self._size = (header.width, header.height)
        self._mode = header.mode
        self.info["aec_model"] = header.model
        self.info["aec_quality"] = header.quality
        self.tile = [ImageFile._Tile("aec", (0, 0, *self._size), start, None)]


class AecDecoder(ImageFile.PyDecoder):
    """Reads the whole file and decodes it with ``aecodec.decompress`` (one call; large images go through the network in tiles inside it)."""

    _pulls_fd = True

    def decode(self, buffer: Image.DecoderInput) -> tuple[int, int]:
        from aecodec.api import decompress

        assert self.fd is not None
        try:
            im = decompress(self.fd.read())
        except AecError as exc:
            raise OSError(f"cannot decode .aec file: {exc}") from exc
        if im.mode != self.mode or im.size != (self.state.xsize, self.state.ysize):
            raise OSError(f"decoded {im.mode} {im.size} does not match the header's "
                          f"{self.mode} {(self.state.xsize, self.state.ysize)}")
        self.set_as_raw(im.tobytes())
        return -1, 0


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    """``im.save(..., format="AEC", quality=Q, model=NAME)``: encode with ``aecodec.compress``."""
    from aecodec.api import compress
    from aecodec.codec import DEFAULT_MODEL, DEFAULT_QUALITY

    quality = im.encoderinfo.get("quality", DEFAULT_QUALITY)
    model = im.encoderinfo.get("model", DEFAULT_MODEL)
    fp.write(compress(im, quality=quality, model=model))


def register() -> None:
    """Teach Pillow to open and save `.aec` files (idempotent)."""
    Image.register_open(FORMAT, AecImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME)
    Image.register_decoder("aec", AecDecoder)

