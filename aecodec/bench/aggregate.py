"""Averaging per-image points into rate-distortion curves, BD tables and timing tables."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np

from aecodec.bench.bdrate import Method, bjontegaard
from aecodec.bench.results import Aggregate, BDRow, Point, Timing

__all__ = ["aggregate", "timing_table", "bd_table", "msssim_db", "complete_images"]

_METRICS: tuple[Literal["psnr", "msssim"], ...] = ("psnr", "msssim")


def msssim_db(value: float) -> float:
    """MS-SSIM as -10 log10(1 - MS-SSIM) dB, which spreads the crowded values near 1."""
    return math.inf if value >= 1.0 else -10.0 * math.log10(1.0 - value)


def _by_codec(points: Iterable[Point]) -> dict[str, list[Point]]:
    out: dict[str, list[Point]] = defaultdict(list)
    for p in points:
        out[p.codec].append(p)
    return out


def aggregate(points: Sequence[Point], images: set[str] | None = None) -> list[Aggregate]:
    """Per codec and quality, the mean over images of bpp, PSNR and MS-SSIM.

    Means are of per-image values (each image weighs the same whatever its size), not
    total bits over total pixels. ``images`` restricts the average to those image names.
    Codecs keep their first-seen order; qualities are sorted.
    """
    groups: dict[tuple[str, float], list[Point]] = defaultdict(list)
    for p in points:
        if images is None or p.image in images:
            groups[(p.codec, p.quality)].append(p)
    order = {c: i for i, c in enumerate(dict.fromkeys(p.codec for p in points))}
    rows = []
    for (codec, quality), ps in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        ms = [p.msssim for p in ps if p.msssim is not None]
        rows.append(
            Aggregate(
                codec=codec,
                quality=quality,
                n_images=len(ps),
                bpp=float(np.mean([p.bpp for p in ps])),
                psnr=float(np.mean([p.psnr for p in ps])),
                msssim=float(np.mean(ms)) if ms else None,
                n_msssim=len(ms),
            )
        )
    return rows


def timing_table(points: Sequence[Point]) -> list[Timing]:
    """Mean encode and decode time per image for each codec, over all its points."""
    rows = []
    for codec, ps in _by_codec(points).items():
        mp = np.array([p.width * p.height / 1e6 for p in ps])
        enc = np.array([p.encode_s for p in ps]) * 1e3
        dec = np.array([p.decode_s for p in ps]) * 1e3
        rows.append(
            Timing(
                codec=codec,
                n_points=len(ps),
                encode_ms=float(enc.mean()),
                decode_ms=float(dec.mean()),
                encode_ms_per_mp=float((enc / mp).mean()),
                decode_ms_per_mp=float((dec / mp).mean()),
            )
        )
    return rows


def complete_images(points: Sequence[Point], codec: str) -> set[str]:
    """Images on which ``codec`` has a point at every quality it was run at."""
    ps = [p for p in points if p.codec == codec]
    qualities = {p.quality for p in ps}
    seen: dict[str, set[float]] = defaultdict(set)
    for p in ps:
        seen[p.image].add(p.quality)
    return {img for img, qs in seen.items() if qs == qualities}


def _curve(rows: Sequence[Aggregate], codec: str, metric: str) -> tuple[list[float], list[float]]:
    rate: list[float] = []
    dist: list[float] = []
    for a in rows:
        if a.codec != codec:
            continue
        value = a.psnr if metric == "psnr" else (None if a.msssim is None else msssim_db(a.msssim))
        if value is not None:
            rate.append(a.bpp)
            dist.append(value)
    return rate, dist


def bd_table(
    points: Sequence[Point],
    codecs: Sequence[str],
    anchor: str = "jpeg",
    method: Method = "pchip",
) -> list[BDRow]:
    """BD-rate and BD-PSNR (and BD on MS-SSIM in dB) of each codec against ``anchor``.

    Each comparison uses only the images both codecs coded at all their qualities, so a
    codec that skipped some images is not compared on a different image set than the
    anchor. MS-SSIM rows further use only images large enough for MS-SSIM, with the mean
    bpp of those images. The anchor's own row is included as a sanity check (zero).
    """
    rows: list[BDRow] = []
    anchor_images = complete_images(points, anchor)
    for codec in codecs:
        for metric in _METRICS:
            if not anchor_images:
                rows.append(BDRow(codec, anchor, metric, None, None, 0, f"anchor {anchor} has no results"))
                continue
            common = anchor_images & complete_images(points, codec)
            if metric == "msssim":
                common -= {p.image for p in points if p.msssim is None and p.codec in (codec, anchor)}
            if not common:
                why = (
                    "MS-SSIM measured on no image both codecs coded" if metric == "msssim"
                    else "no image in common with the anchor"
                )
                rows.append(BDRow(codec, anchor, metric, None, None, 0, why))
                continue
            agg = aggregate([p for p in points if p.codec in (codec, anchor)], common)
            ra, da = _curve(agg, anchor, metric)
            rt, dt = _curve(agg, codec, metric)
            res = bjontegaard(ra, da, rt, dt, method)
            rows.append(BDRow(codec, anchor, metric, res.bd_rate, res.bd_dist, len(common), res.note))
    return rows
