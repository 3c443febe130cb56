"""The report's figures: rate-distortion curves and the side-by-side visual comparison."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from aecodec.bench.aggregate import msssim_db
from aecodec.bench.results import Aggregate, Visual

__all__ = ["plot_rd", "plot_visual"]

_MARKERS = "osD^v<>pP*hX"


def plot_rd(
    aggregates: Sequence[Aggregate], metric: Literal["psnr", "msssim"], path: Path, anchor: str = "jpeg"
) -> bool:
    """Draw every codec's mean curve of ``metric`` against bpp on one axes, as PNG.

    MS-SSIM is drawn as -10 log10(1 - MS-SSIM) dB, which separates codecs that all sit near
    0.99 on the raw scale. Returns False (and writes nothing) when there is no data.
    Uses a bare Figure (Agg), not pyplot, so no global plotting state is touched.
    """
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for a in aggregates:
        value = a.psnr if metric == "psnr" else (None if a.msssim is None else msssim_db(a.msssim))
        if value is None or not math.isfinite(value):
            continue
        xs, ys = curves.setdefault(a.codec, ([], []))
        xs.append(a.bpp)
        ys.append(value)
    if not curves:
        return False
    fig = Figure(figsize=(7.0, 5.0), dpi=120)
    ax = fig.add_subplot()
    for i, (codec, (xs, ys)) in enumerate(curves.items()):
        order = np.argsort(xs)
        style = "--" if codec == anchor else "-"
        ax.plot(
            np.asarray(xs)[order], np.asarray(ys)[order], style,
            marker=_MARKERS[i % len(_MARKERS)], markersize=4, label=codec,
        )
    ax.set_xlabel("bits per pixel (whole file)")
    if metric == "psnr":
        ax.set_ylabel("PSNR, RGB (dB)")
        ax.set_title("PSNR vs rate (mean over images)")
    else:
        ax.set_ylabel("MS-SSIM (dB) = -10 log10(1 - MS-SSIM)")
        ax.set_title("MS-SSIM vs rate (mean over images)")
    ax.set_xlim(left=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    return True


def _title(panel_codec: str, quality: float | None, bpp: float | None, psnr: float | None) -> str:
    if bpp is None:
        return "original"
    db = "inf" if psnr is None or not math.isfinite(psnr) else f"{psnr:.2f}"
    return f"{panel_codec} (q={quality:g})\n{bpp:.3f} bpp, {db} dB"


def plot_visual(visual: Visual, source_dir: Path, path: Path) -> bool:
    """Show the crops of ``visual`` side by side, each titled with codec, bpp and PSNR.

    Crops are read from ``source_dir`` (the folder of the results that made them); returns
    False and writes nothing when none of them can be read.
    """
    panels = []
    for p in visual.panels:
        try:
            with Image.open(source_dir / p.file) as im:
                panels.append((p, np.asarray(im.convert("RGB"))))
        except OSError:
            continue
    if not panels:
        return False
    cols = min(len(panels), 6)  # one row for the four reference codecs plus a model
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(2.6 * cols, 2.9 * rows), dpi=120)
    for i, (p, pixels) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(pixels, interpolation="nearest")
        ax.set_title(_title(p.codec, p.quality, p.bpp, p.psnr), fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    left, top, right, bottom = visual.box
    fig.suptitle(
        f"{visual.image}, crop {right - left}x{bottom - top} at ({left},{top}); "
        f"closest to {visual.target_bpp:.3f} bpp",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)
    return True
