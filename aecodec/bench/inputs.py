"""Finding and loading the benchmark's images as 8-bit RGB, skipping unreadable files."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from aecodec.errors import AecInputError

__all__ = ["IMAGE_SUFFIXES", "ImageSource", "find_images", "load_rgb"]

#: File name endings picked up when a folder is given (any file given by name is tried).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})

_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_SIXTEEN_BIT_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}


@dataclass(frozen=True)
class ImageSource:
    """An image file to benchmark: a unique display ``name``, its path and the input root."""

    name: str
    path: Path
    root: str


def _walk(folder: Path) -> Iterable[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def find_images(inputs: Sequence[str | Path]) -> tuple[list[ImageSource], list[tuple[str, str]]]:
    """Image files named by ``inputs`` (files, or folders searched recursively).

    Returns the sources in input order (each folder sorted) and (input, reason) for inputs
    that do not exist. Names are ``<folder>/<relative path>`` for files found in a folder and
    the file name for files given directly, made unique with a ``#n`` suffix.
    """
    sources: list[ImageSource] = []
    missing: list[tuple[str, str]] = []
    used: set[str] = set()

    def add(path: Path, name: str, root: str) -> None:
        unique, n = name, 1
        while unique in used:
            n += 1
            unique = f"{name}#{n}"
        used.add(unique)
        sources.append(ImageSource(unique, path, root))

    for item in inputs:
        p = Path(item)
        if p.is_dir():
            root = p.resolve().name or str(p)
            for f in _walk(p):
                add(f, f"{root}/{f.relative_to(p).as_posix()}", root)
        elif p.is_file():
            add(p, p.name, p.resolve().parent.name)
        else:
            missing.append((str(item), "no such file or folder"))
    return sources, missing


def _sixteen_bit_to_rgb(im: Image.Image) -> NDArray[np.uint8]:
    """Scale a 16-bit grey image to 8 bits (Pillow's convert would clip it instead)."""
    a = np.asarray(im, dtype=np.float64)
    top = 65535.0 if a.max(initial=0) > 255 else 255.0
    grey = np.clip(np.round(a * (255.0 / top)), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def load_rgb(path: Path) -> tuple[NDArray[np.uint8], str, str | None]:
    """Pixels of an image file as an HxWx3 uint8 array, its original mode, and a note.

    The note says how the image was converted (grey or palette to RGB, alpha dropped, 16 bits
    scaled to 8, first frame only) or is None for plain 8-bit RGB. EXIF orientation is not
    applied: every codec sees the pixels as stored. Raises AecInputError for any file Pillow
    cannot read, so the caller can skip it with a reason.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. truncated-file or EXIF warnings
            with Image.open(path) as im:
                im.load()
                mode = im.mode
                notes: list[str] = []
                if getattr(im, "n_frames", 1) > 1:
                    notes.append(f"first of {im.n_frames} frames")
                if mode == "RGB":
                    arr = np.asarray(im, dtype=np.uint8)
                elif mode in _SIXTEEN_BIT_MODES:
                    arr = _sixteen_bit_to_rgb(im)
                    notes.append(f"converted from {mode} (16-bit grey) to 8-bit RGB")
                elif mode == "F":
                    raise AecInputError(f"{path}: floating-point images (mode F) are not supported")
                else:
                    arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
                    extra = ", alpha dropped" if mode in _ALPHA_MODES or "transparency" in im.info else ""
                    notes.append(f"converted from {mode} to RGB{extra}")
    except AecInputError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        # Pillow signals unreadable/corrupt/unknown files with these (UnidentifiedImageError
        # is an OSError).
        raise AecInputError(f"cannot read {path}: {exc}") from exc
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise AecInputError(f"{path}: unexpected pixel array shape {arr.shape}")
    return np.ascontiguousarray(arr), mode, "; ".join(notes) or None
