"""Bjøntegaard delta rate and delta distortion between two rate-distortion curves."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.interpolate import PchipInterpolator

__all__ = ["Method", "BDResult", "bjontegaard", "bd_rate", "bd_psnr"]

Method = Literal["pchip", "cubic"]


@dataclass(frozen=True)
class BDResult:
    """Bjøntegaard deltas of a test curve against an anchor curve.

    ``bd_rate`` is the average rate difference in percent at equal distortion (negative:
    the test codec needs fewer bits); ``bd_dist`` is the average distortion difference in
    the distortion's own unit at equal rate (dB for PSNR; positive: the test codec is
    better). Either is None when the curves do not overlap on that axis, with ``note`` saying
    why: the deltas are only ever measured where both curves have data, never extrapolated.
    """

    bd_rate: float | None
    bd_dist: float | None
    note: str | None = None


def _clean(
    rate: Sequence[float], dist: Sequence[float], name: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r = np.asarray(rate, dtype=np.float64)
    d = np.asarray(dist, dtype=np.float64)
    if r.shape != d.shape or r.ndim != 1:
        raise ValueError(f"{name}: rate and distortion must be 1-d and of equal length")
    keep = np.isfinite(r) & np.isfinite(d) & (r > 0)  # lossless (inf dB) points have no place
    return np.log(r[keep]), d[keep]


def _strict(
    x: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Sort by x and average y over equal x, so an interpolant can be built on x."""
    xs, inverse = np.unique(x, return_inverse=True)
    ys = np.bincount(inverse, weights=y) / np.bincount(inverse)
    return xs, ys


def _integral(
    x: NDArray[np.float64], y: NDArray[np.float64], lo: float, hi: float, method: Method
) -> float:
    xs, ys = _strict(x, y)
    if method == "pchip":
        return float(PchipInterpolator(xs, ys).integrate(lo, hi))
    poly = np.polyint(np.polyfit(xs, ys, 3))
    return float(np.polyval(poly, hi) - np.polyval(poly, lo))


def _delta(
    xa: NDArray[np.float64],
    ya: NDArray[np.float64],
    xt: NDArray[np.float64],
    yt: NDArray[np.float64],
    method: Method,
    axis: str,
) -> tuple[float | None, str | None]:
    """Mean of (y_test - y_anchor) over the overlap of the two x ranges."""
    need = 4 if method == "cubic" else 2
    for label, x in (("anchor", xa), ("test", xt)):
        if np.unique(x).size < need:
            return None, f"{label} curve has fewer than {need} distinct {axis} values"
    lo = max(float(xa.min()), float(xt.min()))
    hi = min(float(xa.max()), float(xt.max()))
    if not hi > lo:
        return None, f"the curves do not overlap in {axis}"
    diff = _integral(xt, yt, lo, hi, method) - _integral(xa, ya, lo, hi, method)
    return diff / (hi - lo), None


def bjontegaard(
    rate_anchor: Sequence[float],
    dist_anchor: Sequence[float],
    rate_test: Sequence[float],
    dist_test: Sequence[float],
    method: Method = "pchip",
) -> BDResult:
    """BD-rate (percent) and BD-distortion of a test curve against an anchor curve.

    Follows Bjøntegaard (VCEG-M33, 2001): the log of the rate is interpolated as a function
    of distortion (for BD-rate) and distortion as a function of log-rate (for BD-distortion);
    the difference of the two interpolants is averaged over the interval where both curves
    have data. ``method="pchip"`` uses a monotone piecewise cubic through the points (the
    variant of VCEG-AL22/JVET common test conditions, stable with many points);
    ``method="cubic"`` is the original least-squares cubic polynomial (needs 4 points).

    Points need not be sorted; non-finite values and non-positive rates are dropped. Higher
    distortion values must mean better quality (PSNR, MS-SSIM in dB).
    """
    if method not in ("pchip", "cubic"):
        raise ValueError(f"unknown method {method!r}; use 'pchip' or 'cubic'")
    la, da = _clean(rate_anchor, dist_anchor, "anchor")
    lt, dt = _clean(rate_test, dist_test, "test")
    log_rate_delta, note_r = _delta(da, la, dt, lt, method, "distortion")
    dist_delta, note_d = _delta(la, da, lt, dt, method, "rate")
    bd_rate_pct = None if log_rate_delta is None else (math.exp(log_rate_delta) - 1.0) * 100.0
    notes = [n for n in (note_r, note_d) if n is not None]
    return BDResult(bd_rate_pct, dist_delta, "; ".join(notes) if notes else None)


def bd_rate(
    rate_anchor: Sequence[float],
    dist_anchor: Sequence[float],
    rate_test: Sequence[float],
    dist_test: Sequence[float],
    method: Method = "pchip",
) -> float | None:
    """BD-rate in percent (negative: fewer bits at equal quality), None without overlap."""
    return bjontegaard(rate_anchor, dist_anchor, rate_test, dist_test, method).bd_rate


def bd_psnr(
    rate_anchor: Sequence[float],
    dist_anchor: Sequence[float],
    rate_test: Sequence[float],
    dist_test: Sequence[float],
    method: Method = "pchip",
) -> float | None:
    """BD-PSNR in dB (positive: higher quality at equal rate), None without overlap."""
    return bjontegaard(rate_anchor, dist_anchor, rate_test, dist_test, method).bd_dist
