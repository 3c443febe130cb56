"""Idle-machine encode time per effort: 3 LFW test faces (the lfw250 selection), quality 55, 2 threads.

    PYTHONPATH=. python benchmarks/effort_timing.py     # stop other jobs first
"""
import time, numpy as np, torch, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from promote import test_sets
import aecodec
torch.set_num_threads(2)
faces = [im for _, im in test_sets(3, 0)["faces"]]
for eff, model in [(1, "conv-faces"), (3, "conv-faces"), (5, "conv-faces"), (9, "conv-faces"), (6, None)]:
    ts = []
    for im in faces:
        t = time.perf_counter(); aecodec.compress(im, quality=55, model=model, effort=eff); ts.append(time.perf_counter() - t)
    print(f"effort {eff} model {model or 'default'}: {np.mean(ts):.2f} s/img (min {min(ts):.2f}) on 2 threads, 250x250, q55", flush=True)
