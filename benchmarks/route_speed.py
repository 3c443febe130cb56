"""Time of the hyperprior's integer routing (side symbols -> every latent's class), uncached.

    python benchmarks/route_speed.py > benchmarks/route_speed.md

The default model's routing at quality 50 for the symbols of the astronaut photo resized to
250x250 and 768x768; median of 7 calls on one thread. Both the encoder and the decoder run it
once a file.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from PIL import Image
from skimage import data

import aecodec
from aecodec import container
from aecodec.codec import model_for, read_symbols


def main() -> None:
    torch.set_num_threads(1)
    print("# Hyperprior routing time\n")
    print("Command: `python benchmarks/route_speed.py > benchmarks/route_speed.md` (1 thread, median of 7)\n")
    print("| image | latent grid | routing ms |")
    print("|---|---|---:|")
    for side in (250, 768):
        blob = aecodec.compress(Image.fromarray(data.astronaut()).resize((side, side)), quality=50)
        f = container.read(blob)
        lm = model_for(f.header)
        sym = read_symbols(f, lm)
        routing = lm.model.routing(50)
        z = routing.side(sym)
        times = []
        for _ in range(7):
            routing._last = None  # no cache: the time of one file's routing
            t = time.perf_counter()
            routing.route(z, sym.shape)
            times.append(time.perf_counter() - t)
        print(f"| astronaut {side}x{side} | {'x'.join(map(str, sym.shape))} | {1000 * float(np.median(times)):.1f} |")


if __name__ == "__main__":
    main()
