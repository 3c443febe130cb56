"""Training a scale hyperprior on frozen transforms, without a GPU: the rate of the hyperprior
depends only on y = g_a(x), so the latents of the training images are computed once
(``cache_latents``) and the small hyper networks train on them (``train_hyper``); then
``export_int`` turns the float synthesis into the exact integer one the coder runs.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from typing import Callable

import numpy as np
import torch

from aecodec.models.conv import ConvAutoencoder, ConvConfig
from aecodec.models.hyper import (ACT_MAX, LOG_UNITS, WEIGHT_BITS, HyperConvAutoencoder, HyperConvConfig,
                                  HyperPrior, IntLayer, IntSynthesis)

__all__ = ["cache_latents", "train_hyper", "hyper_bits", "export_int", "level_gains", "attach", "side_sample",
           "transplant"]


@torch.inference_mode()
def cache_latents(model: ConvAutoencoder, images: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """y = g_a(x) of (N, H, W, 3) uint8 images (sides multiples of 16), as float16 (N, M, h, w),
    computed as the encoder does (bfloat16 where the CPU has it)."""
    out = []
    for i in range(0, len(images), batch):
        x = images[i:i + batch].permute(0, 3, 1, 2).float().div_(255.0)
        out.append(model.analysis(x).half())
    return torch.cat(out)


def level_gains(model: ConvAutoencoder) -> torch.Tensor:
    """(levels, M) encoder gains of the trained rate levels."""
    with torch.no_grad():
        return torch.exp(model._log_gains()).float()


def hyper_bits(hyper: HyperPrior, y: torch.Tensor, gains: torch.Tensor, noise: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(bits of y's symbols given z, bits of z), per sample, for float latents ``y`` (B, M, h, w)
    at per-sample gains (B, M). The symbols are the encoder's own, rounded: with the transforms
    frozen nothing needs a gradient through them, and training on the very values the coder sees
    avoids the noise-against-rounding mismatch at small scales. With ``noise`` (training) z's
    rate is taken at z plus uniform noise and the synthesis reads z rounded with a straight-through
    gradient (as CompressAI's hyperpriors); else both read z rounded."""
    g = gains[:, :, None, None]
    s = torch.round(y * g)
    z = hyper.analysis(s / g)
    z_hat = z + (torch.round(z) - z).detach()
    z_rate = z + torch.empty_like(z).uniform_(-0.5, 0.5) if noise else z_hat
    log_scale = hyper.log_scale(z_hat, s.shape[-2:])
    return hyper.symbol_bits(s, torch.exp2(log_scale) * g), hyper.z_bits(z_rate)


