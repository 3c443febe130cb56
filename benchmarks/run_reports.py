"""Regenerate the recorded benchmark reports in benchmarks/ (needs ../shared/data).

    python benchmarks/run_reports.py lfw250        # LFW test people, 250x250
    python benchmarks/run_reports.py thumbs64      # 64x64 face crops of LFW test people
    python benchmarks/run_reports.py bsds          # BSDS500 test photos

Each set is a deterministic subset (every k-th image in sorted order; LFW from the test side
of the person split; sizes chosen so a set runs in well under an hour on 2 shared cores), written as lossless PNG into a temporary folder, then run through
``aecodec.bench.run_bench`` (the same engine as ``aecodec bench``). Reports go to
``benchmarks/<set>/``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image

from aecodec.bench import run_bench
from aecodec.train.data import face_crop, lfw_entries, lfw_images

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parent.parent / "shared" / "data"
LFW = SHARED / "lfw" / "lfw.tgz"
PILLOW = ["jpeg", "webp", "jpeg2000", "avif"]
AEC_Q = [1, 10, 19, 28, 37, 46, 55, 64, 73, 82, 91, 100]  # the conv models' trained levels
SETS = {
    "lfw250": (100, PILLOW + ["aec:conv-faces", "aec:conv-photos", "aec:pca-block"]),
    "thumbs64": (100, PILLOW + ["aec:eigenfaces", "aec:linear-faces", "aec:dense-faces", "aec:conv-faces",
                                "aec:conv-photos", "aec:pca-block"]),
    "bsds": (12, PILLOW + ["aec:conv-photos", "aec:conv-faces", "aec:pca-block"]),
}


def materialize(name: str, count: int, folder: Path) -> None:
    if name in ("lfw250", "thumbs64"):
        total = len(lfw_entries(LFW, "test"))
        step = total // count
        entries, images = lfw_images(LFW, "test")
        for e, img in list(zip(entries, images))[::step][:count]:
            out = img if name == "lfw250" else face_crop(img, 64)
            Image.fromarray(out).save(folder / f"{Path(e.member).stem}.png")
    else:
        files = sorted((SHARED / "photos" / "bsds500" / "test").glob("*.jpg"))
        for f in files[:: len(files) // count][:count]:
            Image.open(f).convert("RGB").save(folder / f"{f.stem}.png")


def main(name: str) -> None:
    count, codecs = SETS[name]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / name
        folder.mkdir()
        materialize(name, count, folder)
        aec_q = AEC_Q if name != "bsds" else AEC_Q[::2] + [100]  # fewer points on the bigger photos
        qualities = {c: aec_q for c in codecs if c.startswith("aec:")}
        result = run_bench([folder], codecs=codecs, out_dir=ROOT / name, qualities=qualities, progress=False)
    print(name, "done:", len(result.points), "points")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        main(arg)
