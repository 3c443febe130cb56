"""Regimes of the long run compared over equal CPU budgets, each branched from the same point.

    python tools/regimes.py configs/run-general.json --cpu-budget 900 base lr2x crop128 cosine

Each regime is the run's config with a few overrides (``REGIMES``), started from a copy of the
run's newest resume point (the committed one or this machine's checkpoint, whichever is further)
and trained for ``--cpu-budget`` CPU seconds of its own process (both cores; CPU seconds, not
wall seconds, so that other work on the machine does not favour one regime). The run's own
resume point is never touched. Each regime's learning curve goes to
``benchmarks/training/regimes/<regime>.csv``, its resume point to ``checkpoints/regimes/``; the
summary (held-out loss at the start and the end, and its slope per CPU-hour) is appended to
``benchmarks/training/regimes.md``. A winner's branch can be adopted as the run's resume point
by copying its file over ``weights/resume/<run>.pt``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
REGIMES: dict[str, dict[str, object]] = {
    "base": {},                                              # continuing as now
    "lr2x": {"lr": 2e-4},                                    # a larger constant step
    "lrhalf": {"lr": 5e-5},                                  # a smaller one
    "crop128": {"crop": 128, "batch": 12},                   # more, smaller crops (~ the same pixels)
    "crop224": {"crop": 224, "batch": 4},                    # fewer, larger crops
    "cosine": {"lr_schedule": "cosine", "lr_final": 1e-5},   # decay to 1e-5 over the budget
    "fp32": {"bf16": False},                                 # no bfloat16 autocast
}


def _mean_loss(row: dict[str, float], set_name: str) -> float:
    keys = [k for k in row if k.startswith(f"{set_name}_") and k.endswith("_loss")]
    return sum(row[k] for k in keys) / len(keys)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("regimes", nargs="+", choices=sorted(REGIMES))
    ap.add_argument("--cpu-budget", type=float, default=900.0, help="CPU seconds per regime")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    import torch

    from aecodec.train.longrun import RunConfig, eval_loss, eval_sets, latest_resume, model_from_resume, run_session

    torch.set_num_threads(args.threads)
    base = RunConfig.from_file(args.config)
    start = latest_resume(base)
    if start is None:
        sys.exit(f"regimes: run {base.name} has no resume point to branch from")
    work = ROOT / "checkpoints" / "regimes"
    work.mkdir(parents=True, exist_ok=True)
    origin = work / f"{base.name}-origin.pt"
    torch.save(start, origin)
    sets = eval_sets(base)
    model = model_from_resume(start)
    at_start = {f"{n}_{k}": v for n, x in sets for k, v in eval_loss(model, x).items()}

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    log(f"branching {len(args.regimes)} regimes from step {start['step']} ({start['cpu_s'] / 3600:.2f} CPU-h)")
    rows = []
    for name in args.regimes:
        cfg = dataclasses.replace(base, **REGIMES[name], name=f"regime-{name}",
                                  resume_point=str(work / f"{name}.pt"),
                                  curve=str(ROOT / "benchmarks" / "training" / "regimes" / f"{name}.csv"),
                                  eval_every_s=300.0, checkpoint_every_s=600.0)
        for stale in (Path(cfg.resume_point), work / f"{cfg.name}.resume.pt"):
            stale.unlink(missing_ok=True)
        shutil.copyfile(origin, cfg.resume_point)
        log(f"regime {name}: {REGIMES[name] or 'as the run'}")
        out = run_session(cfg, budget_s=10 * args.cpu_budget, log=log, checkpoint_dir=str(work),
                          cpu_budget_s=args.cpu_budget)
        rows.append((name, out))
    lines = [f"\n## {time.strftime('%Y-%m-%d %H:%M')}: {base.name} from step {start['step']} "
             f"({start['cpu_s'] / 3600:.2f} CPU-h), {args.cpu_budget:.0f} CPU-s each, {args.threads} threads\n",
             "Command: `python tools/regimes.py " + " ".join(sys.argv[1:]) + "`\n",
             "Held-out loss λ·255²·MSE + bpp (rounded latents, EMA weights), mean over levels "
             f"{', '.join(k.split('_')[1] for k in at_start if k.startswith('faces_') and k.endswith('_loss'))}; "
             "slope: change per CPU-hour of the regime.\n",
             "| regime | overrides | steps | faces loss start → end | slope faces /CPU-h | photos loss start → end | slope photos /CPU-h |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for name, out in rows:
        cells = []
        for set_name in ("faces", "photos"):
            a, b = _mean_loss(at_start, set_name), _mean_loss(out["eval"], set_name)
            hours = (out["cpu_s"] - start["cpu_s"]) / 3600
            cells += [f"{a:.4f} → {b:.4f}", f"{(b - a) / hours:+.4f}"]
        lines.append(f"| {name} | {REGIMES[name] or '—'} | {out['steps_this_session']} | " + " | ".join(cells) + " |")
    report = ROOT / "benchmarks" / "training" / "regimes.md"
    if not report.exists():
        report.write_text("# Regimes of the long run over equal CPU budgets\n\n"
                          "Each table: regimes branched from one resume point, by `tools/regimes.py`.\n")
    with open(report, "a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
