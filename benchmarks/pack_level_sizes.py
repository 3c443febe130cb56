"""zstd level 15 against 19 at two photo sizes between the faces and the 1024-px photos of
pack_speed.py: 8 BSDS500 test photos (481x321) and 6 cc_photos resized to 768x512, qualities
20/50/80, the default model. Output appended to benchmarks/pack_speed.md.

    python benchmarks/pack_level_sizes.py >> benchmarks/pack_speed.md
"""
import glob, time
from pathlib import Path

import numpy as np
from PIL import Image
from aecodec import codec, pack
from aecodec.weights import load_shipped
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"
lm = load_shipped("conv-photos")
bsds = [np.asarray(Image.open(f).convert("RGB")) for f in sorted(glob.glob(str(SHARED / "bsds500/test" / "*.jpg")))[::25][:8]]
cc = [np.asarray(Image.open(f).convert("RGB").resize((768, 512))) for f in sorted(glob.glob(str(SHARED / "cc_photos" / "*.jpg")))[10:16]]
for name, ims in (("bsds 481x321", bsds), ("768x512", cc)):
    res = {15: 0, 19: 0}; tm = {15: 0.0, 19: 0.0}
    for q in (20, 50, 80):
        for im in ims:
            s = codec.encode_symbols(lm, [im], float(q))[0]
            for lv in (15, 19):
                t = time.perf_counter(); res[lv] += len(pack.pack(s, level=lv)[1]); tm[lv] += time.perf_counter() - t
    print(f"- {name} ({s.size} symbols): level 15 vs 19 bytes {res[15] / res[19] - 1:+.3%}, "
          f"pack time {tm[15]:.2f} s vs {tm[19]:.2f} s")
