"""Benchmark of the denoising codec against the plain codec and scikit-image's classical denoisers.

Run from the repository root (it writes benchmarks/denoise.md)::

    nice -n 10 python benchmarks/denoise_bench.py

Images: deterministic, evenly spread subsets of the LFW test people and of the BSDS500 test
photos, plus a few images between them (never evaluated) to tune the classical denoisers.
Noise: x/255 + σ·N(0, 1) with a seed fixed per (set, image, σ), clipped to [0, 1] and
rounded to 8 bits, as a noisy photo file would be. PSNR is always against the clean image;
bpp is the real ``.aec`` size (header included) over the image's pixels.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import skimage
import torch
from numpy.typing import NDArray
from PIL import Image
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle, denoise_wavelet, estimate_sigma

from aecodec.api import Codec, model_info
from aecodec.bench.metrics import psnr
from aecodec.denoising import denoising_twin
from aecodec.weights import resolve
from aecodec.train.data import lfw_images

__all__ = ["main", "add_noise", "pick_indices", "CLASSICAL", "plain_psnr_at_rate"]

U8 = NDArray[np.uint8]
F64 = NDArray[np.float64]
SEED = 20240606
SIGMAS = (0.05, 0.1, 0.2)
SWEEP = (5.0, 10.0, 30.0, 50.0, 70.0, 90.0)
SETS = {"faces": ("LFW test people", "conv-faces"), "photos": ("BSDS500 test photos", "conv-photos")}
LFW = "/work/shared/data/lfw/lfw.tgz"
BSDS = "/work/shared/data/photos/bsds500/test"

Denoiser = Callable[[F64, float], F64]


def _tv(k: float) -> Denoiser:
    return lambda x, s: denoise_tv_chambolle(x, weight=k * s, channel_axis=-1)


def _wavelet(method: str, k: float) -> Denoiser:
    return lambda x, s: denoise_wavelet(x, sigma=k * s, method=method, mode="soft", channel_axis=-1,
                                        convert2ycbcr=True, rescale_sigma=True)


def _nlm(k: float) -> Denoiser:
    return lambda x, s: denoise_nl_means(x, h=k * s, sigma=s, fast_mode=True, patch_size=5, patch_distance=6,
                                         channel_axis=-1)


#: Each classical denoiser with its grid of settings; σ̂ = estimate_sigma of the noisy image.
CLASSICAL: dict[str, list[tuple[str, Denoiser]]] = {
    "TV (Chambolle)": [(f"weight = {k:g}·σ̂", _tv(k)) for k in (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)],
    "wavelet": [(f"BayesShrink, σ = {k:g}·σ̂", _wavelet("BayesShrink", k)) for k in (0.75, 1.0, 1.25)]
    + [(f"VisuShrink, σ = {k:g}·σ̂", _wavelet("VisuShrink", k)) for k in (0.25, 0.5)],
    "NL-means": [(f"h = {k:g}·σ̂", _nlm(k)) for k in (0.4, 0.6, 0.8, 1.0)],
}


def add_noise(clean: U8, sigma: float, seed: Sequence[int]) -> U8:
    """Gaussian noise of ``sigma`` on [0, 1] pixels, clipped, rounded to 8 bits."""
    if sigma == 0:
        return clean
    rng = np.random.default_rng(list(seed))
    noisy = clean / 255.0 + sigma * rng.standard_normal(clean.shape)
    return np.round(np.clip(noisy, 0.0, 1.0) * 255.0).astype(np.uint8)


def pick_indices(n: int, evaluate: int, tune: int) -> tuple[list[int], list[int]]:
    """Evenly spread evaluation indices over ``range(n)``, and tuning indices between them."""
    ev = np.unique(np.linspace(0, n - 1, evaluate).round().astype(int))
    mids = (ev[:-1] + ev[1:]) // 2
    mids = mids[~np.isin(mids, ev)]
    tu = mids[np.unique(np.linspace(0, len(mids) - 1, tune).round().astype(int))] if tune and len(mids) else []
    return [int(i) for i in ev], [int(i) for i in tu]


def _load(name: str, evaluate: int, tune: int) -> tuple[list[int], list[U8], list[int], list[U8]]:
    if name == "faces":
        _, images = lfw_images(LFW, "test")
    else:
        images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(Path(BSDS).glob("*.jpg"))]
    ev, tu = pick_indices(len(images), evaluate, tune)
    return ev, [images[i] for i in ev], tu, [images[i] for i in tu]


def _u8(x: F64) -> U8:
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def _sigma_hat(noisy: U8) -> float:
    return float(estimate_sigma(noisy / 255.0, channel_axis=-1, average_sigmas=True))


def _classical(noisy: U8, clean: U8, fn: Denoiser, s_hat: float) -> float:
    return psnr(clean, _u8(fn(noisy / 255.0, s_hat)))


def _aec(model: str, quality: float, clean: list[U8], inputs: list[U8]) -> list[tuple[float, float]]:
    """(PSNR vs clean, bpp) per image for ``model`` at ``quality`` on ``inputs``."""
    codec = Codec(model=model, quality=quality)
    out = []
    for c, data in zip(clean, codec.compress_many(inputs, batch=8)):
        assert isinstance(data, bytes), data
        dec = np.asarray(codec.decompress(data).convert("RGB"))
        out.append((psnr(c, dec), 8.0 * len(data) / (c.shape[0] * c.shape[1])))
    return out


def plain_psnr_at_rate(sweep: list[tuple[float, float]], bpp: float) -> tuple[float, bool]:
    """The plain codec's PSNR at ``bpp``, linear in log(bpp) between sweep points of one image;
    the flag says whether ``bpp`` lies inside the sweep (else the end segment is extended)."""
    pts = sorted((math.log(b), p) for p, b in sweep)
    xs, ys = [x for x, _ in pts], [y for _, y in pts]
    lb = math.log(bpp)
    inside = xs[0] <= lb <= xs[-1]
    i = int(np.clip(np.searchsorted(xs, lb) - 1, 0, len(xs) - 2))
    t = (lb - xs[i]) / (xs[i + 1] - xs[i])
    return ys[i] + t * (ys[i + 1] - ys[i]), inside


def plain_bpp_at_psnr(sweep: list[tuple[float, float]], target: float) -> tuple[float, bool]:
    """The plain codec's bpp for PSNR ``target`` (log-linear between sweep points of one image)."""
    pts = sorted((p, math.log(b)) for p, b in sweep)
    xs, ys = [x for x, _ in pts], [y for _, y in pts]
    inside = xs[0] <= target <= xs[-1]
    i = int(np.clip(np.searchsorted(xs, target) - 1, 0, len(xs) - 2))
    t = (target - xs[i]) / (xs[i + 1] - xs[i])
    return math.exp(ys[i] + t * (ys[i + 1] - ys[i])), inside


