"""Speed: per-image latency of the whole API path at 0.06 and 0.4 megapixels, batch throughput
of `aecodec compress` over a folder of faces, and the same folder on a Dask LocalCluster of 1
and 2 workers; beside the bare analysis/synthesis transforms of CompressAI's factorized-prior
architecture (N=128, M=192; random weights: the time does not depend on them) and Pillow's
JPEG and WebP, on the same images in the same run.

    python benchmarks/throughput.py > benchmarks/throughput.md

The 6 and 24 megapixel rows are in benchmarks/tiles.md (they need a process each for peak memory).
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import aecodec  # noqa: E402
from aecodec.bench.timing import median_ms  # noqa: E402
from aecodec.models.gdn import GDN  # noqa: E402


def reference(n: int = 128, m: int = 192) -> tuple[nn.Module, nn.Module]:
    """CompressAI's FactorizedPrior transforms (bmshj2018-factorized): shapes only."""
    conv = lambda a, b: nn.Conv2d(a, b, 5, 2, 2)  # noqa: E731
    deconv = lambda a, b: nn.ConvTranspose2d(a, b, 5, 2, 2, 1)  # noqa: E731
    g_a = nn.Sequential(conv(3, n), GDN(n), conv(n, n), GDN(n), conv(n, n), GDN(n), conv(n, m)).eval()
    g_s = nn.Sequential(deconv(m, n), GDN(n, inverse=True), deconv(n, n), GDN(n, inverse=True),
                        deconv(n, n), GDN(n, inverse=True), deconv(n, 3)).eval()
    return g_a, g_s


def best(fn, reps: int = 5) -> float:
    """Median seconds of ``fn()`` (aecodec.bench.timing, after warm-up calls)."""
    return median_ms(fn, runs=reps) / 1000


def faces(n: int) -> list[np.ndarray]:
    from promote import SHARED  # LFW test people only

    from aecodec.train.data import lfw_images

    entries, images = lfw_images(SHARED / "lfw" / "lfw.tgz", "test")
    return [np.asarray(img) for img in images[:: max(len(images) // n, 1)][:n]]


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--faces", type=int, default=224)
    args = ap.parse_args()
    torch.set_num_threads(2)
    g_a, g_s = reference()
    rows = []
    photo = np.asarray(Image.open(sorted((ROOT.parent / "shared/data/photos/cc_photos").glob("*.jpg"))[0])
                       .convert("RGB").resize((768, 512)))
    face_set = faces(args.faces)
    for label, rgb in (("0.06 MP (250x250 face)", face_set[0]), ("0.4 MP (768x512 photo)", photo)):
        h, w = rgb.shape[:2]
        data = aecodec.compress(rgb)
        enc = best(lambda: aecodec.compress(rgb))
        dec = best(lambda: aecodec.decompress(data))
        x = torch.rand(1, 3, -(-h // 16) * 16, -(-w // 16) * 16)
        with torch.inference_mode():
            y = g_a(x)
            ra = best(lambda: g_a(x))
            rs = best(lambda: g_s(y))
        rows.append((label, enc, dec, ra, rs, len(data) * 8 / (w * h)))
        for fmt, q in (("JPEG", 85), ("WEBP", 80)):
            buf = io.BytesIO()
            Image.fromarray(rgb).save(buf, format=fmt, quality=q)
            b = buf.getvalue()
            e = best(lambda: Image.fromarray(rgb).save(io.BytesIO(), format=fmt, quality=q))
            d = best(lambda: Image.open(io.BytesIO(b)).load())
            rows.append((f"{label}, Pillow {fmt} q{q}", e, d, None, None, len(b) * 8 / (w * h)))

    print("## Latency, one image, whole API path (median of 5 after 2 warm-ups, 2 threads)\n")
    print("| image | encode ms | decode ms | reference g_a ms | reference g_s ms | encode / ref | decode / ref | bpp |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, e, d, ra, rs, bpp in rows:
        ratio = (f"{e / ra:.2f}× | {d / rs:.2f}×" if ra else "– | –")
        print(f"| {label} | {e * 1e3:.0f} | {d * 1e3:.0f} | {ra * 1e3:.0f} | {rs * 1e3:.0f} | {ratio} | {bpp:.3f} |"
              if ra else f"| {label} | {e * 1e3:.1f} | {d * 1e3:.1f} | – | – | – | – | {bpp:.3f} |")

    tmp = Path(tempfile.mkdtemp(prefix="aec-throughput-"))
    src = tmp / "faces"
    src.mkdir()
    paths = []
    for k, f in enumerate(face_set):
        p = src / f"f{k:03d}.png"
        Image.fromarray(f).save(p)
        paths.append(str(p))
    x = torch.rand(32, 3, 256, 256)
    with torch.inference_mode():
        ref_batch = best(lambda: g_a(x), 3) / 32
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "aecodec", "compress", *paths, "-o", str(tmp / "cli") + "/"],
                   check=True, env=env, cwd=tmp)
    cli = (time.perf_counter() - t) / len(paths)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "aecodec", "decompress", *sorted(map(str, (tmp / "cli").glob("*.aec"))),
                    "-o", str(tmp / "decoded") + "/"], check=True, env=env, cwd=tmp)
    cli_dec = (time.perf_counter() - t) / len(paths)
    print(f"\n## A folder of {len(paths)} faces (250x250)\n")
    print("| what | ms per image | / reference batched g_a |")
    print("|---|---:|---:|")
    print(f"| reference g_a, batches of 32 at 256x256 | {ref_batch * 1e3:.1f} | 1.00× |")
    print(f"| `aecodec compress FOLDER/*.png -o out/` (cold process: start-up and model load included) | "
          f"{cli * 1e3:.1f} | {cli / ref_batch:.2f}× |")
    print(f"| `aecodec decompress out/*.aec -o decoded/` (PNG; cold process) | {cli_dec * 1e3:.1f} | – |")

    from distributed import Client, LocalCluster

    from aecodec import distributed as cluster

    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=logging.ERROR) as lc, Client(lc) as client:
            client.run(torch.set_num_threads, 2 // workers)
            cluster.compress(client, paths[:workers * 2], str(tmp / f"warm{workers}"), chunk=1)  # load the model
            t = time.perf_counter()
            res = cluster.compress(client, paths, str(tmp / f"dask{workers}"), chunk=16)
            per = (time.perf_counter() - t) / len(paths)
            assert all(r.ok for r in res)
        print(f"| Dask LocalCluster, {workers} worker{'s' * (workers > 1)} × {2 // workers} torch thread"
              f"{'s' * (workers == 1)} (warm) | {per * 1e3:.1f} | {per / ref_batch:.2f}× |")
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.2f}.")


if __name__ == "__main__":
    main()
