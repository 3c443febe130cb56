"""Fixed-size dense autoencoders of the study: the linear ("PCA") autoencoder and a deep
feedforward autoencoder, for aligned face crops of one size.

Trained for distortion alone (optionally with an L2 penalty on the code, or on noisy inputs),
then turned into codecs by quantizing each code dimension with a step proportional to its
spread on the training data (``code_std``, measured after training by ``calibrate``).
"""

from __future__ import annotations

import math
from typing import Any
from dataclasses import dataclass, field

import torch
from torch import nn

from aecodec.models.base import CodecModel, ModelInfo, ModelOutput
from aecodec.models.registry import register_model
from aecodec.quantize import QUALITY_MAX, QUALITY_MIN

__all__ = ["LinearAEConfig", "LinearAutoencoder", "DenseAEConfig", "DenseAutoencoder"]


def _relative_step(quality: float, lo: float, hi: float) -> float:
    t = (float(quality) - QUALITY_MIN) / (QUALITY_MAX - QUALITY_MIN)
    return math.exp((1 - t) * math.log(lo) + t * math.log(hi))


class _FixedSizeAE(CodecModel):
    """Shared quantization of a flat code; subclasses build ``self.enc`` and ``self.dec``."""

    enc: nn.Module
    dec: nn.Module

    def _init_common(self) -> None:
        self.register_buffer("code_std", torch.ones(self.config.code))
        self.register_buffer("pixel_mean", torch.zeros(3 * self.config.width * self.config.height))

    @torch.no_grad()
    def prepare(self, x: torch.Tensor) -> None:
        """Set the mean face before training: centred inputs make gradient descent far better
        conditioned (the mean is otherwise a huge direction the weights must learn first)."""
        self.pixel_mean.copy_(x.reshape(x.shape[0], -1).float().mean(0))

    def _code(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc(x.reshape(x.shape[0], -1) - self.pixel_mean)

    def _image(self, code: torch.Tensor) -> torch.Tensor:
        return self.dec(code) + self.pixel_mean

    @property
    def fixed_size(self) -> tuple[int, int]:
        return (self.config.width, self.config.height)

    def info(self) -> ModelInfo:
        return ModelInfo(self.config.domain, self.fixed_size, self.config.description)

    def forward(self, x: torch.Tensor, quality: torch.Tensor) -> ModelOutput:
        code = self._code(x)
        x_hat = self._image(code).reshape(x.shape)
        return ModelOutput(x_hat=x_hat, bits=None, code=code)

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor) -> None:
        """Record each code dimension's spread on (a sample of) the training images."""
        codes = torch.cat([self._code(b) for b in x.split(256)])
        self.code_std.copy_(codes.float().std(0).clamp_min(1e-6))

    def shape_spec(self) -> dict[str, Any]:
        return {"vector": self.config.code}

    def latent_shape(self, width: int, height: int, quality: float) -> tuple[int, ...]:
        return (self.config.code,)

    def _steps(self, quality: float) -> torch.Tensor:
        return self.code_std * _relative_step(quality, self.config.step_lo, self.config.step_hi)

    def code_step(self, quality: float) -> torch.Tensor:
        return self._steps(quality).detach()

    def code_spread(self) -> torch.Tensor:
        return self.code_std

    @torch.inference_mode()
    def encode(self, x: torch.Tensor, quality: float) -> torch.Tensor:
        code = self._code(x).float()
        return torch.round(code / self._steps(quality)).to(torch.int32)

    @torch.inference_mode()
    def decode(self, symbols: torch.Tensor, quality: float) -> torch.Tensor:
        code = symbols.float() * self._steps(quality)
        return self._image(code).float().reshape(-1, 3, self.config.height, self.config.width)


@dataclass
class LinearAEConfig:
    width: int = 64
    height: int = 64
    code: int = 128
    step_lo: float = 1.0
    step_hi: float = 0.01
    domain: str = "faces"
    description: str = "linear ('PCA') autoencoder of aligned 64x64 LFW face crops"


@register_model("linear-ae")
class LinearAutoencoder(_FixedSizeAE):
    """One dense layer to the code and one back, no nonlinearity: it should find the PCA
    subspace (Baldi & Hornik 1989), which ``tests/test_models.py`` checks."""

    Config = LinearAEConfig

    def __init__(self, config: LinearAEConfig) -> None:
        super().__init__(config)
        d = 3 * config.width * config.height
        self.enc = nn.Linear(d, config.code)
        self.dec = nn.Linear(config.code, d)
        self._init_common()


@dataclass
class DenseAEConfig:
    width: int = 64
    height: int = 64
    code: int = 128
    hidden: list[int] = field(default_factory=lambda: [1024, 512])
    step_lo: float = 1.0
    step_hi: float = 0.01
    domain: str = "faces"
    description: str = "deep dense autoencoder of aligned 64x64 LFW face crops"


@register_model("dense-ae")
class DenseAutoencoder(_FixedSizeAE):
    """Deep feedforward autoencoder with ELU between layers; no hidden layer is narrower
    than the code."""

    Config = DenseAEConfig

    def __init__(self, config: DenseAEConfig) -> None:
        super().__init__(config)
        if any(h < config.code for h in config.hidden):
            raise ValueError("no hidden layer may be narrower than the code")
        d = 3 * config.width * config.height
        dims = [d, *config.hidden, config.code]
        enc: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            enc += [nn.Linear(a, b), nn.ELU()]
        self.enc = nn.Sequential(*enc[:-1])
        rdims = dims[::-1]
        dec: list[nn.Module] = []
        for a, b in zip(rdims[:-1], rdims[1:]):
            dec += [nn.Linear(a, b), nn.ELU()]
        self.dec = nn.Sequential(*dec[:-1])
        self._init_common()
