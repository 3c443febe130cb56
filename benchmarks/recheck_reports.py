"""Re-measure a sample of the recorded report points with the code as it is now.

    python benchmarks/recheck_reports.py > benchmarks/recheck.md

Encodes 6 LFW test faces (the lfw250 report's aecodec models), their 64x64 crops (the
thumbs64 report's) and 2
BSDS500 test photos (conv-photos), at every quality, again and compares file sizes and PSNR with
`benchmarks/*/results.json`: a check that the recorded reports still describe this code. Each
model is the exact version the report recorded, not the family's newest.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

import aecodec
from aecodec.train.data import face_crop, lfw_images

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def recorded_weights(results: dict) -> dict[str, str]:
    """Each aecodec codec's weights as the report recorded them ("...; weights conv-photos.v8;
    ..."): a family name means its newest version, which moves on when a new one ships."""
    out = {}
    for c in results["codecs"]:
        m = re.search(r"weights ([a-z0-9._-]+);", c.get("settings", ""))
        if c["name"].startswith("aec:") and m:
            out[c["name"]] = m.group(1)
    return out


def recheck(report: str, codecs: set[str], n_images: int, source: Callable[[str], np.ndarray]) -> str:
    results = json.loads((ROOT / "benchmarks" / report / "results.json").read_text())
    weights = recorded_weights(results)
    points = [p for p in results["points"] if p["codec"] in codecs]
    names = sorted({p["image"] for p in points})[:n_images]
    d_bytes, d_psnr, now, then = [], [], 0, 0
    for p in points:
        if p["image"] not in names:
            continue
        img = source(Path(p["image"]).stem)
        blob = aecodec.compress(img, p["quality"], weights.get(p["codec"], p["codec"].removeprefix("aec:")))
        out = np.asarray(aecodec.decompress(blob).convert("RGB"))
        d_bytes.append(abs(len(blob) - p["bytes"]))
        now, then = now + len(blob), then + p["bytes"]
        d_psnr.append(abs(peak_signal_noise_ratio(img, out, data_range=255) - p["psnr"]))
    named = ", ".join(f"{c} ({weights[c]})" if c in weights else c for c in sorted(codecs))
    return (f"- {report}: {len(d_bytes)} points ({len(names)} images, {named}); "
            f"largest difference {max(d_bytes)} bytes, {max(d_psnr):.4f} dB; all files {now / then - 1:+.2%} in bytes")


def main() -> None:
    entries, faces = lfw_images(SHARED / "lfw" / "lfw.tgz", "test")
    by_stem = {Path(e.member).stem: im for e, im in zip(entries, faces)}
    bsds = SHARED / "photos" / "bsds500" / "test"
    print("# Recheck of the recorded report points\n")
    print("Command: `python benchmarks/recheck_reports.py > benchmarks/recheck.md`\n")
    print(recheck("lfw250", {"aec:conv-faces", "aec:conv-photos", "aec:pca-block"}, 6, by_stem.__getitem__))
    print(recheck("thumbs64", {"aec:eigenfaces", "aec:linear-faces", "aec:dense-faces", "aec:conv-faces",
                               "aec:conv-photos"}, 6,
                  lambda stem: face_crop(by_stem[stem], 64)))
    print(recheck("bsds", {"aec:conv-photos"}, 2,
                  lambda stem: np.asarray(Image.open(bsds / f"{stem}.jpg").convert("RGB"))))


if __name__ == "__main__":
    main()
