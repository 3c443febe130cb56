"""The tiny convolutional codec and scale hyperprior the entropy-coding tests build on (12
latent channels): seeded, so every test that calls these gets the same networks."""

from __future__ import annotations

import torch

from aecodec.models.conv import ConvAutoencoder, ConvConfig
from aecodec.models.hyper import HyperConfig, HyperPrior

TINY_CONV = ConvConfig(channels=8, latent_channels=12, levels=3, lambdas=[0.01, 0.03, 0.1])
TINY_HYPER = HyperConfig(latent_channels=12, channels=6, classes=20, class_low=-40)


def tiny_base() -> ConvAutoencoder:
    torch.manual_seed(0)
    return ConvAutoencoder(TINY_CONV).eval()


def tiny_pair() -> tuple[ConvAutoencoder, HyperPrior]:
    """``tiny_base()`` and an untrained hyperprior for it, drawn right after it."""
    base = tiny_base()
    return base, HyperPrior(TINY_HYPER)
