"""Effort 3 on the default hyperprior model: its search aimed by the factorized density (before
2026-12-03) against the hyperprior rate it packs by. BD-rate against effort 1, same images.

    OMP_NUM_THREADS=1 python benchmarks/effort_hyper.py > benchmarks/effort_hyper.md
"""
import sys, time, numpy as np, torch
ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT / "tools"))
torch.set_num_threads(1)
from promote import test_sets
import aecodec
from aecodec.bench.bdrate import bd_rate
from aecodec.bench.metrics import psnr
from aecodec.models.hyper import HyperConvAutoencoder
from aecodec.models.conv import ConvAutoencoder
new = HyperConvAutoencoder.soft_bits
sets = test_sets(4, 1)
Q = [10, 37, 64, 91]
for name in ("faces", "photos"):
    imgs = [im for _, im in sets[name]]
    curves = {}
    for label, effort, sb in (("e1", 1, new), ("e3 factorized rate", 3, ConvAutoencoder.soft_bits), ("e3 hyperprior rate", 3, new)):
        HyperConvAutoencoder.soft_bits = sb
        b, p, t0 = [], [], time.time()
        for q in Q:
            bb, pp = [], []
            for im in imgs:
                blob = aecodec.compress(im, quality=q, model="conv-photos.v9", effort=effort)
                bb.append(len(blob) * 8 / (im.shape[0] * im.shape[1]))
                pp.append(psnr(im, np.asarray(aecodec.decompress(blob).convert("RGB"))))
            b.append(np.mean(bb)); p.append(np.mean(pp))
        curves[label] = (b, p)
        print(name, label, [round(float(x), 4) for x in b], [round(float(x), 2) for x in p], f"{time.time() - t0:.0f} s",
              "" if label == "e1" else f"BD vs e1 {bd_rate(*curves['e1'], b, p):+.2f} %", flush=True)
