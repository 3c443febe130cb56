"""Principal component codecs, fitted in closed form: block PCA (a learned KLT on small
patches, any image size) and whole-image PCA ("eigenfaces") for aligned faces of one size.

Both quantize every kept coefficient with one uniform step Δ(quality). For an orthonormal
transform that is the MSE-optimal uniform choice; components whose training spread is well
below Δ would quantize to zero almost always, so they are dropped from the symbols (the kept
count K(quality) is the first latent dimension written in the header).
"""

from __future__ import annotations

import math
from typing import Any
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from aecodec.catalog import pca_step
from aecodec.errors import AecInputError
from aecodec.models.base import CodecModel, ModelInfo, ModelOutput
from aecodec.models.registry import register_model

__all__ = ["BlockPCAConfig", "BlockPCA", "EigenfacesConfig", "Eigenfaces", "pca_step"]




class _PCABase(CodecModel):
    """Shared closed-form fit and coefficient quantization; subclasses define the vectors."""

    keep_ratio = 0.25  # drop components whose std is below keep_ratio * step

    def _init_buffers(self, dim: int, k: int) -> None:
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("basis", torch.zeros(k, dim))      # rows: components, by variance
        self.register_buffer("std", torch.zeros(k))            # training std of each coefficient

    def fit_vectors(self, vectors: torch.Tensor) -> None:
        """Fit mean, components and their spreads from (N, D) float64-able data (SVD)."""
        v = vectors.double()
        mean = v.mean(0)
        k = self.basis.shape[0]
        if min(v.shape) < k:
            raise AecInputError(f"{k} principal components need at least {k} training vectors of "
                                f"{k} or more dimensions; the data gives {v.shape[0]} of {v.shape[1]}")
        centered = v - mean
        if k <= min(centered.shape) // 2 and centered.shape[1] > 1024:
            _, s, vh = torch.svd_lowrank(centered, q=k + 16, niter=4)
            vh = vh.T
        else:
            _, s, vh = torch.linalg.svd(centered, full_matrices=False)
        vh, s = vh[:k], s[:k]
        # Fix each component's sign (largest entry positive) so refits are comparable.
        signs = torch.sign(vh[torch.arange(vh.shape[0]), vh.abs().argmax(1)])
        vh = vh * signs[:, None]
        self.mean.copy_(mean.float())
        self.basis.copy_(vh.float())
        self.std.copy_((s / math.sqrt(max(v.shape[0] - 1, 1))).float())

    def shape_spec(self) -> dict[str, Any]:
        return {"pca": {"std": self.std.float().tolist(), "keep_ratio": self.keep_ratio,
                        "step_lo": self.config.step_lo, "step_hi": self.config.step_hi,
                        "block": getattr(self.config, "block", None)}}

    def _kept(self, step: float) -> int:
        return max(1, int((self.std > self.keep_ratio * step).sum()))

    def _step(self, quality: float) -> float:
        return pca_step(quality, self.config.step_lo, self.config.step_hi)

    def code_step(self, quality: float) -> torch.Tensor:
        return torch.full_like(self.std, self._step(quality))

    def code_spread(self) -> torch.Tensor:
        return self.std

    def coefficients(self, vectors: torch.Tensor) -> torch.Tensor:
        return (vectors - self.mean) @ self.basis.T

    def reconstruct(self, coef: torch.Tensor) -> torch.Tensor:
        return coef @ self.basis[: coef.shape[-1]] + self.mean

    def forward(self, x: torch.Tensor, quality: torch.Tensor) -> ModelOutput:
        raise NotImplementedError("PCA models are fitted in closed form, not trained")


@dataclass
class BlockPCAConfig:
    block: int = 8
    step_lo: float = 1.0
    step_hi: float = 0.03
    domain: str = "any"
    description: str = "block PCA (a KLT learned on 8x8 RGB patches); any size"


