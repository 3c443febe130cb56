"""Nearest-neighbour search over latent codes: descriptors, a `.npz` index, vectorized search.

A `.aec` file keeps the integer latent symbols, so an archive is searched without decoding a
pixel (``container.read`` + ``pack.unpack``); images are encoded with the index's model::

    .aec ─► read + unpack ─┐
                           ├─► symbols × gain(50)/gain(q) ─► centre quarter ─► 4×4 grid ─► signed √ ─► L2-normalize
    image ─► encode(q) ────┘

The default descriptor, ``centre``, won on identity precision over LFW test people
(``benchmarks/retrieval.md``; choices made on train people): P@1 0.367 / P@5 0.213 for
conv-faces codes of 250×250 photos, against 0.138 for the full code, 0.075 for a 4×4 grid of
the whole plane, 0.297 for whitened eigenface coefficients and 0.180 for 32×32 pixels. Identity
lives in the face's spatial layout: pooling the plane loses it and background dilutes the full
code, while the central quarter of each side (latents 6..9 of 16: eyes, nose, mouth) keeps it.
Rescaling to the symbol units of quality 50 makes codes of any quality comparable and keeps the
rate-distortion weighting of channels; the signed root damps a few large symbols. Flat codes
(eigenfaces, dense) are used as whitened coefficients. Distances are cosine (1 - cos).
Details and the index file format: ``docs/retrieval.md``.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from aecodec.atomic import write_atomic
from aecodec.codec import DEFAULT_QUALITY, check_quality, decode_file, encode_symbols, read_symbols
from aecodec.container import looks_like_aec, read, read_header
from aecodec.errors import AecError, AecFormatError, AecInputError, AecModelError, AecOutputError
from aecodec.images import load_image
from aecodec.models.base import CodecModel
from aecodec.weights import LoadedModel, load_exact, load_shipped

__all__ = ["INDEX_FORMAT", "INDEX_VERSION", "DEFAULT_INDEX_MODEL", "DESCRIPTORS", "DEFAULT_DESCRIPTOR",
           "REFERENCE_QUALITY", "Index", "UpdateResult", "build_index", "describe_symbols", "expand_paths"]

INDEX_FORMAT = "aecodec-index"
INDEX_VERSION = 1
DEFAULT_INDEX_MODEL = "conv-faces"
#: centre: the central quarter of the latent plane on a 4×4 grid (LFW-style aligned photos);
#: full: the whole code (one image size per index, e.g. tight face crops); grid4: the whole
#: plane averaged on a 4×4 grid (overall layout, any content).
DESCRIPTORS = ("centre", "full", "grid4")
DEFAULT_DESCRIPTOR = "centre"
#: Conv symbols are rescaled to the units of this quality, so qualities are comparable.
REFERENCE_QUALITY = 50.0
_GRID = 4
SUFFIXES = frozenset(".aec .png .jpg .jpeg .bmp .tif .tiff .webp .ppm .pgm .gif".split())
_BATCH = 16
_KEYS = ("format", "version", "model", "weights_hash", "quality", "descriptor", "paths", "qualities", "vectors")

OnSkip = Callable[[str, str], None]


def _channel_scale(model: CodecModel, quality: float, channels: int) -> np.ndarray:
    """Per-channel factor to a quality-free scale: codes whitened (÷ their training std) for
    models that record it (PCA, dense), otherwise (conv) symbols in the units of
    REFERENCE_QUALITY. Full length (every PCA component), or ones for a model without steps."""
    try:
        step = model.code_step(quality).detach().reshape(-1).float()
    except NotImplementedError:
        return np.ones(channels, np.float32)
    spread = model.code_spread()
    ref = spread if spread is not None else model.code_step(REFERENCE_QUALITY)
    scale = (step / ref.detach().reshape(-1).float().clamp_min(1e-8)).numpy().astype(np.float32)
    return scale if len(scale) >= channels else np.ones(channels, np.float32)


def _centre(y: np.ndarray) -> np.ndarray:
    """The central quarter of each side of the latent plane (rows and columns 6..9 of the
    16×16 grid of a 250×250 LFW photo: eyes, nose and mouth)."""
    _, h, w = y.shape
    sh, sw = max(1, round(h / 4)), max(1, round(w / 4))
    r0, c0 = (h - sh) // 2, (w - sw) // 2
    return y[:, r0:r0 + sh, c0:c0 + sw]


def _check_kind(kind: str) -> None:
    if kind not in DESCRIPTORS:
        raise AecInputError(f"unknown descriptor {kind!r}; use one of {', '.join(DESCRIPTORS)}")


def describe_symbols(lm: LoadedModel, symbols: np.ndarray, quality: float,
                     kind: str = DEFAULT_DESCRIPTOR) -> np.ndarray:
    """The L2-normalized float32 descriptor of one image's symbols (as in its `.aec` file)."""
    _check_kind(kind)
    s = np.asarray(symbols, np.float32)
    model = lm.model
    c = s.shape[0]
    # PCA models keep K(quality) leading components: pad to the full count so that every
    # quality gives vectors of one length (the dropped components are zero).
    scale = _channel_scale(model, quality, c)
    y = np.zeros((len(scale),) + s.shape[1:], np.float32)
    y[:c] = s * scale[:c].reshape((-1,) + (1,) * (s.ndim - 1))
    if y.ndim == 1 or kind == "full":
        v = y.reshape(-1)
    elif kind == "centre":
        v = F.adaptive_avg_pool2d(torch.from_numpy(_centre(y).copy()), _GRID).numpy().reshape(-1)
    else:  # grid4
        v = F.adaptive_avg_pool2d(torch.from_numpy(y), _GRID).numpy().reshape(-1)
    if y.ndim > 1:  # signed square root: damps a code's few large symbols (not measured to help flat codes)
        v = np.sign(v) * np.sqrt(np.abs(v))
    n = float(np.linalg.norm(v))
    return (v / n if n > 0 else v).astype(np.float32)


