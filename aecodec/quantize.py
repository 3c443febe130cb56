"""Float latents to integer symbols and back, plus the training-time stand-ins for rounding.

Quantization here is plain rounding of latents that the model has already scaled for the
requested quality (see ``quality_position``); the modes follow CompressAI's
``quantize(mode=...)`` and tensorflow-compression's ``round_st``:

- ``"noise"``: additive uniform noise in [-0.5, 0.5), the differentiable proxy used for the
  rate term (Ballé et al. 2017);
- ``"ste"``: rounding in the forward pass, identity gradient (straight-through);
- ``"round"``: plain rounding, for inference.
"""

from __future__ import annotations

from typing import Literal

import torch

from aecodec.catalog import QUALITY_MAX, QUALITY_MIN  # one definition, torch-free

__all__ = ["QuantMode", "quantize", "to_symbols", "from_symbols", "quality_position",
           "QUALITY_MIN", "QUALITY_MAX"]

QuantMode = Literal["noise", "ste", "round"]


def quantize(x: torch.Tensor, mode: QuantMode) -> torch.Tensor:
    """Quantize ``x`` (already scaled so that one unit is one quantization step)."""
    if mode == "noise":
        return x + torch.empty_like(x).uniform_(-0.5, 0.5)
    if mode == "ste":
        return x + (torch.round(x) - x).detach()
    if mode == "round":
        return torch.round(x)
    raise ValueError(f"unknown quantization mode {mode!r}; use 'noise', 'ste' or 'round'")


def to_symbols(x: torch.Tensor) -> torch.Tensor:
    """Round scaled float latents to int32 symbols, in float32 whatever the compute dtype was."""
    return torch.round(x.float()).to(torch.int32)


def from_symbols(symbols: torch.Tensor) -> torch.Tensor:
    """Integer symbols back to float32 latents (still in quantization-step units)."""
    return symbols.to(torch.float32)


def quality_position(quality: float, levels: int) -> tuple[int, int, float]:
    """Map a quality in [1, 100] to a position between trained rate levels.

    Levels sit evenly on the quality axis (level 0 at quality 1, the last at quality 100);
    returns ``(lo, hi, t)`` so that a per-level parameter p is interpolated as
    ``p[lo] ** (1 - t) * p[hi] ** t`` (geometrically, as the gains of Cui et al. 2021).
    """
    q = float(quality)
    if not QUALITY_MIN <= q <= QUALITY_MAX:
        raise ValueError(f"quality must be between {QUALITY_MIN:g} and {QUALITY_MAX:g}, got {q:g}")
    if levels == 1:
        return 0, 0, 0.0
    pos = (q - QUALITY_MIN) / (QUALITY_MAX - QUALITY_MIN) * (levels - 1)
    lo = min(int(pos), levels - 2)
    t = pos - lo
    # Snap float error so a quality that sits on a level uses exactly that level.
    if abs(t - 1.0) < 1e-9:
        lo, t = lo + 1, 0.0
    hi = min(lo + 1, levels - 1)
    if lo == levels - 1:
        hi = lo
    return lo, hi, float(t)