@register_model("pca-block")
class BlockPCA(_PCABase):
    """PCA on non-overlapping ``block``×``block``×3 patches; symbols (K, H/b, W/b)."""

    Config = BlockPCAConfig

    def __init__(self, config: BlockPCAConfig) -> None:
        super().__init__(config)
        d = 3 * config.block * config.block
        self._init_buffers(d, d)

    @property
    def stride(self) -> int:  # type: ignore[override]
        return self.config.block

    def info(self) -> ModelInfo:
        return ModelInfo(self.config.domain, None, self.config.description)

    def fit_closed_form(self, stack: torch.Tensor, max_patches: int = 400_000, seed: int = 0) -> None:
        """Fit on (N, H, W, 3) uint8 images: a random sample of their grid-aligned patches,
        gathered straight from the uint8 stack so memory stays at the sample's size."""
        b = self.config.block
        n, h, w, _ = stack.shape
        gh, gw = h // b, w // b
        total = n * gh * gw
        g = torch.Generator().manual_seed(seed)
        pick = torch.randperm(total, generator=g)[:max_patches] if total > max_patches else torch.arange(total)
        i, rem = pick // (gh * gw), pick % (gh * gw)
        y, x = (rem // gw) * b, (rem % gw) * b
        ar = torch.arange(b)
        patches = stack[i[:, None, None], (y[:, None] + ar)[:, :, None], (x[:, None] + ar)[:, None, :]]
        # (P, b, b, 3) -> channel-major (P, 3*b*b), the layout pixel_unshuffle gives.
        vectors = patches.permute(0, 3, 1, 2).reshape(len(pick), -1).float() / 255.0
        self.fit_vectors(vectors)

    def latent_shape(self, width: int, height: int, quality: float) -> tuple[int, ...]:
        b = self.config.block
        return (self._kept(self._step(quality)), -(-height // b), -(-width // b))

    @torch.inference_mode()
    def encode(self, x: torch.Tensor, quality: float) -> torch.Tensor:
        step = self._step(quality)
        k = self._kept(step)
        p = F.pixel_unshuffle(x, self.config.block)                  # (B, D, h, w)
        coef = torch.einsum("kd,bdhw->bkhw", self.basis[:k], p - self.mean.view(1, -1, 1, 1))
        return torch.round(coef / step).to(torch.int32)

    @torch.inference_mode()
    def decode(self, symbols: torch.Tensor, quality: float) -> torch.Tensor:
        step = self._step(quality)
        k = symbols.shape[1]
        p = torch.einsum("kd,bkhw->bdhw", self.basis[:k], symbols.float() * step) + self.mean.view(1, -1, 1, 1)
        return F.pixel_shuffle(p, self.config.block)


@dataclass
class EigenfacesConfig:
    width: int = 64
    height: int = 64
    components: int = 128
    step_lo: float = 6.0
    step_hi: float = 0.15
    domain: str = "faces"
    description: str = "whole-image PCA (eigenfaces) of aligned 64x64 LFW face crops"


@register_model("eigenfaces")
class Eigenfaces(_PCABase):
    """Whole-image PCA of fixed-size RGB faces; symbols (K,)."""

    Config = EigenfacesConfig

    def __init__(self, config: EigenfacesConfig) -> None:
        super().__init__(config)
        self._init_buffers(3 * config.width * config.height, config.components)

    @property
    def fixed_size(self) -> tuple[int, int]:
        return (self.config.width, self.config.height)

    def info(self) -> ModelInfo:
        return ModelInfo(self.config.domain, self.fixed_size, self.config.description)

    def fit_closed_form(self, stack: torch.Tensor, **_: object) -> None:
        self.fit_vectors(stack.permute(0, 3, 1, 2).reshape(stack.shape[0], -1).float() / 255.0)

    def latent_shape(self, width: int, height: int, quality: float) -> tuple[int, ...]:
        return (self._kept(self._step(quality)),)

    @torch.inference_mode()
    def encode(self, x: torch.Tensor, quality: float) -> torch.Tensor:
        step = self._step(quality)
        k = self._kept(step)
        coef = self.coefficients(x.reshape(x.shape[0], -1))[:, :k]
        return torch.round(coef / step).to(torch.int32)

    @torch.inference_mode()
    def decode(self, symbols: torch.Tensor, quality: float) -> torch.Tensor:
        out = self.reconstruct(symbols.float() * self._step(quality))
        return out.reshape(-1, 3, self.config.height, self.config.width)
