"""The long CPU training run: resumable sessions that add up.

There is no GPU to train on, so the convolutional transforms improve by a background run that
each working session resumes where the last one stopped. This module owns that run:

- **a committed resume point** (``weights/resume/<run>.pt``): the exponential moving average
  of the weights in float32 (what is evaluated and promoted, and what training resumes
  from), Adam's second moments in bfloat16 (they take thousands of steps to rebuild; the
  first moments rebuild in tens and are not kept), the step count, the CPU and wall seconds
  so far and the data draw position. About 1.5x the size of the float32 weights; where that
  passes the repository's file size, the second moments are left out and the next session
  estimates them from ``moment_warmup_steps`` gradients before its first update;
- **often-written local checkpoints** of the same, so a killed session loses minutes;
- **a clean stop** on a time budget, SIGTERM or SIGINT, leaving the resume point and a log
  line (``weights/resume/<run>.log``, one line a session);
- **a learning curve**: every ``eval_every_s`` seconds of training, the rate-distortion loss
  of the EMA weights on fixed held-out crops (real rounding, the model's own rate estimate)
  at fixed rate levels, against cumulative CPU seconds (``benchmarks/training/<run>.csv``).

A constant learning rate, because a run that never ends has no schedule to decay along;
the EMA stands in for the decay. Mixed data: each batch draws faces and photos in the
proportion ``face_fraction``, so one general model learns both.

A denoising twin (``denoise_sigma`` > 0) trains the same way on noisy inputs and clean
targets: each crop gets Gaussian noise with σ drawn uniformly from [0, denoise_sigma]
(pixels in [0, 1], clipped), and its learning curve codes the held-out crops with fixed,
seeded noise of σ = denoise_sigma / 2, measuring against the clean crops.
"""

from __future__ import annotations

import hashlib
import math
import json
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aecodec.errors import AecInputError
from aecodec.models.base import CodecModel
from aecodec.train.data import folder_images, lfw_images, random_batch, tile_stack
from aecodec.train.loop import GRAD_CLIP, optimizer_step, param_groups

__all__ = ["RunConfig", "run_session", "add_noise", "load_resume", "latest_resume", "model_from_resume", "split_of", "eval_sets", "EVAL_LEVELS"]

EVAL_LEVELS = (2, 6, 10)
RATE_PROXIES = {"noise": "noise", "round": "ste"}  # RunConfig.rate_proxy -> the model's rounding
# A hyperprior model's state that training never changes (aecodec.train.hyper re-exports it)
EXPORTED = ("int_", "log_gain_int", "pack_tables")


