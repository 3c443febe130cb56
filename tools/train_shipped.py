"""Train several shipped models at once (one process each, sharing one GPU or the CPU).

Used to train the shipped convolutional weights on a rented GPU::

    python tools/train_shipped.py configs/conv-faces.json configs/conv-photos.json \
        --time-budget 430 --lfw DATA/lfw_train.tar --photos DATA/photos --out-dir OUT --ckpt-dir CK
    # the denoising twins, fine-tuned from the plain weights on this 2-core CPU, one thread each:
    python tools/train_shipped.py configs/conv-photos-denoise.json configs/conv-faces-denoise.json \
        --threads 1 --time-budget 4500 --out-dir OUT --ckpt-dir CK
    # then, to extend the same runs (total budget, learning-rate drop at 80% of it):
    python tools/train_shipped.py configs/conv-faces.json configs/conv-photos.json \
        --time-budget 690 --lr-decay-at 0.8 --resume ... (same paths)

``--lfw`` / ``--photos`` replace the data paths of the configs (e.g. with a compact copy of the
data); ``--time-budget`` stops each run after that many seconds of training.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _run(cfg_path: str, args: argparse.Namespace) -> None:
    import torch

    from aecodec.train import TrainConfig, train

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.benchmark = True
    over = json.loads(Path(cfg_path).read_text())
    if args.lfw and over.get("lfw"):
        over["lfw"] = args.lfw
    if args.photos and over.get("folders"):
        over["folders"] = [args.photos]
    if args.time_budget:
        over["time_budget_s"] = args.time_budget
    if args.lr_decay_at is not None:
        over["lr_decay_at"] = args.lr_decay_at
    out = Path(args.out_dir)
    over["checkpoint"] = str(Path(args.ckpt_dir) / f"{over['name']}.ckpt")
    over["log_every"] = args.log_every
    over["out"] = str(out / f"{over['name']}.pt")
    cfg = TrainConfig.from_dict(over)
    t = time.time()
    with open(out / f"{over['name']}.log", "w") as log:
        sys.stdout = log
        res = train(cfg, resume=args.resume, progress=False)
        print(f"{cfg.name}: {res.steps} steps in {res.wall_s:.0f}s, last {res.last}", flush=True)
        sys.stdout = sys.__stdout__
    print(f"{cfg.name}: {res.steps} steps in {time.time() - t:.0f}s, last {res.last}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("configs", nargs="+")
    ap.add_argument("--time-budget", type=float, default=None)
    ap.add_argument("--lfw", default=None)
    ap.add_argument("--photos", default=None)
    ap.add_argument("--out-dir", default="weights")
    ap.add_argument("--ckpt-dir", default="checkpoints")
    ap.add_argument("--log-every", type=int, default=500)
    ap.add_argument("--resume", action="store_true", help="continue from the checkpoints in --ckpt-dir")
    ap.add_argument("--lr-decay-at", type=float, default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch threads per run (CPU training)")
    args = ap.parse_args()
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    Path(args.ckpt_dir).mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_run, args=(c, args)) for c in args.configs]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    bad = [c for c, p in zip(args.configs, procs) if p.exitcode != 0]
    if bad:
        sys.exit(f"failed: {bad}")


if __name__ == "__main__":
    main()
