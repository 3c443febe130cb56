"""Regenerate the golden `.aec` files (only on purpose: a format or weights change).

    PYTHONPATH=. python tests/data/make_golden.py

Each golden file is kept with the PNG its decode gave when it was made; tests decode the
golden file with the current code and compare.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage import data

import aecodec

HERE = Path(__file__).resolve().parent
CASES = {
    "conv-photos_q50_rgb": ("conv-photos", 50, lambda: data.astronaut()[40:88, 180:236]),
    "pca-block_q70_gray": ("pca-block", 70, lambda: data.camera()[200:233, 220:237]),
    "conv-faces_q20_rgba": ("conv-faces", 20, lambda: np.dstack([data.astronaut()[60:92, 200:232],
                                                                   np.tile(np.arange(0, 256, 8, dtype=np.uint8), (32, 1))])),
}


def main() -> None:
    for name, (model, q, make) in CASES.items():
        blob = aecodec.compress(make(), quality=q, model=model)
        (HERE / f"golden_{name}.aec").write_bytes(blob)
        aecodec.decompress(blob).save(HERE / f"golden_{name}.png")
        print(name, len(blob), "bytes")


if __name__ == "__main__":
    main()
