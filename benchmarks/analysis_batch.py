"""The analysis transform's speed against how many images it runs at once.

    python benchmarks/analysis_batch.py [--model conv-photos.v10] [--faces 32] > benchmarks/analysis_batch.md

Encodes LFW test faces (250x250, padded to 256x256 as the codec does) with ``model.encode``,
in chunks of 16, 8, 4, 2 and 1 faces (``conv.ANALYSIS_CHUNK_PIXELS`` set to that many faces'
pixels), with 1 and 2 threads: wall time per face (best of 3 rounds), and whether the symbols
are those of the 16-face chunks. Run it on an idle machine; the times are this CPU's.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aecodec.codec import to_tensor  # noqa: E402
from aecodec.models import conv  # noqa: E402
from aecodec.train.data import lfw_images  # noqa: E402
from aecodec.weights import load_exact  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="conv-photos.v10")
    ap.add_argument("--faces", type=int, default=32)
    args = ap.parse_args()
    lm = load_exact(args.model)
    _, faces = lfw_images(SHARED / "lfw" / "lfw.tgz", "test")
    faces = faces[:: len(faces) // args.faces][:args.faces]
    x = to_tensor(faces, lm.model.stride)
    pixels = x.shape[2] * x.shape[3]
    print(f"# Analysis speed by chunk size\n\n`python benchmarks/analysis_batch.py --model {args.model} "
          f"--faces {args.faces}` ({platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"bfloat16 encoder: {conv.bf16_encoder(torch.device('cpu'))}).\n")
    print("| threads | faces a forward pass | ms a face | symbols as with 16 |")
    print("|---:|---:|---:|---|")
    saved = conv.ANALYSIS_CHUNK_PIXELS
    try:
        for threads in (2, 1):
            torch.set_num_threads(threads)
            ref = None
            for chunk in (16, 8, 4, 2, 1):
                conv.ANALYSIS_CHUNK_PIXELS = chunk * pixels
                best = float("inf")
                for _ in range(3):
                    t = time.perf_counter()
                    out = torch.cat([lm.model.encode(x[a:a + 16], 50) for a in range(0, len(x), 16)])
                    best = min(best, time.perf_counter() - t)
                ref = out if ref is None else ref
                print(f"| {threads} | {chunk} | {best / len(x) * 1e3:.1f} | {torch.equal(out, ref)} |", flush=True)
    finally:
        conv.ANALYSIS_CHUNK_PIXELS = saved


if __name__ == "__main__":
    main()
