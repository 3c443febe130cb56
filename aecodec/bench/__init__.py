"""Rate, distortion and speed of aecodec models against JPEG, WebP, AVIF and JPEG 2000.

The engine behind ``aecodec bench``: ``run_bench`` sweeps codecs over qualities and images,
``render_report`` writes report.md, plots and results.json, and ``load_results`` reads a
results.json back so a report can be re-rendered or compared.
"""

from __future__ import annotations

from aecodec.bench.bdrate import BDResult, bd_psnr, bd_rate, bjontegaard
from aecodec.bench.codecs import AEC_PREFIX, PILLOW_CODECS, AecModelCodec, Codec, PillowCodec
from aecodec.bench.metrics import ms_ssim, ms_ssim_skip_reason, psnr
from aecodec.bench.report import render_report
from aecodec.bench.results import (
    Aggregate,
    BDRow,
    BenchResult,
    Point,
    Skipped,
    Timing,
    load_results,
)
from aecodec.bench.run import run_bench

__all__ = [
    "run_bench",
    "render_report",
    "load_results",
    "BenchResult",
    "Point",
    "Aggregate",
    "BDRow",
    "Timing",
    "Skipped",
    "Codec",
    "PillowCodec",
    "AecModelCodec",
    "PILLOW_CODECS",
    "AEC_PREFIX",
    "bjontegaard",
    "bd_rate",
    "bd_psnr",
    "BDResult",
    "psnr",
    "ms_ssim",
    "ms_ssim_skip_reason",
]
