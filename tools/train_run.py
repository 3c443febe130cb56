"""The one command for the long CPU training run: resume it, train on both cores, stop cleanly.

Every working session starts it first, in the background::

    nohup python tools/train_run.py configs/run-joint.json --budget 9000 > checkpoints/joint.out 2>&1 &

It resumes from the committed resume point (``weights/resume/<run>.pt``) or this machine's newer
local checkpoint (``checkpoints/<run>.resume.pt``), checkpoints every few minutes, appends the
learning curve to ``benchmarks/training/<run>.csv``, and on the budget (wall seconds), SIGTERM
or Ctrl-C writes the resume point and one log line (``weights/resume/<run>.log``): commit both.
``kill -TERM <pid>`` stops it early, cleanly. Promotion to shipped weights is a separate gate:
``python tools/promote.py``.

On a lent GPU machine the same command runs there (``--device cuda``): ``tools/device_bundle.py``
packs the data it needs within the device tool's 64 MiB, parks the weights the run does not
need, and writes the command that brings the resume point, log line and curve back through ``$OUT``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--budget", type=float, default=9000.0, help="wall seconds of training this session")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--checkpoint-dir", default="checkpoints")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda on a lent GPU machine")
    args = ap.parse_args()
    import torch

    from aecodec.train.longrun import RunConfig, run_session

    torch.set_num_threads(args.threads)
    cfg = RunConfig.from_file(args.config)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    run_session(cfg, args.budget, log=log, checkpoint_dir=args.checkpoint_dir, max_steps=args.max_steps,
                device=args.device)


if __name__ == "__main__":
    main()
