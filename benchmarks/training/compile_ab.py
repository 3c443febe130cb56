"""Does torch.compile speed up the long run's training step on this CPU? An A/B in the run itself.

    python benchmarks/training/compile_ab.py eager
    python benchmarks/training/compile_ab.py compiled

One ``run_session`` of ``configs/run-wide.json`` from a copy of its committed resume point
(under /tmp), 2 threads, fixed 224 px crops (one shape, so one compile), no checkpoints or
evaluation; steps 60-260 are timed (the compile happens before step 60). Run each with nothing
else on the machine (pause a training run with ``kill -STOP``, then ``kill -CONT``).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import aecodec.train.longrun as longrun  # noqa: E402


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "eager"
    if mode not in ("eager", "compiled"):
        raise SystemExit("usage: compile_ab.py eager|compiled")
    torch.set_num_threads(2)
    tmp = Path(tempfile.mkdtemp())
    cfg = longrun.RunConfig.from_file(ROOT / "configs" / "run-wide.json")
    shutil.copy(ROOT / cfg.resume_point, tmp / "resume.pt")
    cfg = replace(cfg, name=f"ab-{mode}", resume_point=str(tmp / "resume.pt"), curve=str(tmp / "curve.csv"),
                  crop_sizes=[224], crop=224, checkpoint_every_s=1e9, eval_every_s=1e9, moment_warmup_steps=0,
                  eval_photos=None, lfw=str((ROOT / cfg.lfw).resolve()) if cfg.lfw else None,
                  photo_folders=[str((ROOT / f).resolve()) for f in cfg.photo_folders],
                  held_out_folders=[str((ROOT / f).resolve()) for f in cfg.held_out_folders])
    if mode == "compiled":
        load = longrun.model_from_resume

        def compiled(ck):  # the training model's forward through inductor; the EMA copy stays eager
            m = load(ck)
            m.forward = torch.compile(m.forward, dynamic=False)
            return m

        longrun.model_from_resume = compiled
    marks: dict[int, float] = {}
    step = longrun.optimizer_step

    def timed(*a, **k):
        marks[len(marks)] = time.perf_counter()
        return step(*a, **k)

    longrun.optimizer_step = timed
    longrun.run_session(cfg, budget_s=1e9, log=lambda _: None, checkpoint_dir=str(tmp / "ck"), max_steps=260)
    print(f"{mode}: {(marks[259] - marks[59]) / 200 * 1000:.0f} ms a step (steps 60-260, 224 px crops, 2 threads)")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
