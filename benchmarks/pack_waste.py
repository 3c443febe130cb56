"""Where method 6's payload goes beyond what its own stream tables promise, stage by stage.

    OMP_NUM_THREADS=1 python benchmarks/pack_waste.py [MODEL] > benchmarks/pack_waste.md

For the default model's files (its symbols routed by the hyperprior, packed with the shipped
stream tables, as `pack()` does for method 6), every ladder stage of every run is measured
three ways:

- *real*: the bytes method 6 stores for it (tag and body; stages under 16 bytes raw);
- *static Huffman*: the bits a Huffman code built on the table's own distribution of the
  stage's bytes (each byte packs 8 // w codes of the stage) would spend on these bytes: the
  best any coder of whole bytes with that table can do, frame overhead free;
- *ideal*: the table's own information content of the stage's codes, -log2 p summed (an
  arithmetic coder with the same table).

real / static shows what zstd's framing and table reuse cost; static / ideal what coding whole
bytes with integer-length codes costs, which no zstd setting removes. Run headers (run starts
and table bytes) and the side section's length are counted apart. Images: LFW test people
(250x250), BSDS500 test photos (481x321) and 64x64 centre crops of both.
"""

from __future__ import annotations

import heapq
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from hyperprior import image_sets, model_estimate  # noqa: E402

from aecodec import pack  # noqa: E402
from aecodec.codec import to_tensor  # noqa: E402
from aecodec.pack import (_RAW_BELOW, _compact_stage, _compressor, _ladder_stages, _side_classes,  # noqa: E402
                          _start_bytes, _tabled_runs, _zigzag)
from aecodec.weights import load_exact  # noqa: E402

MODEL = sys.argv[1] if len(sys.argv) > 1 else "conv-photos.v10"
QUALITIES = (5, 30, 60, 90)


def huffman_lengths(p: np.ndarray) -> np.ndarray:
    """Code lengths of a Huffman code for probabilities ``p`` (zero-probability symbols get the
    longest length plus one, as if given a tiny probability)."""
    q = np.maximum(p, 1e-12)
    heap = [(float(v), i, (i,)) for i, v in enumerate(q)]
    heapq.heapify(heap)
    lengths = np.zeros(len(q), np.int64)
    n = len(q)
    while len(heap) > 1:
        a, _, sa = heapq.heappop(heap)
        b, _, sb = heapq.heappop(heap)
        for s in sa + sb:
            lengths[s] += 1
        heapq.heappush(heap, (a + b, n, sa + sb))
        n += 1
    return lengths


def stage_probs(cost: np.ndarray, off: int, w: int) -> np.ndarray:
    """P(code | the stage is reached) of a stage of width ``w`` at offset ``off`` under a table."""
    p = 2.0 ** (-cost.astype(np.float64) / 256)
    p /= p.sum()
    top = (1 << w) - 1
    idx = np.minimum(off + np.arange(top), 256)
    pc = np.append(p[idx], p[min(off + top, 256):].sum())
    return pc / max(pc.sum(), 1e-300)


def stage_costs(codes: np.ndarray, pc: np.ndarray, w: int) -> tuple[float, float]:
    """(static Huffman bits of the packed bytes, ideal bits) of ``codes`` under ``pc``."""
    ideal = float(-np.log2(np.maximum(pc[codes], 1e-300)).sum())
    k = 8 // w
    b = np.arange(256)
    pb = np.ones(256)
    for j in range(k):
        pb *= pc[(b >> (8 - w * (j + 1))) & ((1 << w) - 1)]
    lengths = huffman_lengths(pb / pb.sum())
    packed = np.frombuffer(pack._pack_codes(codes, w), np.uint8)
    return float(lengths[packed].sum()), ideal


