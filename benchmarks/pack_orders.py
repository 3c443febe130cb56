"""Packing method 7 (each run of the latent section in the smallest of four orders) against
method 6 (raster order), on the default model's own symbols.

    OMP_NUM_THREADS=1 python benchmarks/pack_orders.py > benchmarks/pack_orders.md

Images: LFW test people (250x250), BSDS500 test photos (481x321) and 64x64 centre crops of
both (``benchmarks/hyperprior.py``'s sets). Each image is encoded once per quality; its symbols
are packed with method 6 and with method 7 (identical symbols, so identical decoded images),
and method 7's payload is unpacked and checked. Bytes are whole payloads (side section
included); the pack times are the median of three, single-threaded.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from hyperprior import image_sets  # noqa: E402

from aecodec import pack  # noqa: E402
from aecodec.codec import to_tensor  # noqa: E402
from aecodec.weights import load_exact  # noqa: E402


def _timed(f) -> tuple[float, object]:
    times, out = [], None
    for _ in range(3):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="conv-photos.v9")
    ap.add_argument("--faces", type=int, default=24)
    ap.add_argument("--bsds", type=int, default=8)
    ap.add_argument("--qualities", type=lambda t: [float(q) for q in t.split(",")], default=[5, 30, 50, 70, 90])
    a = ap.parse_args()
    torch.set_num_threads(1)
    lm = load_exact(a.model)
    m = lm.model
    t0 = time.time()
    print("# Method 7 (run orders) against method 6\n")
    args = "".join(" " + x for x in sys.argv[1:])
    print(f"Command: `OMP_NUM_THREADS=1 python benchmarks/pack_orders.py{args} > benchmarks/pack_orders.md` "
          f"(model `{lm.name}`)\n")
    print("| set | quality | method 6 bytes/image | method 7 bytes/image | change | runs sorted | pack ms 6 | pack ms 7 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, images in image_sets(a.faces, a.bsds).items():
        for q in a.qualities:
            b6 = b7 = t6 = t7 = 0.0
            sorted_runs = runs = 0
            for im in images:
                sym = m.encode(to_tensor([im], m.stride), q).numpy()[0]
                routing = m.routing(q)
                dt6, (_, d6) = _timed(lambda: pack.pack(sym, method=pack.COMPACT, routing=routing))
                dt7, (_, d7) = _timed(lambda: pack.pack(sym, method=pack.ORDERED, routing=routing))
                assert np.array_equal(pack.unpack(d7, sym.shape, pack.ORDERED, routing), sym)
                b6, b7, t6, t7 = b6 + len(d6), b7 + len(d7), t6 + dt6, t7 + dt7
                live = [order for _, order, zero in pack.latent_run_picks(d7, routing) if not zero]
                runs += len(live)
                sorted_runs += sum(1 for order in live if order)
            k = len(images)
            print(f"| {name} | {q:g} | {b6 / k:.1f} | {b7 / k:.1f} | {100 * (b7 / b6 - 1):+.2f} % | "
                  f"{sorted_runs} of {runs} | {1000 * t6 / k:.1f} | {1000 * t7 / k:.1f} |", flush=True)
    print(f"\n({time.time() - t0:.0f} s, {time.strftime('%Y-%m-%d')})")


if __name__ == "__main__":
    main()
