"""Does a bfloat16 encoder hold quality? Symbols, real file size, PSNR and time, against float32.

    python benchmarks/bf16_encode.py > benchmarks/bf16_encode.md

The decoder is the same float32 network either way: only the analysis transform ``g_a`` runs
under ``torch.autocast("cpu", dtype=torch.bfloat16)``; the gains, the rounding and everything
after it stay float32. Same images as benchmarks/contexts.py (LFW test people, BSDS500 test,
cc_photos test split), the default model, five qualities; BD-rate of the bfloat16 encoder
against the float32 one (negative: smaller files at equal PSNR).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from contexts import QUALITIES, image_sets  # noqa: E402

from aecodec.bench.bdrate import bd_rate  # noqa: E402
from aecodec.bench.metrics import psnr  # noqa: E402
from aecodec.codec import _finish, decode_with, to_tensor  # noqa: E402
from aecodec.container import read  # noqa: E402
from aecodec.images import load_image  # noqa: E402
from aecodec.models.conv import bf16_encoder  # noqa: E402
from aecodec.weights import load_exact  # noqa: E402

MODEL = "conv-photos.v2"  # the default when this was measured


def symbols(lm, x: torch.Tensor, q: float, bf16: bool) -> torch.Tensor:
    """The model's own ``encode``, with its bfloat16 path on or off (``AECODEC_ENCODER``)."""
    if bf16:
        os.environ.pop("AECODEC_ENCODER", None)
    else:
        os.environ["AECODEC_ENCODER"] = "float32"
    return lm.model.encode(x, q)


def main() -> None:
    torch.set_num_threads(2)
    if not bf16_encoder(torch.device("cpu")):
        sys.exit("bf16_encode: this CPU has no native bfloat16: nothing to compare")
    lm = load_exact(MODEL)
    sets = image_sets("test", 24, 12)
    print("# bfloat16 encoder against float32\n")
    print(f"Command: `python benchmarks/bf16_encode.py > benchmarks/bf16_encode.md`; model {lm.name}, "
          "2 threads, beside the background training run (times are comparative, same run).\n")
    print("| set | images | symbols that differ | mean abs. difference of those | BD-rate bf16 vs fp32 | "
          "PSNR change at equal quality | g_a time fp32 | g_a time bf16 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, images in sets.items():
        curves = {False: ([], []), True: ([], [])}
        differ = total = 0
        absdiff = []
        times = {False: 0.0, True: 0.0}
        dpsnr = []
        for q in QUALITIES:
            per = {False: ([], []), True: ([], [])}
            for im in images:
                prep = load_image(im)
                x = to_tensor([prep.rgb], lm.model.stride)
                got = {}
                for bf16 in (False, True):
                    t0 = time.perf_counter()
                    s = symbols(lm, x, q, bf16)[0]
                    times[bf16] += time.perf_counter() - t0
                    enc = _finish(lm, prep, s.numpy(), float(np.float32(q)))
                    out = np.asarray(decode_with(read(enc.data), lm).convert("RGB"))
                    per[bf16][0].append(8 * len(enc.data) / (im.shape[0] * im.shape[1]))
                    per[bf16][1].append(psnr(im, out))
                    got[bf16] = s
                d = (got[True] != got[False])
                differ += int(d.sum())
                total += d.numel()
                if d.any():
                    absdiff.append(float((got[True] - got[False])[d].abs().float().mean()))
            for bf16 in (False, True):
                curves[bf16][0].append(float(np.mean(per[bf16][0])))
                curves[bf16][1].append(float(np.mean(per[bf16][1])))
            dpsnr.append(curves[True][1][-1] - curves[False][1][-1])
        bd = bd_rate(curves[False][0], curves[False][1], curves[True][0], curves[True][1])
        n = len(images) * len(QUALITIES)
        print(f"| {name} | {len(images)} | {100 * differ / total:.2f} % | {np.mean(absdiff) if absdiff else 0:.2f} | "
              f"{bd:+.2f} % | {np.mean(dpsnr):+.3f} dB | {1000 * times[False] / n:.0f} ms | {1000 * times[True] / n:.0f} ms |")


if __name__ == "__main__":
    main()
