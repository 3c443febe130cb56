"""The training loop: rate-distortion (or distortion-only) training with checkpoints, resume,
a fixed seed, bfloat16 autocast, and PyTorch DDP when launched under ``torchrun``."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from aecodec.errors import AecInputError
from aecodec.models.base import CodecModel
from aecodec.models.registry import model_class
from aecodec.train.config import TrainConfig
from aecodec.train.data import face_crop, folder_images, lfw_images, random_batch, tile_stack
from aecodec.weights import save_model

__all__ = ["train", "TrainResult", "build_model", "load_training_stack", "optimizer_step", "param_groups"]


@dataclass
class TrainResult:
    model: CodecModel
    steps: int
    wall_s: float
    last: dict[str, float]


def build_model(cfg: TrainConfig) -> CodecModel:
    cls = model_class(cfg.model)
    base = cls.Config()
    merged = {**base.__dict__, **cfg.model_config}
    return cls(cls.Config(**merged))


def load_training_stack(cfg: TrainConfig) -> torch.Tensor:
    """All training images as one (N, H, W, 3) uint8 tensor of equal-size tiles."""
    images: list[np.ndarray] = []
    if cfg.lfw:
        _, faces = lfw_images(cfg.lfw, "train", limit=cfg.lfw_limit)
        if cfg.face_size:
            faces = [face_crop(f, cfg.face_size) for f in faces]
        images += faces
    if cfg.folders:
        images += folder_images(cfg.folders)
    if cfg.face_size:
        return torch.from_numpy(np.stack(images))
    if images and all(im.shape == images[0].shape for im in images):
        return torch.from_numpy(np.stack(images))
    return tile_stack(images, (cfg.tile, cfg.tile))


def _device(cfg: TrainConfig) -> torch.device:
    if cfg.device != "auto":
        return torch.device(cfg.device)
    if torch.cuda.is_available():
        rank = int(os.environ.get("LOCAL_RANK", 0))
        return torch.device("cuda", rank)
    return torch.device("cpu")


def _lr(cfg: TrainConfig, progress: float) -> float:
    return cfg.lr if progress < cfg.lr_decay_at else cfg.lr * 0.1


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True,
          stack: torch.Tensor | None = None) -> TrainResult:
    """Train the model ``cfg`` describes; returns the trained model (also saved to ``cfg.out``)."""
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = _device(cfg)
    owns_group = distributed and not dist.is_initialized()
    if owns_group:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    torch.manual_seed(cfg.seed)
    if cfg.init_weights:
        from aecodec.weights import load_model_file
        start = load_model_file(cfg.init_weights)
        if start.model.kind != cfg.model:
            raise AecInputError(f"{cfg.init_weights} holds a {start.model.kind!r} model; the config trains {cfg.model!r}")
        # the starting model's own architecture (a hyperprior model's hyper sizes and tables
        # too), with what the config says about domain and description
        model = type(start.model).from_config({**start.model.config_dict(), **cfg.model_config})
        model.load_state_dict(start.model.state_dict())
        # a fine-tune's card says what it started from, or its steps understate the training
        origin = {"fine_tuned_from": {k: start.card.get(k) for k in ("name", "steps", "wall_s", "hardware")}}
    else:
        model = build_model(cfg)  # same init on every rank (same seed)
        origin = {}
    model = model.to(device)
    opt = torch.optim.Adam(param_groups(model, cfg), lr=cfg.lr)
    step, elapsed_before = 0, 0.0
    ckpt_path = Path(cfg.checkpoint)
    if resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=device, weights_only=True)
        model.load_state_dict(ck["state"])
        opt.load_state_dict(ck["optimizer"])
        step, elapsed_before = int(ck["step"]), float(ck["wall_s"])
    if stack is None:
        stack = load_training_stack(cfg)
    if hasattr(model, "fit_closed_form"):
        return _fit_closed_form(model, stack, cfg)
    stack = stack.to(device)
    crop = min(cfg.crop, stack.shape[1], stack.shape[2])
    if hasattr(model, "prepare") and not resume:
        model.prepare(stack[: min(len(stack), 8192), :crop, :crop].permute(0, 3, 1, 2).float() / 255.0)
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + rank + 7919 * step)
    net: torch.nn.Module = model
    if distributed:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    lambdas = getattr(model, "lambdas", None)
    levels = int(lambdas.numel()) if lambdas is not None else 1
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress or rank != 0, dynamic_ncols=True)
    last: dict[str, float] = {}
    skipped = [0]
    amp = cfg.bf16
    while step < cfg.steps:
        elapsed = elapsed_before + time.perf_counter() - t0
        frac = max(step / cfg.steps, elapsed / cfg.time_budget_s if cfg.time_budget_s else 0.0)
        if frac >= 1.0:
            break
        for g in opt.param_groups:
            g["lr"] = _lr(cfg, frac) * g["lr_scale"]
        x = random_batch(stack, cfg.batch, crop, gen, cfg.hflip)
        inp = x
        if cfg.denoise_sigma > 0:
            sigma = torch.full((x.shape[0], 1, 1, 1), cfg.denoise_sigma, device=device) if cfg.denoise_fixed \
                else torch.rand(x.shape[0], 1, 1, 1, generator=gen).to(device) * cfg.denoise_sigma
            inp = (x + sigma * torch.randn(x.shape, generator=gen).to(device)).clamp(0, 1)
        level = torch.randint(0, levels, (x.shape[0],), generator=gen).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = net(inp, level)
        mse = ((out.x_hat.float() - x) ** 2).mean(dim=(1, 2, 3))
        if out.bits is not None and lambdas is not None:
            bpp = out.bits / (x.shape[2] * x.shape[3])
            loss = (lambdas.to(device)[level] * 255.0**2 * mse + bpp).mean()
        else:
            bpp = torch.zeros_like(mse)
            loss = mse.mean()
        if cfg.code_l2 > 0:
            loss = loss + cfg.code_l2 * out.code.float().pow(2).mean()
        if not optimizer_step(loss, model, opt, skipped):
            continue
        step += 1
        if step % 10 == 0 or step == 1:
            psnr = float((-10 * torch.log10(mse.detach().clamp_min(1e-10))).mean())
            last = {"loss": float(loss.detach()), "bpp": float(bpp.detach().mean()), "psnr": psnr}
            bar.set_postfix(loss=f"{last['loss']:.4f}", bpp=f"{last['bpp']:.3f}", psnr=f"{psnr:.2f}")
        bar.update(1)
        if cfg.log_every and rank == 0 and step % cfg.log_every == 0:
            print(f"step {step} t={elapsed:.0f}s lr={_lr(cfg, frac):.1e} " + " ".join(f"{k}={v:.4f}" for k, v in last.items()),
                  flush=True)
        if rank == 0 and step % cfg.checkpoint_every == 0:
            _checkpoint(model, opt, step, elapsed_before + time.perf_counter() - t0, cfg)
    bar.close()
    if hasattr(model, "calibrate"):
        model.calibrate(stack[: min(len(stack), 4096), :crop, :crop].permute(0, 3, 1, 2).float() / 255.0)
    wall = elapsed_before + time.perf_counter() - t0
    if rank == 0:
        _checkpoint(model, opt, step, wall, cfg)
        if cfg.out:
            card = _card(cfg, step, wall, device, world_size=world, final_train=last, skipped_batches=skipped[0],
                         **origin)
            save_model(model.cpu().eval(), cfg.out, card=card)
    if distributed:
        dist.barrier()
    if owns_group:
        # left to interpreter exit, gloo's threads were torn down under a live group and a
        # rank sometimes aborted ("terminate called without an active exception")
        dist.destroy_process_group()
    return TrainResult(model.cpu().eval(), step, wall, last)


GRAD_CLIP = 1.0  # the gradient norm every training step is clipped to


def optimizer_step(loss: torch.Tensor, model: torch.nn.Module, opt: torch.optim.Optimizer,
                   skipped: list[int]) -> bool:
    """One clipped optimizer step on ``loss``; False (and no step) for a non-finite loss, a
    rare bf16 overflow: the batch is dropped rather than poisoning the weights, counted in
    ``skipped[0]``; the 101st raises."""
    if not torch.isfinite(loss):
        skipped[0] += 1
        if skipped[0] > 100:
            raise FloatingPointError("training diverged (100 non-finite losses)")
        return False
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
    opt.step()
    return True


def _fit_closed_form(model: CodecModel, stack: torch.Tensor, cfg: TrainConfig) -> TrainResult:
    t0 = time.perf_counter()
    model.fit_closed_form(stack)  # type: ignore[attr-defined]
    wall = time.perf_counter() - t0
    if cfg.out:
        card = _card(cfg, 0, wall, torch.device("cpu"), fit="closed form (SVD)", training_images=int(stack.shape[0]))
        save_model(model.eval(), cfg.out, card=card)
    return TrainResult(model.eval(), 0, wall, {})


def _card(cfg: TrainConfig, steps: int, wall: float, device: torch.device, **facts: Any) -> dict[str, Any]:
    """The facts a weight file carries about how it was made (``aecodec models -v`` shows them)."""
    return {"name": cfg.name, "train_config": cfg.to_dict(), "steps": steps, "wall_s": round(wall, 1),
            "hardware": _hardware(device), **facts}


def param_groups(model: CodecModel, cfg: Any) -> list[dict[str, Any]]:
    """The density and the gain vectors get a 10x learning rate: they start far from their
    targets (a wide density, equal gains) and would otherwise lag the transforms for
    thousands of steps, leaving the rate term uninformative early in short runs."""
    fast, slow = [], []
    for name, p in model.named_parameters():
        (fast if name.startswith("density.") or "gain" in name else slow).append(p)
    groups = [{"params": slow, "lr_scale": 1.0}]
    if fast:
        groups.append({"params": fast, "lr_scale": cfg.fast_lr_scale})
    return groups


def _checkpoint(model: CodecModel, opt: torch.optim.Optimizer, step: int, wall: float, cfg: TrainConfig) -> None:
    path = Path(cfg.checkpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"state": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "wall_s": wall,
                "config": cfg.to_dict()}, tmp)
    tmp.replace(path)


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU x{torch.get_num_threads()} threads"


