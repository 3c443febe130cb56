"""Large images: time and peak memory of `aecodec compress` / `decompress` at 1, 6 and 24
megapixels and on an 83-byte file that declares 5792×5792; the tiled result against the
whole-image one (symbols and pixels); JPEG and WebP through Pillow on the same images.

    python benchmarks/tiles.py > benchmarks/tiles.md
    python benchmarks/tiles.py --before REV   # also the commit REV, checked out in a worktree

Each command runs in its own process (the CLI, 2 threads); peak memory is the child's maximum
resident set (getrusage). The test images are mosaics of crops of cc_photos (real
detail at every size, not an upscaled photo; each crop fitted to 768×512).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "photos" / "cc_photos"
SIZES = {"1 MP": (1224, 816), "6 MP": (3000, 2000), "24 MP": (6000, 4000)}

_WRAP = r"""
import resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.run(sys.argv[2:], env=None, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(rc.returncode, wall, peak, rc.stderr.decode()[-300:].replace("\n", " | "), sep="\t")
"""


def mosaic(w: int, h: int) -> np.ndarray:
    files = sorted(glob.glob(str(PHOTOS / "*.jpg")))
    out = np.zeros((h, w, 3), np.uint8)
    k = 0
    for y in range(0, h, 512):
        for x in range(0, w, 768):
            im = np.asarray(ImageOps.fit(Image.open(files[k % len(files)]).convert("RGB"), (768, 512)))
            k += 1
            bh, bw = min(512, h - y), min(768, w - x)
            out[y:y + bh, x:x + bw] = im[:bh, :bw]
    return out


def measure(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS of ``cmd``, run from ``cwd`` (never the checkout: ``python -m``
    puts the working folder first on sys.path, which would shadow PYTHONPATH's code)."""
    out = subprocess.run([sys.executable, "-c", _WRAP, "x", *cmd], capture_output=True, text=True, env=env, cwd=cwd)
    rc, wall, peak, err = (out.stdout.rstrip("\n").split("\t") + [""])[:4]
    if rc != "0":
        raise SystemExit(f"{' '.join(cmd)} failed ({rc}): {err}")
    return float(wall), int(peak)


def zero_file(path: Path, side: int = 5792) -> int:
    """A valid .aec of all-zero latents declaring side × side (the default model, quality 50)."""
    from aecodec import container, pack
    from aecodec.weights import load_shipped

    lm = load_shipped("conv-photos")
    shape = lm.model.latent_shape(side, side, 50.0)
    method, payload = pack.pack(np.zeros(shape, np.int32))
    header = container.Header(model=lm.name, weights_hash=lm.weights_hash, width=side, height=side,
                              mode="RGB", quality=50.0, latent_shape=shape, packing=method)
    data = container.write(container.AecFile(header=header, payload=payload, alpha=None))
    path.write_bytes(data)
    return len(data)


def pillow_times(rgb: np.ndarray, fmt: str, quality: int) -> tuple[float, float, int]:
    import io

    im = Image.fromarray(rgb)
    t = time.perf_counter()
    buf = io.BytesIO()
    im.save(buf, format=fmt, quality=quality)
    enc = time.perf_counter() - t
    t = time.perf_counter()
    Image.open(io.BytesIO(buf.getvalue())).load()
    return enc, time.perf_counter() - t, len(buf.getvalue())


def agreement(png: Path, aec: Path) -> tuple[float, int, float]:
    """Tiled against whole-image processing, in-process: fraction of symbols that differ,
    largest pixel difference, fraction of pixels that differ."""
    import torch

    from aecodec import codec, container, tiles
    from aecodec.weights import load_shipped

    lm = load_shipped("conv-photos")
    rgb = np.asarray(Image.open(png).convert("RGB"))
    f = container.read(aec.read_bytes())
    tiled_sym = codec.read_symbols(f, lm)
    whole_sym = lm.model.encode(codec.to_tensor([rgb], 16), f.header.quality)[0].numpy()
    h, w = rgb.shape[:2]
    sym = torch.from_numpy(tiled_sym)
    a = tiles.to_uint8(lm.model.decode(sym[None], f.header.quality)[0, :, :h, :w])
    b = tiles.decode_tiled(lm.model, sym, f.header.quality, w, h)
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return float(np.mean(tiled_sym != whole_sym)), int(d.max()), float(np.mean(d > 0))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", help="also measure this commit (a git worktree of it)")
    ap.add_argument("--sizes", nargs="*", default=list(SIZES))
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="2")
    versions = [("this code", str(ROOT))]
    tmp = Path(tempfile.mkdtemp(prefix="aec-tiles-"))
    if args.before:
        wt = tmp / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(wt), args.before], check=True)
        versions.append((f"before ({args.before})", str(wt)))
    rows = []
    agree = []
    try:
        for label, (w, h) in ((k, SIZES[k]) for k in args.sizes):
            rgb = mosaic(w, h)
            png = tmp / f"{w}x{h}.png"
            Image.fromarray(rgb).save(png)
            for vname, src in versions:
                venv = dict(env, PYTHONPATH=src)
                aec, back = tmp / f"{w}x{h}.{len(rows)}.aec", tmp / f"{w}x{h}.{len(rows)}.png"
                ct, cm = measure([sys.executable, "-m", "aecodec", "compress", str(png), "-o", str(aec)], venv, tmp)
                dt, dm = measure([sys.executable, "-m", "aecodec", "decompress", str(aec), "-o", str(back)], venv, tmp)
                bpp = aec.stat().st_size * 8 / (w * h)
                rows.append((label, f"{w}x{h}", vname, ct, cm, dt, dm, bpp))
                if vname == "this code":
                    agree.append((label, *agreement(png, aec)))
            for fmt, q in (("JPEG", 85), ("WEBP", 80)):
                enc, dec, n = pillow_times(rgb, fmt, q)
                rows.append((label, f"{w}x{h}", f"Pillow {fmt} q{q}", enc, None, dec, None, n * 8 / (w * h)))
        zf = tmp / "zero.aec"
        nbytes = zero_file(zf)
        for vname, src in versions:
            dt, dm = measure([sys.executable, "-m", "aecodec", "decompress", str(zf), "-o", str(tmp / "zero.png"), "-f"],
                             dict(env, PYTHONPATH=src), tmp)
            rows.append(("zero file", f"5792x5792, {nbytes} bytes", vname, None, None, dt, dm, nbytes * 8 / 5792**2))
    finally:
        if args.before:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp / "before")], check=False)

    def fmt(v: float | None, spec: str) -> str:
        return "–" if v is None else format(v, spec)

    print("| image | size | code | compress s | compress peak GB | decompress s | decompress peak GB | bpp |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for label, size, vname, ct, cm, dt, dm, bpp in rows:
        print(f"| {label} | {size} | {vname} | {fmt(ct, '.1f')} | {fmt(cm and cm / 1e9, '.2f')} | "
              f"{fmt(dt, '.1f')} | {fmt(dm and dm / 1e9, '.2f')} | {bpp:.3f} |")
    print()
    print("| image | symbols that differ, tiled vs whole | largest pixel difference | pixels that differ |")
    print("|---|---:|---:|---:|")
    for label, sym_frac, dmax, pix_frac in agree:
        print(f"| {label} | {sym_frac:.2e} | {dmax} | {pix_frac:.2e} |")
    print()
    print(json.dumps({"rows": rows, "agreement": agree}))


if __name__ == "__main__":
    main()