@dataclass
class RunConfig:
    """A long run: what model it grows from, what data it sees, how it steps."""

    name: str = "run"
    family: str | None = None  # the shipped model family a promotion adds a version to
    domain: str | None = None  # the shipped version's domain and description (promotion)
    description: str | None = None
    gate_sets: list[str] = field(default_factory=lambda: ["faces", "photos"])  # must improve on each
    init_weights: str | None = None  # weights the run starts from (its first session only)
    model_config: dict[str, Any] = field(default_factory=dict)  # for a run from scratch
    lfw: str | None = None
    photo_folders: list[str] = field(default_factory=list)
    held_out_folders: list[str] = field(default_factory=list)  # split by name hash: train part only
    eval_photos: str | None = None  # folder of held-out photos for the learning curve
    face_fraction: float = 0.5
    tile: int = 256
    crop: int = 160
    batch: int = 8
    lr: float = 1e-4
    lr_schedule: str = "constant"  # or "cosine": from lr down to lr_final over a session's CPU budget
    lr_final: float = 1e-5
    fast_lr_scale: float = 10.0
    warmup_steps: int = 200
    # a resume point without Adam's second moments (too large to commit beside the weights):
    # estimate them from this many gradients (no update) before the first step, so the restart
    # does not take lr-sized steps on every parameter whose gradients are tiny
    moment_warmup_steps: int = 200
    ema_decay: float = 0.999
    bf16: bool = True
    seed: int = 0
    checkpoint_every_s: float = 300.0
    eval_every_s: float = 900.0
    resume_point: str = "weights/resume/run.pt"
    curve: str = "benchmarks/training/run.csv"
    denoise_sigma: float = 0.0  # > 0: a denoising twin (noisy inputs, clean targets)
    widen_latents: int = 0  # > 0: the first session grows init_weights' code to this many channels
    eval_levels: list[int] = field(default_factory=lambda: list(EVAL_LEVELS))  # the curve's rate levels
    # "uniform": the plain sum of λ·D + R over sampled levels, where the top levels' losses (about
    # 17x the bottom's) steer the shared transforms; "relative": each (level, faces/photos) sample's
    # loss over a running mean of that pair's loss, so every rate level and domain pulls alike
    level_weighting: str = "uniform"
    # the rate term's rounding: "noise" (uniform noise) or "round" (the rounded symbols, straight
    # through). Noise overstates gains: wide session 2 lowered the noisy loss of 224 px training
    # tiles 3.65 % at L2 and their rounded loss 1.25 % (benchmarks/training/proxy_gap.md)
    rate_proxy: str = "noise"
    # crop sides a step draws its crop's height and width from (each capped at the smallest
    # stack's side; empty: ``crop`` square). One fixed side trains the hyperprior's bottom and
    # right edges at one alignment only: with 224 px crops (14 latents, 3.5 side cells) the last
    # two latent rows a 4-cell side grid predicts are always cropped away, so at 256 px (every
    # 250x250 face, every 768x512 photo) wide session 2 spent 188 bits a latent position there
    # against 107 on the rows above (benchmarks/training/edge_rate.md). Sides of 12-15 latents
    # (192, 208, 224, 240 px) train every alignment.
    crop_sizes: list[int] = field(default_factory=list)

    @classmethod
    def from_file(cls, path: str | Path) -> "RunConfig":
        """A run config from JSON. ``"extends": "other.json"`` (a path relative to this file)
        starts from that config, resolved the same way, and this file's keys replace its."""
        data = cls._resolved(Path(path), ())
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise AecInputError(f"unknown run config keys: {', '.join(sorted(unknown))}")
        return cls(**data)

    @classmethod
    def _resolved(cls, path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise AecInputError(f"cannot read run config {path}: {exc}") from None
        if not isinstance(data, dict):
            raise AecInputError(f"run config {path} is not a JSON object")
        parent = data.pop("extends", None)
        if parent is None:
            return data
        if not isinstance(parent, str):
            raise AecInputError(f"run config {path}: 'extends' must be a file name")
        base = (path.parent / parent).resolve()
        if base in chain or base == path.resolve():
            raise AecInputError(f"run config {path}: 'extends' loops back to {base.name}")
        return {**cls._resolved(base, chain + (path.resolve(),)), **data}


def split_of(stem: str, test_fraction: float = 0.25) -> str:
    """Deterministic train/test split of a photo by a hash of its file stem."""
    v = int.from_bytes(hashlib.sha256(stem.encode("utf-8")).digest()[:4], "big") / 2**32
    return "test" if v < test_fraction else "train"


def _split_files(folders: list[str], split: str) -> list[Path]:
    from aecodec.train.data import IMAGE_SUFFIXES
    out = []
    for folder in folders:
        out += [f for f in sorted(Path(folder).rglob("*"))
                if f.suffix.lower() in IMAGE_SUFFIXES and split_of(f.stem) == split]
    return out


def load_stacks(cfg: RunConfig) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(faces, photo tiles) as (N, H, W, 3) uint8 stacks; either may be None."""
    faces = None
    if cfg.lfw and cfg.face_fraction > 0:
        _, imgs = lfw_images(cfg.lfw, "train")
        faces = torch.from_numpy(np.stack(imgs))
    photos = None
    files: list[str | Path] = [*cfg.photo_folders, *_split_files(cfg.held_out_folders, "train")]
    if files and cfg.face_fraction < 1:
        photos = tile_stack(folder_images(files), (cfg.tile, cfg.tile))
    return faces, photos


def eval_sets(cfg: RunConfig, faces_n: int = 24, photos_n: int = 12) -> list[tuple[str, torch.Tensor]]:
    """Fixed held-out crops for the learning curve: LFW test people (centre 240x240) and
    ``eval_photos`` (BSDS500 test; centre 320x320). Never seen in training."""
    sets = []
    if cfg.lfw:
        _, imgs = lfw_images(cfg.lfw, "test", limit=faces_n)
        x = torch.from_numpy(np.stack([im[5:245, 5:245] for im in imgs]))
        sets.append(("faces", x.permute(0, 3, 1, 2).float() / 255.0))
    if cfg.eval_photos:
        imgs = folder_images([cfg.eval_photos])[:photos_n]
        sets.append(("photos", centre_crops(imgs, min(320, *(min(im.shape[:2]) for im in imgs)) // 16 * 16)))
    return sets


def centre_crops(imgs: list[np.ndarray], side: int) -> torch.Tensor:
    """The centre ``side`` x ``side`` crop of each (H, W, 3) uint8 image, as float (N, 3, side, side) in [0, 1]."""
    crops = []
    for im in imgs:
        h, w = im.shape[:2]
        top, left = (h - side) // 2, (w - side) // 2
        crops.append(im[top:top + side, left:left + side])
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0


@torch.inference_mode()
def eval_loss(model: CodecModel, x: torch.Tensor, levels: tuple[int, ...] = EVAL_LEVELS,
              chunk: int = 4, target: torch.Tensor | None = None) -> dict[str, float]:
    """Per level: PSNR (dB), estimated bpp and λ·255²·MSE + bpp of rounded latents (float32),
    coding ``x`` and measuring against ``target`` (default: ``x`` itself)."""
    target = x if target is None else target
    out: dict[str, float] = {}
    model.eval()
    lambdas = model.lambdas
    levels = tuple(lv for lv in levels if lv < len(lambdas)) or tuple(range(len(lambdas)))
    for lv in levels:
        mse_sum, bits_sum = 0.0, 0.0
        psnrs = []
        for i in range(0, len(x), chunk):
            xb, tb = x[i:i + chunk], target[i:i + chunk]
            lvl = torch.full((len(xb),), lv, dtype=torch.long, device=xb.device)
            y = model.g_a(xb).float()
            z = torch.round(y * torch.exp(model._log_gains()[lvl])[:, :, None, None])
            bits = model.level_bits(z, lvl)
            xh = model.g_s(z * torch.exp(model.log_inv_gain[lvl])[:, :, None, None]).clamp(0, 1)
            mse = ((xh - tb) ** 2).mean(dim=(1, 2, 3))
            psnrs += (-10 * torch.log10(mse.clamp_min(1e-10))).tolist()
            mse_sum += float(mse.sum())
            bits_sum += float(bits.sum())
        n, px = len(x), x.shape[2] * x.shape[3]
        bpp = bits_sum / n / px
        out[f"L{lv}_psnr"] = float(np.mean(psnrs))
        out[f"L{lv}_bpp"] = bpp
        out[f"L{lv}_loss"] = float(lambdas[lv]) * 255.0**2 * mse_sum / n + bpp
    return out


def add_noise(x: torch.Tensor, sigma: torch.Tensor | float, gen: torch.Generator) -> torch.Tensor:
    """``x`` (pixels in [0, 1]) plus Gaussian noise of standard deviation ``sigma``, clipped."""
    noise = torch.randn(x.shape, generator=gen).to(x.device)
    return (x + torch.as_tensor(sigma, device=x.device) * noise).clamp(0, 1)


def _build_from(cfg: RunConfig) -> CodecModel:
    from aecodec.models.conv import ConvAutoencoder, ConvConfig
    from aecodec.weights import load_model_file
    if cfg.init_weights:
        ck = _resume_point_or_none(cfg.init_weights)  # grow from another run's resume point (its EMA)
        start = model_from_resume(ck) if ck is not None else load_model_file(cfg.init_weights).model
        model = type(start)(type(start.config)(**start.config_dict()))
        model.load_state_dict(start.state_dict())
        if cfg.widen_latents:
            from aecodec.train.surgery import widen_latents
            model = widen_latents(model, cfg.widen_latents, seed=cfg.seed)
        return model.to(memory_format=torch.contiguous_format)
    return ConvAutoencoder(ConvConfig(**cfg.model_config))


def _resume_point_or_none(path: str | Path) -> dict[str, Any] | None:
    """The resume point at ``path``, or None where it holds something else (shipped weights)."""
    try:
        blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:  # not a torch file at all: leave the error to load_model_file
        return None
    return blob if isinstance(blob, dict) and blob.get("kind") == "aecodec-resume-1" else None


def load_resume(path: str | Path) -> dict[str, Any]:
    ck = torch.load(Path(path), map_location="cpu", weights_only=True)
    if ck.get("kind") != "aecodec-resume-1":
        raise AecInputError(f"{path} is not a resume point")
    return ck


def latest_resume(cfg: RunConfig, checkpoint_dir: str = "checkpoints") -> dict[str, Any] | None:
    """The further along of the committed resume point and this machine's local checkpoint; at
    the same step, the one holding Adam's second moments (the local one, after a session here)."""
    paths = (Path(cfg.resume_point), Path(checkpoint_dir) / f"{cfg.name}.resume.pt")
    cks = [load_resume(p) for p in paths if p.exists()]
    return max(cks, key=lambda c: (c["step"], bool(c.get("exp_avg_sq")))) if cks else None


def model_from_resume(ck: dict[str, Any]) -> CodecModel:
    from aecodec.models.registry import model_class
    cls = model_class(ck["model_kind"])
    model = cls.from_config(ck["model_config"])
    # the exported state (integer synthesis, stream tables) is not trained and not saved: the
    # promotion re-exports it; older resume points that hold it load it as they did
    missing, unexpected = model.load_state_dict(ck["ema"], strict=False)
    if unexpected or any(not k.startswith(EXPORTED) for k in missing):
        raise AecInputError(f"resume point does not match its model: missing {missing}, unexpected {unexpected}")
    return model.eval()


# A committed resume point stays under this many bytes of tensors (the repository keeps files
# under 20 MB): past it, the optimizer's second moments are left out (the next session
# estimates them, ``moment_warmup_steps``) and the fp32 EMA weights kept.
COMMITTED_MAX_BYTES = 19_000_000


def _save_resume(path: Path, model_ema: CodecModel, opt: torch.optim.Optimizer, model: CodecModel,
                 meta: dict[str, Any], max_bytes: int | None = None) -> bool:
    """Write a resume point; returns whether it holds the optimizer's second moments."""
    names = {id(p): n for n, p in model.named_parameters()}
    sq = {}
    for group in opt.param_groups:
        for p in group["params"]:
            st = opt.state.get(p)
            if st and "exp_avg_sq" in st:
                sq[names[id(p)]] = st["exp_avg_sq"].to(torch.bfloat16).cpu()
    ema = {k: v.detach().float().cpu().clone() for k, v in model_ema.state_dict().items() if not k.startswith(EXPORTED)}
    size = lambda d: sum(v.numel() * v.element_size() for v in d.values())  # noqa: E731
    if max_bytes is not None and size(ema) + size(sq) > max_bytes:
        sq = {}
    blob = {"kind": "aecodec-resume-1", "model_kind": model_ema.kind, "model_config": model_ema.config_dict(),
            "ema": ema, "exp_avg_sq": sq, **meta}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)
    return bool(sq)


