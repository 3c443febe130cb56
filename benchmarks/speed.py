"""Encode and decode time of the shipped models on 2 CPU threads.

    python benchmarks/speed.py > benchmarks/speed.md

768x512: a crop of scikit-image's astronaut upscaled to 768x512 (content matters little for
time); each timing is the median of 7 runs after 2 warm-ups, through the public API
(`Codec.encode` = image conversion + network + quantization + packing + container; decode
likewise, to a PIL image). The batch case encodes 32 LFW-sized 250x250 images through
`Codec.compress_many` (equal sizes are batched through the network 16 at a time).
"""

from __future__ import annotations

import platform

import numpy as np
import torch
from PIL import Image
from skimage import data

import aecodec
from aecodec.bench.timing import median_ms


def main() -> None:
    torch.set_num_threads(2)
    big = np.asarray(Image.fromarray(data.astronaut()).resize((768, 512), Image.Resampling.LANCZOS))
    rng = np.random.default_rng(0)
    faces = [data.astronaut()[y:y + 250, x:x + 250] for y, x in rng.integers(0, 262, (32, 2))]
    print("# Speed\n")
    print(f"Command: `python benchmarks/speed.py > benchmarks/speed.md`; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          "on a shared 2-core machine (other jobs may have been running: treat as upper bounds).\n")
    print("| model | 768x512 encode ms | 768x512 decode ms | 250x250 batch of 32: encode ms/image | decode ms/image |")
    print("|---|---:|---:|---:|---:|")
    for model in ["conv-photos", "conv-faces", "pca-block"]:
        codec = aecodec.Codec(model=model, quality=50)
        blob = codec.compress(big)
        enc = median_ms(lambda: codec.compress(big))
        dec = median_ms(lambda: codec.decompress(blob))
        blobs = list(codec.compress_many(faces))
        benc = median_ms(lambda: list(codec.compress_many(faces)), runs=3, warm=1) / len(faces)
        bdec = median_ms(lambda: list(codec.decompress_many(blobs)), runs=3, warm=1) / len(faces)
        print(f"| {model} | {enc:.0f} | {dec:.0f} | {benc:.1f} | {bdec:.1f} |")


if __name__ == "__main__":
    main()
