"""Loading and saving a model with its config; finding the shipped weight files.

A weight file is a ``torch.save`` of a plain dict, read back with ``weights_only=True``
(never an arbitrary unpickle)::

    {"format_version": 1, "kind": "conv", "config": {...}, "state": {name: tensor},
     "card": {...free-form facts: data, steps, wall time, measured results...}}

The model's exact name is the file's stem, and it is what a ``.aec`` header records, with
a short hash of the weights (8 bytes of SHA-256 over the state tensors), so a file is never
decoded by other weights.

**Versions.** Retraining never replaces a released weight file: it ships a new version
beside it, so every ``.aec`` ever written keeps decoding bit-for-bit. A model *family*
(``conv-photos``) has versions: version 1 is the file named after the family itself
(``conv-photos.pt``, exact name ``conv-photos``, as the first release wrote it), version N ≥ 2
is ``conv-photos.vN.pt`` (exact name ``conv-photos.vN``). What a user types is resolved by
``resolve``: a family or an alias (``photos``, ``faces``) means its newest version, an exact
name (``conv-photos.v1`` is accepted for version 1) means that version. A file's header is
read by ``load_exact``, never resolved: ``conv-photos`` in a header is version 1 forever.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from aecodec import catalog
from aecodec.catalog import (NAME_RE, SIDECAR_FORMAT, families, family_versions, not_installed, resolve,
                             shipped_dir, shipped_names)
from aecodec.errors import AecModelError
from aecodec.models.base import CodecModel
from aecodec.models.registry import model_class
from aecodec.versions import ALIASES, split_version, versioned_name

__all__ = ["WEIGHTS_FORMAT_VERSION", "LoadedModel", "save_model", "load_model_file", "shipped_dir",
           "shipped_names", "load_shipped", "load_exact", "resolve", "split_version", "versioned_name",
           "family_versions", "families", "ALIASES", "state_hash", "sidecar_of", "write_sidecar", "NAME_RE"]

WEIGHTS_FORMAT_VERSION = 1



@dataclass(frozen=True)
class LoadedModel:
    name: str
    model: CodecModel
    weights_hash: bytes
    card: dict[str, Any]


def state_hash(state: dict[str, torch.Tensor]) -> bytes:
    """8-byte SHA-256 digest over the state's names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(key.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        # reshape(-1): a size-1 axis can leave a "contiguous" tensor with odd strides (channels-last)
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.digest()[:8]


def save_model(model: CodecModel, path: str | Path, card: dict[str, Any] | None = None,
               half: bool = True) -> None:
    """Save ``model`` with its config; floating tensors are stored as float16 when ``half``.
    Tensors are stored in the standard layout, so a loaded (channels-last) model saves as it loaded."""
    state = {k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu())
             .clone(memory_format=torch.contiguous_format) for k, v in model.state_dict().items()}
    blob = {"format_version": WEIGHTS_FORMAT_VERSION, "kind": model.kind, "config": model.config_dict(),
            "state": state, "card": card or {}}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)
    write_sidecar(load_model_file(path), path.with_suffix(".json"))


def sidecar_of(lm: LoadedModel) -> dict[str, Any]:
    """The JSON card of loaded weights (``aecodec.catalog``): what listing models and checking
    a file's header need, without torch."""
    mi = lm.model.info()
    return {"format": SIDECAR_FORMAT, "name": lm.name, "kind": lm.model.kind, "weights_hash": lm.weights_hash.hex(),
            "info": {"domain": mi.domain, "fixed_size": list(mi.fixed_size) if mi.fixed_size else None,
                     "description": mi.description},
            "shape": lm.model.shape_spec(), "config": lm.model.config_dict(), "card": lm.card}


def write_sidecar(lm: LoadedModel, path: str | Path) -> None:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(sidecar_of(lm), indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def _build(name: str, blob: dict[str, Any]) -> LoadedModel:
    try:
        if blob.get("format_version") != WEIGHTS_FORMAT_VERSION:
            raise AecModelError(f"weights {name!r} have format version {blob.get('format_version')!r}; "
                                f"this aecodec reads version {WEIGHTS_FORMAT_VERSION}")
        cls = model_class(blob["kind"])
        model = cls.from_config(blob["config"])
        state = blob["state"]
        digest = state_hash(state)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except AecModelError:
        raise
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise AecModelError(f"weights {name!r} are damaged or incompatible: {exc}") from None
    # oneDNN's convolutions run markedly faster with NHWC weights and activations on CPU.
    model.to(memory_format=torch.channels_last).eval()
    return LoadedModel(name=name, model=model, weights_hash=digest, card=dict(blob.get("card") or {}))


def load_model_file(path: str | Path) -> LoadedModel:
    """Load a weight file from any path; the model's name is the file stem."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AecModelError(f"cannot read weights {path}: {exc.strerror or exc}") from None
    try:
        blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise AecModelError(f"weights {path} are not a valid weight file: {exc}") from None
    return _build(path.stem, blob)


def load_exact(name: str) -> LoadedModel:
    """Load the installed weights of exactly this name, as a ``.aec`` header records it (no
    alias, no newest-version resolution: a file's model never changes under it)."""
    if not NAME_RE.match(name) or name not in shipped_names():
        raise not_installed(name)
    return _load_cached(name)


def load_shipped(name: str) -> LoadedModel:
    """Load an installed model by the name a user gives (see ``resolve``); cached."""
    return _load_cached(resolve(name))


@lru_cache(maxsize=16)
def _load_cached(exact: str) -> LoadedModel:
    return load_model_file(catalog.shipped_dir() / f"{exact}.pt")


def on_device(lm: LoadedModel, device: torch.device) -> LoadedModel:
    """``lm`` with its network on ``device`` (a copy, cached; the CPU model itself for the CPU).
    Models that do not declare ``runs_on_gpu`` stay on the CPU: they are small and fast there."""
    if device.type == "cpu" or not getattr(lm.model, "runs_on_gpu", False):
        return lm
    return _on_device_cached(lm, str(device))


@lru_cache(maxsize=16)
def _on_device_cached(lm: LoadedModel, device: str) -> LoadedModel:
    import copy

    return LoadedModel(lm.name, copy.deepcopy(lm.model).to(device), lm.weights_hash, lm.card)