def estimate_second_moments(model: torch.nn.Module, opt: torch.optim.Adam, loss_fn: Any, n: int,
                            step: int) -> int:
    """Set Adam's second moments to the mean square of ``n`` clipped gradients of ``loss_fn()``
    (as ``optimizer_step`` clips them), without changing a weight, and its step counter at the
    run's step within 1,000-10,000 (past 10,000 the bias correction is gone; a young run keeps
    some); first moments start at zero. Returns the gradients used (non-finite losses are
    skipped, at most ``2 n`` tries)."""
    params = [p for g in opt.param_groups for p in g["params"]]
    acc = [torch.zeros_like(p) for p in params]
    used = 0
    for _ in range(2 * n):
        if used == n:
            break
        loss = loss_fn()
        if not torch.isfinite(loss):
            continue
        model.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        for a, p in zip(acc, params):
            if p.grad is not None:
                a.add_(p.grad.detach().float() ** 2)
        used += 1
    model.zero_grad(set_to_none=True)
    if used:
        for a, p in zip(acc, params):
            opt.state[p] = {"step": torch.tensor(float(max(min(step, 10_000), 1_000))),
                            "exp_avg": torch.zeros_like(p), "exp_avg_sq": (a / used).to(p.dtype)}
    return used


class _Stop:
    def __init__(self) -> None:
        self.flag = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._set)

    def _set(self, *_: Any) -> None:
        self.flag = True


