"""Build a hyperprior model's prebuilt stream tables (``aecodec.packtables``, packing method 5)
from the streams its own routing makes of cached training latents.

Every sample is one latent grid (a 256x256 training crop) at a random quality: its symbols,
their classes (the model's integer routing) and its side symbols are what a file of that crop
would hold. For every class, the streams of all samples pool into its histogram (the ladder and
the encoder's costs) and each sample's stage bytes are one training sample of the stage's zstd
dictionary, so a dictionary's tables are fitted to the byte streams the coder will see.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import zstandard as zstd

from aecodec.models.hyper import HyperConvAutoencoder
from aecodec.pack import _RAW_BELOW, _compressor, _ladder_estimates, _ladder_stages, _zigzag
from aecodec.packtables import COST_UNITS, ClassTable, PackTables

__all__ = ["stream_samples", "class_table", "side_map", "build_tables"]

DICT_BYTES = 1024       # a stage dictionary's target size (its content; the tables come on top)
MIN_STAGE_SAMPLES = 16  # fewer samples reaching a stage: no dictionary there (zstd's own tables)
TRIED_LADDERS = 6       # ladders a class's table tries for real (the estimate's cheapest first)


def stream_samples(model: HyperConvAutoencoder, latents: torch.Tensor, n: int, seed: int = 0,
                   qualities: tuple[float, float] = (1.0, 100.0),
                   log: Callable[[str], None] | None = None) -> tuple[list[list[np.ndarray]], np.ndarray]:
    """Per class, the zigzag streams of ``n`` samples (a list of arrays per class); and the
    side symbols' zigzag values, (n, N, h * w)."""
    gen = np.random.default_rng(seed)
    idx = gen.choice(len(latents), size=n, replace=n > len(latents))
    per_class: list[list[np.ndarray]] = [[] for _ in range(model.config.classes)]
    sides = []
    for i, j in enumerate(idx):
        q = float(gen.uniform(*qualities))
        enc, _ = model._gains_at(q)
        with torch.inference_mode():
            s = torch.round(latents[j].float()[None] * enc)[0].numpy().astype(np.int64)
        routing = model.routing(q)
        side = routing.side(s)
        classes = routing.route(side, s.shape).ravel()
        x = _zigzag(s).ravel()
        order = np.argsort(classes, kind="stable")
        bounds = np.searchsorted(classes[order], np.arange(model.config.classes + 1))
        for c in range(model.config.classes):
            if bounds[c + 1] > bounds[c]:
                per_class[c].append(x[np.sort(order[bounds[c]:bounds[c + 1]])])
        sides.append(_zigzag(side).reshape(len(side), -1))
        if log and (i + 1) % 500 == 0:
            log(f"  routed {i + 1}/{n} samples")
    return per_class, np.stack(sides)


def _stage_dicts(staged: list[list[bytes]], ladder: tuple[int, ...], dict_bytes: int, level: int) -> list[bytes]:
    """A zstd dictionary per stage of ``ladder`` from the samples' stage bytes (b"" where too few)."""
    dicts = []
    for k in range(len(ladder)):
        samples = [st[k] for st in staged if len(st) > k and st[k]]
        d = b""
        if len(samples) >= MIN_STAGE_SAMPLES and sum(map(len, samples)) > 4 * dict_bytes:
            try:
                d = zstd.train_dictionary(dict_bytes, samples, level=level).as_bytes()
            except zstd.ZstdError:
                d = b""
        dicts.append(d)
    return dicts


def _stored_bytes(staged: list[list[bytes]], escapes: int, dicts: list[bytes], level: int) -> int:
    """About what method 6 stores for these stage bytes with these dictionaries: stages under
    its raw threshold as they are, others as pack's zstd frame less the header bytes the decoder
    rebuilds (or raw plus a tag where that is smaller), and 4 bytes an escape."""
    comp = [_compressor(level, zstd.ZstdCompressionDict(d) if d else None) for d in dicts]
    total = 4 * escapes
    for st in staged:
        for k, codes in enumerate(st):
            # pack's own frames; method 6 drops their 5 header bytes for a 1-2 byte tag
            total += len(codes) if len(codes) < _RAW_BELOW else min(len(codes) + 1, len(comp[k](codes)) - 4)
    return total


