"""Distortion metrics for the benchmark: PSNR and 5-scale MS-SSIM on 8-bit RGB images."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import convolve1d
from skimage.metrics import peak_signal_noise_ratio

__all__ = [
    "MSSSIM_WEIGHTS",
    "MSSSIM_MIN_SIDE",
    "psnr",
    "ms_ssim",
    "ms_ssim_skip_reason",
]

#: Per-scale exponents from Wang, Simoncelli and Bovik, "Multi-scale structural similarity
#: for image quality assessment" (2003), finest scale first.
MSSSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

_WIN_SIZE = 11
_SIGMA = 1.5
_K1, _K2 = 0.01, 0.03
_DATA_RANGE = 255.0

#: Smallest side for which the coarsest of the 5 scales still holds one 11×11 window:
#: sides are halved (rounding up) four times, and ceil(161 / 16) = 11. This is the same
#: rule as pytorch_msssim's ``smaller_side > (win_size - 1) * 2**4``.
MSSSIM_MIN_SIDE = (_WIN_SIZE - 1) * 2 ** (len(MSSSIM_WEIGHTS) - 1) + 1


def _as_rgb_u8(image: NDArray[np.uint8], name: str) -> NDArray[np.uint8]:
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"{name} must be an HxWx3 uint8 array, got {arr.dtype} {arr.shape}")
    return arr


def psnr(reference: NDArray[np.uint8], decoded: NDArray[np.uint8]) -> float:
    """PSNR in dB over all pixels and the three channels of two 8-bit RGB images.

    Uses ``skimage.metrics.peak_signal_noise_ratio`` with ``data_range=255``, so the MSE is
    pooled over R, G and B (not averaged per channel in dB). Identical images give ``inf``.
    """
    ref = _as_rgb_u8(reference, "reference")
    dec = _as_rgb_u8(decoded, "decoded")
    if ref.shape != dec.shape:
        raise ValueError(f"shape mismatch: {ref.shape} vs {dec.shape}")
    if np.array_equal(ref, dec):
        return float("inf")  # skimage would warn about a division by zero first
    return float(peak_signal_noise_ratio(ref, dec, data_range=255))


def ms_ssim_skip_reason(width: int, height: int) -> str | None:
    """Why MS-SSIM cannot be computed for an image of this size, or None if it can."""
    if min(width, height) < MSSSIM_MIN_SIDE:
        return (
            f"image {width}x{height} is smaller than {MSSSIM_MIN_SIDE} px on a side, "
            f"too small for 5-scale MS-SSIM with an {_WIN_SIZE}x{_WIN_SIZE} window"
        )
    return None


def _gaussian_window() -> NDArray[np.float64]:
    x = np.arange(_WIN_SIZE, dtype=np.float64) - (_WIN_SIZE - 1) / 2
    g = np.exp(-(x**2) / (2 * _SIGMA**2))
    return g / g.sum()


def _filter_valid(x: NDArray[np.float32], win: NDArray[np.float32]) -> NDArray[np.float32]:
    """Separable Gaussian filter over axes 1 and 2, keeping only 'valid' positions."""
    out = convolve1d(convolve1d(x, win, axis=1, mode="reflect"), win, axis=2, mode="reflect")
    h = _WIN_SIZE // 2
    # The boundary mode only affects the border we crop away, so this is exact 'valid' mode.
    return out[:, h:-h, h:-h]


def _ssim_and_cs(
    x: NDArray[np.float32], y: NDArray[np.float32], win: NDArray[np.float32]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-channel mean SSIM and mean contrast-structure term of two HxWxC images."""
    c1 = (_K1 * _DATA_RANGE) ** 2
    c2 = (_K2 * _DATA_RANGE) ** 2
    # One filtering call over the five moment images at once.
    mu_x, mu_y, xx, yy, xy = _filter_valid(np.stack([x, y, x * x, y * y, x * y]), win)
    sxx = xx - mu_x**2
    syy = yy - mu_y**2
    sxy = xy - mu_x * mu_y
    cs_map = (2 * sxy + c2) / (sxx + syy + c2)
    lum_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    ssim = np.mean(lum_map * cs_map, axis=(0, 1), dtype=np.float64)
    return ssim, np.mean(cs_map, axis=(0, 1), dtype=np.float64)


def _downsample(x: NDArray[np.float32]) -> NDArray[np.float32]:
    """2x2 mean pooling; odd sides are padded by edge replication, so sizes round up."""
    ph, pw = x.shape[0] % 2, x.shape[1] % 2
    if ph or pw:
        x = np.pad(x, ((0, ph), (0, pw), (0, 0)), mode="edge")
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def ms_ssim(reference: NDArray[np.uint8], decoded: NDArray[np.uint8]) -> float:
    """5-scale MS-SSIM (Wang et al. 2003) of two 8-bit RGB images, in [0, 1].

    Computed on each of R, G and B separately (values 0..255, Gaussian window 11x11 with
    sigma 1.5, K1=0.01, K2=0.03, 'valid' filtering, 2x2 mean downsampling) and then averaged
    over the three channels: the convention of pytorch_msssim and CompressAI, so numbers are
    comparable with learned-compression papers. Raises ValueError for images smaller than
    ``MSSSIM_MIN_SIDE`` on a side; check ``ms_ssim_skip_reason`` first.
    """
    ref = _as_rgb_u8(reference, "reference")
    dec = _as_rgb_u8(decoded, "decoded")
    if ref.shape != dec.shape:
        raise ValueError(f"shape mismatch: {ref.shape} vs {dec.shape}")
    reason = ms_ssim_skip_reason(ref.shape[1], ref.shape[0])
    if reason is not None:
        raise ValueError(reason)
    # float32 keeps the moments well inside its precision for 8-bit data (pytorch_msssim
    # works in float32 too) and makes the filtering, the benchmark's slowest metric, faster.
    x = ref.astype(np.float32)
    y = dec.astype(np.float32)
    win = _gaussian_window().astype(np.float32)
    weights = np.asarray(MSSSIM_WEIGHTS)
    per_scale = []
    for scale in range(len(weights)):
        ssim, cs = _ssim_and_cs(x, y, win)
        # The coarsest scale contributes luminance*contrast*structure, finer ones only c*s.
        per_scale.append(ssim if scale == len(weights) - 1 else cs)
        if scale < len(weights) - 1:
            x, y = _downsample(x), _downsample(y)
    # A negative c*s (anti-correlated content) has no real fractional power; clamp as
    # pytorch_msssim does so that a terrible reconstruction scores 0 rather than NaN.
    terms = np.maximum(np.asarray(per_scale), 0.0)  # (scales, channels)
    return float(np.mean(np.prod(terms ** weights[:, None], axis=0)))
