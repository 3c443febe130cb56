"""The study's plain convolutional autoencoder: a fixed-size face crop through strided
convolutions to one flat code vector (512 dims at 44×44 in the study) and back.

Unlike the ``conv`` codec it has no rate model: it is trained for distortion alone, like the
dense autoencoders, and turned into a codec the same way (each code dimension quantized with a
step proportional to its training spread, ``code_std``).

::

    x (3×44×44) ─► conv/2 ─► ELU ─► conv/2 ─► ELU ─► conv/2 ─► ELU ─► flatten ─► linear ─► code (512)
    x̂ ◄─ deconv×2 ◄─ ELU ◄─ deconv×2 ◄─ ELU ◄─ deconv×2 ◄─ ELU ◄─ unflatten ◄─ linear ◄─┘
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from aecodec.models.dense import _FixedSizeAE
from aecodec.models.registry import register_model

__all__ = ["StudyConvConfig", "StudyConvAutoencoder"]


@dataclass
class StudyConvConfig:
    width: int = 44
    height: int = 44
    code: int = 512
    channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    step_lo: float = 1.0
    step_hi: float = 0.01
    domain: str = "faces"
    description: str = "plain convolutional autoencoder of 44x44 LFW face crops (the study's, code 512)"


def _halve(side: int) -> int:
    """Output side of a 5×5, stride-2, padding-2 convolution: ceil(side / 2)."""
    return (side + 1) // 2


@register_model("conv-ae")
class StudyConvAutoencoder(_FixedSizeAE):
    """Strided 5×5 convolutions (ELU between), one dense layer to the flat code; the decoder
    mirrors it with transposed convolutions whose output padding restores each exact side."""

    Config = StudyConvConfig

    def __init__(self, config: StudyConvConfig) -> None:
        super().__init__(config)
        chans = [3, *config.channels]
        hs, ws = [config.height], [config.width]
        for _ in config.channels:
            hs.append(_halve(hs[-1]))
            ws.append(_halve(ws[-1]))
        flat = chans[-1] * hs[-1] * ws[-1]
        enc: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:]):
            enc += [nn.Conv2d(a, b, 5, stride=2, padding=2), nn.ELU()]
        self.enc = nn.Sequential(*enc, nn.Flatten(), nn.Linear(flat, config.code))
        dec: list[nn.Module] = [nn.Linear(config.code, flat), nn.Unflatten(1, (chans[-1], hs[-1], ws[-1]))]
        for i in range(len(config.channels), 0, -1):
            # A stride-2 transposed conv gives 2·s − 1 + output_padding; pick the padding per axis.
            pad = (hs[i - 1] - (2 * hs[i] - 1), ws[i - 1] - (2 * ws[i] - 1))
            dec += [nn.ELU(), nn.ConvTranspose2d(chans[i], chans[i - 1], 5, stride=2, padding=2, output_padding=pad)]
        self.dec = nn.Sequential(*dec)
        self._init_common()

    def _code(self, x: torch.Tensor) -> torch.Tensor:
        c, h, w = 3, self.config.height, self.config.width
        return self.enc(x.reshape(-1, c, h, w) - self.pixel_mean.view(1, c, h, w))

    def _image(self, code: torch.Tensor) -> torch.Tensor:
        return self.dec(code).flatten(1) + self.pixel_mean
