"""What a benchmark ran on: library and codec versions, machine, and the image set."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
from collections import Counter
from collections.abc import Sequence
from typing import Any

from PIL import features

from aecodec.bench.results import ImageInfo

__all__ = ["library_versions", "codec_library_versions", "machine_info", "image_set_info"]

_PACKAGES = ("pillow", "numpy", "scipy", "scikit-image", "matplotlib", "torch", "aecodec", "pillow-heif",
             "pillow-jxl-plugin")
_PILLOW_FEATURES = {
    "libjpeg": "jpg",
    "libjpeg-turbo": "libjpeg_turbo",
    "libwebp": "webp",
    "libavif": "avif",
    "openjpeg": "jpg_2000",
}


def library_versions() -> dict[str, str | None]:
    """Installed versions of the Python packages that shape the results (None: absent).

    Read from package metadata rather than by importing, so torch is not loaded just to
    print its version; aecodec falls back to its ``__version__`` when not installed.
    """
    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    if out["aecodec"] is None:
        try:
            import aecodec

            out["aecodec"] = getattr(aecodec, "__version__", None) or "source tree"
        except ImportError:
            pass
    return out


def codec_library_versions() -> dict[str, str | None]:
    """Versions of the C codec libraries inside Pillow (None: not built in), and of libheif
    and its HEVC encoder when pillow-heif is installed."""
    out: dict[str, str | None] = {}
    for label, feature in _PILLOW_FEATURES.items():
        try:
            out[label] = features.version(feature)
        except ValueError:
            out[label] = None
    try:
        import pillow_heif
    except ImportError:
        out["libheif"] = None
    else:
        lib = pillow_heif.libheif_info()
        out["libheif"] = str(lib.get("libheif"))
        out["libheif HEVC encoder"] = str(lib.get("HEIF")) or None
    return out


def machine_info() -> dict[str, Any]:
    """Platform, processor, CPU count, Python version and when the run started (UTC)."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
    }


def image_set_info(images: Sequence[ImageInfo]) -> dict[str, Any]:
    """Counts, sizes and source folders of the benchmarked images."""
    sizes = Counter(f"{i.width}x{i.height}" for i in images)
    pixels = [i.width * i.height for i in images]
    return {
        "n_images": len(images),
        "sizes": dict(sizes.most_common()),
        "megapixels_mean": (sum(pixels) / len(pixels) / 1e6) if pixels else 0.0,
        "sources": sorted({i.root for i in images}),
        "converted": sum(1 for i in images if i.note),
    }
