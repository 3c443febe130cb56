"""Build the prebuilt stream tables (packing method 5) of a hyperprior weight file and save the
model with them.

    python tools/build_tables.py checkpoints/hyper/conv-photos-hyper-v6.pt \\
        --latents checkpoints/hyper/cache-conv-photos.v6-2500-2500.pt --out checkpoints/hyper/conv-photos-hyper-v6t.pt

``--latents``: the latent cache ``tools/train_hyper.py`` made of the training crops (LFW train
people, the run's photo folders), so the tables see training data only. Then gate the result:
``python tools/promote.py configs/run-general.json --weights OUT --write``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aecodec.train.tables import DICT_BYTES, build_tables, with_tables  # noqa: E402
from aecodec.weights import load_model_file, save_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("weights", help="a conv-hyper weight file (tools/train_hyper.py --model-out)")
    ap.add_argument("--latents", required=True, help="the latent cache of tools/train_hyper.py")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--side-classes", type=int, default=8)
    ap.add_argument("--dict-bytes", type=int, default=DICT_BYTES)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    lm = load_model_file(a.weights)
    if lm.model.kind != "conv-hyper":
        sys.exit(f"error: {a.weights} is a {lm.model.kind!r} model; stream tables need a conv-hyper one")
    latents = torch.load(a.latents)
    t0 = time.time()
    tables = build_tables(lm.model, latents, n=a.samples, side_classes=a.side_classes, dict_bytes=a.dict_bytes)
    model = with_tables(lm.model, tables)
    blob = tables.to_bytes()
    card = {**lm.card, "tables": {"samples": a.samples, "side_classes": a.side_classes, "dict_bytes": a.dict_bytes,
                                  "bytes": len(blob), "latents": Path(a.latents).name,
                                  "command": "python tools/build_tables.py " + " ".join(sys.argv[1:])}}
    save_model(model, a.out, card=card)
    print(f"tables: {len(blob)} bytes in {time.time() - t0:.0f} s; saved {a.out}", flush=True)


if __name__ == "__main__":
    main()
