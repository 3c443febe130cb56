"""zstd level against pack time on faces with the default model's packing (method 7 on 250x250
faces): 24 LFW test faces (benchmarks/throughput.py's set), default quality, the side symbols
computed once, best of 3 passes per level, one torch thread; then a cProfile of one pass.

    python benchmarks/pack_level_faces.py >> benchmarks/pack_speed.md
"""
from __future__ import annotations

import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import faces  # noqa: E402

from aecodec import codec, pack  # noqa: E402
from aecodec.defaults import DEFAULT_QUALITY  # noqa: E402
from aecodec.weights import load_shipped  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    lm = load_shipped("conv-photos")
    q = float(DEFAULT_QUALITY)
    syms = [codec.encode_symbols(lm, [f], q)[0] for f in faces(24)]
    routing = codec.routing_of(lm, q)
    sides = [routing.side(s) for s in syms]
    print(f"\n## zstd level on faces ({lm.name}, quality {q:g}, 24 LFW test faces, 1 thread)\n")
    print("Command: `python benchmarks/pack_level_faces.py >> benchmarks/pack_speed.md`\n")
    print("| zstd level | pack ms a face (best of 3) | bytes | vs level 19 |")
    print("|---:|---:|---:|---:|")
    ref = None
    for level in (19, 15, 12, 9, 3):
        best, n = 1e9, 0
        for _ in range(3):
            t = time.perf_counter()
            n = sum(len(pack.pack(s, level=level, routing=routing, side=sd)[1]) for s, sd in zip(syms, sides))
            best = min(best, time.perf_counter() - t)
        ref = ref or n
        print(f"| {level} | {best / len(syms) * 1e3:.2f} | {n} | {n / ref - 1:+.2%} |")
    prof = cProfile.Profile()
    prof.enable()
    for s, sd in zip(syms, sides):
        pack.pack(s, routing=routing, side=sd)
    prof.disable()
    st = pstats.Stats(prof, stream=io.StringIO())
    total = st.total_tt
    shares = {"zstd compress": 0.0, "integer h_s (IntSynthesis)": 0.0}
    for (file, _, func), (_, _, tt, ct, _) in st.stats.items():
        if func == "<method 'compress' of 'zstandard.backend_c.ZstdCompressor' objects>":
            shares["zstd compress"] += tt
        if file.endswith("hyper.py") and func == "__call__":
            shares["integer h_s (IntSynthesis)"] += ct
    print("\nShare of the default pack() time (cProfile, one pass): "
          + ", ".join(f"{k} {v / total:.0%}" for k, v in shares.items()) + ".")


if __name__ == "__main__":
    main()
