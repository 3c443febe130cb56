"""Rate at the bottom and right edges of the latent grid, and loss against crop side: does a
model code every image size alike, or only the alignment it was trained at?

    python benchmarks/training/edge_rate.py conv-photos.v9 weights/resume/wide.pt \
        checkpoints/wide.resume.pt > benchmarks/training/edge_rate.md

Each model: a shipped name or a resume point. 16 BSDS500 test photos, centre crops; rate
level L2 (rounded latents, the float hyperprior's bits, as the learning curve counts them).
Table 1: at 256 px (16x16 latents, a 4x4 side grid: the size of every 250x250 face and a
768x512 photo's alignment), bits per latent position on the interior rows 0-11, rows 12-13 and
rows 14-15. A 224 px crop (14 latents, 3.5 side cells) never trains rows 14-15 of the last
side cell. Table 2: λ·255²·MSE + bpp at centre crops of 192-320 px (12-20 latents). One torch
thread. Needs ../shared/data.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from aecodec.train.data import folder_images
from aecodec.train.longrun import centre_crops, eval_loss, load_resume, model_from_resume

ROOT = Path(__file__).resolve().parents[2]
SIDES = (192, 208, 224, 240, 256, 288, 320)


def load(spec: str):
    if spec.endswith(".pt"):
        ck = load_resume(spec)
        return f"{Path(spec).stem}@{ck['step']}", model_from_resume(ck)
    from aecodec.weights import load_shipped
    return spec, load_shipped(spec).model.float().to(memory_format=torch.contiguous_format).eval()


@torch.inference_mode()
def position_bits(model, x: torch.Tensor, lv: int) -> torch.Tensor:
    level = torch.full((len(x),), lv)
    g = torch.exp(model._log_gains()[level])[:, :, None, None]
    s = torch.round(model.g_a(x).float() * g)
    z = torch.round(model.hyper.analysis(s / g))
    scale = torch.exp2(model.hyper.log_scale(z, s.shape[-2:])) * g
    return -torch.log2(model.hyper.symbol_mass(s, scale)).sum(1).mean(0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--level", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    imgs = folder_images([str(ROOT.parent / "shared/data/photos/bsds500/test")])[:16]
    models = [load(m) for m in args.models]
    lv = args.level
    print(f"# Edge rate and crop side, level L{lv}, 16 BSDS500 test photos\n")
    print(f"Command: `python benchmarks/training/edge_rate.py {' '.join(args.models)}`\n")
    print("| model | rows 0-11 bits/position | rows 12-13 | rows 14-15 | rows 14-15 / rows 12-13 |")
    print("|---|---:|---:|---:|---:|")
    x = centre_crops(imgs, 256)
    for name, m in models:
        b = position_bits(m, x, lv)
        inner, mid, edge = float(b[:12].mean()), float(b[12:14].mean()), float(b[14:].mean())
        print(f"| {name} | {inner:.1f} | {mid:.1f} | {edge:.1f} | {edge / mid:.2f} |", flush=True)
    print(f"\n| model | {' | '.join(f'{s} px' for s in SIDES)} |")
    print(f"|---|{'---:|' * len(SIDES)}")
    for name, m in models:
        row = [eval_loss(m, centre_crops(imgs, s), (lv,))[f"L{lv}_loss"] for s in SIDES]
        print(f"| {name} | {' | '.join(f'{v:.4f}' for v in row)} |", flush=True)


if __name__ == "__main__":
    main()
