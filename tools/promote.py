"""The promotion gate: measure the long run's weights against the shipped ones, ship them as
a new version only if they are better on every test set the run names.

    python tools/promote.py configs/run-general.json            # measure, report, change nothing
    python tools/promote.py configs/run-general.json --write    # and ship a new version if it passes

Measured as the benchmark reports are: real ``.aec`` files (header included), PSNR on 8-bit
RGB (scikit-image), means of per-image values, BD-rate over the overlapping range, on the
reports' own held-out sets (LFW test people 250x250, every k-th of 100; BSDS500 test, every
k-th of 12). The candidate is the resume point's EMA weights rounded to float16, exactly as
they would ship. Codecs compared in the same run: the candidate, the family's newest shipped
version, ``conv-faces`` (the face model the default should approach on faces) and JPEG.

The gate passes when the candidate's BD-rate against the family's newest version is at least
``--min-gain`` percent (default 1) below zero on every set in the run's ``gate_sets`` (for a
specialist family such as ``conv-faces``, against the default model as well: naming it must pay): every
version stays installed for good, so one is not worth shipping for noise. ``--write`` then saves ``weights/<family>.vN.pt``
(float16, with a card of the run and these measurements, and its JSON card ``.json`` beside it), makes its golden files, and appends
the result to ``benchmarks/training/gate.md``; released versions are never touched.

A denoising run (``denoise_sigma`` > 0 in its config, e.g. ``configs/run-photos-denoise.json``)
is gated on noisy inputs: every test image gets seeded Gaussian noise of σ = denoise_sigma / 2
(rounded to 8 bits, as in ``benchmarks/denoise.md``) and PSNR is measured against the clean
image; the rivals are the family's newest version and, for a specialist's twin such as
``conv-faces-denoise``, the default's twin (a plain model cannot reach the twins' PSNR range,
so BD-rate against it has no overlap).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
QUALITIES = [1, 10, 19, 28, 37, 46, 55, 64, 73, 82, 91, 100]


def test_sets(n_faces: int, n_photos: int) -> dict[str, list[tuple[str, "object"]]]:
    import numpy as np
    from PIL import Image

    from aecodec.train.data import lfw_images
    entries, images = lfw_images(SHARED / "lfw" / "lfw.tgz", "test")
    step = len(entries) // 100  # the lfw250 report's selection; n_faces < 100 takes its first ones
    faces = [(Path(e.member).stem, img) for e, img in list(zip(entries, images))[::step][:100]][:n_faces]
    files = sorted((SHARED / "photos" / "bsds500" / "test").glob("*.jpg"))
    photos = [(f.stem, np.asarray(Image.open(f).convert("RGB"))) for f in files[:: len(files) // 12][:12]][:n_photos]
    return {"faces": faces, "photos": photos}


def noisy_sets(sets, sigma: float):
    """Each image of ``sets`` as (name, noisy 8-bit input, clean reference), seeded per image."""
    import zlib

    import numpy as np
    out = {}
    for set_name, images in sets.items():
        out[set_name] = []
        for name, img in images:
            rng = np.random.default_rng([zlib.crc32(f"{set_name}/{name}".encode()), round(sigma * 1000)])
            noisy = img / 255.0 + sigma * rng.standard_normal(img.shape)
            out[set_name].append((name, np.round(np.clip(noisy, 0, 1) * 255).astype(np.uint8), img))
    return out


def _input_and_reference(entry):
    """(input, reference) of a test entry: (name, image) or (name, noisy input, clean reference)."""
    return (entry[1], entry[2]) if len(entry) > 2 else (entry[1], entry[1])


def measure(lm, images, qualities) -> tuple[list[float], list[float]]:
    """Mean real bpp and mean PSNR (against each entry's reference) per quality of a loaded
    model over ``images``."""
    import numpy as np

    from aecodec.bench.metrics import psnr
    from aecodec.codec import decode_with, encode_prepared
    from aecodec.container import read
    from aecodec.images import load_image
    bpps, psnrs = [], []
    for q in qualities:
        b, p = [], []
        for entry in images:
            img, ref = _input_and_reference(entry)
            enc = encode_prepared(lm, [load_image(img)], q)[0]
            out = np.asarray(decode_with(read(enc.data), lm).convert("RGB"))
            b.append(len(enc.data) * 8 / (img.shape[0] * img.shape[1]))
            p.append(psnr(ref, out))
        bpps.append(float(np.mean(b)))
        psnrs.append(float(np.mean(p)))
    return bpps, psnrs


def jpeg_curve(images, qualities=range(5, 100, 5)) -> tuple[list[float], list[float]]:
    import numpy as np
    from PIL import Image

    from aecodec.bench.metrics import psnr
    bpps, psnrs = [], []
    for q in qualities:
        b, p = [], []
        for entry in images:
            img, ref = _input_and_reference(entry)
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, "JPEG", quality=int(q), optimize=True, subsampling="4:2:0")
            b.append(buf.tell() * 8 / (img.shape[0] * img.shape[1]))
            p.append(psnr(ref, np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))))
        bpps.append(float(np.mean(b)))
        psnrs.append(float(np.mean(p)))
    return bpps, psnrs


def candidate(cfg, tmp: Path):
    """The resume point's EMA weights as they would ship (float16, through the weight loader)."""
    from aecodec.train.longrun import latest_resume, model_from_resume
    from aecodec.weights import load_model_file, save_model
    ck = latest_resume(cfg)
    if ck is None:
        sys.exit(f"run {cfg.name} has no resume point yet ({cfg.resume_point})")
    model = model_from_resume(ck)
    if cfg.domain:
        model.config.domain = cfg.domain
    if cfg.description:
        model.config.description = cfg.description
    path = tmp / "candidate.pt"
    card = {"name": cfg.family, "run": cfg.name, "steps_in_run": int(ck["step"]),
            "cpu_hours_in_run": round(float(ck["cpu_s"]) / 3600, 2), "run_config": ck.get("run_config"),
            "hardware": "CPU (this project's 2-core training machine), resumable sessions",
            "fine_tuned_from": cfg.init_weights}
    save_model(model, path, card=card)
    return load_model_file(path), ck


def with_hyperprior(cand, current, tmp: Path):
    """A plain convolutional candidate with the newest version's hyperprior and stream tables
    on its transforms (``aecodec.train.hyper.transplant``), saved and loaded as it would ship:
    against a hyperprior version, new transforms are measured with its entropy coding. Retrain
    the hyperprior on them (tools/train_hyper.py, tools/build_tables.py) before shipping for
    the most they can give."""
    from aecodec.train.hyper import transplant
    from aecodec.weights import load_model_file, save_model
    model = transplant(cand.model, current.model)
    card = {**cand.card, "hyperprior_from": current.name}
    path = tmp / "candidate-hyper.pt"
    save_model(model, path, card=card)
    return load_model_file(path)


def from_file(path: str):
    """A weight file as the candidate; its card says what run and steps made it."""
    from aecodec.weights import load_model_file
    lm = load_model_file(path)
    card = lm.card
    steps = card.get("steps_in_run", card.get("steps", 0))
    return lm, {"step": steps, "cpu_s": 3600 * float(card.get("cpu_hours_in_run", 0.0))}


def passes(bd: dict[str, dict[str, float | None]], gate_sets: list[str], rivals: list[str], min_gain: float) -> bool:
    """The gate's verdict: on every gate set, the candidate's BD-rate against every rival is at
    least ``min_gain`` percent below zero (a set without an overlapping range fails)."""
    for set_name in gate_sets:
        if set_name not in bd:
            return False
        for rival in rivals:
            d = bd[set_name].get(f"candidate vs {rival}")
            if d is None or d > -min_gain:
                return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--write", action="store_true", help="ship a new version if the gate passes")
    ap.add_argument("--faces", type=int, default=100)
    ap.add_argument("--photos", type=int, default=12)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--weights", help="gate this weight file (e.g. tools/train_hyper.py --model-out) "
                    "instead of the run's resume point")
    ap.add_argument("--save-candidate", metavar="PATH",
                    help="only save the resume point's plain candidate (as it would ship) to PATH, e.g. for "
                         "tools/train_hyper.py, and stop")
    ap.add_argument("--min-gain", type=float, default=1.0,
                    help="BD-rate percent the candidate must save on every gate set (a version costs 3.7 MB)")
    args = ap.parse_args()
    import torch

    from aecodec.bench.bdrate import bd_rate
    from aecodec.train.longrun import RunConfig
    from aecodec.versions import split_version, versioned_name
    from aecodec.container import provisional_id
    from aecodec.defaults import DEFAULT_MODEL
    from aecodec.denoising import denoising_twin
    from aecodec.weights import LoadedModel, family_versions, load_shipped
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = RunConfig.from_file(args.config)
    if not cfg.family:
        sys.exit(f"{args.config} names no model family to promote into")
    if args.save_candidate:
        import shutil
        with tempfile.TemporaryDirectory() as tmp:
            cand, ck = candidate(cfg, Path(tmp))
            Path(args.save_candidate).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(tmp) / "candidate.pt", args.save_candidate)
            shutil.copyfile(Path(tmp) / "candidate.json", Path(args.save_candidate).with_suffix(".json"))
        print(f"saved {args.save_candidate}: run {cfg.name} at step {int(ck['step'])} "
              f"({float(ck['cpu_s']) / 3600:.2f} CPU-hours)")
        return
    t0 = time.time()
    sets = test_sets(args.faces, args.photos)
    sigma = cfg.denoise_sigma / 2
    if sigma:
        sets = noisy_sets(sets, sigma)
    with tempfile.TemporaryDirectory() as tmp:
        cand, ck = candidate(cfg, Path(tmp)) if not args.weights else from_file(args.weights)
        current = load_shipped(cfg.family)
        if current.model.kind == "conv-hyper" and cand.model.kind == "conv":
            cand = with_hyperprior(cand, current, Path(tmp))
        newest = family_versions(cfg.family)[-1][0]
        target = versioned_name(cfg.family, newest + 1)
        # measured under the name and container id it would ship with: an unreleased model's
        # files would otherwise carry a named header, ~20 bytes more than they will
        models = {"candidate": LoadedModel(target, cand.model, cand.weights_hash, cand.card), current.name: current}
        if "conv-faces" != cfg.family and not sigma:
            face = load_shipped("conv-faces")
            models[face.name] = face
        # a specialist family must also beat the default on its own sets: a user who names it
        # expects smaller files than the model they get by naming none
        # (a denoising specialist: the default's twin, which `--denoise` gives by default)
        rivals = [current.name]
        default_family = split_version(denoising_twin(DEFAULT_MODEL))[0] if sigma else DEFAULT_MODEL
        if cfg.family != default_family:
            default = load_shipped(default_family)
            models.setdefault(default.name, default)
            rivals.append(default.name)
        curves: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
        with provisional_id(target, cand.weights_hash):
            for set_name, images in sets.items():
                curves[set_name] = {"jpeg": jpeg_curve(images)}
                for label, lm in models.items():
                    curves[set_name][label] = measure(lm, images, QUALITIES)
                    print(f"{set_name} {label}: done ({time.time() - t0:.0f} s)", flush=True)
        rows = []
        bd: dict[str, dict[str, float | None]] = {}
        for set_name, c in curves.items():
            bd[set_name] = {}
            for label in models:
                bd[set_name][f"{label} vs jpeg"] = bd_rate(*c["jpeg"], *c[label])
            for rival in rivals:
                bd[set_name][f"candidate vs {rival}"] = bd_rate(*c[rival], *c["candidate"])
            for label in models:
                b, p = c[label]
                rows.append(f"| {set_name} | {label} | {b[0]:.3f} → {b[-1]:.3f} | {p[0]:.2f} → {p[-1]:.2f} | "
                            f"{_pct(bd[set_name][f'{label} vs jpeg'])} |")
        verdict = passes(bd, cfg.gate_sets, rivals, args.min_gain)
        what = (f"run {cfg.name} at step {int(ck['step'])} ({float(ck['cpu_s']) / 3600:.2f} CPU-hours)"
                if not args.weights else f"`{args.weights}` ({cand.model.config.description})")
        lines = [f"## {time.strftime('%Y-%m-%d %H:%M')}: {what} against {current.name}",
                 "", f"`python tools/promote.py {' '.join(sys.argv[1:])}` "
                 f"({len(sets['faces'])} LFW test faces 250x250, {len(sets['photos'])} BSDS500 test photos; "
                 f"{f'inputs with Gaussian noise σ = {sigma:g}, PSNR against the clean images; ' if sigma else ''}"
                 f"qualities {QUALITIES[0]}-{QUALITIES[-1]}; {time.time() - t0:.0f} s)", "",
                 "| set | codec | bpp q1 → q100 | PSNR q1 → q100 | BD-rate vs JPEG |", "|---|---|---|---|---|", *rows, ""]
        for set_name in curves:
            for rival in rivals:
                d = bd[set_name][f"candidate vs {rival}"]
                lines.append(f"- {set_name}: candidate vs {rival} BD-rate {_pct(d)}"
                             f"{' (gate set)' if set_name in cfg.gate_sets else ''}")
        lines.append(f"- verdict: {'PASS: ships as ' + target if verdict else 'not better on every gate set: nothing ships'}"
                     f"{'' if args.write or not verdict else ' (run with --write to ship)'}")
        text = "\n".join(lines) + "\n"
        print(text)
        if args.write:
            out = ROOT / "benchmarks" / "training" / "gate.md"
            out.parent.mkdir(parents=True, exist_ok=True)
            if not out.exists():
                out.write_text("# Promotion gate results\n\nEach run of `tools/promote.py --write`, newest last.\n\n")
            with open(out, "a") as f:
                f.write(text + "\n")
            if verdict:
                _ship(cand, ck, cfg, target, curves, bd)


