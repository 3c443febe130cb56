"""One-shot ``aecodec.compress`` of one 250x250 image, 1 and 2 torch threads: median, min, max.

    python benchmarks/face_latency.py > benchmarks/face_latency.md

The astronaut photo (scikit-image) resized to 250x250, default model and quality, 2 warm-ups
then 15 timed calls per thread count; a small image shows the spread of 2 intra-op threads.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from PIL import Image
from skimage import data

import aecodec


def main() -> None:
    rgb = np.asarray(Image.fromarray(data.astronaut()).resize((250, 250)))
    print("# One-shot compress latency, 250x250\n")
    print("Command: `python benchmarks/face_latency.py > benchmarks/face_latency.md` "
          f"(default model {aecodec.model_info('conv-photos')['name']}, quality 50)\n")
    print("| torch threads | median ms | min ms | max ms |")
    print("|---:|---:|---:|---:|")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for _ in range(2):
            aecodec.compress(rgb)
        times = []
        for _ in range(15):
            t = time.perf_counter()
            aecodec.compress(rgb)
            times.append(time.perf_counter() - t)
        ms = 1000 * np.array(times)
        print(f"| {threads} | {np.median(ms):.1f} | {ms.min():.1f} | {ms.max():.1f} |")


if __name__ == "__main__":
    main()
