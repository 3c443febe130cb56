"""Shared test fixtures: small images cut from scikit-image's bundled samples, and .aec files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

import aecodec

__all__: list[str] = []

FAST_MODEL = "conv-photos"


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """The whole 512x512 RGB astronaut (bundled with scikit-image, no download)."""
    return skdata.astronaut()


@pytest.fixture(scope="session")
def astro64(astronaut: np.ndarray) -> np.ndarray:
    """A 64x64 RGB crop with detail (face and hair): fast to code, not flat."""
    return np.ascontiguousarray(astronaut[100:164, 180:244])


@pytest.fixture(scope="session")
def camera32() -> np.ndarray:
    """A 32x32 grayscale crop of the bundled cameraman."""
    return np.ascontiguousarray(skdata.camera()[100:132, 200:232])


@pytest.fixture(scope="session")
def face25() -> np.ndarray:
    """A 25x25 grayscale LFW face (bundled tiny subset), as uint8."""
    return np.round(skdata.lfw_subset()[0] * 255).astype(np.uint8)


@pytest.fixture(scope="session")
def rgba32(astronaut: np.ndarray) -> Image.Image:
    """A 32x32 RGBA image whose alpha is a gradient with holes (alpha must come back exactly)."""
    im = Image.fromarray(np.ascontiguousarray(astronaut[200:232, 200:232])).convert("RGBA")
    alpha = (np.add.outer(np.arange(32), np.arange(32)) * 4).astype(np.uint8)
    alpha[8:12, 8:12] = 0
    im.putalpha(Image.fromarray(alpha, "L"))
    return im


@pytest.fixture(scope="session")
def aec64(astro64: np.ndarray) -> bytes:
    """``astro64`` compressed once with the default model at quality 50."""
    return aecodec.compress(astro64, quality=50, model=FAST_MODEL)


@pytest.fixture()
def png_path(tmp_path: Path, astro64: np.ndarray) -> Path:
    """``astro64`` as a PNG in a fresh folder."""
    p = tmp_path / "astro.png"
    Image.fromarray(astro64).save(p)
    return p


@pytest.fixture()
def aec_path(tmp_path: Path, aec64: bytes) -> Path:
    """``aec64`` as a file in a fresh folder."""
    p = tmp_path / "astro.aec"
    p.write_bytes(aec64)
    return p
