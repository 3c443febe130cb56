"""Learned factorized density of quantized latents, one per rate level (Ballé et al. 2018, App. 6.1).

The density gives the rate term of training and the model's own rate estimate. It is never
used to code bits: the real bits come from zstd (see ``aecodec.pack``), so nothing here has to
be reproduced bit-exactly across machines. It always runs in float32.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FactorizedDensity", "LIKELIHOOD_BOUND", "lower_bound"]

LIKELIHOOD_BOUND = 1e-9


class _LowerBound(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, bound: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * ((x >= ctx.bound) | (grad < 0)).to(grad.dtype), None


def lower_bound(x: torch.Tensor, bound: float) -> torch.Tensor:
    """``x.clamp_min(bound)`` whose gradient still passes where it would raise ``x`` (tensorflow-
    compression's ``lower_bound``): a value held at the bound can leave it again. A plain clamp
    passes nothing there, so a scale that reached the bound could never grow."""
    return _LowerBound.apply(x, bound) if torch.is_grad_enabled() and x.requires_grad else x.clamp_min(bound)


class FactorizedDensity(nn.Module):
    """Non-parametric per-channel density, with an independent set of parameters per level.

    Each channel's cumulative is a small monotone network (filters ``(3, 3, 3)`` as in the
    paper); the likelihood of an integer symbol is the cumulative's mass over
    ``[s - 0.5, s + 0.5]``. Parameters are indexed by a per-sample level so one batch can mix
    rate levels.
    """

    def __init__(self, channels: int, levels: int, filters: tuple[int, ...] = (3, 3, 3),
                 init_scale: float = 10.0) -> None:
        super().__init__()
        self.channels, self.levels = channels, levels
        dims = (1, *filters, 1)
        scale = init_scale ** (1.0 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) + 1):
            init = math.log(math.expm1(1.0 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((levels, channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(levels, channels, dims[i + 1], 1) - 0.5))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(levels, channels, dims[i + 1], 1)))

    def _logits_cumulative(self, x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        # x: (B, C, 1, N); level: (B,) long
        logits = x
        for i, matrix in enumerate(self.matrices):
            logits = torch.matmul(F.softplus(matrix[level]), logits) + self.biases[i][level]
            if i < len(self.factors):
                logits = logits + torch.tanh(self.factors[i][level]) * torch.tanh(logits)
        return logits

    def likelihood(self, z: torch.Tensor, level: torch.Tensor, pass_bound: bool = False) -> torch.Tensor:
        """Probability mass of each element of ``z`` (B, C, H, W) under its sample's level.

        The mass is bounded below by ``LIKELIHOOD_BOUND``. With ``pass_bound`` the bound's
        gradient is the identity (as tensorflow-compression's ``lower_bound``), so a value deep
        in the tail is still pulled back towards likely values: per-image latent search
        needs it, or latents that drift past the bound escape the rate term altogether."""
        b, c, h, w = z.shape
        v = z.float().reshape(b, c, 1, h * w)
        return self.mass(v - 0.5, v + 0.5, level, pass_bound).reshape(b, c, h, w)

    def mass(self, lo: torch.Tensor, hi: torch.Tensor, level: torch.Tensor, pass_bound: bool = False) -> torch.Tensor:
        """Probability of [lo, hi] per element of (B, C, 1, N) tensors, bounded below by
        ``LIKELIHOOD_BOUND`` (``pass_bound``: see ``likelihood``); always float32."""
        # Rate must be float32 even inside a bfloat16 autocast region.
        with torch.autocast(device_type=lo.device.type, enabled=False):
            lower = self._logits_cumulative(lo.float(), level)
            upper = self._logits_cumulative(hi.float(), level)
        # Evaluate on the side of the median where the sigmoid is not saturated (tfc's trick).
        sign = -torch.sign(lower + upper).detach()
        lik = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        bounded = lik.clamp_min(LIKELIHOOD_BOUND)
        if pass_bound:
            bounded = lik + (bounded - lik).detach()
        return bounded

    def bits(self, z: torch.Tensor, level: torch.Tensor, pass_bound: bool = False) -> torch.Tensor:
        """Total bits per sample, shape (B,)."""
        return -torch.log2(self.likelihood(z, level, pass_bound)).sum(dim=(1, 2, 3))