def _lr_at(cfg: RunConfig, steps_done: int, progress: float) -> float:
    """Learning rate: warm-up over ``warmup_steps`` of a session (Adam's first moments restart
    at zero), times the schedule at ``progress`` (0..1) through the session's CPU budget."""
    warm = min(1.0, (steps_done + 1) / max(cfg.warmup_steps, 1))
    if cfg.lr_schedule == "cosine":
        return warm * (cfg.lr_final + (cfg.lr - cfg.lr_final) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))
    if cfg.lr_schedule != "constant":
        raise AecInputError(f"unknown lr_schedule {cfg.lr_schedule!r}: constant or cosine")
    return warm * cfg.lr


def run_session(cfg: RunConfig, budget_s: float, log: Any = print, checkpoint_dir: str = "checkpoints",
                max_steps: int | None = None, device: str = "cpu",
                cpu_budget_s: float | None = None) -> dict[str, Any]:
    """Resume the run (or start it), train until ``budget_s`` wall seconds pass (or
    ``cpu_budget_s`` CPU seconds of this process, or a stop signal, or ``max_steps``), save the
    resume point, append the session's log line. A cosine schedule runs over the CPU budget
    (over the wall budget without one). ``device`` "cuda" trains on a GPU (a lent machine);
    the resume point is the same either way."""
    dev = torch.device(device)
    resume = Path(cfg.resume_point)
    local = Path(checkpoint_dir) / f"{cfg.name}.resume.pt"
    ck = latest_resume(cfg, checkpoint_dir)
    if ck is not None:
        model = model_from_resume(ck)
        step, cpu_s, wall_s = int(ck["step"]), float(ck["cpu_s"]), float(ck["wall_s"])
        log(f"resumed {cfg.name} at step {step} ({cpu_s / 3600:.2f} CPU-hours so far)")
    else:
        model = _build_from(cfg)
        step, cpu_s, wall_s = 0, 0.0, 0.0
        log(f"started {cfg.name} from {cfg.init_weights or 'scratch'}")
    model.to(dev).train()
    ema = _build_from_like(model).to(dev)
    opt = torch.optim.Adam(param_groups(model, cfg), lr=cfg.lr)
    if ck is not None and ck.get("exp_avg_sq"):
        params = dict(model.named_parameters())
        for name, sq in ck["exp_avg_sq"].items():
            p = params.get(name)
            if p is not None and p.shape == sq.shape:
                # restored second moments; Adam's step counter resumes so there is no bias blow-up
                opt.state[p] = {"step": torch.tensor(float(min(step, 10_000))),
                                "exp_avg": torch.zeros_like(p), "exp_avg_sq": sq.float().to(dev)}
    t_load = time.perf_counter()
    faces, photos = load_stacks(cfg)
    faces = None if faces is None else faces.to(dev)
    photos = None if photos is None else photos.to(dev)
    sets = [(n, x.to(dev)) for n, x in eval_sets(cfg)]
    # (name, input, target): a denoising twin codes seeded noisy crops, measured against clean ones
    sets = [(n, add_noise(x, cfg.denoise_sigma / 2, torch.Generator().manual_seed(1234 + i)) if cfg.denoise_sigma
             else x, x) for i, (n, x) in enumerate(sets)]
    log(f"data: {0 if faces is None else len(faces)} faces, {0 if photos is None else len(photos)} photo tiles "
        f"({time.perf_counter() - t_load:.0f} s to load)")
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    stop = _Stop()
    t0, c0 = time.perf_counter(), time.process_time()
    last_ck = last_eval = t0
    lambdas = model.lambdas
    levels = int(lambdas.numel())
    step0 = step
    n_face = round(cfg.batch * cfg.face_fraction) if faces is not None else 0
    if photos is None:
        n_face = cfg.batch
    skipped = [0]
    running: list[float] = []
    if cfg.level_weighting not in ("uniform", "relative"):
        raise AecInputError(f"unknown level_weighting {cfg.level_weighting!r}: uniform or relative")
    weigher = _RelativeWeights(levels) if cfg.level_weighting == "relative" else None
    if cfg.rate_proxy not in RATE_PROXIES:
        raise AecInputError(f"unknown rate_proxy {cfg.rate_proxy!r}: {' or '.join(RATE_PROXIES)}")
    model.rate_proxy = RATE_PROXIES[cfg.rate_proxy]
    domain = torch.tensor([0] * n_face + [1] * (cfg.batch - n_face), device=dev)
    stacks = [t for t in (faces if n_face else None, photos if cfg.batch - n_face else None) if t is not None]
    side_max = min(min(t.shape[1], t.shape[2]) for t in stacks)
    square = min(cfg.crop, side_max)
    sizes = sorted({min(int(c), side_max) for c in cfg.crop_sizes})
    if any(c < 16 for c in sizes):
        raise AecInputError(f"crop_sizes must be at least 16 px, got {cfg.crop_sizes}")

    def meta() -> dict[str, Any]:
        return {"step": step, "cpu_s": cpu_s + time.process_time() - c0, "wall_s": wall_s + time.perf_counter() - t0,
                "run_config": asdict(cfg)}

    def curve_point() -> dict[str, float]:
        row: dict[str, Any] = {"step": step, "cpu_h": round((cpu_s + time.process_time() - c0) / 3600, 4)}
        for set_name, x, target in sets:
            for k, v in eval_loss(ema, x, levels=tuple(cfg.eval_levels), target=target).items():
                row[f"{set_name}_{k}"] = round(v, 4)
        ema.train()
        _append_curve(Path(cfg.curve), row)
        return row

    if ck is None and sets:
        log(f"curve: {curve_point()}")
    def progress() -> float:
        if cpu_budget_s:
            return (time.process_time() - c0) / cpu_budget_s
        return (time.perf_counter() - t0) / budget_s

    def batch_loss() -> tuple[torch.Tensor, torch.Tensor]:
        """A random training batch's per-sample losses and the loss to minimize."""
        parts = []
        crop = square if not sizes else tuple(sizes[int(i)] for i in torch.randint(0, len(sizes), (2,), generator=gen))
        if n_face:
            parts.append(random_batch(faces, n_face, crop, gen, True))
        if cfg.batch - n_face:
            parts.append(random_batch(photos, cfg.batch - n_face, crop, gen, True))
        x = torch.cat(parts) if len(parts) > 1 else parts[0]
        level = torch.randint(0, levels, (x.shape[0],), generator=gen).to(dev)
        inp = x
        if cfg.denoise_sigma:
            inp = add_noise(x, torch.rand(x.shape[0], 1, 1, 1, generator=gen).to(dev) * cfg.denoise_sigma, gen)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            out = model(inp, level)
        mse = ((out.x_hat.float() - x) ** 2).mean(dim=(1, 2, 3))
        bpp = out.bits / (x.shape[2] * x.shape[3])
        per = lambdas[level] * 255.0**2 * mse + bpp
        return per, (per.mean() if weigher is None else weigher(per, level, domain))

    if ck is not None and not opt.state and cfg.moment_warmup_steps > 0:
        t_m = time.perf_counter()
        n = estimate_second_moments(model, opt, lambda: batch_loss()[1], cfg.moment_warmup_steps, step)
        log(f"Adam's second moments estimated from {n} gradients ({time.perf_counter() - t_m:.0f} s, no update)")

    while (not stop.flag and time.perf_counter() - t0 < budget_s and (max_steps is None or step - step0 < max_steps)
           and (cpu_budget_s is None or time.process_time() - c0 < cpu_budget_s)):
        lr = _lr_at(cfg, step - step0, progress())
        for g in opt.param_groups:
            g["lr"] = lr * g["lr_scale"]
        per, loss = batch_loss()
        if not optimizer_step(loss, model, opt, skipped):
            continue
        step += 1
        running.append(float(per.detach().mean()))  # the plain loss either way: logs compare
        with torch.no_grad():
            d = min(cfg.ema_decay, (1 + step - step0) / (10 + step - step0))
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - d)
        now = time.perf_counter()
        if now - last_ck >= cfg.checkpoint_every_s:
            _save_resume(local, ema, opt, model, meta())
            last_ck = now
            log(f"step {step} train loss {np.mean(running):.4f} ({(now - t0) / max(step - step0, 1) * 1000:.0f} ms/step)")
            running.clear()
        if sets and now - last_eval >= cfg.eval_every_s:
            log(f"curve: {curve_point()}")
            last_eval = time.perf_counter()
    final = meta()
    _save_resume(local, ema, opt, model, final)
    if not _save_resume(resume, ema, opt, model, final, max_bytes=COMMITTED_MAX_BYTES):
        log(f"{resume}: without the optimizer's second moments (over {COMMITTED_MAX_BYTES / 1e6:.0f} MB with them)")
    row = curve_point() if sets else {}
    line = (f"{time.strftime('%Y-%m-%d %H:%M')} {cfg.name}: steps {step0} -> {step} "
            f"(+{step - step0} in {final['wall_s'] - wall_s:.0f} s wall, {(final['cpu_s'] - cpu_s) / 3600:.2f} CPU-h; "
            f"total {final['cpu_s'] / 3600:.2f} CPU-h), threads {torch.get_num_threads()}"
            f"{'' if dev.type == 'cpu' else f', on {dev.type} (CPU-h: the host process)'}, "
            f"stopped by {'signal' if stop.flag else 'budget'}; eval {json.dumps(row)}")
    with open(resume.with_suffix(".log"), "a") as f:
        f.write(line + "\n")
    log(line)
    return {"step": step, "steps_this_session": step - step0, **{k: final[k] for k in ("cpu_s", "wall_s")},
            "eval": row}


