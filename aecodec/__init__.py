"""aecodec: a learned image codec (autoencoder + zstd) with a `.aec` container."""

from __future__ import annotations

from aecodec import models as _models  # noqa: F401  (registers the model kinds)
from aecodec.api import Codec, compress, decompress, info, model_info, models
from aecodec.container import FORMAT_VERSION, MAGIC
from aecodec.denoising import denoise, denoising_twin
from aecodec.errors import AecError, AecFormatError, AecInputError, AecLimitError, AecModelError, \
    AecOutputError, AecVersionError

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "compress",
    "decompress",
    "info",
    "models",
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
