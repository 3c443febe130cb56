"""What run-length coding the 1-bit ladder stages would save, with zstd and trained dictionaries.

    OMP_NUM_THREADS=1 python benchmarks/pack_runlength.py

A simulation for issue 11's packing efficiency, not a packing method: for conv-photos.v10's
latents on 16 LFW test faces (hyperprior.py's set), every 1-bit ladder stage of every run
(method 6's runs, raster order) is stored as now (its tagged zstd frame with the shipped
dictionary) and as run lengths (a byte per run of zeros before a 1, 255 = 255 zeros and go on;
the stage's count is known) compressed by zstd with a dictionary trained on the same stages of
60 other LFW test faces. "per-stage best" lets each stage take the smaller, plus a flag bit.
Method 7's orders already shorten some of these stages, so against what ships the saving is
smaller than printed.
"""
import collections
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks")); sys.path.insert(0, str(ROOT))
import numpy as np, torch, zstandard as zstd
from hyperprior import image_sets
from aecodec import pack
from aecodec.codec import to_tensor
from aecodec.pack import (_RAW_BELOW, _compact_stage, _compressor, _ladder_stages, _tabled_runs, _zigzag)
from aecodec.weights import load_exact
from aecodec.train.data import lfw_images
torch.set_num_threads(1)
lm = load_exact("conv-photos.v10")
ev = image_sets(16, 1)["faces"]
_, test = lfw_images(ROOT.parent / "shared" / "data" / "lfw" / "lfw.tgz", "test")
step = len(test) // 16  # image_sets' stride: the evaluated faces are test[::step]; the fitted ones are not
fit = [np.asarray(test[i]) for i in range(1, len(test), 37) if i % step][:60]

def rl_bytes(codes):
    ones = np.flatnonzero(codes)
    gaps = np.diff(np.concatenate([[-1], ones])) - 1
    out = []
    for g in gaps:
        while g >= 255:
            out.append(255); g -= 255
        out.append(g)
    return bytes(out)  # trailing zeros implicit: the decoder knows the stage's count

def one_bit_stages(im, q):
    routing = lm.model.routing(q); tables = routing.tables
    s = lm.model.encode(to_tensor([im], lm.model.stride), q).numpy()[0]
    side = np.asarray(routing.side(s), np.int64)
    cl = np.asarray(routing.route(side, s.shape), np.int64).ravel()
    x = _zigzag(s).ravel()
    runs = _tabled_runs(cl, x, tables.sets[0])
    run_of = np.zeros(len(tables.sets[0]), np.int64)
    for r, (lo, hi, _) in enumerate(runs): run_of[lo:hi] = r
    rid = run_of[cl]
    out = []
    for r, (_, _, t) in enumerate(runs):
        xr = x[rid == r]
        if not xr.any(): continue
        table = tables.sets[0][t]
        stages, _ = _ladder_stages(xr, table.ladder)
        off, rest = 0, xr
        for k, packed in enumerate(stages):
            w = table.ladder[k]; top = (1 << w) - 1
            codes = np.minimum(rest - off, top)
            if w == 1:
                if len(packed) < _RAW_BELOW: real = len(packed)
                else:
                    frame = _compressor(19, tables.compression_dict(0, t, k, 19))(packed)
                    real = len(_compact_stage(frame, packed, tables.decompression_dict(0, t, k)))
                out.append((t, k, real, rl_bytes(codes), len(s.ravel()), codes.mean()))
            rest, off = rest[rest - off >= top], off + top
    return out, len(pack.pack(s, routing=routing)[1])

for q in (5, 30, 60, 90):
    samples = collections.defaultdict(list)
    for im in fit:
        for t, k, real, rl, n, p in one_bit_stages(im, q)[0]:
            samples[(t, k)].append(rl)
    dicts = {}
    for key, ss in samples.items():
        if len(ss) >= 8 and sum(map(len, ss)) > 2000:
            try: dicts[key] = zstd.ZstdCompressionDict(zstd.train_dictionary(1024, ss, level=19).as_bytes())
            except zstd.ZstdError: pass
    tot_real = tot_rl = tot_best = payload = 0
    for im in ev:
        st, pl = one_bit_stages(im, q)
        payload += pl
        for t, k, real, rl, n, p in st:
            d = dicts.get((t, k))
            if len(rl) < _RAW_BELOW: c = len(rl) + 1
            else:
                frame = _compressor(19, d)(rl)
                c = min(len(rl) + 1, len(frame) - 4)  # as method 6 would store it (header rebuilt, a tag)
            tot_real += real; tot_rl += c; tot_best += min(real, c + 0.125)  # a flag bit per stage
    print(f"q{q}: payload {payload/16:.0f} B/face; 1-bit stages {tot_real/16:.0f} B now, RL {tot_rl/16:.0f}, per-stage best {tot_best/16:.0f} "
          f"-> saves {(tot_real - tot_best)/payload*100:.1f} % of the payload")
