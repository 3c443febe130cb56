"""Packing efficiency of the shipped models on real latents: the zstd-packed payload against
the model's own rate estimate (its learned density) and the empirical per-channel entropy.

    python benchmarks/packing_models.py > benchmarks/packing_models.md

Sets: 40 LFW test-people faces (every 50th test image, 250x250) and 20 BSDS500 test photos
(every 10th, 481x321). Qualities are the conv models' trained levels, where the model's
density is defined exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from aecodec import pack
from aecodec.codec import to_tensor
from aecodec.train.data import lfw_images
from aecodec.weights import load_shipped

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
QUALITIES = [1, 19, 37, 55, 73, 91, 100]


def sets() -> dict[str, list[np.ndarray]]:
    _, faces = lfw_images(SHARED / "lfw" / "lfw.tgz", "test")
    photos = sorted((SHARED / "photos" / "bsds500" / "test").glob("*.jpg"))[::10]
    return {"LFW test (40 faces)": faces[::50][:40],
            "BSDS500 test (20 photos)": [np.asarray(Image.open(p).convert("RGB")) for p in photos]}


def main() -> None:
    torch.set_num_threads(2)
    data = sets()
    print("# Packing efficiency on real latents\n")
    print("Command: `python benchmarks/packing_models.py > benchmarks/packing_models.md`\n")
    print("Sums over each set. *payload*: the real packed symbols (`aecodec.pack`, best method), "
          "without the ~35-byte container header; *estimate*: the model's own learned-density rate "
          "for the same symbols; *entropy*: empirical order-0 entropy per channel (tables free). "
          "Ratios above 1 mean the packer spends more than the yardstick.\n")
    for model, set_names in [("conv-faces", list(data)), ("conv-photos", list(data)), ("pca-block", list(data))]:
        lm = load_shipped(model)
        for set_name in set_names:
            print(f"\n## {model} on {set_name}\n")
            print("| quality | payload bpp | estimate bpp | entropy bpp | payload / estimate | payload / entropy |")
            print("|---:|---:|---:|---:|---:|---:|")
            ratios = []
            for q in QUALITIES:
                pay = est = ent = 0.0
                pixels = 0
                for img in data[set_name]:
                    x = to_tensor([img], lm.model.stride)
                    s = lm.model.encode(x, q)
                    sym = s[0].numpy()
                    pay += 8 * len(pack.pack(sym)[1])
                    ent += pack.entropy_bits(sym)
                    r = lm.model.rate_bits(s, q)
                    est += r if r is not None else float("nan")
                    pixels += img.shape[0] * img.shape[1]
                ratio_e = pay / est if est == est else float("nan")
                ratios.append(ratio_e)
                print(f"| {q} | {pay / pixels:.4f} | {est / pixels:.4f} | {ent / pixels:.4f} | "
                      f"{ratio_e:.3f} | {pay / ent:.3f} |")
            valid = [r for r in ratios if r == r]
            if valid:
                print(f"\nMean payload / estimate over these qualities: **{np.mean(valid):.3f}**")


if __name__ == "__main__":
    main()
