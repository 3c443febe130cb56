"""Glue: images to `.aec` bytes and back, for one image or a batch, with a named model.

::

    image ─► load_image ─► RGB uint8 ─► pad to stride ─► model.encode(q) ─► int symbols
                 │                                                              │
                 └─ mode, alpha ──────────────┐                      pack (zstd)│
                                              ▼                                 ▼
                                    container.write(Header(model, hash, w, h, mode, q, shape, method))
    PIL image ◄─ to_pil ◄─ crop, clip, round ◄─ model.decode(q) ◄─ unpack ◄─ container.read
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
import zstandard
from PIL import Image

from aecodec import allocator
from aecodec import effort as effort_search
from aecodec import pack as packing
from aecodec import tiles
from aecodec.container import AecFile, Header, read, write
from aecodec.defaults import DEFAULT_MODEL, DEFAULT_QUALITY
from aecodec.errors import AecError, AecFormatError, AecInputError, AecModelError
from aecodec.images import ImageInput, PreparedImage, load_image, to_pil
from aecodec.quantize import QUALITY_MAX, QUALITY_MIN
from aecodec.verify import check_latent_shape, decode_alpha, missing_model, other_weights
from aecodec.devices import resolve_device
from aecodec.weights import LoadedModel, load_exact, load_shipped, on_device

__all__ = ["DEFAULT_MODEL", "DEFAULT_QUALITY", "Encoded", "encode_prepared", "decode_file", "check_quality",
           "batch_encode", "encode_symbols", "to_tensor", "read_symbols", "pack_symbols", "side_symbols", "routing_of", "model_for", "decode_with", "general_models"]

_ALPHA_LEVEL = 19
T = TypeVar("T")
WINDOW_PIXELS = 1 << 24  # decoded pixels a batch holds before it encodes them (48 MB of RGB)
# A window holding an image of more pixels is packed before the network starts on the next:
# packing a 24-megapixel image peaks near 1.7 GB (benchmarks/tiles.md), and the next image's
# transform beside it would take a folder of camera photos past 2 GB.
OVERLAP_MAX_PIXELS = 1 << 22
# The network runs a window's images of one size this many pixels at a time (4 faces; a larger
# image alone), the analysis's own chunk (``aecodec.models.conv.ANALYSIS_CHUNK_PIXELS``): between
# steps it takes the packing thread's core once that is idle.
NETWORK_STEP_PIXELS = 1 << 18


@dataclass(frozen=True)
class Encoded:
    data: bytes
    header: Header
    notes: tuple[str, ...]
    cost: float | None = None  # real λ·255²·MSE + bpp, where the encoder measured it (effort ≥ 2)


def check_quality(quality: float) -> float:
    """Validate a quality and round it to float32 (as the header stores it)."""
    try:
        q = float(quality)
    except (TypeError, ValueError):
        raise AecInputError(f"quality must be a number from 1 to 100, got {quality!r}") from None
    if not QUALITY_MIN <= q <= QUALITY_MAX:  # also False for NaN
        raise AecInputError(f"quality must be from {QUALITY_MIN:g} to {QUALITY_MAX:g}, got {quality!r}")
    return float(np.float32(q))


def to_tensor(rgbs: Sequence[np.ndarray], stride: int) -> torch.Tensor:
    x = torch.from_numpy(np.stack(rgbs)).permute(0, 3, 1, 2).float().div_(255.0)
    h, w = x.shape[2:]
    ph, pw = -h % stride, -w % stride
    if ph or pw:
        # Replicate the edges: cheaper to code than zeros, and cropped away after decoding.
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x


def _check_fits(lm: LoadedModel, prep: PreparedImage) -> None:
    fs = lm.model.fixed_size
    if fs is not None and prep.size != fs:
        raise AecInputError(f"model {lm.name} only takes {fs[0]}x{fs[1]} images; this one is "
                            f"{prep.size[0]}x{prep.size[1]} (use a convolutional model for other sizes)")


def _alpha_chunk(alpha: np.ndarray | None) -> bytes | None:
    if alpha is None:
        return None
    return zstandard.ZstdCompressor(level=_ALPHA_LEVEL, write_content_size=False, write_checksum=False,
                                    write_dict_id=False).compress(np.ascontiguousarray(alpha).tobytes())


def routing_of(lm: LoadedModel, quality: float) -> packing.Routing | None:
    """The model's hyperprior routing at ``quality`` (packing methods 4 to 7), or None."""
    routing = getattr(lm.model, "routing", None)
    return routing(quality) if routing is not None else None


