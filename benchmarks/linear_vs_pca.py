"""The shipped linear autoencoder against PCA at the same code size, on LFW test people.

Run from the repository root (writes benchmarks/linear_vs_pca.md; needs ../shared/data)::

    PYTHONPATH=. python benchmarks/linear_vs_pca.py

Both models see the same 64×64 face crops (``face_crop``) of every LFW test-people image and
are compared before quantization: the test MSE of the linear AE's reconstruction against
PCA's rank-128 reconstruction (the shipped ``eigenfaces`` basis, fitted in closed form on the
train people), and the principal angles between the linear AE's decoder subspace and PCA's.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from aecodec.train.data import face_crop, lfw_images
from aecodec.weights import load_shipped

ROOT = Path(__file__).resolve().parent
LFW = ROOT.parent.parent / "shared" / "data" / "lfw" / "lfw.tgz"


def main() -> int:
    t0 = time.perf_counter()
    _, faces = lfw_images(LFW, "test")
    x = torch.from_numpy(np.stack([face_crop(f, 64) for f in faces])).permute(0, 3, 1, 2).float() / 255.0
    flat = x.reshape(len(x), -1)
    pca, lin = load_shipped("eigenfaces").model, load_shipped("linear-faces").model
    k = lin.config.code
    with torch.no_grad():
        basis = pca.basis[:k]
        pca_rec = (flat - pca.mean) @ basis.T @ basis + pca.mean
        lin_rec = lin(x, None).x_hat.reshape(flat.shape)  # forward: no quantization
        cos = torch.linalg.svdvals(torch.linalg.qr(lin.dec.weight.float())[0].T @ basis.T)
    angles = torch.rad2deg(torch.arccos(cos.clamp(-1, 1))).numpy()
    mse_pca, mse_lin = float(((pca_rec - flat) ** 2).mean()), float(((lin_rec - flat) ** 2).mean())
    card = load_shipped("linear-faces").card
    lines = ["# Linear autoencoder vs PCA (64×64 LFW test-people crops, code 128)", "",
             "Made by `PYTHONPATH=. python benchmarks/linear_vs_pca.py` "
             f"({time.perf_counter() - t0:.0f} s). No quantization: the transforms themselves.", "",
             f"- Images: {len(flat)} (every LFW test-people image, 64×64 centre crop).",
             f"- `linear-faces`: {card.get('steps')} steps of Adam in {card.get('wall_s')} s "
             f"on {card.get('hardware')} (`configs/linear-faces.json`).",
             "- PCA: the shipped `eigenfaces` basis, first 128 components (closed form on the train people).", "",
             "| model | test MSE | PSNR (dB) | MSE / PCA's |", "|---|---:|---:|---:|",
             f"| PCA, 128 components | {mse_pca:.6f} | {-10 * np.log10(mse_pca):.2f} | 1.0000 |",
             f"| linear AE, code 128 | {mse_lin:.6f} | {-10 * np.log10(mse_lin):.2f} | {mse_lin / mse_pca:.4f} |", "",
             "Principal angles between the linear AE's decoder subspace and PCA's: "
             f"median {np.median(angles):.1f}°, 90th percentile {np.percentile(angles, 90):.1f}°, "
             f"largest {angles.max():.1f}° (the leading components agree closely; the last few, with the "
             "least variance, are the slowest for gradient descent to find and cost the least error).", ""]
    (ROOT / "linear_vs_pca.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
