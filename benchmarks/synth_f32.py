"""The integer hyper synthesis with float32 products where exact against float64 only: the same
integers on every grid, and the time per grid (one thread).

    OMP_NUM_THREADS=1 python benchmarks/synth_f32.py

16 LFW test faces and 4 BSDS500 test photos at qualities 1, 50 and 100, four shipped models.
"""
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks")); sys.path.insert(0, str(ROOT))
import numpy as np, torch
from hyperprior import image_sets
import aecodec.models.hyper as H
from aecodec.codec import to_tensor
from aecodec.weights import load_exact
torch.set_num_threads(1)
sets = image_sets(16, 4)
for name in ("conv-photos.v10", "conv-faces.v3", "conv-photos.v9", "conv-photos.v7"):
    lm = load_exact(name)
    synth = lm.model.synthesis()
    t32 = t64 = 0.0; n = 0
    for q in (1, 50, 100):
        routing = lm.model.routing(q)
        for im in sets["faces"] + sets["bsds"]:
            s = lm.model.encode(to_tensor([im], lm.model.stride), q).numpy()[0]
            z = np.asarray(routing.side(s), np.int64)
            t = time.perf_counter(); a = synth(z, s.shape[1:]); t32 += time.perf_counter() - t
            H.float32_products_are_ieee, keep = (lambda: False), H.float32_products_are_ieee
            t = time.perf_counter(); b = synth(z, s.shape[1:]); t64 += time.perf_counter() - t
            H.float32_products_are_ieee = keep
            assert np.array_equal(a, b), name
            n += 1
    print(name, n, "grids equal; synthesis ms a grid, float32 where exact / float64 only:", round(t32 / n * 1000, 2), round(t64 / n * 1000, 2))
