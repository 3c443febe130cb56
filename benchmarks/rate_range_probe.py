"""Could the conv codecs' quality range reach further without retraining? Two probes.

Run from the repository root (writes benchmarks/rate_range_probe.md; needs ../shared/data)::

    PYTHONPATH=. python benchmarks/rate_range_probe.py

1. Gain extrapolation: the encoder/decoder gains of a rate position p are interpolated
   log-linearly between trained levels; here p is pushed below level 0 and above the top level
   (the shipped quality scale stops at the trained levels).
2. Dead-zone rounding: symbols rounded towards zero unless the fraction exceeds θ (θ = 0.5 is
   plain rounding), a cheap encoder-side rate cut.

Real `.aec` files, 8 LFW test-people faces (250×250), `conv-faces`; the probes patch the model
module in this process only.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import numpy as np
import torch

from aecodec import api
from aecodec.bench.metrics import psnr
from aecodec.train.data import lfw_images
from aecodec.weights import load_shipped

ROOT = Path(__file__).resolve().parent
LFW = ROOT.parent.parent / "shared" / "data" / "lfw" / "lfw.tgz"
conv = importlib.import_module("aecodec.models.conv")


def _measure(faces: list[np.ndarray], quality: float) -> tuple[float, float]:
    b, p = [], []
    for f in faces:
        data = api.compress(f, model="conv-faces", quality=quality)
        b.append(8.0 * len(data) / (f.shape[0] * f.shape[1]))
        p.append(psnr(f, np.asarray(api.decompress(data).convert("RGB"))))
    return float(np.mean(b)), float(np.mean(p))


def main() -> int:
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    _, faces = lfw_images(LFW, "test", limit=400)
    faces = faces[::50][:8]
    levels = load_shipped("conv-faces").model.config.levels
    orig_pos, orig_sym = conv.quality_position, conv.to_symbols
    rows = ["| rate position p | what | bpp | PSNR (dB) |", "|---:|---|---:|---:|"]
    for pos in (-2.0, -1.0, 0.0, levels - 1.0, levels, levels + 2.0):
        lo = 0 if pos < 1 else levels - 2
        conv.quality_position = lambda q, n, pos=pos, lo=lo: (lo, lo + 1, pos - lo)
        what = "quality 1 (lowest trained level)" if pos == 0 else (
            "quality 100 (top trained level)" if pos == levels - 1 else "extrapolated")
        b, p = _measure(faces, 50.0)
        rows.append(f"| {pos:g} | {what} | {b:.3f} | {p:.2f} |")
    conv.quality_position = orig_pos
    dz = ["| θ | quality | bpp | PSNR (dB) |", "|---:|---:|---:|---:|"]
    for th in (0.5, 0.6, 0.7):
        conv.to_symbols = lambda x, th=th: (torch.sign(x) * torch.floor(x.float().abs() + 1 - th)).to(torch.int32)
        for q in (10.0, 50.0, 90.0):
            b, p = _measure(faces, q)
            dz.append(f"| {th:g} | {q:g} | {b:.4f} | {p:.2f} |")
    conv.to_symbols = orig_sym
    lines = ["# Rate-range probes (conv-faces, 8 LFW test faces)", "",
             f"Made by `PYTHONPATH=. python benchmarks/rate_range_probe.py` ({time.perf_counter() - t0:.0f} s); "
             "see its docstring.", "", "## Gains beyond the trained levels", "", *rows, "",
             "## Dead-zone rounding", "", *dz, ""]
    (ROOT / "rate_range_probe.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
