"""How far a model's prebuilt stream tables sit from its own rate estimate, side and latents apart,
and what refitting the latent tables on faces at each quality would win.

    OMP_NUM_THREADS=1 python benchmarks/table_fit.py [MODEL]

For 16 LFW test faces, 6 BSDS500 test photos and 64x64 centre crops of both (hyperprior.py's
sets), at qualities 5-90: the model's estimate (the side symbols under the factorized prior, the
latents under the predicted Gaussians) against the tables' own costs (the per-class bit costs
the encoder plans with, the ideal of an arithmetic coder using the tables). Then, for the
faces, latent tables refitted on 400 LFW train faces (each at a random quality, as the shipped
tables pool qualities) and on 240 train faces at the scored quality, scored on the test faces.
No zstd here: this is the tables' fit, not the packing (``pack_waste.py`` measures that).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from hyperprior import SHARED, image_sets  # noqa: E402

from aecodec import codec  # noqa: E402
from aecodec.pack import _zigzag  # noqa: E402
from aecodec.train.data import lfw_images  # noqa: E402
from aecodec.weights import load_exact  # noqa: E402

QUALITIES = (5, 30, 60, 90)


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "conv-photos.v10"
    torch.set_num_threads(1)
    t0 = time.time()
    lm = load_exact(name)
    m = lm.model
    sets = image_sets(16, 6)

    def parts(im: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray, float, float, np.ndarray, np.ndarray]:
        """Latent classes and zigzag values, the side and latent estimates (bits), side classes and values."""
        r = m.routing(q)
        sym = codec.encode_symbols(lm, [im], q)[0]
        side = r.side(sym)
        zt = torch.from_numpy(side).float()[None]
        with torch.inference_mode():
            enc, _ = m._gains_at(q)
            scale = torch.exp2(m.hyper.log_scale(zt, sym.shape[1:])) * enc
            y_est = float(m.hyper.symbol_bits(torch.from_numpy(sym).float()[None], scale)[0])
            z_est = float(m.hyper.z_bits(zt)[0])
        side_cls = np.repeat(r.tables.maps[1], side.shape[1] * side.shape[2])
        return (r.route(side, sym.shape).ravel().astype(np.int64), np.minimum(_zigzag(sym.astype(np.int64)).ravel(), 256),
                z_est, y_est, side_cls, np.minimum(_zigzag(side.astype(np.int64)).ravel(), 256))

    def costs(q: float, s: int) -> np.ndarray:
        return np.stack([t.cost.astype(np.float64) / 256 for t in m.routing(q).tables.sets[s]])

    print(f"# Stream tables against the model's estimate ({name})\n")
    print(f"Command: `OMP_NUM_THREADS=1 python benchmarks/table_fit.py {name}`\n")
    print("Bytes a file (tables' costs, no framing) and tables / estimate:\n")
    print("| set | quality | side: estimate | side: tables | ratio | latents: estimate | latents: tables | ratio | all: ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for set_name in ("faces", "bsds", "crops64"):
        ims = sets[set_name]
        for q in QUALITIES:
            zc, yc = costs(q, 1), costs(q, 0)
            ze = zt = ye = yt = 0.0
            for im in ims:
                cl, z, z_est, y_est, scl, sz = parts(im, float(q))
                ze, ye = ze + z_est, ye + y_est
                zt, yt = zt + zc[scl, sz].sum(), yt + yc[cl, z].sum()
            n = 8 * len(ims)
            print(f"| {set_name} | {q} | {ze / n:.0f} | {zt / n:.0f} | {zt / ze:.3f} | {ye / n:.0f} | {yt / n:.0f} | "
                  f"{yt / ye:.3f} | {(zt + yt) / (ze + ye):.3f} |", flush=True)

    _, train = lfw_images(SHARED / "lfw" / "lfw.tgz", "train")
    rng = np.random.default_rng(0)
    train = [np.asarray(train[i]) for i in rng.choice(len(train), 400, replace=False)]
    classes = m.config.classes
    pooled = np.full((classes, 257), 0.02)
    for im in train:
        cl, z, *_ = parts(im, float(rng.uniform(1, 100)))
        np.add.at(pooled, (cl, z), 1)
    pooled = -np.log2(pooled / pooled.sum(1, keepdims=True))
    print("\nLatent bits / the latents' estimate on the 16 test faces, by table:\n")
    print("| quality | shipped | refitted on faces, qualities pooled | refitted on faces at this quality |")
    print("|---:|---:|---:|---:|")
    for q in QUALITIES:
        at_q = np.full((classes, 257), 0.02)
        for im in train[:240]:
            cl, z, *_ = parts(im, float(q))
            np.add.at(at_q, (cl, z), 1)
        at_q = -np.log2(at_q / at_q.sum(1, keepdims=True))
        shipped = costs(q, 0)
        est = b = bp = bq = 0.0
        for im in sets["faces"]:
            cl, z, _, y_est, _, _ = parts(im, float(q))
            est += y_est
            b, bp, bq = b + shipped[cl, z].sum(), bp + pooled[cl, z].sum(), bq + at_q[cl, z].sum()
        print(f"| {q} | {b / est:.3f} | {bp / est:.3f} | {bq / est:.3f} |", flush=True)
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
