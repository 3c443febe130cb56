"""The hyperprior (packing method 4) against the factorized prior's packing (methods 1-3) on
the same transforms and the same symbols.

    python benchmarks/hyperprior.py BASE HYPER_MODEL > benchmarks/hyperprior.md   # both installed
    python benchmarks/hyperprior.py conv-photos.v4 --candidate weights/resume/hyper-photos-v4.pt
    python benchmarks/hyperprior.py conv-photos.v8 conv-photos.v8   # a hyperprior model against its own transforms packed plainly

Both models must have the same transforms (the hyperprior model's are a copy of the base's), so
every image's symbols are encoded once and packed both ways: the decoded images are identical
and the size change is the BD-rate change. Sizes are whole `.aec` files (header included) in
bits per pixel; PSNR on 8-bit RGB (scikit-image). Sets: LFW test people (250x250), BSDS500
test (481x321), and 64x64 centre crops of both. Beside the real payload: the model's own
estimate (Gaussian given z, plus z's factorized density) and the conditional entropy of the
symbols given their classes (tables free): how near zstd's streams come to them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aecodec import pack  # noqa: E402
from aecodec.bench.bdrate import bd_rate  # noqa: E402
from aecodec.codec import _decoded_rgb, pack_symbols, to_tensor  # noqa: E402
from aecodec.container import AecFile, Header, write  # noqa: E402
from aecodec.train.data import lfw_images  # noqa: E402
from aecodec.weights import LoadedModel, load_exact, state_hash  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
QUALITIES = [5, 15, 30, 45, 60, 75, 90, 100]


def image_sets(faces_n: int, bsds_n: int) -> dict[str, list[np.ndarray]]:
    _, faces = lfw_images(SHARED / "lfw" / "lfw.tgz", "test")
    faces = faces[:: len(faces) // faces_n][:faces_n]
    files = sorted((SHARED / "photos" / "bsds500" / "test").glob("*.jpg"))
    bsds = [np.asarray(Image.open(f).convert("RGB")) for f in files[:: len(files) // bsds_n][:bsds_n]]

    def centre(im: np.ndarray) -> np.ndarray:
        h, w = im.shape[:2]
        return np.ascontiguousarray(im[(h - 64) // 2:(h - 64) // 2 + 64, (w - 64) // 2:(w - 64) // 2 + 64])

    return {"faces": faces, "bsds": bsds, "crops64": [centre(im) for im in faces + bsds]}


def candidate(base: LoadedModel, path: str) -> LoadedModel:
    from aecodec.models.hyper import HyperConfig, HyperPrior
    from aecodec.train.hyper import attach

    ck = torch.load(path)
    hyper = HyperPrior(HyperConfig(**ck["config"]))
    hyper.load_state_dict(ck["state"])
    z = ck["z_sample"]
    model = attach(base.model, hyper, z)
    # Named as the base in the headers, so that the two files differ only in their payloads.
    return LoadedModel(base.name, model, state_hash(model.state_dict()), {})


def plain_copy(model) -> "torch.nn.Module":
    """A hyperprior model's transforms, gains and factorized density as a plain ``conv`` model."""
    from aecodec.models.conv import ConvAutoencoder, ConvConfig
    fields = {k: v for k, v in model.config_dict().items() if k in ConvConfig.__dataclass_fields__}
    plain = ConvAutoencoder(ConvConfig(**fields))
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if k in plain.state_dict()})
    return plain.eval()


def file_bits(lm: LoadedModel, sym: np.ndarray, q: float, w: int, h: int) -> tuple[int, int]:
    method, payload = pack_symbols(lm, sym, q)
    header = Header(model=lm.name, weights_hash=lm.weights_hash, width=w, height=h, mode="RGB", quality=q,
                    latent_shape=tuple(sym.shape), packing=method)
    return 8 * len(write(AecFile(header=header, payload=payload, alpha=None))), method


def class_entropy(classes: np.ndarray, sym: np.ndarray) -> float:
    """Bits of the symbols given their class: sum over classes of n_c * H(symbols | c)."""
    key = classes.astype(np.int64) * (1 << 20) + (sym.astype(np.int64) + (1 << 19))
    _, counts = np.unique(key, return_counts=True)
    _, per_class = np.unique(classes, return_counts=True)
    return float(-(counts * np.log2(counts)).sum() + (per_class * np.log2(per_class)).sum())


