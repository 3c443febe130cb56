"""CPU time of ``pack()`` per face, for the code of one checkout: run it once per checkout
(alternating, in the same minutes) to compare two versions of the packer on the same symbols.

    git worktree add /tmp/old REV
    for root in /tmp/old . /tmp/old .; do OMP_NUM_THREADS=1 python benchmarks/pack_ab.py $root; done

Takes 16 LFW test faces (``hyperprior.py``'s set) coded by conv-photos.v10 at quality 50,
packs each (the method ``pack()`` picks, 7 here; a fresh routing per round, so the hyper
synthesis is timed too) and prints the best of 5 rounds of process CPU time per face, and a
hash of the payloads: equal hashes mean the two versions wrote the same bytes. ``../shared``
beside ROOT must hold the data (a symbolic link does).
"""

from __future__ import annotations

import hashlib
import sys
import time

root = sys.argv[1] if len(sys.argv) > 1 else "."
sys.path.insert(0, root + "/benchmarks")
sys.path.insert(0, root)

import torch  # noqa: E402
from hyperprior import image_sets  # noqa: E402

from aecodec import pack  # noqa: E402
from aecodec.codec import to_tensor  # noqa: E402
from aecodec.weights import load_exact  # noqa: E402

torch.set_num_threads(1)
lm = load_exact("conv-photos.v10")
faces = image_sets(16, 1)["faces"]
syms = [lm.model.encode(to_tensor([im], lm.model.stride), 50).numpy()[0] for im in faces]
routing = lm.model.routing(50)
sides = [routing.side(s) for s in syms]
out = [pack.pack(s, routing=routing, side=z)[1] for s, z in zip(syms, sides)]
best = float("inf")
for _ in range(5):
    routing = lm.model.routing(50)
    t = time.process_time()
    for s, z in zip(syms, sides):
        pack.pack(s, routing=routing, side=z)
    best = min(best, (time.process_time() - t) / len(syms) * 1000)
print(f"{root}: pack {best:.2f} ms CPU a face (best of 5); payloads {hashlib.md5(b''.join(out)).hexdigest()[:10]}")
