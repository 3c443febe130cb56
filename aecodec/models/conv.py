"""The convolutional codec: GDN analysis/synthesis transforms, gain units for variable rate,
and a factorized density for the rate term (Ballé et al. 2017; gains after Cui et al. 2021).

::

    x ─► g_a (conv/GDN ×4, /16) ─► y ─► × gain(q) ─► round ─► symbols ─► ÷ gain'(q) ─► g_s ─► x̂
                                              └─► density(level) ─► estimated bits

One set of weights covers qualities 1–100: ``levels`` rate levels are trained, each with its
own λ, encoder gain vector, decoder gain vector and density; qualities between levels
interpolate the gains geometrically. Encoder gains grow with the level by construction
(a cumulative sum of positive steps), so a higher quality always quantizes every channel
more finely.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from aecodec.models.base import CodecModel, ModelInfo, ModelOutput
from aecodec.models.entropy import FactorizedDensity
from aecodec.models.gdn import GDN
from aecodec.models.registry import register_model
from aecodec.quantize import quality_position, quantize, to_symbols

__all__ = ["ConvConfig", "ConvAutoencoder", "default_lambdas"]


def bf16_encoder(device: torch.device) -> bool:
    """Whether ``encode`` runs ``g_a`` in bfloat16: on CPUs with native bfloat16 (oneDNN says
    so; elsewhere it would be emulated and slower), unless ``AECODEC_ENCODER=float32``."""
    if os.environ.get("AECODEC_ENCODER", "").lower() == "float32" or device.type != "cpu":
        return False
    return _cpu_bf16()


@functools.lru_cache(maxsize=1)
def _cpu_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


# The analysis runs a batch at most this many input pixels at a time (4 faces of 256x256): its
# first activations then stay in the CPU's caches. 32 LFW faces, bfloat16, idle machine: 5.4 ms
# a face in batches of 16 against 2.8 in batches of 4 with 2 threads (9.7 against 5.7 with 1),
# the same symbols (benchmarks/analysis_batch.py).
ANALYSIS_CHUNK_PIXELS = 1 << 18


def default_lambdas(levels: int = 12, lo: float = 0.001, hi: float = 0.25) -> list[float]:
    """λ per level, log-spaced: loss = λ·255²·MSE + bits per pixel."""
    return [lo * (hi / lo) ** (i / max(levels - 1, 1)) for i in range(levels)]


@dataclass
class ConvConfig:
    channels: int = 96
    latent_channels: int = 160
    levels: int = 12
    lambdas: list[float] = field(default_factory=default_lambdas)
    domain: str = "any"
    description: str = "convolutional autoencoder"


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 5, stride=2, padding=2)


def _deconv(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, 5, stride=2, padding=2, output_padding=1)


@register_model("conv")
class ConvAutoencoder(CodecModel):
    """Fully convolutional rate-distortion autoencoder; any image size (padded to 16)."""

    Config = ConvConfig
    stride = 16
    # Latent positions of context the tiled transforms need on each side (aecodec.tiles): a
    # latent depends on pixels within ±30 of its 16-pixel cell (four 5×5, stride-2 convolutions:
    # 2·(1+2+4+8)), and a pixel on latents within ±1.875 positions (four 5×5, stride-2
    # transposed convolutions: 1 + 1/2 + 1/4 + 1/8), both under 2. GDN acts per position.
    tile_halo = 2
    runs_on_gpu = True  # aecodec.devices: encode/decode take and give CPU tensors wherever it runs

    def __init__(self, config: ConvConfig) -> None:
        super().__init__(config)
        n, m, lv = config.channels, config.latent_channels, config.levels
        if len(config.lambdas) != lv:
            raise ValueError("one λ per level is needed")
        self.g_a = nn.Sequential(_conv(3, n), GDN(n), _conv(n, n), GDN(n), _conv(n, n), GDN(n), _conv(n, m))
        self.g_s = nn.Sequential(_deconv(m, n), GDN(n, inverse=True), _deconv(n, n), GDN(n, inverse=True),
                                 _deconv(n, n), GDN(n, inverse=True), _deconv(n, 3))
        # Encoder gains: log g[l] = base + cumsum(softplus(step)), so they rise with the level.
        span = math.log(16.0)
        self.log_gain_base = nn.Parameter(torch.full((m,), -span / 2))
        step = math.log(math.expm1(span / max(lv - 1, 1)))
        self.gain_steps = nn.Parameter(torch.full((max(lv - 1, 0), m), step))
        self.log_inv_gain = nn.Parameter(-self._log_gains().detach().clone())
        self.density = FactorizedDensity(m, lv)
        self.register_buffer("lambdas", torch.tensor(config.lambdas, dtype=torch.float32), persistent=False)

    def info(self) -> ModelInfo:
        return ModelInfo(self.config.domain, None, self.config.description)

    def _log_gains(self) -> torch.Tensor:
        """(levels, M) log encoder gains."""
        steps = F.softplus(self.gain_steps)
        cum = torch.cat([torch.zeros_like(self.log_gain_base)[None], torch.cumsum(steps, 0)], 0)
        return self.log_gain_base[None] + cum

    def _gains_at(self, quality: float) -> tuple[torch.Tensor, torch.Tensor]:
        lo, hi, t = quality_position(quality, self.config.levels)
        lg = self._log_gains()
        enc = torch.exp((1 - t) * lg[lo] + t * lg[hi])
        dec = torch.exp((1 - t) * self.log_inv_gain[lo] + t * self.log_inv_gain[hi])
        return enc.view(1, -1, 1, 1), dec.view(1, -1, 1, 1)

    def forward(self, x: torch.Tensor, level: torch.Tensor) -> ModelOutput:
        """Training pass. ``level``: (B,) long tensor of rate levels, one per sample."""
        y = self.g_a(x).float()
        z = y * torch.exp(self._log_gains()[level])[:, :, None, None]
        bits = self.density.bits(quantize(z, self.rate_proxy), level)
        y_hat = quantize(z, "ste") * torch.exp(self.log_inv_gain[level])[:, :, None, None]
        x_hat = self.g_s(y_hat.to(x.dtype))
        return ModelOutput(x_hat=x_hat, bits=bits, code=y)

    def level_bits(self, symbols: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """Estimated bits per sample of rounded scaled latents at rate levels ``level`` (B,):
        what the learning curve counts (``aecodec.train.longrun.eval_loss``)."""
        return self.density.bits(symbols, level)

    def code_step(self, quality: float) -> torch.Tensor:
        enc, _ = self._gains_at(quality)
        return 1.0 / enc.detach().reshape(-1)

    @torch.inference_mode()
    def encode(self, x: torch.Tensor, quality: float) -> torch.Tensor:
        """Symbols of ``x``. The analysis transform runs in bfloat16 where the CPU has native
        bfloat16 (``bf16_encoder``): 2–3x faster, and the files are as good (about 0.5 % of the
        symbols move by 1; BD-rate within ±0.25 %, benchmarks/bf16_encode.md). The gains and the
        rounding stay float32; only the symbols are stored, so the decoder is unchanged."""
        enc, _ = self._gains_at(quality)
        return to_symbols(self.analysis(x) * enc).cpu()

    @torch.inference_mode()
    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        """g_a(x) as ``encode`` computes it (bfloat16 where ``bf16_encoder``), in float32; a
        large batch a few images at a time (``ANALYSIS_CHUNK_PIXELS``)."""
        x = x.to(self.lambdas.device)
        step = max(1, ANALYSIS_CHUNK_PIXELS // max(1, x.shape[2] * x.shape[3]))
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16_encoder(x.device)):
            ys = [self.g_a(x[i:i + step].contiguous(memory_format=torch.channels_last)).float()
                  for i in range(0, len(x), step)]
        return ys[0] if len(ys) == 1 else torch.cat(ys)

    @torch.inference_mode()
    def decode(self, symbols: torch.Tensor, quality: float) -> torch.Tensor:
        _, dec = self._gains_at(quality)
        y_hat = (symbols.to(dec.device).float() * dec).contiguous(memory_format=torch.channels_last)
        return self.g_s(y_hat).float().cpu()

    # --- hooks for encoder-side search (aecodec.effort); the decoder never changes -------------

    def lambda_at(self, quality: float) -> float:
        """The rate-distortion trade-off of ``quality``: λ in λ·255²·MSE + bpp, interpolated
        geometrically between the trained levels like the gains."""
        lo, hi, t = quality_position(quality, self.config.levels)
        lam = self.lambdas
        return float(lam[lo]) ** (1 - t) * float(lam[hi]) ** t

    def scaled_latents(self, x: torch.Tensor, quality: float) -> torch.Tensor:
        """g_a(x) times the encoder gains of ``quality``: what ``encode`` rounds (float32)."""
        enc, _ = self._gains_at(quality)
        with torch.no_grad():
            x = x.to(enc.device)
            return (self.g_a(x.contiguous(memory_format=torch.channels_last)).float() * enc).detach()

    def synthesize(self, z: torch.Tensor, quality: float) -> torch.Tensor:
        """The decoder on (possibly soft-rounded) scaled latents; differentiable in ``z``."""
        _, dec = self._gains_at(quality)
        return self.g_s((z * dec.detach()).contiguous(memory_format=torch.channels_last))

    def soft_bits(self, z: torch.Tensor, quality: float) -> torch.Tensor:
        """Bits per image of (soft-rounded) scaled latents under the nearest level's density."""
        lo, hi, t = quality_position(quality, self.config.levels)
        level = torch.full((z.shape[0],), lo if t < 0.5 else hi, dtype=torch.long, device=z.device)
        return self.density.bits(z, level, pass_bound=True)

    def shape_spec(self) -> dict[str, Any]:
        return {"grid": [self.config.latent_channels, self.stride]}

    def latent_shape(self, width: int, height: int, quality: float) -> tuple[int, ...]:
        return (self.config.latent_channels, -(-height // self.stride), -(-width // self.stride))

    @torch.inference_mode()
    def rate_bits(self, symbols: torch.Tensor, quality: float) -> float:
        lo, hi, t = quality_position(quality, self.config.levels)
        level = torch.full((symbols.shape[0],), lo if t < 0.5 else hi, dtype=torch.long)
        return float(self.density.bits(symbols.float(), level).sum())
