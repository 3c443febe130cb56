"""Which packing method wins for the default model, by image size: the evidence for the
methods ``aecodec.pack.pack`` tries for a model with stream tables.

    python benchmarks/pack_choice.py > benchmarks/pack_choice.md   # needs ../shared/data

Centre crops (96-256 px) of 8 LFW test faces and 8 BSDS500 test photos, the 8 whole photos
(481x321), 8 cc_photos (about 768x512) and two 2x2 mosaics of Urban100 photos (2048x1360), each encoded once with the model (``--model``,
default: the default model; ``conv-photos.v7`` gave the first table) at qualities 5, 30, 60 and
90 and packed with every method it can use; the table counts the files each method wins
(smallest, lowest id on ties) and what the rule ``pack`` follows costs against trying every
method.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aecodec import pack  # noqa: E402
from aecodec.codec import to_tensor  # noqa: E402
from aecodec.train.data import lfw_images  # noqa: E402
from aecodec.defaults import DEFAULT_MODEL  # noqa: E402
from aecodec.weights import load_shipped  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
QUALITIES = (5, 30, 60, 90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    _, faces = lfw_images(SHARED / "lfw" / "lfw.tgz", "test")
    faces = faces[::400][:8]
    files = sorted((SHARED / "photos" / "bsds500" / "test").glob("*.jpg"))[::25][:8]
    photos = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    large = [np.asarray(Image.open(f).convert("RGB"))
             for f in sorted((SHARED / "photos" / "cc_photos").glob("*"))[::8][:8]]
    urban = [np.asarray(Image.open(f).convert("RGB").resize((1024, 680)))
             for f in sorted((SHARED / "photos" / "urban100").glob("*"))[:8]]
    mosaics = [np.concatenate([np.concatenate(urban[i:i + 2], 1), np.concatenate(urban[i + 2:i + 4], 1)], 0)
               for i in (0, 4)]  # 2048x1360: 2.8 megapixels of real detail
    lm = load_shipped(args.model)
    print(f"# Which packing method wins, by image size (`{lm.name}`)\n")
    print(f"Command: `python benchmarks/pack_choice.py --model {lm.name} > benchmarks/pack_choice.md` (1 thread)\n")
    print("Each image's symbols packed with every method; *wins*: files for which a method is the smallest "
          "(lowest id on ties); *rule*: the methods `pack()` tries for this grid; *cost*: the rule's files against "
          "the smallest of all methods, in bytes and as a share of the total.\n")
    print("| images | latent positions | files | wins (method: files) | rule | cost |")
    print("|---|---:|---:|---|---|---:|")
    r0 = lm.model.routing(50)
    methods = [pack.PLANAR, pack.LADDER, pack.CONTEXT, pack.HYPER, pack.COMPACT] + (
        [pack.ORDERED] if pack.ordered_ok(r0) else [])
    for side in (96, 128, 160, 192, 256, None, "large", "mosaic"):
        wins: collections.Counter[int] = collections.Counter()
        extra = total = n = 0
        positions = set()
        for src in (faces + photos if isinstance(side, int) else photos if side is None
                    else large if side == "large" else mosaics):
            h, w = src.shape[:2]
            if isinstance(side, int) and min(h, w) < side:
                continue
            if isinstance(side, int):
                top, left = (h - side) // 2, (w - side) // 2
                im = np.ascontiguousarray(src[top:top + side, left:left + side])
            else:
                im = src
            for q in QUALITIES:
                sym = lm.model.encode(to_tensor([im], lm.model.stride), q).numpy()[0]
                routing = lm.model.routing(q)
                positions.add(sym.shape[1] * sym.shape[2])
                sizes = {m: len(pack.pack(sym, method=m, routing=routing if m in pack.MODELLED else None)[1])
                         for m in methods}
                best = min(sizes, key=lambda m: (sizes[m], m))
                wins[best] += 1
                rule = pack.candidates_for(sym.shape, routing)
                extra += min(sizes[m] for m in rule) - sizes[best]
                total += sizes[best]
                n += 1
        label = (f"{side}x{side} crops" if isinstance(side, int) else "whole BSDS500 photos" if side is None
                 else "whole cc_photos (about 768x512)" if side == "large"
                 else "2x2 mosaics of Urban100 photos (2048x1360)")
        pos = "–".join(map(str, sorted({min(positions), max(positions)})))
        print(f"| {label} | {pos} | {n} | {', '.join(f'{m}: {c}' for m, c in sorted(wins.items()))} "
              f"| {', '.join(map(str, pack.candidates_for(sym.shape, routing)))} | +{extra} B ({100 * extra / total:.2f} %) |")
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