def train_hyper(model: ConvAutoencoder, hyper: HyperPrior, latents: torch.Tensor, steps: int,
                batch: int = 16, lr: float = 1e-3, seed: int = 0, log: Callable[[str], None] = print,
                every: int = 200) -> list[dict[str, float]]:
    """Fit ``hyper`` to the cached latents at random rate levels; returns the logged curve."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    gains = level_gains(model)
    levels = len(gains)
    opt = torch.optim.Adam(hyper.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1), eta_min=lr / 20)
    pixels = latents.shape[-2] * latents.shape[-1] * 256
    curve: list[dict[str, float]] = []
    acc: list[float] = []
    t0 = time.time()
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(latents), (batch,), generator=gen)
        lv = torch.randint(0, levels, (batch,), generator=gen)
        y = latents[idx].float()
        if torch.rand(1, generator=gen).item() < 0.5:
            y = y.flip(-1)
        by, bz = hyper_bits(hyper, y, gains[lv], noise=True)
        loss = (by + bz).mean() / pixels
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        acc.append(float(loss.detach()))
        if step % every == 0 or step == steps:
            row = {"step": step, "bpp": float(np.mean(acc)), "s": time.time() - t0}
            curve.append(row)
            log(f"step {step}: {row['bpp']:.4f} bpp (all levels) {row['s']:.0f} s")
            acc = []
    return curve


# ---------------------------------------------------------------------------------------------
# Float synthesis to integers.


def _conv_form(layer: torch.nn.Module) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """(weight (O, C, k, k) as a stride-1 convolution, bias, k, upsampling?) of a layer."""
    w = layer.weight.detach().double().numpy()
    b = layer.bias.detach().double().numpy()
    if isinstance(layer, torch.nn.ConvTranspose2d):
        return np.flip(w, (2, 3)).transpose(1, 0, 2, 3).copy(), b, w.shape[-1], True
    return w.copy(), b, w.shape[-1], False


def export_int(hyper: HyperPrior, z_sample: torch.Tensor) -> IntSynthesis:
    """Integer ``h_s``: each layer's weights scaled by a power of two to ``WEIGHT_BITS``, each
    activation by the power of two that maps its 99.99th percentile on ``z_sample`` (integer
    side latents of training images) to at most ``ACT_MAX``; the output in 1/LOG_UNITS log2."""
    convs = [m for m in hyper.h_s if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    # Activation ranges of the float network on the sample.
    peaks, x = [], z_sample.float()
    with torch.no_grad():
        for m in hyper.h_s:
            x = m(x)
            if isinstance(m, torch.nn.ReLU):
                peaks.append(float(torch.quantile(x.flatten()[:1 << 24], 0.9999)))
    a_in, layers = 0, []
    for i, conv in enumerate(convs):
        w, b, k, up = _conv_form(conv)
        kw = int(math.floor(math.log2((2 ** (WEIGHT_BITS - 1) - 1) / max(np.abs(w).max(), 1e-12))))
        last = i == len(convs) - 1
        a_out = int(math.log2(LOG_UNITS)) if last else int(math.floor(math.log2(ACT_MAX / max(peaks[i], 1e-6))))
        shift = kw + a_in - a_out
        if shift < 0:  # keep every rescaling a floor division: give the weights more bits
            kw, shift = kw - shift, 0
        w_int = np.round(w * 2.0 ** kw)
        b_int = np.round(b * 2.0 ** (kw + a_in))
        layers.append(IntLayer(w_int.reshape(len(w_int), -1), b_int, k, up, shift, not last))
        a_in = a_out
    return IntSynthesis(layers)


_HYPER_KEYS = ("hyper.", "int_", "log_gain_int", "pack_tables")  # a HyperConvAutoencoder's own state


def attach(base: ConvAutoencoder, hyper: HyperPrior, z_sample: torch.Tensor) -> HyperConvAutoencoder:
    """A ``HyperConvAutoencoder`` with ``base``'s transforms and gains and ``hyper``'s networks,
    its synthesis exported to integers on ``z_sample`` (integer side latents of training data)."""
    hc = hyper.config
    plain = {k: v for k, v in asdict(base.config).items() if k in ConvConfig.__dataclass_fields__}
    cfg = HyperConvConfig(**plain, hyper_channels=hc.channels, classes=hc.classes,
                          class_low=hc.class_low, class_shift=hc.class_shift)
    model = HyperConvAutoencoder(cfg)
    # ``base`` may itself have a hyperprior (a jointly trained one): only its transforms count
    state = {k: v for k, v in base.state_dict().items() if not k.startswith(_HYPER_KEYS)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith(_HYPER_KEYS) for k in missing)
    model.hyper.load_state_dict(hyper.state_dict())
    model.set_integer(export_int(hyper, z_sample))
    return model.eval()


@torch.no_grad()
def side_sample(model: ConvAutoencoder, hyper: HyperPrior, latents: torch.Tensor, n: int = 512,
                seed: int = 1) -> torch.Tensor:
    """Integer side latents z of ``n`` cached latents at random levels: what ``export_int``
    calibrates the integer activations on."""
    gen = torch.Generator().manual_seed(seed)
    gains = level_gains(model)
    idx = torch.randint(0, len(latents), (n,), generator=gen)
    g = gains[torch.randint(0, len(gains), (n,), generator=gen)][:, :, None, None]
    out = []
    for i in range(0, n, 64):
        y = latents[idx[i:i + 64]].float()
        gi = g[i:i + 64]
        out.append(torch.round(hyper.analysis(torch.round(y * gi) / gi)))
    return torch.cat(out)


def transplant(base: ConvAutoencoder, donor: HyperConvAutoencoder) -> HyperConvAutoencoder:
    """``base``'s transforms and gains with ``donor``'s hyperprior, integer synthesis and stream
    tables: how the promotion gate measures a new version of the transforms against a shipped
    hyperprior model before its hyperprior is retrained on them (the integer gains are
    recomputed from ``base``'s; the rest is copied as it is)."""
    d = donor.config
    cfg = HyperConvConfig(**asdict(base.config), hyper_channels=d.hyper_channels, classes=d.classes,
                          class_low=d.class_low, class_shift=d.class_shift, table_bytes=d.table_bytes)
    model = HyperConvAutoencoder(cfg)
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected
    donor_state = donor.state_dict()
    model.load_state_dict({**model.state_dict(), **{k: donor_state[k] for k in missing}})
    with torch.no_grad():
        g = torch.round(model._log_gains().double() / math.log(2) * LOG_UNITS)
    model.log_gain_int.copy_(g.to(torch.int64))
    return model.eval()
