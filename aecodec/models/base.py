"""The one small interface every model shares: forward (training), encode, decode."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
from torch import nn

__all__ = ["CodecModel", "ModelOutput", "ModelInfo"]


@dataclass
class ModelOutput:
    """What ``forward`` returns during training.

    x_hat: reconstruction in [0, 1] (not clipped, so gradients flow);
    bits: estimated bits per image (shape (B,)), from the model's density of its latents,
        or None for models trained for distortion alone;
    code: the continuous latents before quantization (for the L2 code penalty).
    """

    x_hat: torch.Tensor
    bits: torch.Tensor | None
    code: torch.Tensor


@dataclass(frozen=True)
class ModelInfo:
    """What a user needs to know to choose a model (``aecodec models``)."""

    domain: str                           # "faces", "photos", "any"
    fixed_size: tuple[int, int] | None    # (width, height) the model requires, or None
    description: str


class CodecModel(nn.Module):
    """Base class. Images are float tensors (B, 3, H, W) in [0, 1]; symbols are int32 tensors.

    ``encode`` returns integer symbols whose shape (less the batch axis) goes in the
    ``.aec`` header; ``decode`` turns those symbols back into an image of the padded size.
    ``stride`` is the factor the codec pads image sides to; ``fixed_size`` (w, h) is set for
    models that only take one image size.
    """

    kind: ClassVar[str]
    stride: ClassVar[int] = 1
    Config: ClassVar[type]
    # How a training pass rounds the latents its rate term counts: "noise" (uniform noise, the
    # usual proxy) or "ste" (rounded, straight through: the rate of the symbols a file stores).
    # Set by the trainer (``RunConfig.rate_proxy``); not saved with the weights.
    rate_proxy: str = "noise"

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "CodecModel":
        """Rebuild from a saved config dict (never from tensor shapes)."""
        return cls(cls.Config(**config))

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        return None

    def info(self) -> ModelInfo:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, quality: torch.Tensor) -> ModelOutput:  # pragma: no cover
        raise NotImplementedError

    def encode(self, x: torch.Tensor, quality: float) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def decode(self, symbols: torch.Tensor, quality: float) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def shape_spec(self) -> dict[str, Any] | None:
        """The latent shape rule for the model's JSON card (``aecodec.catalog.latent_shape``),
        so that a file's header can be checked without torch; None if the kind has none."""
        return None

    def latent_shape(self, width: int, height: int, quality: float) -> tuple[int, ...]:
        """The symbol shape ``encode`` gives for an image of this size at this quality (the
        decoder checks a file's header against it before decoding anything)."""
        raise NotImplementedError

    def code_step(self, quality: float) -> torch.Tensor:
        """Per latent channel (the first symbol axis), the encoder's quantization step in the
        units of the model's continuous code: a symbol ``s`` stands for a code value of about
        ``s * code_step(quality)``. Lets callers compare symbols coded at different qualities
        (retrieval does) without knowing how each model quantizes."""
        raise NotImplementedError

    def code_spread(self) -> torch.Tensor | None:
        """Per latent channel, the code's standard deviation on the training data, for models
        that record it (PCA, dense autoencoders); None for the others."""
        return None

    def rate_bits(self, symbols: torch.Tensor, quality: float) -> float | None:
        """The model's own estimate of the bits for these symbols, or None if it has no density."""
        return None
