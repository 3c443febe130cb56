"""Loading and saving a model with its config; finding the shipped weight files.

A weight file is a ``torch.save`` of a plain dict, read back with ``weights_only=True``
(never an arbitrary unpickle)::

    {"format_version": 1, "kind": "conv", "config": {...}, "state": {name: tensor},
     "card": {...free-form facts: data, steps, wall time, measured results...}}

The model's stable name is the file's stem (``weights/conv-faces.pt`` is ``conv-faces``).
Its short hash (8 bytes of SHA-256 over the state tensors) goes in every ``.aec`` header, so
a file is never decoded by other weights.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from aecodec.errors import AecModelError
from aecodec.models.base import CodecModel
from aecodec.models.registry import model_class

__all__ = ["WEIGHTS_FORMAT_VERSION", "LoadedModel", "save_model", "load_model_file", "shipped_dir",
           "shipped_names", "load_shipped", "state_hash"]

WEIGHTS_FORMAT_VERSION = 1
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


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


def shipped_dir() -> Path:
    """The folder of shipped weights: the installed ``aecodec.zoo`` package data (the repository's ``weights/`` folder), or the
    repository's ``weights/`` when running from a source checkout."""
    try:
        d = Path(str(resources.files("aecodec.zoo")))
        if d.is_dir() and any(d.glob("*.pt")):
            return d
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent / "weights"


def shipped_names() -> list[str]:
    """Names of the installed models (weight file stems), sorted."""
    d = shipped_dir()
    return sorted(p.stem for p in d.glob("*.pt") if NAME_RE.match(p.stem)) if d.is_dir() else []


@lru_cache(maxsize=16)
def load_shipped(name: str) -> LoadedModel:
    """Load an installed model by name (cached: models are read-only after loading)."""
    if not NAME_RE.match(name) or name not in shipped_names():
        known = ", ".join(shipped_names()) or "none"
        raise AecModelError(f"model {name!r} is not installed (installed: {known})")
    return load_model_file(shipped_dir() / f"{name}.pt")