def run_set(name: str, evaluate: int, tune: int, qualities: Sequence[float], log: Callable[[str], None],
            plain: str | None = None) -> dict:
    """All measurements of one image set, as a JSON-ready dict (``plain``: the plain model,
    default the set's own; the denoising model is its twin)."""
    label, own = SETS[name]
    plain = resolve(plain or own)
    twin = denoising_twin(plain)
    ev, clean, tu, tune_imgs = _load(name, evaluate, tune)
    sid = list(SETS).index(name)
    res: dict = {"label": label, "plain": plain, "twin": twin, "indices": ev, "tune_indices": tu,
                 "sizes": sorted({f"{c.shape[1]}x{c.shape[0]}" for c in clean}), "sigmas": {}}
    for sigma in (0.0, *SIGMAS):
        t0 = time.perf_counter()
        key = int(round(sigma * 1000))
        noisy = [add_noise(c, sigma, (SEED, sid, i, key)) for c, i in zip(clean, ev)]
        rows: dict = {}
        if sigma > 0:
            rows["noisy input"] = {"setting": "8-bit noisy image", "psnr": [psnr(c, n) for c, n in zip(clean, noisy)]}
        else:
            rows["sweep"] = {f"{q:g}": _aec(plain, q, clean, clean) for q in SWEEP}
        for model in (twin, plain):
            rows[f"aec {model}"] = {}
            for q in qualities:
                reuse = model == plain and sigma == 0 and f"{q:g}" in rows["sweep"]
                pb = rows["sweep"][f"{q:g}"] if reuse else _aec(model, q, clean, noisy)
                rows[f"aec {model}"][f"{q:g}"] = {"psnr": [p for p, _ in pb], "bpp": [b for _, b in pb]}
        if sigma > 0:
            tnoisy = [add_noise(c, sigma, (SEED, sid, i, key)) for c, i in zip(tune_imgs, tu)]
            t_hat = [_sigma_hat(n) for n in tnoisy]
            e_hat = [_sigma_hat(n) for n in noisy]
            rows["sigma_hat"] = e_hat
            for method, grid in CLASSICAL.items():
                scores = [float(np.mean([_classical(n, c, fn, s) for n, c, s in zip(tnoisy, tune_imgs, t_hat)]))
                          for _, fn in grid]
                best = int(np.argmax(scores))
                setting, fn = grid[best]
                rows[method] = {"setting": setting, "tune_psnr": scores,
                                "psnr": [_classical(n, c, fn, s) for n, c, s in zip(noisy, clean, e_hat)]}
        res["sigmas"][f"{sigma:g}"] = rows
        log(f"{name} σ={sigma:g}: {time.perf_counter() - t0:.0f} s")
    return res


