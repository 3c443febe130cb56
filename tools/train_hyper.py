"""Train a scale hyperprior on a shipped convolutional model's frozen transforms.

    python tools/train_hyper.py conv-photos.v4 --steps 3000 --out weights/resume/hyper-photos-v4.pt [--init PREVIOUS.pt]

Caches g_a latents of training faces (LFW train people, 250x250 padded to 256) and photo tiles
(256x256; the run config's folders) once, under checkpoints/hyper/, then trains on them. For a
denoising run's config (``denoise_sigma`` > 0) the cached latents are of noisy inputs, as the
twin sees them: σ drawn per image from [0, denoise_sigma], rounded to 8 bits.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aecodec.models.hyper import HyperConfig, HyperPrior  # noqa: E402
from aecodec.train.hyper import cache_latents, side_sample, train_hyper  # noqa: E402
from aecodec.train.longrun import RunConfig, load_stacks  # noqa: E402
from aecodec.weights import load_model_file, load_shipped  # noqa: E402


def pad256(stack: torch.Tensor) -> torch.Tensor:
    x = stack.permute(0, 3, 1, 2).float()
    h, w = x.shape[2:]
    x = F.pad(x, (0, -w % 16, 0, -h % 16), mode="replicate")
    return x.round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def noisy_u8(stack: torch.Tensor, max_sigma: float, gen: torch.Generator, chunk: int = 256) -> torch.Tensor:
    """(N, H, W, 3) uint8 images plus Gaussian noise, σ drawn per image from [0, max_sigma]."""
    out = torch.empty_like(stack)
    for i in range(0, len(stack), chunk):
        x = stack[i:i + chunk].float() / 255.0
        sigma = torch.rand(len(x), 1, 1, 1, generator=gen) * max_sigma
        x = x + sigma * torch.randn(x.shape, generator=gen)
        out[i:i + chunk] = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", help="a shipped model's name, or a weight file")
    ap.add_argument("--config", default="configs/run-general.json")
    ap.add_argument("--faces", type=int, default=2500)
    ap.add_argument("--photos", type=int, default=2500)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--channels", type=int, default=96)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--init", help="a checkpoint of this tool to go on from (default: the model's own hyperprior, "
                    "if it has one; --steps 0 then only re-exports its integer synthesis)")
    ap.add_argument("--model-out", help="also save the model (base transforms + this hyperprior) as weights here, "
                    "for tools/promote.py --weights")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    # a shipped model's name, or a weight file (tools/promote.py --save-candidate)
    lm = load_model_file(a.model) if Path(a.model).is_file() else load_shipped(a.model)
    # keyed by the weights too: candidates of one run share a name, not their latents
    cfg = RunConfig.from_file(a.config)
    noise = f"-noisy{cfg.denoise_sigma:g}" if cfg.denoise_sigma else ""
    cache = Path(f"checkpoints/hyper/cache-{lm.name}-{lm.weights_hash.hex()[:8]}-{a.faces}-{a.photos}{noise}.pt")
    if cache.exists():
        latents = torch.load(cache)
    else:
        t0 = time.time()
        faces, photos = load_stacks(cfg)
        gen = torch.Generator().manual_seed(1)
        parts = []
        if faces is not None and a.faces:
            parts.append(pad256(faces[torch.randperm(len(faces), generator=gen)[:a.faces]]))
        if photos is not None and a.photos:
            parts.append(photos[torch.randperm(len(photos), generator=gen)[:a.photos]])
        del faces, photos
        if cfg.denoise_sigma:
            parts = [noisy_u8(p, cfg.denoise_sigma, gen) for p in parts]
        latents = torch.cat([cache_latents(lm.model, p) for p in parts])
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(latents, cache)
        print(f"cached {tuple(latents.shape)} latents in {time.time() - t0:.0f} s: {cache}", flush=True)
    hyper = HyperPrior(HyperConfig(latent_channels=latents.shape[1], channels=a.channels))
    if a.init:
        hyper.load_state_dict(torch.load(a.init)["state"])
    elif lm.model.kind == "conv-hyper":  # a jointly trained model (configs/run-joint.json): go on from its own
        hyper.load_state_dict(lm.model.hyper.state_dict())
    train_hyper(lm.model, hyper, latents, a.steps, a.batch, a.lr, log=lambda m: print(m, flush=True))
    z_sample = side_sample(lm.model, hyper, latents)
    prior = torch.load(a.init) if a.init else {}
    steps = int(prior.get("steps", 0)) + a.steps
    cpu_s = float(prior.get("cpu_s", 0.0)) + time.process_time()
    torch.save({"config": vars(hyper.config), "state": hyper.state_dict(), "model": lm.name, "steps": steps,
                "cpu_s": cpu_s, "z_sample": z_sample}, a.out)
    if a.model_out:
        save_candidate(lm, hyper, z_sample, steps, cpu_s, a, Path(a.model_out))


def save_candidate(lm, hyper: HyperPrior, z_sample: torch.Tensor, steps: int, cpu_s: float, a, path: Path) -> None:
    from aecodec.train.hyper import attach
    from aecodec.weights import save_model

    model = attach(lm.model, hyper, z_sample)
    if lm.model.kind != "conv-hyper":  # a jointly trained model's description already says so
        model.config.description = (f"{lm.model.config.description}; with a scale hyperprior (packing methods 4-7) "
                                    f"on {lm.name}'s transforms")
    # a run's candidate (tools/promote.py --save-candidate) carries its family and run in its
    # card: keep those, not the candidate file's stem ("cand-wide"), which named v10's card
    run = lm.card.get("run")
    card = {**{k: v for k, v in lm.card.items() if k not in ("results", "curves")},
            "name": lm.card.get("name") or lm.name.split(".")[0],
            "transforms_from": (f"run {run} at step {int(lm.card.get('steps_in_run', 0)):,} ({lm.name})" if run
                                else lm.name),
            "hyperprior": {"steps": steps, "cpu_hours": round(cpu_s / 3600, 2), "batch": a.batch, "lr": a.lr,
                           "latents": f"{a.faces} LFW train-people faces (padded to 256x256) and {a.photos} "
                                      "256x256 photo tiles of the run config's training folders, cached once",
                           "command": "python " + " ".join(sys.argv)}}
    save_model(model, path, card=card)
    print(f"saved {path}", flush=True)


if __name__ == "__main__":
    main()