def _ship(cand, ck, cfg, target: str, curves, bd) -> None:
    from aecodec.weights import save_model, shipped_dir
    path = shipped_dir() / f"{target}.pt"
    if path.exists():
        sys.exit(f"{path} exists: released weights are never overwritten")
    card = dict(cand.card)
    card["results"] = {f"{s} BD-rate {k}": (None if v is None else round(v, 2))
                       for s, d in bd.items() for k, v in d.items()}
    card["curves"] = {s: {k: [[round(x, 4) for x in b], [round(x, 3) for x in p]] for k, (b, p) in c.items()}
                      for s, c in curves.items()}
    card["steps"] = int(ck["step"])
    # `aecodec train FAMILY` reads a plain training config from the card: the same
    # architecture's, from the weights the run started from
    if cfg.init_weights:
        from aecodec.weights import load_model_file
        start = load_model_file(ROOT / cfg.init_weights).card
        if start.get("train_config"):
            card["train_config"] = {**start["train_config"], "name": cfg.family}
    save_model(cand.model.float(), path, card=card)
    from aecodec import container
    from aecodec.weights import load_model_file
    shipped = load_model_file(path)
    if container.model_id(target, shipped.weights_hash) is None:
        # Golden files must be written with the id: a version-2 file may not name a registered model.
        print(f"shipped {path} ({path.stat().st_size / 1e6:.2f} MB) and its .json card. Next: give it the id "
              f"{max(container.MODEL_IDS) + 1} in aecodec.container.MODEL_IDS: (\"{target}\", "
              f"\"{shipped.weights_hash.hex()}\"), and the table in docs/format.md; then run "
              f"`python tests/data/make_golden.py`; commit all of it")
        return
    import subprocess
    subprocess.run([sys.executable, str(ROOT / "tests" / "data" / "make_golden.py")], check=True, cwd=ROOT)
    print(f"shipped {path} ({path.stat().st_size / 1e6:.2f} MB); its .json card and golden files made; commit all three")


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:+.1f} %"


if __name__ == "__main__":
    main()
