"""Model surgery for the long run: grow a trained convolutional codec without losing what it
has learnt.

``widen_latents`` gives a model more latent channels (the capacity question at the top of the
rate range: a 160-channel code saturates near 34 dB on photos while JPEG keeps rising). The
new channels start silent: the analysis filters that make them are zero, so they hold zero
symbols and cost no bits in a real file, and the reconstruction is exactly the old model's.
Their synthesis filters start small and random, so the first gradient step already reaches
the analysis side (through the straight-through rounding), and training decides what to put
in them. The hyperprior reads them through zero weights and predicts them a small scale.
Gains and densities of a new channel start at the mean of the old channels'. The integer
synthesis and the stream tables are not grown: the promotion re-exports them
(``aecodec.train.hyper``, ``tools/build_tables.py``).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from aecodec.models.base import CodecModel

__all__ = ["widen_latents"]

_ZERO = ("g_a.6.", "hyper.h_a.0.weight", "hyper.h_s.4.", "int_", "log_gain_int")  # new part zero
_RANDOM = ("g_s.0.weight",)  # new part small and random
_SCALE = "hyper.h_s.4.bias"  # new part: see widen_latents
NEW_SCALE = 0.25  # the predicted scale of a new channel's symbols at the top level, in symbols


def _grown(key: str, old: torch.Tensor, shape: torch.Size, m: int, gen: torch.Generator) -> torch.Tensor:
    new = torch.zeros(shape, dtype=old.dtype)
    dims = [d for d, (a, b) in enumerate(zip(old.shape, shape)) if a != b]
    if len(dims) != 1 or old.shape[dims[0]] != m:
        raise ValueError(f"cannot widen {key}: {tuple(old.shape)} -> {tuple(shape)}")
    d = dims[0]
    new.narrow(d, 0, m).copy_(old)
    rest = new.narrow(d, m, shape[d] - m)
    if key.startswith(_ZERO):
        pass
    elif key.startswith(_RANDOM):
        std = float(old.float().std()) * 0.1
        rest.copy_(torch.randn(rest.shape, generator=gen) * std)
    else:  # gains, densities: the old channels' mean
        rest.copy_(old.float().mean(dim=d, keepdim=True).expand_as(rest))
    return new


def widen_latents(model: CodecModel, latent_channels: int, seed: int = 0) -> CodecModel:
    """A copy of ``model`` (``conv`` or ``conv-hyper``) with ``latent_channels`` latent channels,
    coding every image exactly as ``model`` does until it is trained (module docstring)."""
    m = int(model.config.latent_channels)
    if latent_channels <= m:
        raise ValueError(f"the model has {m} latent channels already, not fewer than {latent_channels}")
    cfg = dataclasses.replace(model.config, latent_channels=latent_channels)
    wide = type(model)(cfg)
    gen = torch.Generator().manual_seed(seed)
    target = wide.state_dict()
    state = {}
    for key, old in model.state_dict().items():
        shape = target[key].shape
        state[key] = old.clone() if old.shape == shape else _grown(key, old, shape, m, gen)
    wide.load_state_dict(state)
    if _SCALE in state:
        # A small predicted scale (its symbols are zero), but not one the rate model clamps at
        # every level (``SCALE_MIN``): the clamp passes no gradient, and the channel could never
        # be given bits. NEW_SCALE at the top level, smaller (clamped) below it.
        with torch.no_grad():
            log2_gain = wide._log_gains()[-1, m:] / math.log(2)
            wide.hyper.h_s[4].bias[m:] = math.log2(NEW_SCALE) - log2_gain
    return wide.train(model.training)