@torch.inference_mode()
def model_estimate(lm: LoadedModel, sym: np.ndarray, z: np.ndarray, q: float) -> float:
    m = lm.model
    enc, _ = m._gains_at(q)
    log_scale = m.hyper.log_scale(torch.from_numpy(z).float()[None], sym.shape[1:])
    by = m.hyper.symbol_bits(torch.from_numpy(sym).float()[None], torch.exp2(log_scale) * enc)
    return float(by[0] + m.hyper.z_bits(torch.from_numpy(z).float()[None])[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("hyper", nargs="?")
    ap.add_argument("--candidate", help="a hyperprior checkpoint (tools/train_hyper.py) instead of an installed model")
    ap.add_argument("--weights", help="a conv-hyper weight file (tools/train_hyper.py --model-out, tools/build_tables.py)")
    ap.add_argument("--faces", type=int, default=48)
    ap.add_argument("--bsds", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--qualities", type=lambda t: [float(q) for q in t.split(",")], default=QUALITIES)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    base = load_exact(a.base)
    if base.model.kind == "conv-hyper":  # its own transforms, packed as a plain model (methods 1-3)
        base = LoadedModel(base.name, plain_copy(base.model), base.weights_hash, base.card)
    if a.weights:
        from aecodec.weights import load_model_file
        m = load_model_file(a.weights).model
        hyp = LoadedModel(base.name, m, base.weights_hash, {})  # headers alike (ids too): only payloads differ
    else:
        hyp = candidate(base, a.candidate) if a.candidate else load_exact(a.hyper)
    t0 = time.time()
    sets = image_sets(a.faces, a.bsds)
    print("# Hyperprior (packing methods 4 to 7) against the factorized prior's packing\n")
    cmd = " ".join(["python benchmarks/hyperprior.py", *sys.argv[1:]])
    print(f"Command: `{cmd}` ({a.threads} threads)\n")
    print(f"Base `{base.name}`, hyperprior model `{a.weights or a.candidate or hyp.name}`: the same transforms, so each image's symbols "
          "are encoded once and packed both ways (identical decoded images). bpp: whole `.aec` files; "
          "*estimate*: the hyperprior's own bits (its learned shape at the predicted scales, plus z); *class H*: the symbols' entropy "
          "given their classes plus z's real bytes, tables free; *payload / estimate*: method 7's payload (6's where the tables allow no orders, 4's "
          "where the model has no tables) against the estimate. The hyperprior model's files use method 4 or 6-7 where "
          "it is the smallest (else the factorized methods, as the base's files). BD-rate: hyperprior files against "
          "factorized files, over the qualities below.\n")
    summary = []
    for name, images in sets.items():
        print(f"## {name}: {len(images)} images\n")
        print("| quality | PSNR dB | factorized bpp | hyperprior bpp | change | estimate bpp | class H bpp | payload / estimate | files in method 4 / 6-7 |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        curves: dict[str, list[float]] = {"psnr": [], "plain": [], "hyper": []}
        for q in a.qualities:
            px = bits_p = bits_h = est = cond = payload = 0.0
            won4 = won5 = 0
            psnr = []
            for im in images:
                h, w = im.shape[:2]
                sym = base.model.encode(to_tensor([im], base.model.stride), q).numpy()[0]
                rgb = _decoded_rgb(base, torch.from_numpy(sym), q, w, h)
                psnr.append(peak_signal_noise_ratio(im, rgb, data_range=255))
                bits_p += file_bits(base, sym, q, w, h)[0]
                bh, method = file_bits(hyp, sym, q, w, h)
                won4 += method == pack.HYPER
                won5 += method in pack.TABLE_METHODS
                bits_h += bh
                routing = hyp.model.routing(q)
                z = routing.side(sym)
                est += model_estimate(hyp, sym, z, q)
                zbytes = len(pack.pack(z, method=pack.LADDER)[1])
                cond += class_entropy(routing.route(z, sym.shape).ravel(), sym.ravel()) + 8 * zbytes
                best = (pack.ORDERED if pack.ordered_ok(routing) else pack.COMPACT) if routing.tables is not None else pack.HYPER
                payload += len(pack.pack(sym, method=best, routing=routing)[1]) * 8
                px += w * h
            p = float(np.mean(psnr))
            curves["psnr"].append(p)
            curves["plain"].append(bits_p / px)
            curves["hyper"].append(bits_h / px)
            print(f"| {q} | {p:.2f} | {bits_p / px:.4f} | {bits_h / px:.4f} | {100 * (bits_h / bits_p - 1):+.1f} % "
                  f"| {est / px:.4f} | {cond / px:.4f} | {payload / est:.3f} | {won4} / {won5} of {len(images)} |")
        bd = bd_rate(curves["plain"], curves["psnr"], curves["hyper"], curves["psnr"])
        summary.append((name, bd))
        print(f"\nBD-rate, hyperprior against factorized: **{bd:+.1f} %**\n")
    print("## Summary\n")
    for name, bd in summary:
        print(f"- {name}: {bd:+.1f} %")
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
