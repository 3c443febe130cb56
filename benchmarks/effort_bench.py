"""Encoder effort: BD-rate against effort 1 and encode seconds per image, faces and photos.

    PYTHONPATH=. python benchmarks/effort_bench.py --faces 6 --photos 3 --threads 1 -o benchmarks/effort.md

Real `.aec` files (header included), PSNR on 8-bit RGB (scikit-image), decoded by the one
decoder. Faces: the first LFW test people of the lfw250 report's selection (250x250);
photos: the first BSDS500 test photos of the bsds report's selection. ``--timing`` adds a
separate pass that times one encode per effort on an otherwise idle machine (stop other jobs
first: the bench pass's own times are taken beside whatever else runs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

from promote import test_sets  # noqa: E402  (the same held-out selections as the gate)

import aecodec  # noqa: E402
from aecodec.bench.bdrate import bd_rate  # noqa: E402
from aecodec.bench.metrics import psnr  # noqa: E402

QUALITIES = [10, 37, 64, 91]
PLANS = {  # set -> [(label, model or None for the default, effort)]
    "faces": [("conv-faces e1", "conv-faces", 1), ("conv-faces e3", "conv-faces", 3),
              ("conv-faces e5", "conv-faces", 5), ("conv-faces e9", "conv-faces", 9),
              ("default e1", None, 1), ("default e6", None, 6)],
    "photos": [("conv-photos e1", "conv-photos", 1), ("conv-photos e5", "conv-photos", 5),
               ("conv-photos e9", "conv-photos", 9)],
}


def run_curve(images, model, effort) -> dict:
    bpp, db, secs, chosen = [], [], [], {}
    for q in QUALITIES:
        b, p = [], []
        for _, img in images:
            t = time.perf_counter()
            data = aecodec.compress(img, quality=q, model=model, effort=effort)
            secs.append(time.perf_counter() - t)
            name = aecodec.info(data).model
            chosen[name] = chosen.get(name, 0) + 1
            out = np.asarray(aecodec.decompress(data).convert("RGB"))
            b.append(len(data) * 8 / (img.shape[0] * img.shape[1]))
            p.append(psnr(img, out))
        bpp.append(float(np.mean(b)))
        db.append(float(np.mean(p)))
    return {"bpp": bpp, "psnr": db, "encode_s": float(np.mean(secs)), "models": chosen}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faces", type=int, default=6)
    ap.add_argument("--photos", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    ap.add_argument("-o", "--out", default=None)
    ap.add_argument("--reuse", default=None, help="a previous run's stdout: its finished curves are not re-measured")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sets = test_sets(args.faces, args.photos)
    res: dict = {}
    done: dict = {}
    if args.reuse:
        import ast
        for line in Path(args.reuse).read_text().splitlines():
            head, _, rest = line.partition(": {")
            if rest and " " in head:
                set_name, label = head.split(" ", 1)
                done[(set_name, label)] = ast.literal_eval("{" + rest.rsplit(" (", 1)[0])
    t0 = time.time()
    for set_name, plan in PLANS.items():
        res[set_name] = {}
        for label, model, effort in plan:
            res[set_name][label] = done.get((set_name, label)) or run_curve(sets[set_name], model, effort)
            print(f"{set_name} {label}: {res[set_name][label]} ({time.time() - t0:.0f} s)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    lines = [f"`PYTHONPATH=. python benchmarks/effort_bench.py --faces {args.faces} --photos {args.photos} "
             f"--threads {args.threads}` ({time.strftime('%Y-%m-%d')}, {time.time() - t0:.0f} s; "
             f"qualities {QUALITIES}; {len(sets['faces'])} LFW test faces 250x250, "
             f"{len(sets['photos'])} BSDS500 test photos)", ""]
    for set_name, curves in res.items():
        anchor_label = next(iter(curves))
        lines += [f"### {set_name}", "", "| codec, effort | BD-rate vs " + anchor_label +
                  " | BD-rate vs default e1 | bpp (q10 → q91) | PSNR (q10 → q91) | encode s/img | models chosen |",
                  "|---|---|---|---|---|---|---|"]
        for label, c in curves.items():
            a = curves[anchor_label]
            d = curves.get("default e1")
            vs = bd_rate(a["bpp"], a["psnr"], c["bpp"], c["psnr"])
            vs_d = bd_rate(d["bpp"], d["psnr"], c["bpp"], c["psnr"]) if d else None
            lines.append(f"| {label} | {_pct(vs)} | {_pct(vs_d)} | {c['bpp'][0]:.3f} → {c['bpp'][-1]:.3f} | "
                         f"{c['psnr'][0]:.2f} → {c['psnr'][-1]:.2f} | {c['encode_s']:.2f} | "
                         f"{', '.join(f'{k} {v}' for k, v in c['models'].items())} |")
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:+.1f} %"


if __name__ == "__main__":
    main()