def pack_symbols(lm: LoadedModel, symbols: np.ndarray, quality: float,
                 effort: int = effort_search.DEFAULT_EFFORT, side: np.ndarray | None = None,
                 routing: packing.Routing | None = None) -> tuple[int, bytes]:
    """One image's symbols (M, h, w) packed as ``lm``'s files are: the smallest of the plain
    methods and, for a hyperprior model, methods 4 and 7 (7 where it has stream tables); from
    effort 2, on small grids, with the packer's search of side symbols. ``side``: the
    hyperprior's side symbols of these symbols, if computed already (``side_symbols``);
    ``routing``: ``routing_of(lm, quality)``, if made already."""
    return packing.pack(symbols, routing=routing if routing is not None else routing_of(lm, quality),
                        side_search=effort >= 2, side=side)


def side_symbols(lm: LoadedModel, symbols: np.ndarray, quality: float) -> np.ndarray | None:
    """A hyperprior model's side symbols of one image's symbols (its hyper analysis), or None."""
    routing = routing_of(lm, quality)
    return None if routing is None else routing.side(symbols)


def _finish(lm: LoadedModel, prep: PreparedImage, symbols: np.ndarray, quality: float,
            packed: tuple[int, bytes] | None = None, cost: float | None = None,
            effort: int = effort_search.DEFAULT_EFFORT, side: np.ndarray | None = None,
            routing: packing.Routing | None = None) -> Encoded:
    method, payload = packed if packed is not None else pack_symbols(lm, symbols, quality, effort, side, routing)
    w, h = prep.size
    header = Header(model=lm.name, weights_hash=lm.weights_hash, width=w, height=h, mode=prep.mode,
                    quality=quality, latent_shape=tuple(symbols.shape), packing=method)
    data = write(AecFile(header=header, payload=payload, alpha=_alpha_chunk(prep.alpha)))
    return Encoded(data=data, header=header, notes=tuple(prep.notes), cost=cost)


def _decoded_rgb(lm: LoadedModel, symbols: torch.Tensor, quality: float, w: int, h: int) -> np.ndarray:
    """What ``decode_file`` gives for these symbols (RGB uint8), without the container; large
    grids in tiles (aecodec.tiles), so memory stays bounded."""
    if symbols.dim() == 3 and tiles.tiled(lm.model, *symbols.shape[1:]):
        return tiles.decode_tiled(lm.model, symbols, quality, w, h)
    return tiles.to_uint8(lm.model.decode(symbols[None], quality)[0, :, :h, :w])


def _real_choice(lm: LoadedModel, prep: PreparedImage, quality: float, candidates: Sequence[torch.Tensor],
                 effort: int = effort_search.DEFAULT_EFFORT) -> tuple[np.ndarray, tuple[int, bytes], float]:
    """Of several symbol grids for one image, the one with the lowest real cost: packed bytes
    and the float32 decoder's distortion at the quality's λ."""
    w, h = prep.size
    lam = lm.model.lambda_at(quality)
    ref = prep.rgb.astype(np.float64)
    best: tuple[np.ndarray, tuple[int, bytes], float] | None = None
    for cand in candidates:
        if best is not None and np.array_equal(cand.numpy(), best[0]):
            continue
        sym = cand.numpy()
        packed = pack_symbols(lm, sym, quality, effort)
        mse = float(np.mean((_decoded_rgb(lm, cand, quality, w, h).astype(np.float64) - ref) ** 2)) / 255.0**2
        cost = effort_search.rd_cost(lam, mse, len(packed[1]), w * h)
        if best is None or cost < best[2]:
            best = (sym, packed, cost)
    assert best is not None
    return best


