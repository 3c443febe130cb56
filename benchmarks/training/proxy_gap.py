"""Two resume points of one run compared four ways: on training crops and on held-out crops,
with the rate counted as training counts it (uniform noise: the ``forward`` pass, seeded) and
as a file stores it (rounded symbols: the learning curve's ``eval_loss``). A loss that falls
under noise while it rises under rounding means the run chases its proxy; one that falls on
training crops while it rises on held-out ones means it fits its training set.

    python benchmarks/training/proxy_gap.py configs/run-wide.json weights/resume/wide.pt \
        checkpoints/wide.resume.pt > benchmarks/training/proxy_gap.md

Training crops: 24 faces (train people, centre 240x240) and 16 photo tiles (centre 224x224),
drawn with a fixed seed from the run's own training data; held-out: the curve's sets (24 LFW
test faces, 16 BSDS500 test photos). One torch thread. Needs ../shared/data.
"""

from __future__ import annotations

import argparse

import torch

from aecodec.train.longrun import RunConfig, eval_loss, eval_sets, load_resume, load_stacks, model_from_resume


@torch.no_grad()
def noise_loss(model, x: torch.Tensor, lv: int) -> float:
    torch.manual_seed(0)
    total = 0.0
    for i in range(0, len(x), 4):
        xb = x[i:i + 4]
        out = model(xb, torch.full((len(xb),), lv, dtype=torch.long))
        mse = ((out.x_hat.float() - xb) ** 2).mean(dim=(1, 2, 3))
        total += float((model.lambdas[lv] * 255**2 * mse + out.bits / (xb.shape[2] * xb.shape[3])).sum())
    return total / len(x)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--levels", default="2,6,10,11")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = RunConfig.from_file(args.config)
    faces, photos = load_stacks(cfg)
    gen = torch.Generator().manual_seed(7)
    fi = torch.randperm(len(faces), generator=gen)[:24]
    pi = torch.randperm(len(photos), generator=gen)[:16]
    held = dict(eval_sets(cfg, faces_n=24, photos_n=16))
    sets = {"train faces": faces[fi][:, 5:245, 5:245].permute(0, 3, 1, 2).float() / 255,
            "train photos": photos[pi][:, 16:240, 16:240].permute(0, 3, 1, 2).float() / 255,
            "held-out faces": held["faces"], "held-out photos": held["photos"]}
    cks = [load_resume(p) for p in (args.before, args.after)]
    models = [model_from_resume(ck) for ck in cks]
    print(f"# Proxy and generalization gap: `{cfg.name}` step {cks[0]['step']} -> {cks[1]['step']}\n")
    print(f"Command: `python benchmarks/training/proxy_gap.py {args.config} {args.before} {args.after}`\n")
    print("| set | level | rounded loss before | after | change | noisy loss before | after | change |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, x in sets.items():
        for lv in (int(v) for v in args.levels.split(",")):
            r = [eval_loss(m, x, (lv,))[f"L{lv}_loss"] for m in models]
            n = [noise_loss(m, x, lv) for m in models]
            print(f"| {name} | L{lv} | {r[0]:.4f} | {r[1]:.4f} | {r[1] / r[0] - 1:+.2%} | "
                  f"{n[0]:.4f} | {n[1]:.4f} | {n[1] / n[0] - 1:+.2%} |", flush=True)


if __name__ == "__main__":
    main()
