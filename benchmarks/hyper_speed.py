"""Encode and decode time of a hyperprior model against its factorized base, on one face
(250x250) and one photograph (768x512), through the public API (whole .aec files).

    python benchmarks/hyper_speed.py conv-photos.v6 conv-photos.v7 > benchmarks/hyper_speed.md

Median of 5 runs each, after two warm-ups, at quality 50, threads as given. This machine is shared
and noisy (the background training run holds both cores): read the ratios, not the seconds.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aecodec  # noqa: E402
from aecodec.bench.timing import median_ms  # noqa: E402
from aecodec.train.data import lfw_images  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    _, faces = lfw_images(SHARED / "lfw" / "lfw.tgz", "test")
    photo = sorted((SHARED / "photos" / "cc_photos").glob("*"))[0]
    images = {"face 250x250": faces[0], f"photo {Image.open(photo).size[0]}x{Image.open(photo).size[1]}":
              np.asarray(Image.open(photo).convert("RGB"))}
    print("# Hyperprior model speed\n")
    print(f"Command: `python benchmarks/hyper_speed.py {' '.join(sys.argv[1:])}` (median of 5 after 2 warm-ups, quality 50)\n")
    print("| image | model | bytes | packing | compress ms | decompress ms |")
    print("|---|---|---:|---:|---:|---:|")
    for name, im in images.items():
        for m in a.models:
            blob = aecodec.compress(im, quality=50, model=m)
            enc = median_ms(lambda: aecodec.compress(im, quality=50, model=m), runs=5)
            dec = median_ms(lambda: aecodec.decompress(blob), runs=5)
            print(f"| {name} | {m} | {len(blob)} | {aecodec.info(blob).packing} | {enc:.0f} | {dec:.0f} |", flush=True)


if __name__ == "__main__":
    main()
