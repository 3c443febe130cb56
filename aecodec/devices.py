"""Where the networks run: ``cpu`` (the default), ``cuda`` / ``cuda:N``, or ``auto`` (a CUDA GPU
when torch sees one, else the CPU).

The files do not depend on it: the decoder's pixels are the synthesis transform's float32 output
rounded to 8 bits on any device (within ±1 between devices, as between thread counts), and the
encoder only chooses symbols, which any decoder reads alike. The convolutional models run on a
GPU; the small fixed-size models (PCA, linear, dense) stay on the CPU, where they are fast.
"""

from __future__ import annotations

import re

from aecodec.errors import AecInputError

__all__ = ["DEVICES_HELP", "check_device", "resolve_device"]

DEVICES_HELP = "cpu (default), cuda, cuda:N or auto"
_DEVICE_RE = re.compile(r"^(cpu|auto|cuda(:\d{1,2})?)$")


def check_device(spec: object) -> str:
    """The device string, validated without importing torch; AecInputError if malformed."""
    if spec is None:
        return "cpu"
    if not isinstance(spec, str) or not _DEVICE_RE.match(spec):
        raise AecInputError(f"device must be {DEVICES_HELP}; got {spec!r}")
    return spec


def resolve_device(spec: object) -> "torch.device":  # noqa: F821
    """A torch.device for ``spec``; a clear AecInputError where CUDA is asked for and absent."""
    import torch

    spec = check_device(spec)
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        built = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, but no GPU is visible"
        raise AecInputError(f"device {spec}: no CUDA GPU is available (torch {torch.__version__}: {built})")
    index = int(spec.split(":")[1]) if ":" in spec else 0
    if index >= torch.cuda.device_count():
        raise AecInputError(f"device {spec}: there are {torch.cuda.device_count()} CUDA devices")
    return torch.device(spec)
