"""Cold start-up of the commands that need no network, and of the first network use.

    python benchmarks/startup.py > benchmarks/startup.md

Each command runs as a fresh process (the console script ``aecodec`` on PATH); the table gives
the median and the best wall time of ``--runs`` runs. The machine's load at the time is printed
with it: on this 2-core machine a background training run doubles these numbers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "data"
COMMANDS = {
    "python -c pass (the interpreter alone)": [sys.executable, "-c", "pass"],
    "aecodec --help": ["aecodec", "--help"],
    "aecodec models": ["aecodec", "models"],
    "aecodec info x.aec (checks the whole file)": ["aecodec", "info", str(GOLDEN / "golden_conv-photos.v2_q50_context_rgb.aec")],
    "aecodec compress -q 0 x.png (an argument error)": ["aecodec", "compress", "-q", "0", "x.png"],
    "python -c 'import aecodec'": [sys.executable, "-c", "import aecodec"],
    "python -c 'import aecodec.codec' (torch and the networks)": [sys.executable, "-c", "import aecodec.codec"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    if shutil.which("aecodec") is None:
        sys.exit("startup: the aecodec console script is not on PATH (pip install -e .)")
    print("# Start-up time\n")
    print(f"Command: `python benchmarks/startup.py > benchmarks/startup.md`; {args.runs} cold runs each; "
          f"load average at start {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores.\n")
    print("| command | median s | best s |")
    print("|---|---:|---:|")
    for label, cmd in COMMANDS.items():
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            times.append(time.perf_counter() - t0)
        print(f"| `{label}` | {statistics.median(times):.3f} | {min(times):.3f} |")
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.2f}.")


if __name__ == "__main__":
    main()
