"""Packing speed: the zstd level against bytes and time, and which of methods 2 and 3 wins, on
the default model's symbols of 6 cc_photos (1024 px) and 8 LFW test faces at qualities 20/50/80.

    python benchmarks/pack_speed.py > benchmarks/pack_speed.md
"""

from __future__ import annotations

import glob
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from aecodec import codec, pack
from aecodec.train.data import lfw_images
from aecodec.weights import load_shipped

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
QUALITIES = (20, 50, 80)


def main() -> None:
    lm = load_shipped("conv-photos")
    photos = [np.asarray(Image.open(f).convert("RGB")) for f in sorted(glob.glob(str(SHARED / "photos/cc_photos/*.jpg")))[:6]]
    _, faces = lfw_images(SHARED / "lfw" / "lfw.tgz", "test")
    images = photos + [np.asarray(f) for f in faces[:200:25]]
    syms = {q: [codec.encode_symbols(lm, [im], float(q))[0] for im in images] for q in QUALITIES}
    print(f"Model {lm.name}; {len(photos)} photos, {len(images) - len(photos)} faces; "
          f"load average at start {os.getloadavg()[0]:.2f} on 2 cores.\n")
    print("| zstd level | pack s (all 42 grids) | bytes q20 | bytes q50 | bytes q80 | total vs level 19 |")
    print("|---:|---:|---:|---:|---:|---:|")
    rows = {}
    for level in (3, 9, 12, 15, 19):
        t = time.perf_counter()
        rows[level] = ({q: sum(len(pack.pack(s, level=level)[1]) for s in ss) for q, ss in syms.items()},
                       time.perf_counter() - t)
    ref = sum(rows[19][0].values())
    for level, (tot, dt) in rows.items():
        print(f"| {level} | {dt:.2f} | " + " | ".join(str(tot[q]) for q in QUALITIES) +
              f" | {sum(tot.values()) / ref - 1:+.2%} |")
    n = len(photos)
    print("\n| zstd level | photos: bytes vs 19 | faces: bytes vs 19 |")
    print("|---:|---:|---:|")
    size = {level: [(sum(len(pack.pack(s, level=level)[1]) for s in ss[:n]),
                     sum(len(pack.pack(s, level=level)[1]) for s in ss[n:])) for ss in syms.values()]
            for level in (15, 19)}
    for level in (15, 19):
        p, f = (sum(x[k] for x in size[level]) / sum(x[k] for x in size[19]) - 1 for k in (0, 1))
        print(f"| {level} | {p:+.2%} | {f:+.2%} |")
    print(f"\npack()'s default: level {pack.SMALL_LEVEL} below {pack.LARGE_FROM} symbols (faces), "
          f"{pack.LARGE_LEVEL} from there (photos).")
    wins, worst = {"ladder": 0, "context": 0}, 0.0
    for ss in syms.values():
        for s in ss:
            a = len(pack.pack(s, pack.LADDER)[1])
            b = len(pack.pack(s, pack.CONTEXT)[1])
            wins["ladder" if a < b else "context"] += 1
            worst = max(worst, b / a - 1)
    print(f"\nMethod 2 (ladder) smaller on {wins['ladder']} grids, method 3 (context) on {wins['context']}; "
          f"method 3 up to {worst:.1%} larger where it loses, so pack() keeps trying both on large grids.")
    big = syms[50][0]
    t = time.perf_counter()
    for m in (pack.LADDER, pack.CONTEXT):
        pack.pack(big, m)
    serial = time.perf_counter() - t
    t = time.perf_counter()
    pack.pack(big)
    both = time.perf_counter() - t
    print(f"\nOne photo's grid {big.shape} at q50: the two methods one after the other {serial:.2f} s, "
          f"pack() (both at once in two threads) {both:.2f} s.")


if __name__ == "__main__":
    main()
