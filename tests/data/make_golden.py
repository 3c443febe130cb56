"""Make the golden `.aec` files that are missing: one or more per released model version.

    PYTHONPATH=. python tests/data/make_golden.py

Each golden file is kept with the PNG its decode gave when it was made; tests decode the
golden file with the current code and compare. Existing golden files are never rewritten
(they pin what released versions wrote); a new model version gets new cases here, named by
its exact name (``conv-photos.v2``; version 1 is the bare family name).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

import aecodec
from aecodec.versions import split_version

HERE = Path(__file__).resolve().parent
CASES = {
    "conv-photos_q50_rgb": ("conv-photos.v1", 50, lambda: data.astronaut()[40:88, 180:236]),
    "pca-block_q70_gray": ("pca-block.v1", 70, lambda: data.camera()[200:233, 220:237]),
    "conv-faces_q20_rgba": ("conv-faces.v1", 20, lambda: np.dstack([data.astronaut()[60:92, 200:232],
                                                                   np.tile(np.arange(0, 256, 8, dtype=np.uint8), (32, 1))])),
    "conv-faces-denoise_q60_rgb": ("conv-faces-denoise.v1", 60, lambda: data.astronaut()[30:78, 170:218]),
    "conv-photos-denoise_q40_rgb": ("conv-photos-denoise.v1", 40, lambda: data.coffee()[100:148, 200:264]),
    "eigenfaces_q50_rgb": ("eigenfaces.v1", 50, lambda: data.astronaut()[20:148, 160:288][::2, ::2]),
    "linear-faces_q50_rgb": ("linear-faces.v1", 50, lambda: data.astronaut()[20:148, 160:288][::2, ::2]),
    "dense-faces_q50_rgb": ("dense-faces.v1", 50, lambda: data.astronaut()[20:148, 160:288][::2, ::2]),
    # packing method 3 (context-ladder), which pack() picks for this crop
    "conv-photos.v2_q50_context_rgb": ("conv-photos.v2", 50, lambda: data.coffee()[0:128, 0:128]),
    # packing method 5 (hyper-tables), which pack() picked for this crop before method 6, and method 4 (hyper-ladder)
    # forced on it (pack() picks 4 only on some larger images)
    "conv-photos.v7_q60_tables_rgb": ("conv-photos.v7", 60, lambda: data.chelsea()[50:146, 150:246]),
    "conv-photos.v7_q80_hyper_rgb": ("conv-photos.v7", 80, lambda: data.chelsea()[50:146, 150:246], 4),
    # packing method 6 (hyper-tables-compact), which pack() picks for this crop
    "conv-photos.v7_q70_compact_rgb": ("conv-photos.v7", 70, lambda: data.chelsea()[60:140, 120:232]),
    # packing method 7 (hyper-tables-ordered): what pack() picks for the default model from
    # 2026-12-03 (a 128x160 crop, 8x10 positions: orders 0 and 3 tried, both used here)
    "conv-photos.v9_q40_ordered_rgb": ("conv-photos.v9", 40, lambda: data.chelsea()[40:168, 90:250], 7),
    # container version 2 (the default from 2026-12-03): a 64x64 thumbnail; and an LA image with
    # a fractional quality (the float32 form) and an alpha chunk
    "conv-photos.v7_q50_fmt2_rgb": ("conv-photos.v7", 50, lambda: data.astronaut()[0:256:4, 128:384:4]),
    "conv-faces_q33h_fmt2_la": ("conv-faces.v1", 33.5, lambda: Image.fromarray(np.dstack([
        data.camera()[100:148, 200:248], np.tile(np.arange(0, 240, 5, dtype=np.uint8), (48, 1))]), "LA")),
}


def _repacked(blob: bytes, method: int) -> bytes:
    """The same file with its symbols packed by ``method``."""
    import dataclasses

    from aecodec.codec import model_for, read_symbols
    from aecodec.container import AecFile, read, write
    from aecodec.pack import pack

    f = read(blob)
    lm = model_for(f.header)
    payload = pack(read_symbols(f, lm), method=method, routing=lm.model.routing(f.header.quality))[1]
    return write(AecFile(header=dataclasses.replace(f.header, packing=method), payload=payload, alpha=f.alpha))


def _default_cases() -> dict[str, tuple[str, float, object]]:
    """A case for every installed model version that has no golden file yet (a newly shipped
    version): quality 50 on a crop of the astronaut, at the model's fixed size if it has one."""
    have = {p.stem.split("_")[1] for p in HERE.glob("golden_*.aec")} | {k.split("_")[0] for k in CASES}
    out = {}
    for exact in aecodec.list_models():
        if exact in have:
            continue
        family, version = split_version(exact)
        fixed = aecodec.model_info(exact, exact=True)["fixed_size"]
        w, h = fixed if fixed else (56, 48)
        out[f"{exact}_q50_rgb"] = (f"{family}.v{version}", 50, lambda w=w, h=h: data.astronaut()[30:30 + h, 180:180 + w])
    return out


def main() -> None:
    from aecodec.container import model_id

    for name, (model, q, make, *method) in {**CASES, **_default_cases()}.items():
        if (HERE / f"golden_{name}.aec").exists():
            continue
        exact = name.split("_")[0]
        card = aecodec.model_info(exact, exact=True)
        if model_id(exact, bytes.fromhex(card["weights_hash"])) is None:
            raise SystemExit(f"{exact} has no id in aecodec.container.MODEL_IDS: give it one before its golden files")
        blob = aecodec.compress(make(), quality=q, model=model)
        if method:
            blob = _repacked(blob, method[0])
        (HERE / f"golden_{name}.aec").write_bytes(blob)
        aecodec.decompress(blob).save(HERE / f"golden_{name}.png")
        print(name, len(blob), "bytes")


if __name__ == "__main__":
    main()