def encode_prepared(lm: LoadedModel, preps: Sequence[PreparedImage], quality: float,
                    effort: int = effort_search.DEFAULT_EFFORT) -> list[Encoded]:
    """Encode images of one size in one forward pass (at effort ≥ 2, one batched search)."""
    return [finish() for finish in _encode_parts(lm, preps, quality, effort)]


def _encode_parts(lm: LoadedModel, preps: Sequence[PreparedImage], quality: float,
                  effort: int) -> list[Callable[[], Encoded]]:
    """``encode_prepared`` in two parts: the network's runs now, and the packing of each
    image's symbols, the returned functions (``batch_encode`` runs them beside the next batch's
    network). At effort ≥ 2 the search packs as it goes, so all of it runs now."""
    if not preps:
        return []
    for p in preps:
        _check_fits(lm, p)
    sizes = {p.size for p in preps}
    if len(sizes) != 1:
        raise ValueError("encode_prepared takes images of one size")
    q = check_quality(quality)
    iters = effort_search.iterations(effort)
    w, h = preps[0].size
    refine = iters > 0 and effort_search.supports_refinement(lm.model)
    if not refine:
        symbols = encode_symbols(lm, [p.rgb for p in preps], q)
        # The hyperprior's analysis and synthesis too, image by image as the packer would: they
        # even the two threads' work (224 LFW faces through the CLI: the network's thread then
        # spent 14.7 ms a face, 6 of them on these, and the packer's 13.6). Not for images whose
        # packing waits for the network anyway (the scales of a 24-megapixel grid are 120 MB).
        routing = routing_of(lm, q)
        sides = [None if routing is None else routing.side(s) for s in symbols]
        if hasattr(routing, "warm") and w * h <= OVERLAP_MAX_PIXELS:
            for s, z in zip(symbols, sides):
                routing.warm(z, s.shape)
        return [functools.partial(_finish, lm, p, s, q, effort=effort, side=z, routing=routing)
                for p, s, z in zip(preps, symbols, sides)]
    stride = lm.model.stride
    if tiles.tiled(lm.model, -(-h // stride), -(-w // stride)):
        return [functools.partial(_done, _refine_tiled(lm, p, q, iters)) for p in preps]
    x = to_tensor([p.rgb for p in preps], stride)
    first, refined = effort_search.refine(lm.model, x, q, iters, (h, w))
    out = []
    for i, p in enumerate(preps):
        sym, packed, cost = _real_choice(lm, p, q, [first[i], refined[i]], effort)
        out.append(functools.partial(_done, _finish(lm, p, sym, q, packed, cost)))
    return out


def _done(encoded: Encoded) -> Encoded:
    return encoded


def encode_symbols(lm: LoadedModel, rgbs: Sequence[np.ndarray], quality: float) -> np.ndarray:
    """The amortized encoder's symbols (B, M, h, w) of RGB uint8 images of one size: one
    forward pass, or tile by tile (aecodec.tiles) for images larger than a tile."""
    stride = lm.model.stride
    h, w = rgbs[0].shape[:2]
    if tiles.tiled(lm.model, -(-h // stride), -(-w // stride)):
        out = np.stack([tiles.encode_tiled(lm.model, rgb, quality) for rgb in rgbs])
        allocator.release()
        return out
    return lm.model.encode(to_tensor(rgbs, stride), quality).numpy()


def _refine_tiled(lm: LoadedModel, prep: PreparedImage, quality: float, iters: int) -> Encoded:
    """Effort ≥ 2 on an image larger than a tile: each tile's window is refined on its own, and
    the stitched grid is kept only if its real cost is lower than the first guess's."""
    first, refined = tiles.map_windows(
        lm.model, prep.rgb, lambda x, size: effort_search.refine(lm.model, x, quality, iters, size))
    sym, packed, cost = _real_choice(lm, prep, quality, [torch.from_numpy(first), torch.from_numpy(refined)])
    return _finish(lm, prep, sym, quality, packed, cost)


def batch_encode(lm: LoadedModel | Sequence[LoadedModel], images: Iterable[ImageInput], quality: float,
                 batch: int = 16, effort: int = effort_search.DEFAULT_EFFORT) -> Iterator[Encoded | AecError]:
    """Encode many images in order, running equal sizes through the network together; a bad
    image yields its error in its place and the others go on. Three stages overlap: images are
    read and decoded one window ahead of the network (a thread of their own), and a window's
    symbols are packed, image by image, in a packing thread while the network runs on the next
    window (PIL, zstd and torch release the GIL, so on two cores neither waits for the other);
    the network's thread, done first, then packs the images the packer has not started (from
    the window's end), so neither core idles whichever stage is slower. Not after a window with
    an image of over ``OVERLAP_MAX_PIXELS``, whose packing alone takes much memory. A window is
    ``batch`` inputs, or fewer once it holds ``WINDOW_PIXELS`` pixels, so at most three windows
    of decoded images are held at once, whatever the mix of sizes. Given several models (the
    effort's model choice), each image is encoded with each and the lowest real cost is kept."""
    lms = [lm] if isinstance(lm, LoadedModel) else list(lm)
    effort = effort_search.check_effort(effort)
    threads = torch.get_num_threads()
    with ThreadPoolExecutor(1, thread_name_prefix="aecodec-pack", initializer=torch.set_num_threads,
                            initargs=(threads,)) as packer:
        pending = None
        for window in _ahead(_loaded_windows(images, batch, lms[0])):
            results: dict[int, Encoded | AecError] = {}
            groups: dict[tuple[int, int], list[tuple[int, PreparedImage]]] = {}
            for i, prep in window:
                if isinstance(prep, AecError):
                    results[i] = prep
                else:
                    groups.setdefault(prep.size, []).append((i, prep))
            if pending is not None and max((p.size[0] * p.size[1] for _, p in pending[0]
                                            if not isinstance(p, AecError)), default=0) > OVERLAP_MAX_PIXELS:
                yield from _window_results(*pending)
                pending = None
            # While the last window is still packing on one core, the network takes the others;
            # all of them once it is done (asked before each step of the network; torch's thread
            # count is per thread here: the packer's stays as it was).
            packing_now = [] if pending is None else pending[2]

            def network_threads() -> int:
                return max(1, threads - 1) if not all(f.done() for f in packing_now) else threads

            try:
                jobs = [job for group in groups.values()
                        for job in _transform(lms, group, quality, effort, results, network_threads)]
            finally:
                torch.set_num_threads(threads)
            futures = [packer.submit(_pack_one, i, finishes, results) for i, finishes in jobs]
            if pending is not None:
                yield from _window_results(*pending)
            pending = (window, results, futures, jobs)
        if pending is not None:
            yield from _window_results(*pending)


def _window_results(window: list[tuple[int, PreparedImage | AecError]], results: dict[int, Encoded | AecError],
                    futures: list[Future], jobs: list[tuple[int, list[Callable[[], Encoded]]]]) -> Iterator[Encoded | AecError]:
    # The packer works from the window's start; this thread takes what it has not started, from the end.
    for future, (i, finishes) in zip(futures[::-1], jobs[::-1]):
        if future.cancel():
            _pack_one(i, finishes, results)
    for future in futures:
        if not future.cancelled():
            future.result()
    for i, _ in window:
        yield results[i]


def _loaded_windows(images: Iterable[ImageInput], batch: int,
                    lm: LoadedModel) -> Iterator[list[tuple[int, PreparedImage | AecError]]]:
    """The inputs, decoded and checked, in windows of ``batch`` (fewer once ``WINDOW_PIXELS``)."""
    window: list[tuple[int, PreparedImage | AecError]] = []
    held = 0
    for i, img in enumerate(images):
        try:
            prep = load_image(img)
            _check_fits(lm, prep)
        except AecError as exc:
            window.append((i, exc))
        else:
            window.append((i, prep))
            held += prep.size[0] * prep.size[1]
        if len(window) >= batch or held >= WINDOW_PIXELS:
            yield window
            window, held = [], 0
    if window:
        yield window


_END = object()


def _ahead(items: Iterator[T]) -> Iterator[T]:
    """The items of ``items``, each computed in a background thread while the consumer works
    on the one before."""
    with ThreadPoolExecutor(1, thread_name_prefix="aecodec-read") as pool:
        nxt = pool.submit(next, items, _END)
        while True:
            item = nxt.result()
            if item is _END:
                return
            nxt = pool.submit(next, items, _END)
            yield item  # type: ignore[misc]


def _transform(lms: list[LoadedModel], group: list[tuple[int, PreparedImage]], quality: float, effort: int,
               results: dict[int, Encoded | AecError],
               threads: Callable[[], int] = torch.get_num_threads) -> list[tuple[int, list[Callable[[], Encoded]]]]:
    """The network's part of a group of equal-size images, with each model, ``NETWORK_STEP_PIXELS``
    at a time, each step on ``threads()`` threads: a packing job per image (its index, and each
    model's packing of it); a step's failure is each of its images' result."""
    w, h = group[0][1].size
    step = max(1, NETWORK_STEP_PIXELS // (w * h))
    jobs: list[tuple[int, list[Callable[[], Encoded]]]] = []
    for a in range(0, len(group), step):
        part = group[a:a + step]
        torch.set_num_threads(threads())
        try:
            per_model = [_encode_parts(lm, [p for _, p in part], quality, effort) for lm in lms]
        except AecError as exc:
            for i, _ in part:
                results[i] = exc
            continue
        jobs += [(i, [finishes[k] for finishes in per_model]) for k, (i, _) in enumerate(part)]
    return jobs


def _pack_one(i: int, finishes: list[Callable[[], Encoded]], results: dict[int, Encoded | AecError]) -> None:
    """Image ``i``'s packing with each model; of several, the lowest real cost is kept."""
    try:
        options = [finish() for finish in finishes]
    except AecError as exc:
        results[i] = exc
        return
    results[i] = min(options, key=lambda e: e.cost if e.cost is not None else float("inf"))


GENERAL_FAMILIES = ("conv-photos", "conv-faces")


def general_models() -> list[LoadedModel]:
    """The newest installed version of each general (any-size, plain) convolutional family:
    the candidates of the effort's model choice."""
    out = []
    for family in GENERAL_FAMILIES:
        try:
            out.append(load_shipped(family))
        except AecModelError:
            continue
    return out


def model_for(header: Header) -> LoadedModel:
    """The installed model a file needs (its exact name and version, never the newest of its
    family), checked against the file's weights hash."""
    try:
        lm = load_exact(header.model)
    except AecModelError:
        raise missing_model(header.model) from None
    if lm.weights_hash != header.weights_hash:
        raise other_weights(header.model, header.weights_hash, lm.weights_hash)
    return lm


def read_symbols(f: AecFile, lm: LoadedModel) -> np.ndarray:
    """The file's integer symbols, after checking its latent shape is the one ``lm`` gives for
    the file's size and quality (so a forged shape never reaches the network)."""
    h = f.header
    check_latent_shape(h, lm.model.latent_shape(h.width, h.height, h.quality))
    routing = routing_of(lm, h.quality) if h.packing in packing.MODELLED else None
    return packing.unpack(f.payload, h.latent_shape, h.packing, routing)


def decode_file(data: bytes, device: str | None = None) -> Image.Image:
    """Parse, verify and decode `.aec` bytes to a PIL image of the stored mode and size, the
    network on ``device`` (aecodec.devices; the CPU by default)."""
    f = read(data)
    lm = model_for(f.header)
    if device not in (None, "cpu"):
        lm = on_device(lm, resolve_device(device))
    return decode_with(f, lm)


def decode_with(f: AecFile, lm: LoadedModel) -> Image.Image:
    """Decode a parsed file with the given model (``decode_file`` finds it from the header;
    a training gate passes candidate weights that are not installed)."""
    h = f.header
    symbols = read_symbols(f, lm)
    rgb = np.ascontiguousarray(_decoded_rgb(lm, torch.from_numpy(symbols), h.quality, h.width, h.height))
    alpha = decode_alpha(f.alpha, h) if h.mode in ("RGBA", "LA") else None
    return to_pil(rgb, h.mode, alpha)