class _RelativeWeights:
    """Per (level, domain) running means of the training loss; the batch loss is each sample's
    loss over its pair's mean, so the gradient is about that of the sum of log losses: a 1 %
    gain at the bottom rate level counts as much as a 1 % gain at the top. The means start at
    each pair's first loss and follow at ``decay``; they are not saved (they settle in ~100 steps)."""

    def __init__(self, levels: int, domains: int = 2, decay: float = 0.99) -> None:
        self.mean = torch.full((levels, domains), float("nan"))
        self.decay = decay

    def __call__(self, per: torch.Tensor, level: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        lv, dm = level.cpu(), domain.cpu()
        with torch.no_grad():
            for i, (a, b) in enumerate(zip(lv.tolist(), dm.tolist())):
                v = float(per[i])
                if math.isfinite(v):
                    m = self.mean[a, b]
                    self.mean[a, b] = v if math.isnan(m) else self.decay * m + (1 - self.decay) * v
        ref = self.mean[lv, dm].to(per.device).clamp_min(1e-6)
        return (per / ref).mean()


def _build_from_like(model: CodecModel) -> CodecModel:
    ema = type(model)(type(model.config)(**model.config_dict()))
    ema.load_state_dict(model.state_dict())
    for p in ema.parameters():
        p.requires_grad_(False)
    return ema


def _append_curve(path: Path, row: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with open(path, "a") as f:
        if new:
            f.write(",".join(row) + "\n")
        f.write(",".join(str(v) for v in row.values()) + "\n")
