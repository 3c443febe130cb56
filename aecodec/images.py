"""Input images (paths, PIL images, numpy arrays) to 8-bit RGB plus what is needed to give
them back in their own mode, and decoded pixels back to a PIL image.

Modes: RGB and L (grayscale) round-trip as themselves; RGBA and LA keep their alpha channel
losslessly; palette images come back as RGB (RGBA if they have transparency); 1-bit images as
L; CMYK, YCbCr, LAB and HSV as RGB; 16- and 32-bit integer grayscale is scaled to 8 bits
(the codec works in 8 bits), floating-point arrays are taken as [0, 1].
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from aecodec.container import MAX_PIXELS, MAX_SIDE
from aecodec.errors import AecInputError, AecLimitError

__all__ = ["ImageInput", "PreparedImage", "load_image", "to_pil"]

ImageInput = Union[str, Path, Image.Image, np.ndarray, bytes, "PreparedImage"]


@dataclass
class PreparedImage:
    rgb: np.ndarray                 # (H, W, 3) uint8
    mode: str                       # "L", "RGB", "RGBA" or "LA": the mode it decodes to
    alpha: np.ndarray | None = None  # (H, W) uint8, kept losslessly
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]


def _check_size(w: int, h: int, what: str) -> None:
    if w < 1 or h < 1:
        raise AecInputError(f"{what}: image has no pixels ({w}x{h})")
    if w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_PIXELS:
        raise AecLimitError(f"{what}: image is too large ({w}x{h}); the limit is {MAX_SIDE} px a side "
                            f"and {MAX_PIXELS // 1_000_000} megapixels")


def _open_path(path: Path) -> Image.Image:
    what = str(path)
    if not path.exists():
        raise AecInputError(f"{what}: no such file")
    if path.is_dir():
        raise AecInputError(f"{what}: is a folder, not an image")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AecInputError(f"{what}: cannot read ({exc.strerror or exc})") from None
    if not data:
        raise AecInputError(f"{what}: empty file")
    return _open_bytes(data, what)


def _open_bytes(data: bytes, what: str) -> Image.Image:
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise AecInputError(f"{what}: not an image file Pillow can read") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise AecInputError(f"{what}: cannot read image ({exc})") from None
    except Image.DecompressionBombError:
        size = _declared_size(data)
        if size is not None:
            _check_size(*size, what)  # raises, with the size and the limits
        raise AecLimitError(f"{what}: image is too large; the limit is {MAX_SIDE} px a side "
                            f"and {MAX_PIXELS // 1_000_000} megapixels") from None
    _check_size(*im.size, what)
    try:
        im.load()
    except Image.DecompressionBombError:
        raise AecLimitError(f"{what}: image is too large") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise AecInputError(f"{what}: damaged or truncated image ({exc})") from None
    return im


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """The width and height an image file's header declares, read by Pillow's format plugins
    directly: ``Image.open`` refuses a huge one with only its pixel count (a decompression
    bomb check), before the size can be asked."""
    Image.init()
    for fmt in Image.ID:
        factory, accept = Image.OPEN[fmt]
        if accept is not None and not accept(data[:16]):
            continue
        try:
            return factory(io.BytesIO(data), None).size  # type: ignore[no-any-return]
        except Exception:  # not this format, or a header it cannot parse: try the next one
            continue
    return None


def _from_pil(im: Image.Image, what: str) -> PreparedImage:
    notes: list[str] = []
    if getattr(im, "n_frames", 1) > 1:
        notes.append("only the first frame of an animated image is kept")
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # a broken EXIF block must not lose the image
        notes.append("EXIF orientation could not be read and was ignored")
    mode = im.mode
    _check_size(*im.size, what)
    if mode == "P" or mode == "PA":
        has_alpha = mode == "PA" or "transparency" in im.info
        im = im.convert("RGBA" if has_alpha else "RGB")
        notes.append("palette image decodes as " + im.mode)
        mode = im.mode
    if mode == "1":
        im, mode = im.convert("L"), "L"
        notes.append("1-bit image decodes as 8-bit grayscale")
    elif mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(im).astype(np.float64)
        peak = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        im = Image.fromarray(np.clip(np.round(arr / peak * 255.0), 0, 255).astype(np.uint8), "L")
        mode = "L"
        if peak > 255:
            notes.append("16-bit grayscale reduced to 8 bits")
    elif mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        im, mode = Image.fromarray(np.clip(np.round(arr * 255.0 if arr.max(initial=0) <= 1 else arr), 0, 255).astype(np.uint8), "L"), "L"
        notes.append("floating-point image converted to 8-bit grayscale")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        notes.append(f"{mode} image converted to RGB")
        im, mode = im.convert("RGB"), "RGB"
    alpha = None
    if mode in ("RGBA", "LA"):
        alpha = np.asarray(im.getchannel("A")).copy()
    rgb = np.asarray(im.convert("RGB")).copy()
    return PreparedImage(rgb=rgb, mode=mode, alpha=alpha, notes=notes)


def _from_array(a: np.ndarray) -> PreparedImage:
    what = "array"
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise AecInputError(f"{what}: expected shape (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    _check_size(a.shape[1], a.shape[0], what)
    notes = []
    if a.dtype == np.uint8:
        b = a
    elif a.dtype == np.bool_:
        b = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        b = np.round(a.astype(np.float64) / 257.0).astype(np.uint8)
        notes.append("16-bit samples reduced to 8 bits")
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise AecInputError(f"{what}: contains NaN or infinity")
        if a.min() < 0 or a.max() > 1:
            raise AecInputError(f"{what}: float images must have values in [0, 1], got [{a.min():g}, {a.max():g}]")
        b = np.round(a * 255.0).astype(np.uint8)
    else:
        raise AecInputError(f"{what}: unsupported dtype {a.dtype} (use uint8, uint16, bool or float in [0, 1])")
    b = np.ascontiguousarray(b)
    if b.ndim == 2:
        return PreparedImage(np.repeat(b[:, :, None], 3, axis=2), "L", None, notes)
    if b.shape[2] == 4:
        return PreparedImage(np.ascontiguousarray(b[:, :, :3]), "RGBA", np.ascontiguousarray(b[:, :, 3]), notes)
    return PreparedImage(b, "RGB", None, notes)


def load_image(src: ImageInput) -> PreparedImage:
    """Accept a path, a PIL image or a numpy array; raise AecInputError with a clear message.
    An already prepared image passes through (so a caller that looked at it loads it once)."""
    if isinstance(src, PreparedImage):
        return src
    if isinstance(src, (str, Path)):
        path = Path(src)
        with _open_path(path) as im:
            return _from_pil(im, str(path))
    if isinstance(src, Image.Image):
        return _from_pil(src, "image")
    if isinstance(src, np.ndarray):
        return _from_array(src)
    if isinstance(src, (bytes, bytearray, memoryview)):
        return _from_pil(_open_bytes(bytes(src), "image bytes"), "image bytes")
    raise AecInputError(f"cannot compress a {type(src).__name__}: pass a path, a PIL image or a numpy array")


def to_pil(rgb: np.ndarray, mode: str, alpha: np.ndarray | None) -> Image.Image:
    """Decoded (H, W, 3) uint8 pixels back to an image of ``mode``."""
    if mode in ("L", "LA"):
        gray = np.round(rgb.astype(np.float32).mean(axis=2)).astype(np.uint8)
        im = Image.fromarray(gray, "L")
    else:
        im = Image.fromarray(rgb, "RGB")
    if mode in ("RGBA", "LA"):
        if alpha is None:
            raise AecInputError("alpha channel missing")
        im.putalpha(Image.fromarray(alpha, "L"))
    return im
