"""How ``--denoise`` routes images: the noise estimate, and what the routed codec gives.

Run from the repository root (writes benchmarks/denoise_routing.md; needs ../shared/data)::

    PYTHONPATH=. python benchmarks/denoise_routing.py

Same images and noise as ``benchmarks/denoise_bench.py`` (its evaluation subsets of LFW test
people and BSDS500 test photos, its seeds), plus σ = 0.02 and 0.03. For each set and σ: the
spread of ``estimate_noise`` (σ̂), how many images reach ``AUTO_SIGMA`` and so go to the
denoising twin, and PSNR against the clean image and bpp of ``DenoisingCodec`` (what
``aecodec compress --denoise`` and ``aecodec denoise`` do) at qualities 50 and 90.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from denoise_bench import SEED, SETS, _load, add_noise  # noqa: E402

from aecodec.bench.metrics import psnr  # noqa: E402
from aecodec.container import read_header  # noqa: E402
from aecodec.denoising import AUTO_SIGMA, DenoisingCodec, estimate_noise, is_denoising  # noqa: E402

SIGMAS = (0.0, 0.02, 0.03, 0.05, 0.1, 0.2)
QUALITIES = (50.0, 90.0)
COUNTS = {"faces": 40, "photos": 20}


def main() -> int:
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    lines = ["# How `--denoise` routes images", "",
             "Made by `PYTHONPATH=. python benchmarks/denoise_routing.py` (see its docstring). "
             f"An image goes to the denoising twin when its estimated noise σ̂ ≥ {AUTO_SIGMA:g} "
             "(`aecodec.denoising.AUTO_SIGMA`), otherwise to the plain model. Same images and noise "
             "as [`denoise.md`](denoise.md); PSNR is against the clean image, bpp from the real `.aec` file.", ""]
    for sid, (name, (label, plain)) in enumerate(SETS.items()):
        ev, clean, _, _ = _load(name, COUNTS[name], 0)
        codecs = {q: DenoisingCodec(plain, q) for q in QUALITIES}
        lines += [f"## {label} ({len(clean)} images; `{plain}` / `{plain}-denoise`)", "",
                  "| σ | σ̂ min / mean / max | to the twin | " + " | ".join(
                      f"q{q:g}: PSNR (dB) / bpp" for q in QUALITIES) + " |",
                  "|---:|---|---:|" + "---|" * len(QUALITIES)]
        for sigma in SIGMAS:
            key = int(round(sigma * 1000))
            noisy = [add_noise(c, sigma, (SEED, sid, i, key)) for c, i in zip(clean, ev)]
            est = [estimate_noise(n) for n in noisy]
            cells = []
            for q in QUALITIES:
                out = list(codecs[q].compress_many(noisy, batch=8))
                ps = [psnr(c, np.asarray(codecs[q].decompress(d).convert("RGB"))) for c, d in zip(clean, out)]
                bp = [8.0 * len(d) / (c.shape[0] * c.shape[1]) for c, d in zip(clean, out)]
                twin = sum(is_denoising(read_header(d).model) for d in out)
                cells.append(f"{np.mean(ps):.2f} / {np.mean(bp):.3f}")
            lines.append(f"| {sigma:g} | {min(est):.4f} / {np.mean(est):.4f} / {max(est):.4f} | "
                         f"{twin}/{len(noisy)} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
        lines.append("")
    lines += [f"Run time {time.perf_counter() - t0:.0f} s on 2 CPU threads.", ""]
    Path(__file__).resolve().parent.joinpath("denoise_routing.md").write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