def expand_paths(paths: Iterable[str | Path], on_skip: OnSkip | None = None) -> list[Path]:
    """Files named, plus the images and `.aec` files under folders (recursive, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES)
        elif p.is_file():
            out.append(p)
        elif on_skip is not None:
            on_skip(str(p), "no such file or folder")
        else:
            raise AecInputError(f"{p}: no such file or folder")
    return out


@dataclass
class UpdateResult:
    """What ``Index.update`` did: paths added, paths already present, files skipped (path, why)."""

    added: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Index:
    """Descriptors of many images or `.aec` files, all from one model (name + weights hash).

    ``quality`` is the quality images are encoded at when added (a `.aec` file keeps its own,
    recorded per entry in ``qualities``); ``vectors`` are L2-normalized float32 rows.
    """

    model: str
    weights_hash: bytes
    quality: float = DEFAULT_QUALITY
    descriptor: str = DEFAULT_DESCRIPTOR
    paths: list[str] = field(default_factory=list)
    qualities: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    @classmethod
    def empty(cls, model: str = DEFAULT_INDEX_MODEL, quality: float = DEFAULT_QUALITY,
              descriptor: str = DEFAULT_DESCRIPTOR, exact: bool = False) -> Index:
        """An index with no entries for an installed ``model`` (a family means its newest
        version; ``exact``: the exact name a file's header records, so version 1's bare name)."""
        _check_kind(descriptor)
        lm = load_exact(model) if exact else load_shipped(model)
        return cls(lm.name, lm.weights_hash, check_quality(quality), descriptor)

    def __len__(self) -> int:
        return len(self.paths)

    def _model(self) -> LoadedModel:
        lm = load_exact(self.model)
        if lm.weights_hash != self.weights_hash:
            raise AecModelError(f"this index was built with other weights for model {self.model!r} "
                                f"(index {self.weights_hash.hex()}, installed {lm.weights_hash.hex()}); "
                                f"rebuild it")
        return lm

    def describe(self, items: Sequence[str | Path], progress: bool = False,
                 on_skip: OnSkip | None = None) -> list[tuple[str, np.ndarray, float]]:
        """(path, vector, quality) for each readable file of this index's model; the others
        are passed to ``on_skip(path, reason)`` (or raise their AecError when it is None)."""
        lm = self._model()
        done: dict[int, tuple[str, np.ndarray, float]] = {}
        groups: dict[tuple[int, int], list[tuple[int, str, np.ndarray]]] = {}

        def flush(key: tuple[int, int]) -> None:
            group = groups.pop(key)
            symbols = encode_symbols(lm, [rgb for _, _, rgb in group], self.quality)
            for (i, path, _), s in zip(group, symbols):
                done[i] = (path, describe_symbols(lm, s, self.quality, self.descriptor), self.quality)

        for i, item in enumerate(tqdm(items, disable=not progress, unit="file", leave=False)):
            path = str(item)
            try:
                symbols = _aec_symbols(path, lm)
                if symbols is not None:
                    done[i] = (path, describe_symbols(lm, *symbols, self.descriptor), symbols[1])
                    continue
                prep = load_image(path)
                fs = lm.model.fixed_size
                if fs is not None and prep.size != fs:
                    raise AecInputError(f"{path}: model {lm.name} only takes {fs[0]}x{fs[1]} images; "
                                        f"this one is {prep.size[0]}x{prep.size[1]}")
            except AecError as exc:
                if on_skip is None:
                    raise
                on_skip(path, str(exc))
                continue
            groups.setdefault(prep.size, []).append((i, path, prep.rgb))
            if len(groups[prep.size]) >= _BATCH:
                flush(prep.size)
            elif sum(map(len, groups.values())) >= 4 * _BATCH:  # many sizes: bound what is held
                flush(max(groups, key=lambda key: len(groups[key])))
        for key in list(groups):
            flush(key)
        return [done[i] for i in sorted(done)]

    def update(self, paths: Iterable[str | Path], progress: bool = False,
               on_skip: OnSkip | None = None) -> UpdateResult:
        """Add the files under ``paths`` not in the index yet (by absolute path). Unreadable,
        corrupt or other-model files are skipped: listed in the result and passed to ``on_skip``."""
        result = UpdateResult()

        def note(path: str, reason: str) -> None:
            result.skipped.append((path, reason))
            if on_skip is not None:
                on_skip(path, reason)

        known, todo = set(self.paths), []
        for key in (str(f.resolve()) for f in expand_paths(paths, note)):
            (result.present if key in known else todo).append(key)
            known.add(key)
        dim = self.vectors.shape[1] if len(self) else None
        vecs, qs = [], []
        for path, v, q in self.describe(todo, progress=progress, on_skip=note):
            dim = dim or v.shape[0]
            if v.shape[0] != dim:
                note(path, f"{path}: its descriptor has length {v.shape[0]}, the index's {dim} (the 'full' "
                           f"descriptor needs one image size; use centre)")
            else:
                result.added.append(path)
                vecs.append(v)
                qs.append(q)
        if vecs:
            self.vectors = np.concatenate([self.vectors, np.stack(vecs)]) if len(self) else np.stack(vecs)
            self.paths += result.added
            self.qualities = np.concatenate([self.qualities, np.array(qs, np.float32)])
        return result

    def query_vector(self, query: str | Path | Image.Image | np.ndarray) -> np.ndarray:
        """The descriptor of a query: an image (path, PIL or uint8 array) or a `.aec` path.
        A float array whose last axis has the index's length is taken as vector(s) as is."""
        if isinstance(query, np.ndarray) and query.dtype.kind == "f" and query.ndim <= 2 \
                and len(self) and query.shape[-1] == self.vectors.shape[1]:
            return query.astype(np.float32, copy=False)
        lm = self._model()
        if isinstance(query, (str, Path)):
            other = self._other_model_file(query)
            if other is None:
                return self.describe([str(query)])[0][1]
            query = decode_file(other)  # another model's code is not comparable: its pixels are
        prep = load_image(query)
        symbols = encode_symbols(lm, [prep.rgb], self.quality)[0]
        return describe_symbols(lm, symbols, self.quality, self.descriptor)

    def _other_model_file(self, path: str | Path) -> bytes | None:
        """The bytes of ``path`` if it is a `.aec` file made by a model (or weights) other than
        this index's, else None (an image, this model's file, or one that cannot be read: those
        take the ordinary path and its errors)."""
        try:
            data = Path(path).read_bytes()
            h = read_header(data)
        except (OSError, AecError):
            return None
        return data if (h.model, h.weights_hash) != (self.model, self.weights_hash) else None

    def search_vectors(self, vectors: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """(indices, cosine distances), each (Q, k'), nearest first, for (Q, D) or (D,) vectors
        (k' = min(k, len)): one matrix product and an argpartition, no Python loop over rows."""
        q = np.atleast_2d(np.asarray(vectors, np.float32))
        if len(self) and q.shape[1] != self.vectors.shape[1]:
            raise AecInputError(f"query vectors have length {q.shape[1]}, the index's {self.vectors.shape[1]}")
        k = max(0, min(int(k), len(self)))
        if k == 0:
            return np.zeros((q.shape[0], 0), np.int64), np.zeros((q.shape[0], 0), np.float32)
        sims = q @ self.vectors.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(sims, part, 1)
        order = np.argsort(-top, axis=1, kind="stable")
        # Clipped: rounding can put 1 - cos a hair below 0 for a vector and its own copy.
        dist = np.clip(1.0 - np.take_along_axis(top, order, 1), 0.0, 2.0)
        return np.take_along_axis(part, order, 1), dist

    def search(self, query: str | Path | Image.Image | np.ndarray, k: int = 5,
               skip_self: bool = True) -> list[tuple[str, float]]:
        """The ``k`` nearest entries as (path, cosine distance), nearest first.

        ``query`` is an image or `.aec` path, a PIL image, a uint8 image array, or a vector.
        A `.aec` file of another model is decoded and its pixels encoded with the index's
        model (its own code is not comparable). With ``skip_self``, an entry with the query's
        own path is left out.
        """
        v = self.query_vector(query)
        own = str(Path(query).resolve()) if isinstance(query, (str, Path)) and skip_self else None
        idx, dist = self.search_vectors(v.reshape(1, -1) if v.ndim == 1 else v[:1], k + (own is not None))
        out = [(self.paths[i], float(d)) for i, d in zip(idx[0], dist[0]) if self.paths[i] != own]
        return out[:k]

    def save(self, path: str | Path, overwrite: bool = False) -> None:
        """Write the index as `.npz`, atomically (a temporary file, then ``os.replace``)."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise AecOutputError(f"{path} exists; use -f/--force to overwrite it or --update to add to it")
        arrays = {"format": np.array(INDEX_FORMAT), "version": np.array(INDEX_VERSION, np.int64),
                  "model": np.array(self.model), "weights_hash": np.array(self.weights_hash.hex()),
                  "quality": np.array(self.quality, np.float32), "descriptor": np.array(self.descriptor),
                  "paths": np.array(self.paths, dtype=np.str_).reshape(-1),
                  "qualities": self.qualities.astype(np.float32),
                  "vectors": self.vectors.astype(np.float32).reshape(len(self), self._dim())}
        try:
            write_atomic(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]
        except OSError as exc:
            raise AecOutputError(f"{path}: cannot write ({exc.strerror or exc})") from None

    def _dim(self) -> int:
        """The descriptor length (0 for an index that has never held an entry)."""
        return self.vectors.shape[1] if self.vectors.ndim == 2 else 0

    @classmethod
    def load(cls, path: str | Path) -> Index:
        """Read an index written by ``save`` (never unpickles: ``allow_pickle=False``)."""
        path = Path(path)
        if not path.is_file():
            raise AecInputError(f"{path}: no such index (build one with `aecodec index`)")
        try:
            with np.load(path, allow_pickle=False) as z:
                if any(k not in z.files for k in _KEYS) or str(z["format"]) != INDEX_FORMAT:
                    raise AecFormatError(f"{path}: not an aecodec index")
                a = {k: z[k] for k in _KEYS}
            if int(a["version"]) != INDEX_VERSION:
                raise AecFormatError(f"{path}: index version {int(a['version'])}; this aecodec reads "
                                     f"version {INDEX_VERSION} (rebuild the index)")
            paths, vectors, qualities = a["paths"], a["vectors"], a["qualities"]
            n = len(paths) if paths.ndim == 1 else -1
            weights_hash = bytes.fromhex(str(a["weights_hash"]))
            if n < 0 or vectors.ndim != 2 or vectors.shape[0] != n or qualities.shape != (n,) \
                    or vectors.dtype != np.float32 or not np.isfinite(vectors).all() or len(weights_hash) != 8 \
                    or str(a["descriptor"]) not in DESCRIPTORS:
                raise AecFormatError(f"{path}: damaged aecodec index (inconsistent arrays or fields)")
            return cls(model=str(a["model"]), weights_hash=weights_hash, quality=float(a["quality"]),
                       descriptor=str(a["descriptor"]), paths=[str(p) for p in paths],
                       qualities=qualities.astype(np.float32), vectors=vectors)
        except AecError:
            raise
        except zipfile.BadZipFile as exc:
            raise AecFormatError(f"{path}: damaged aecodec index ({exc})") from None
        except Exception:  # numpy raises many types; for a non-.npz file its advice is to unpickle
            raise AecFormatError(f"{path}: not an aecodec index (not a .npz file `aecodec index` "
                                 f"wrote)") from None


def _aec_symbols(path: str, lm: LoadedModel) -> tuple[np.ndarray, float] | None:
    """The symbols and quality of a `.aec` file of ``lm``'s model (no pixel is decoded), or
    None if ``path`` is not a `.aec` file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AecInputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not looks_like_aec(data) and not path.lower().endswith(".aec"):
        return None
    try:
        f = read(data)
        h = f.header
        if h.model != lm.name or h.weights_hash != lm.weights_hash:
            made = h.model if h.model != lm.name else f"other weights ({h.weights_hash.hex()}) of {h.model}"
            raise AecModelError(f"made with {made}; the index holds model {lm.name} "
                                f"({lm.weights_hash.hex()}): build a separate index for it")
        return read_symbols(f, lm), h.quality
    except AecError as exc:
        raise type(exc)(f"{path}: {exc}") from None


def build_index(paths: Iterable[str | Path], model: str | None = None, quality: float = DEFAULT_QUALITY,
                descriptor: str = DEFAULT_DESCRIPTOR, progress: bool = False,
                on_skip: OnSkip | None = None) -> Index:
    """An index of the images and `.aec` files under ``paths`` (folders are walked).

    ``model`` encodes the images; None means the model of the first `.aec` file among the
    inputs, else ``conv-faces``. Files of another model, corrupt or unreadable ones are
    skipped and passed to ``on_skip(path, reason)``.
    """
    paths = list(paths)
    exact = False
    if model is None:  # a header's name is exact: files of conv-faces v1 index with v1, not v2
        first = _first_aec_model(expand_paths(paths, lambda p, r: None))
        model, exact = (first, True) if first else (DEFAULT_INDEX_MODEL, False)
    index = Index.empty(model, quality, descriptor, exact=exact)
    index.update(paths, progress=progress, on_skip=on_skip)
    return index


def _first_aec_model(files: Sequence[Path]) -> str | None:
    for f in files:
        try:
            with open(f, "rb") as fh:
                return read_header(fh.read(512)).model
        except (OSError, AecError):
            continue
    return None
