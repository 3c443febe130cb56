"""aecodec: a learned image codec (autoencoder + zstd) with a `.aec` container.

``import aecodec`` is light: the functions that need the networks (``compress``,
``decompress``, ``Codec``, ``denoise``) import torch on first use, so listing models, reading a
file's header and the command line's ``--help`` start in a fraction of a second.
"""

from __future__ import annotations

from typing import Any

from aecodec.catalog import list_models, model_info
from aecodec.container import FORMAT_VERSION, MAGIC, info
from aecodec.errors import AecError, AecFormatError, AecInputError, AecLimitError, AecModelError, \
    AecOutputError, AecVersionError

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "compress",
    "decompress",
    "info",
    "list_models",
    "model_info",
    "Codec",
    "denoise",
    "denoising_twin",
    "MAGIC",
    "FORMAT_VERSION",
    "AecError",
    "AecFormatError",
    "AecVersionError",
    "AecModelError",
    "AecInputError",
    "AecLimitError",
    "AecOutputError",
]

_LAZY = {"compress": "aecodec.api", "decompress": "aecodec.api", "Codec": "aecodec.api",
         "denoise": "aecodec.denoising", "denoising_twin": "aecodec.denoising"}


def __getattr__(name: str) -> Any:
    """The network-backed API, imported (with torch) on first use (PEP 562)."""
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aecodec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
