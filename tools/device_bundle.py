"""Get a training run ready for a lent GPU machine (the session's `device` tool), here on the CPU.

    python tools/device_bundle.py pack configs/run-wide.json   # writes .device/, prints the run call
    python tools/device_bundle.py park                          # weights the run does not need out of the tree
    (the device tool's run, with the command and carry printed by `pack`)
    python tools/device_bundle.py collect DIR                   # DIR: the run's files_at; then unpark
    python tools/device_bundle.py unpark

Why each step:

- The device tool sends the working tree (tracked and untracked-not-ignored files) plus what its
  ``carry`` names, **64 MiB in all**. This tree tracks ~270 MB, nearly all of it weights: every
  released version stays installed, and the runs' resume points are committed. ``park`` moves
  every tracked ``weights/*.pt`` and ``weights/resume/*.pt`` except the run's own resume point
  into ``.device-parked/`` (inside the checkout, ignored through ``.git/info/exclude``, so
  nothing leaves the machine and nothing is lost: ``unpark``, or ``git checkout -- weights``,
  brings them back). The code itself is ~10 MB.
- The training data (``../shared/data``) does not travel at all. ``pack`` writes ``.device/``
  (ignored; named in ``carry``): a small LFW archive of the run's train people (original JPEG
  bytes, a fixed hash order, up to the data budget) plus the 24 test faces of the learning
  curve, the original files of the run's photo folders (train split; a fixed hash order, up to
  the budget), the 12 BSDS500 test photos of the curve, and the run config pointing at them.
  The learning curve is measured on the same crops as here, so its rows continue ``wide.csv``.
- ``.device/run.sh`` is the command there: ``tools/train_run.py`` with ``--device cuda`` for a
  wall budget that ends well inside the call's 10 minutes, then the resume point, its log line
  and the curve copied to ``$OUT``. Training needs torch, numpy and pillow (the machine's image
  has them); nothing else of the package is imported.
- ``collect`` copies those three files back over the run's own, so the next CPU session resumes
  where the GPU stopped (``tools/train_run.py`` takes the committed resume point).

``pack --check`` runs ``.device/run.sh`` here on the CPU for a few steps (into a scratch copy of
the resume point and curve) to prove the bundle and the command work, short of the GPU.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BUNDLE, PARKED = ROOT / ".device", ROOT / ".device-parked"
LIMIT = 64 * 2**20          # what the device tool takes: the tree and the carried paths together
EVAL_FACES, EVAL_PHOTOS = 24, 12  # aecodec.train.longrun.eval_sets' defaults
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _order(name: str) -> bytes:
    """A fixed pseudo-random order (a subset spread over people and folders, not the first names)."""
    return hashlib.sha256(name.encode()).digest()


def _exclude(*paths: str) -> None:
    """Ignore ``paths`` in this checkout alone (``.git/info/exclude``, never committed)."""
    exclude = ROOT / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    have = exclude.read_text().splitlines() if exclude.exists() else []
    add = [p for p in paths if p not in have]
    if add:
        with exclude.open("a") as f:
            f.write("".join(f"{p}\n" for p in add))


def _git_files(*args: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z", *args], cwd=ROOT, check=True, capture_output=True).stdout
    return [ROOT / p for p in out.decode().split("\0") if p]


def travelling_bytes(carry: list[Path]) -> int:
    """What a device call would send: tracked files present, untracked files not ignored, and
    the carried paths (the tool's own rule, as its README states it)."""
    files = {p for p in _git_files() + _git_files("--others", "--exclude-standard") if p.is_file()}
    for c in carry:
        files |= {p for p in c.rglob("*") if p.is_file()} if c.is_dir() else ({c} if c.is_file() else set())
    return sum(p.stat().st_size for p in files)


def _lfw_subset(src: Path, dst: Path, budget: int) -> tuple[int, int]:
    """``dst``: the LFW test faces of the curve and train faces in hash order up to ``budget``
    bytes, as members of the original archive (same names, same bytes). (train, test) counts."""
    from aecodec.train.data import lfw_entries

    test = {e.member for e in lfw_entries(src, "test")[:EVAL_FACES]}
    train = sorted((e for e in lfw_entries(src, "train")), key=lambda e: _order(e.member))
    sizes: dict[str, int] = {}
    with tarfile.open(src, "r:*") as tar:
        for info in tar:
            sizes[info.name] = info.size
    keep, used = set(test), sum(sizes[m] for m in test)
    for e in train:
        if used + sizes[e.member] > budget:
            break
        keep.add(e.member)
        used += sizes[e.member]
    with tarfile.open(src, "r:*") as tar, tarfile.open(dst, "w:gz") as out:
        for info in tar:
            if info.name in keep:
                out.addfile(info, tar.extractfile(info))
    return len(keep) - len(test), len(test)


def _images(folder: Path) -> list[Path]:
    return sorted(f for f in folder.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)


def pack(config: str, data_mb: float, budget_s: int, faces_share: float) -> Path:
    from aecodec.train.longrun import RunConfig, split_of

    cfg = RunConfig.from_file(config)
    _exclude("/.device/", "/.device-parked/")
    if BUNDLE.exists():
        shutil.rmtree(BUNDLE)
    data = BUNDLE / "data"
    data.mkdir(parents=True)
    budget = int(data_mb * 2**20)
    new = json.loads(json.dumps(cfg.__dict__))
    faces_budget = int(budget * faces_share) if cfg.face_fraction > 0 and cfg.lfw else 0
    counts = {}
    if cfg.lfw:
        counts["lfw train, test faces"] = _lfw_subset(Path(cfg.lfw), data / "lfw.tgz", faces_budget)
        new["lfw"] = ".device/data/lfw.tgz"
    used = (data / "lfw.tgz").stat().st_size if cfg.lfw else 0
    if cfg.eval_photos:
        ev = data / "eval"
        ev.mkdir()
        for f in _images(Path(cfg.eval_photos))[:EVAL_PHOTOS]:
            shutil.copy2(f, ev / f.name)
            used += f.stat().st_size
        new["eval_photos"] = ".device/data/eval"
    photos = [(Path(p), f) for p in cfg.photo_folders for f in _images(Path(p))]
    photos += [(Path(p), f) for p in cfg.held_out_folders for f in _images(Path(p)) if split_of(f.stem) == "train"]
    kept = 0
    if cfg.face_fraction < 1:
        # most training tiles per carried byte first (BSDS500's JPEGs before Urban100's PNGs), in
        # hash order within a size class
        def per_tile(pf: tuple[Path, Path]) -> tuple[int, bytes]:
            from PIL import Image

            with Image.open(pf[1]) as im:
                tiles = max(1, (im.width // cfg.tile) * (im.height // cfg.tile))
            return pf[1].stat().st_size // tiles // 16384, _order(str(pf[1].relative_to(pf[0].parent)))

        for folder, f in sorted(photos, key=per_tile):
            if used + f.stat().st_size > budget:
                continue
            out = data / "photos" / folder.name / f.relative_to(folder)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, out)
            used += f.stat().st_size
            kept += 1
    counts["photos"] = (kept, len(photos))
    new["photo_folders"] = [".device/data/photos"] if kept else []
    new["held_out_folders"] = []
    new["description"] = f"{cfg.description} [device bundle: {counts}]"
    (BUNDLE / "config.json").write_text(json.dumps(new, indent=2, ensure_ascii=False) + "\n")
    # The command there: train on the GPU, then hand back what the CPU sessions resume from.
    res, log, curve = cfg.resume_point, str(Path(cfg.resume_point).with_suffix(".log")), cfg.curve
    (BUNDLE / "run.sh").write_text(f"""#!/bin/bash
# On the device machine, from the repository root: {budget_s} s of training, then the results to $OUT.
set -u
DEVICE="${{DEVICE:-cuda}}"
OUT="${{OUT:?the device tool sets OUT}}"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
PYTHONUNBUFFERED=1 python3 tools/train_run.py .device/config.json --device "$DEVICE" --budget {budget_s} \\
    --checkpoint-dir /tmp/aec-checkpoints ${{EXTRA_ARGS:-}} 2>&1 | tee "$OUT/train.out"
cp {res} "$OUT/resume.pt" && cp {log} "$OUT/resume.log" && cp {curve} "$OUT/curve.csv"
ls -la "$OUT"
""")
    sends = travelling_bytes([BUNDLE]) - sum(p.stat().st_size for p in parkable(cfg.resume_point))
    print(f"{BUNDLE.relative_to(ROOT)}: {used / 2**20:.1f} MiB of data; {counts}; with the weights parked "
          f"a call sends {sends / 2**20:.1f} MiB")
    if sends > LIMIT:
        sys.exit(f"over the device tool's {LIMIT / 2**20:.0f} MiB: pack again with a smaller --data-mb")
    return BUNDLE


def parkable(resume_point: str | None) -> list[Path]:
    """The tracked weight files (``weights/**.pt``) a device run does not need: all but its own
    resume point."""
    keep = (ROOT / resume_point).resolve() if resume_point else None
    return [p for p in _git_files("weights") if p.suffix == ".pt" and p.is_file() and p.resolve() != keep]


def park(config: str | None) -> None:
    """Move the tracked weights the run does not need into .device-parked/ (ignored)."""
    from aecodec.train.longrun import RunConfig

    _exclude("/.device/", "/.device-parked/")
    resume = None
    if config:
        resume = RunConfig.from_file(config).resume_point
    elif (BUNDLE / "config.json").exists():
        resume = json.loads((BUNDLE / "config.json").read_text())["resume_point"]
    moved = 0
    for p in parkable(resume):
        dst = PARKED / p.relative_to(ROOT)
        dst.parent.mkdir(parents=True, exist_ok=True)
        p.replace(dst)
        moved += dst.stat().st_size
    print(f"parked {moved / 1e6:.0f} MB of weights in {PARKED.relative_to(ROOT)}/; "
          f"a device call would now send {travelling_bytes([BUNDLE]) / 2**20:.1f} MiB (limit 64)")


def unpark() -> None:
    back = 0
    for p in sorted(PARKED.rglob("*.pt")) if PARKED.exists() else []:
        dst = ROOT / p.relative_to(PARKED)
        dst.parent.mkdir(parents=True, exist_ok=True)
        p.replace(dst)
        back += 1
    if PARKED.exists():
        shutil.rmtree(PARKED)
    missing = [p for p in _git_files("weights") if not p.exists()]
    print(f"{back} weight files back; {len(missing)} tracked files missing"
          + (f" (git checkout -- {' '.join(str(m.relative_to(ROOT)) for m in missing[:3])} ...)" if missing else ""))


def collect(files_at: str) -> None:
    """Put the device run's resume point, log and curve over the run's own."""
    cfg = json.loads((BUNDLE / "config.json").read_text())
    src = Path(files_at)
    for name, dst in (("resume.pt", cfg["resume_point"]), ("curve.csv", cfg["curve"])):
        shutil.copy2(src / name, ROOT / dst)
    log = ROOT / Path(cfg["resume_point"]).with_suffix(".log")
    shutil.copy2(src / "resume.log", log)
    print(f"resume point, log and curve of run {cfg['name']} updated from {src}; commit them")


def check() -> None:
    """Run .device/run.sh here on the CPU for a few steps, against scratch copies of the resume
    point, log and curve (the real ones are left as they were)."""
    cfg = json.loads((BUNDLE / "config.json").read_text())
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / "aec-device-check"
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "out").mkdir(parents=True)
    trial = dict(cfg, resume_point=str(scratch / "resume.pt"), curve=str(scratch / "curve.csv"), eval_every_s=1e9)
    shutil.copy2(ROOT / cfg["resume_point"], scratch / "resume.pt")
    (scratch / "config.json").write_text(json.dumps(trial))
    script = (BUNDLE / "run.sh").read_text().replace(".device/config.json", str(scratch / "config.json"))
    script = script.replace("/tmp/aec-checkpoints", str(scratch / "checkpoints"))
    for real, fake in ((cfg["resume_point"], scratch / "resume.pt"), (cfg["curve"], scratch / "curve.csv"),
                       (str(Path(cfg["resume_point"]).with_suffix(".log")), scratch / "resume.log")):
        script = script.replace(f"cp {real} ", f"cp {fake} ")
    env = dict(os.environ, OUT=str(scratch / "out"), DEVICE="cpu", EXTRA_ARGS="--max-steps 3 --threads 1")
    subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, check=True)
    got = sorted(p.name for p in (scratch / "out").iterdir())
    print(f"check: {got} in {scratch / 'out'}")
    if got != ["curve.csv", "resume.log", "resume.pt", "train.out"]:
        sys.exit("check failed: the command did not hand back all four files")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("config")
    p.add_argument("--data-mb", type=float, default=36.0, help="MiB of data to carry (the parked tree needs ~25 of the 64)")
    p.add_argument("--faces-share", type=float, default=0.45, help="share of the data budget for faces")
    p.add_argument("--budget", type=int, default=480, help="wall seconds of training there (the call's limit is 600)")
    p.add_argument("--check", action="store_true", help="then run the command here on the CPU for 3 steps")
    k = sub.add_parser("park")
    k.add_argument("config", nargs="?")
    sub.add_parser("unpark")
    c = sub.add_parser("collect")
    c.add_argument("files_at")
    a = ap.parse_args()
    if a.cmd == "pack":
        pack(a.config, a.data_mb, a.budget, a.faces_share)
        if a.check:
            check()
        print("\nThen: python tools/device_bundle.py park, and the device tool's run with\n"
              f"  command: bash .device/run.sh\n  carry: [\".device\"]\n  timeout_s: {a.budget + 100}\n"
              "then: python tools/device_bundle.py collect <files_at>; python tools/device_bundle.py unpark")
    elif a.cmd == "park":
        park(a.config)
    elif a.cmd == "unpark":
        unpark()
    else:
        collect(a.files_at)


if __name__ == "__main__":
    main()