def main() -> None:
    torch.set_num_threads(1)
    lm = load_exact(MODEL)
    t0 = time.time()
    sets = image_sets(16, 6)
    print("# Method 6's payload against its own stream tables\n")
    print(f"Command: `OMP_NUM_THREADS=1 python benchmarks/pack_waste.py > benchmarks/pack_waste.md` (model `{MODEL}`; "
          f"{len(sets['faces'])} LFW test faces, {len(sets['bsds'])} BSDS500 test photos, "
          f"{len(sets['crops64'])} 64x64 centre crops of both). See the script's docstring for the three columns.\n")
    print("Bits per pixel of each part of the payload (method 6 forced, so also where `pack()` would pick another method):\n")
    print("| set | quality | stages | real | static Huffman | ideal | real / static | static / ideal | "
          "run headers | sparse 1-bit stages: real / ideal | payload / ideal | pack()'s payload / ideal | "
          "model estimate | ideal / estimate | pack()'s payload / estimate |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in ("faces", "bsds", "crops64"):
        for q in QUALITIES:
            acc: dict[str, list[float]] = {}
            px, payload, heads, shipped, estimate = 0, 0, 0, 0, 0.0
            for im in sets[name]:
                sym = lm.model.encode(to_tensor([im], lm.model.stride), q).numpy()[0]
                routing = lm.model.routing(q)
                tables = routing.tables
                side = np.asarray(routing.side(sym), np.int64)
                classes = np.asarray(routing.route(side, sym.shape), np.int64).ravel()
                payload += 8 * len(pack.pack(sym, method=pack.COMPACT, routing=routing)[1])
                shipped += 8 * len(pack.pack(sym, routing=routing)[1])  # the method pack() picks (7 here)
                estimate += model_estimate(lm, sym, side, q)  # the model's own bits (hyperprior.md's estimate)
                px += im.shape[0] * im.shape[1]
                for s, cl, x in ((1, _side_classes(tables, side.shape), _zigzag(side).ravel()),
                                 (0, classes, _zigzag(sym).ravel())):
                    n = len(tables.sets[s])
                    runs = _tabled_runs(cl, x, tables.sets[s])
                    heads += 8 * (_start_bytes(n) + len(runs))
                    run_of = np.zeros(n, np.int64)
                    for r, (lo, hi, _) in enumerate(runs):
                        run_of[lo:hi] = r
                    rid = run_of[cl]
                    for r, (_, _, t) in enumerate(runs):
                        xr = x[rid == r]
                        if not xr.any():
                            continue
                        table = tables.sets[s][t]
                        stages, escapes = _ladder_stages(xr, table.ladder)
                        off, rest = 0, xr
                        for k, packed in enumerate(stages):
                            w = table.ladder[k]
                            top = (1 << w) - 1
                            codes = np.minimum(rest - off, top)
                            pc = stage_probs(table.cost, off, w)
                            static, ideal = stage_costs(codes, pc, w)
                            if len(packed) < _RAW_BELOW:
                                real = 8 * len(packed)
                            else:
                                frame = _compressor(19, tables.compression_dict(s, t, k, 19))(packed)
                                real = 8 * len(_compact_stage(frame, packed, tables.decompression_dict(s, t, k)))
                            kind = "sparse" if w == 1 and (codes > 0).mean() < 0.1 else "other"
                            for key in ("all", kind):
                                a = acc.setdefault(key, [0.0, 0.0, 0.0])
                                a[0] += real
                                a[1] += static
                                a[2] += ideal
                            rest, off = rest[rest - off >= top], off + top
                        heads += 32 * len(escapes)
                heads += 8  # the side section's length varint (one byte at these sizes)
            r, st, idl = acc["all"]
            sp = acc.get("sparse", [0.0, 0.0, 1.0])
            print(f"| {name} | {q} | all | {r / px:.4f} | {st / px:.4f} | {idl / px:.4f} | {r / st:.3f} | {st / idl:.3f} | "
                  f"{heads / px:.4f} | {sp[0] / max(sp[2], 1):.2f} ({sp[0] / px:.4f} bpp) | {payload / idl:.3f} | {shipped / idl:.3f} | "
                  f"{estimate / px:.4f} | {idl / estimate:.3f} | {shipped / estimate:.3f} |")
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
