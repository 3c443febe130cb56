"""The command line with and without its allocator settings (``aecodec/allocator.py``).

    python benchmarks/allocator.py [--faces 224] [--rounds 2] [--big] > benchmarks/allocator.md

Runs ``python -m aecodec compress`` over LFW test faces (250x250 PNGs written to a temporary
folder), and with ``--big`` over a 6000x4000 photo mosaic (``tiles.py``'s), in fresh processes,
alternating the two settings: "tuned" as shipped, "glibc default" with ``GLIBC_TUNABLES`` set
empty (which ``allocator.tune`` leaves alone, and glibc ignores). Per run: wall seconds, minor
page faults and peak RSS of the child (``getrusage``). Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from aecodec.train.data import lfw_images  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"

_WRAP = r"""
import resource, subprocess, sys, time
t = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
wall = time.perf_counter() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(wall, r.ru_minflt, r.ru_maxrss * 1024)
"""


def measure(cmd: list[str], tuned: bool, cwd: Path) -> tuple[float, int, int]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("GLIBC_TUNABLES", None)
    if not tuned:
        env["GLIBC_TUNABLES"] = ""
    out = subprocess.run([sys.executable, "-c", _WRAP, *cmd], capture_output=True, text=True, env=env, cwd=cwd,
                         check=True)
    wall, faults, peak = out.stdout.split()
    return float(wall), int(faults), int(peak)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=224)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--big", action="store_true", help="also a 24-megapixel photo (a minute a run)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aec-alloc-"))
    _, faces = lfw_images(SHARED / "lfw" / "lfw.tgz", "test")
    paths = []
    (tmp / "faces").mkdir()
    for k, f in enumerate(faces[: args.faces]):
        p = tmp / "faces" / f"f{k:03d}.png"
        Image.fromarray(f).save(p)
        paths.append(str(p))
    cases = [(f"{len(paths)} faces, compress", lambda: [sys.executable, "-m", "aecodec", "compress", *paths,
                                                        "-o", str(tmp / "out") + "/", "-f"])]
    if args.big:
        from tiles import mosaic

        Image.fromarray(mosaic(6000, 4000)).save(tmp / "big.png")
        cases.append(("6000x4000 photo, compress", lambda: [sys.executable, "-m", "aecodec", "compress",
                                                            str(tmp / "big.png"), "-o", str(tmp / "big.aec"), "-f"]))
    print("| what | allocator | wall s | minor page faults | peak RSS GB |")
    print("|---|---|---:|---:|---:|")
    for label, cmd in cases:
        for _ in range(args.rounds):
            for tuned in (True, False):
                wall, faults, peak = measure(cmd(), tuned, tmp)
                print(f"| {label} | {'tuned' if tuned else 'glibc default'} | {wall:.2f} | {faults:,} | "
                      f"{peak / 1e9:.2f} |", flush=True)
    print(f"\n(load average at the end: {os.getloadavg()[0]:.2f}; {time.strftime('%Y-%m-%d %H:%M')})")


if __name__ == "__main__":
    main()
