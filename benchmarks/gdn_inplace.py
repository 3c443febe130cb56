"""In-place GDN at inference: the default model's decoder on a 768x512 grid of random symbols,
the out-of-place GDN (the training path) against the in-place one, interleaved; outputs must
be bit-identical (torch.equal).

    python benchmarks/gdn_inplace.py > benchmarks/gdn_inplace.md
"""

from __future__ import annotations

import os
import statistics
import time

import torch
import torch.nn.functional as F

from aecodec.models import gdn
from aecodec.weights import load_shipped


def out_of_place(self: gdn.GDN, x: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    beta = self._nonneg(self.beta, self.beta_min)
    gamma = self._nonneg(self.gamma, 0.0).view(c, c, 1, 1)
    norm = torch.sqrt(F.conv2d(x * x, gamma.to(x.dtype), beta.to(x.dtype)))
    return x * norm if self.inverse else x / norm


def main() -> None:
    torch.set_num_threads(2)
    lm = load_shipped("conv-photos")
    sym = torch.randint(-3, 4, (1, 160, 32, 48), generator=torch.Generator().manual_seed(0)).int()
    in_place = gdn.GDN.forward
    times: dict[str, list[float]] = {"out of place": [], "in place": []}
    outs = {}
    for _ in range(8):
        for name, fwd in (("out of place", out_of_place), ("in place", in_place)):
            gdn.GDN.forward = fwd
            t = time.perf_counter()
            outs[name] = lm.model.decode(sym, 50.0)
            times[name].append(time.perf_counter() - t)
    gdn.GDN.forward = in_place
    print(f"{lm.name} decoder, 768x512, 2 threads, 8 interleaved runs; load average {os.getloadavg()[0]:.2f}\n")
    print("| GDN | best ms | median ms |\n|---|---:|---:|")
    for name, ts in times.items():
        print(f"| {name} | {min(ts) * 1e3:.0f} | {statistics.median(ts) * 1e3:.0f} |")
    print(f"\nOutputs bit-identical: {torch.equal(outs['in place'], outs['out of place'])}")


if __name__ == "__main__":
    main()