def _m(xs: Sequence[float]) -> float:
    return float(np.mean(xs))


def _set_report(r: dict, qualities: Sequence[str]) -> tuple[list[str], list[str], dict[str, bool], list[float]]:
    """Markdown lines of one set's tables, its done-when lines, whether σ = 0.1 meets the
    done-when per quality, and the clean-image PSNR differences at equal rate."""
    twin, plain = r["twin"], r["plain"]
    n = len(r["indices"])
    out = [f"### {r['label']} ({n} images, {', '.join(r['sizes'])}; plain `{plain}`, denoising `{twin}`)", ""]
    verdict: list[str] = []
    noisy_ok: dict[str, bool] = {}
    deltas: list[float] = []
    for s in SIGMAS:
        rows = r["sigmas"][f"{s:g}"]
        sh = _m(rows["sigma_hat"])
        out += [f"**σ = {s:g}** (mean σ̂ = {sh:.3f})", "",
                "| method | setting | bpp | PSNR vs clean (dB) | beats best classical on |",
                "|---|---|---:|---:|---:|",
                f"| noisy input | 8-bit noisy image | — | {_m(rows['noisy input']['psnr']):.2f} | |"]
        classical = {k: rows[k] for k in CLASSICAL}
        best = max(classical, key=lambda k: _m(classical[k]["psnr"]))
        bestp = classical[best]["psnr"]
        for model in (twin, plain):
            for q in qualities:
                d = rows[f"aec {model}"][q]
                wins = sum(p > b for p, b in zip(d["psnr"], bestp))
                out.append(f"| aec `{model}` | quality {q} | {_m(d['bpp']):.3f} | {_m(d['psnr']):.2f} | {wins}/{n} |")
        for k, d in classical.items():
            mark = " (best classical)" if k == best else ""
            out.append(f"| {k}{mark} | {d['setting']} | — | {_m(d['psnr']):.2f} | |")
        out.append("")
        if s == 0.1:
            for q in qualities:
                d, p = rows[f"aec {twin}"][q], rows[f"aec {plain}"][q]
                ok_psnr = _m(d["psnr"]) > _m(bestp)
                ok_bits = _m(d["bpp"]) < _m(p["bpp"])
                noisy_ok[q] = ok_psnr and ok_bits
                verdict.append(f"- {r['label']}, σ = 0.1, quality {q}: denoising codec {_m(d['psnr']):.2f} dB vs best "
                               f"classical ({best}) {_m(bestp):.2f} dB → {'**holds**' if ok_psnr else '**fails**'}; "
                               f"{_m(d['bpp']):.3f} bpp vs plain codec {_m(p['bpp']):.3f} bpp at the same quality → "
                               f"{'**holds**' if ok_bits else '**fails**'}")
    rows = r["sigmas"]["0"]
    sweep = {q: v for q, v in rows["sweep"].items()}
    out += ["**σ = 0 (clean inputs): what denoising costs**", "",
            "| model | quality | bpp | PSNR (dB) | plain codec PSNR at the same bpp | Δ PSNR (dB) "
            "| plain bpp for the same PSNR | rate saved by plain |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for q in qualities:
        d, p = rows[f"aec {twin}"][q], rows[f"aec {plain}"][q]
        per = [[sweep[k][i] for k in sweep] for i in range(n)]
        at_rate = [plain_psnr_at_rate(per[i], d["bpp"][i]) for i in range(n)]
        at_psnr = [plain_bpp_at_psnr(per[i], d["psnr"][i]) for i in range(n)]
        out_r = sum(not ok for _, ok in at_rate)
        out_p = sum(not ok for _, ok in at_psnr)
        pr = _m([v for v, _ in at_rate])
        pb = _m([v for v, _ in at_psnr])
        delta = _m(d["psnr"]) - pr
        deltas.append(delta)
        note_r = f" ({out_r} extrapolated)" if out_r else ""
        note_p = f" ({out_p} extrapolated)" if out_p else ""
        out.append(f"| `{twin}` | {q} | {_m(d['bpp']):.3f} | {_m(d['psnr']):.2f} | {pr:.2f}{note_r} | {delta:+.2f} | "
                   f"{pb:.3f}{note_p} | {1 - pb / _m(d['bpp']):.0%} |")
        out.append(f"| `{plain}` | {q} | {_m(p['bpp']):.3f} | {_m(p['psnr']):.2f} | | | | |")
        verdict.append(f"- {r['label']}, clean, quality {q}: denoising codec {delta:+.2f} dB against the plain codec at "
                       f"the same rate → within 1 dB: {'**yes**' if delta >= -1 else '**no**'}")
    sw = " · ".join(f"q{q}: {_m([b for _, b in v]):.3f} bpp / {_m([p for p, _ in v]):.2f} dB"
                    for q, v in sweep.items())
    out += ["", f"Plain-codec sweep on clean images (for the interpolation): {sw}", ""]
    return out, verdict, noisy_ok, deltas


def _start_card(card: dict) -> dict | None:
    """The card of the weights a fine-tune started from: stored whole (older cards) or named
    by their file (the long run's: ``weights/conv-photos.v9.pt``)."""
    start = card.get("fine_tuned_from")
    if isinstance(start, str):
        name = Path(start).stem
        return {**model_info(name, exact=True)["card"], "name": name}
    return start or None


def _steps(name: str) -> float:
    """Training steps, counting those of the weights a fine-tune started from."""
    card = model_info(name, exact=True)["card"]
    start = card.get("fine_tuned_from")
    if isinstance(start, str):
        return float(card.get("steps", 0)) + _steps(Path(start).stem)
    return float(card.get("steps", 0)) + float((start or {}).get("steps") or 0)


def _run_line(card: dict) -> str:
    if "cpu_hours_in_run" in card:
        return f"{card.get('steps', '?')} steps, {card['cpu_hours_in_run']} CPU-hours on {card.get('hardware', '?')}"
    return f"{card.get('steps', '?')} steps in {card.get('wall_s', '?')} s on {card.get('hardware', '?')}"


def _weights_line(name: str) -> str:
    card = model_info(name, exact=True)["card"]
    start = _start_card(card)
    origin = f" (fine-tuned from `{start.get('name')}`: {_run_line(start)})" if start else ""
    return f"`{name}` {_run_line(card)}{origin}"


def render(results: dict, qualities: Sequence[str]) -> str:
    made = [f"- {r['label']}: `{r['command']}`, {r['elapsed_s'] / 60:.1f} min on {r['machine']}"
            for r in results.values()]
    lines = ["# Denoising codec vs plain codec vs classical denoisers", "",
             "Made by one run per set, sharing a JSON store (`--sets` with no set re-renders this report from it):",
             "", *made, "",
             "How it was measured:", "",
             "- Images: evenly spread, deterministic subsets (indices recorded in the script's `--json` output): "
             "LFW test people (person-level split of `lfw_images(..., 'test')`, whole 250×250 images) and "
             "BSDS500 `test/*.jpg` in sorted order.",
             "- Noise: `x/255 + σ·N(0,1)`, seeded per (set, image, σ), clipped to [0, 1], rounded to 8 bits. "
             "PSNR (dB, RGB pooled, 8-bit) is always against the clean image; bpp is 8 × the real `.aec` file "
             "size (header included) / pixels. Numbers are means over images (PSNR averaged in dB).",
             "- The codecs get the noisy 8-bit image; the denoising codec is the plain model's twin "
             "(`denoising_twin`), trained with σ ∈ [0, 0.2] noise on inputs and clean targets.",
             "- Classical denoisers (scikit-image, `channel_axis=-1`) get the noisy image as float in [0, 1]; "
             "σ̂ = `estimate_sigma(noisy, channel_axis=-1, average_sigmas=True)`. Each has a small grid of "
             "settings scaled by σ̂ (TV weight k·σ̂, k ∈ {0.5 … 2}; wavelet BayesShrink σ = k·σ̂, "
             "k ∈ {0.75, 1, 1.25}, "
             "or VisuShrink σ = k·σ̂, k ∈ {0.25, 0.5}, soft thresholding in YCbCr with `rescale_sigma`; NL-means "
             "fast mode, 5×5 patches, distance 6, `sigma=σ̂`, h = k·σ̂, k ∈ {0.4 … 1.0}). "
             "The grid point is chosen "
             "per set and per σ by mean PSNR on separate tuning images (between the evaluated ones, never "
             "evaluated): a per-σ oracle choice, generous to the classical methods. Their output is rounded to 8 "
             "bits; they do not compress, so they have no bpp.",
             "- 'beats best classical on' counts images where the codec's PSNR is above the best classical "
             "method's (best by mean) on that image.", ""]
    verdicts: list[str] = []
    per_set: dict[str, dict[str, bool]] = {}
    deltas: list[float] = []
    for r in results.values():
        body, v, ok, dl = _set_report(r, qualities)
        lines += body
        verdicts += v
        per_set[r["label"]] = ok
        deltas += dl
    good = [q for q in qualities if all(ok.get(q, False) for ok in per_set.values())]
    where = "; ".join(f"{label}: {', '.join('q' + q for q, v in ok.items() if v) or 'no quality'}"
                      for label, ok in per_set.items())
    lines += ["## Done-when", "", *verdicts, "", "**Overall.** σ = 0.1 (closer to clean than the best classical "
              "denoiser on both sets, with fewer bits than the plain codec at the same quality): "
              + (f"**holds** at quality {', '.join(good)}." if good else
                 f"**does not hold** at any measured quality on both sets (it holds on {where}).") + " "
              + f"Clean inputs: the denoising codec is {-max(deltas):.1f} to {-min(deltas):.1f} dB below the plain "
              f"codec at the same rate ({'within' if min(deltas) >= -1 else 'not within'} 1 dB); the σ = 0 tables "
              "give the cost.", "",
              "Caveats:", "",
              "- Weights: " + "; ".join(dict.fromkeys(_weights_line(n) for r in results.values() for n in (r["twin"], r["plain"])))
              + "." + (" The denoising models had fewer training steps than the plain ones." if any(
                  _steps(r["twin"]) < _steps(r["plain"]) for r in results.values()) else ""),
              "- The classical denoisers only clean; they do not compress. The codecs' outputs are the decoded "
              "`.aec` files.",
              "- BSDS500 test images are JPEGs: the 'clean' reference already has JPEG artefacts.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="*", choices=list(SETS), default=list(SETS),
                    help="image sets to measure (none: only re-render the report from --json)")
    ap.add_argument("--faces", type=int, default=40, help="LFW test images to evaluate")
    ap.add_argument("--photos", type=int, default=20, help="BSDS500 test images to evaluate")
    ap.add_argument("--tune", type=int, default=4, help="tuning images per set for the classical denoisers")
    ap.add_argument("--qualities", type=float, nargs="+", default=[50.0, 90.0])
    ap.add_argument("--plain", metavar="MODEL", default=None,
                    help="the plain model of every set (its twin is the denoising model measured); default: "
                         "each set's own (faces conv-faces, photos conv-photos)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/denoise.md"))
    ap.add_argument("--json", type=Path, default=None,
                    help="per-image results store: sets measured earlier are kept, so sets can be run one at a time")
    args = ap.parse_args(argv)
    qs = [f"{q:g}" for q in args.qualities]
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True)
    cmd = " ".join(["nice -n 10 python benchmarks/denoise_bench.py", *(sys.argv[1:] if argv is None else argv)])
    machine = (f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
               f"scikit-image {skimage.__version__}")
    results: dict = {}
    if args.json is not None and args.json.exists():
        results = json.loads(args.json.read_text(encoding="utf-8"))
    counts = {"faces": args.faces, "photos": args.photos}
    for name in args.sets:
        t0 = time.perf_counter()
        r = run_set(name, counts[name], args.tune, args.qualities, log, args.plain)
        r.update(command=cmd, elapsed_s=time.perf_counter() - t0, machine=machine, qualities=qs)
        results[name] = r
        if args.json is not None:
            args.json.write_text(json.dumps(results), encoding="utf-8")
    results = {k: results[k] for k in SETS if k in results and results[k].get("qualities") == qs}
    args.out.write_text(render(results, qs), encoding="utf-8")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