def class_table(streams: list[np.ndarray], dict_bytes: int = DICT_BYTES, level: int = 19,
                tried: int = TRIED_LADDERS) -> ClassTable:
    """The table of one class from its sample streams: costs from the pooled histogram, and of
    the ``tried`` ladders the estimate ranks cheapest for a stream of the samples' mean length,
    the one whose stages zstd stores smallest (dictionaries fitted on half the samples, bytes
    counted on the other half); then a dictionary per stage from all samples."""
    hist = np.zeros(257)
    for x in streams:
        hist += np.bincount(np.minimum(x, 256), minlength=257)
    total = hist.sum()
    if not total:
        return ClassTable((8,), np.full(257, 16 * COST_UNITS, np.uint16), (b"",))
    typical = hist * (total / len(streams)) / total
    ladders = [ladder for _, ladder in _ladder_estimates(typical)[:max(tried, 1)]]
    ladder = ladders[0]
    if len(ladders) > 1 and len(streams) >= 2 * MIN_STAGE_SAMPLES:
        fit, held = streams[0::2], streams[1::2]
        sizes = []
        for cand in ladders:
            dicts = _stage_dicts([_ladder_stages(x, cand)[0] for x in fit], cand, dict_bytes, level)
            out = [_ladder_stages(x, cand) for x in held]
            sizes.append(_stored_bytes([st for st, _ in out], sum(len(e) for _, e in out), dicts, level))
        ladder = ladders[int(np.argmin(sizes))]
    p = (hist + 0.5) / (total + 0.5 * 257)
    cost = np.clip(np.round(-np.log2(p) * COST_UNITS), 0, 65535).astype(np.uint16)
    dicts = _stage_dicts([_ladder_stages(x, ladder)[0] for x in streams], ladder, dict_bytes, level)
    return ClassTable(ladder, cost, tuple(dicts))


def side_map(sides: np.ndarray, classes: int) -> np.ndarray:
    """Side channels into ``classes`` classes of similar spread: sorted by mean zigzag value,
    cut into equal counts."""
    order = np.argsort(sides.mean(axis=(0, 2)), kind="stable")
    cmap = np.zeros(sides.shape[1], np.int64)
    for c, chunk in enumerate(np.array_split(order, classes)):
        cmap[chunk] = c
    return cmap


def build_tables(model: HyperConvAutoencoder, latents: torch.Tensor, n: int = 2000, side_classes: int = 8,
                 dict_bytes: int = DICT_BYTES, seed: int = 0,
                 log: Callable[[str], None] = print) -> PackTables:
    """Tables for ``model`` from ``n`` samples of the cached ``latents``."""
    per_class, sides = stream_samples(model, latents, n, seed, log=log)
    ytables = []
    for c, streams in enumerate(per_class):
        ytables.append(class_table(streams, dict_bytes))
        t = ytables[-1]
        log(f"  class {c}: {len(streams)} streams, {sum(map(len, streams))} symbols, ladder {t.ladder}, "
            f"dictionaries {[len(d) for d in t.dicts]}")
    cmap = side_map(sides, side_classes)
    ztables = [class_table([row for s in sides for row in s[cmap == c].reshape(1, -1)], dict_bytes)
               for c in range(side_classes)]
    return PackTables([ytables, ztables], [np.zeros(0, np.int64), cmap])


def with_tables(model: HyperConvAutoencoder, tables: PackTables) -> HyperConvAutoencoder:
    """A copy of ``model`` holding ``tables`` (its config's ``table_bytes`` set to fit)."""
    from dataclasses import replace

    blob = tables.to_bytes()
    out = type(model)(replace(model.config, table_bytes=len(blob)))
    state = {k: v for k, v in model.state_dict().items() if k != "pack_tables"}
    out.load_state_dict({**state, "pack_tables": torch.frombuffer(bytearray(blob), dtype=torch.uint8)})
    return out.eval()
