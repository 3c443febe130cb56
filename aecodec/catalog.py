"""The installed weights without torch: their names, families and versions, and the JSON card
beside each weight file, enough to list models and to check a ``.aec`` file's header.

Each shipped ``NAME.pt`` has a sidecar ``NAME.json`` (written by ``aecodec.weights.save_model``,
checked against the weights by the tests)::

    {"format": 1, "name": "conv-photos.v2", "kind": "conv", "weights_hash": "…16 hex…",
     "info": {"domain": …, "fixed_size": [w, h] | null, "description": …},
     "shape": {…the latent shape rule, see latent_shape…} | null, "config": {…}, "card": {…}}

Commands that need no network (``aecodec --help``, ``info``, ``models``) read only these, so
they start without importing torch (about 1.5 s of a cold start).
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from aecodec.errors import AecModelError
from aecodec.versions import ALIASES, is_versioned, split_version, versioned_name

__all__ = ["NAME_RE", "SIDECAR_FORMAT", "shipped_dir", "shipped_names", "list_models", "model_info", "families",
           "family_versions", "resolve", "not_installed", "sidecar", "latent_shape", "kept_components", "pca_step"]

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
SIDECAR_FORMAT = 1
QUALITY_MIN, QUALITY_MAX = 1.0, 100.0  # as aecodec.quantize (which needs torch)


def shipped_dir() -> Path:
    """The folder of shipped weights: the installed ``aecodec.zoo`` package data (the
    repository's ``weights/`` folder), or the repository's ``weights/`` in a source checkout."""
    try:
        d = Path(str(resources.files("aecodec.zoo")))
        if d.is_dir() and any(d.glob("*.pt")):
            return d
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent / "weights"


def shipped_names() -> list[str]:
    """Exact names of the installed models, every version (weight file stems), sorted."""
    d = shipped_dir()
    return sorted(p.stem for p in d.glob("*.pt") if NAME_RE.match(p.stem)) if d.is_dir() else []


def list_models() -> list[str]:
    """Exact names of the installed models, every version (``aecodec models`` lists them
    with details)."""
    return shipped_names()


def model_info(name: str, exact: bool = False) -> dict[str, Any]:
    """Domain, size constraint, description, version and card of an installed model.

    ``name`` is resolved as everywhere (a family or alias means its newest version) unless
    ``exact``, when it is the exact name a file's header records (``conv-photos`` is then
    version 1). Read from the weights' JSON card; weights without one are loaded (torch)."""
    exact_name = name if exact else resolve(name)
    card = sidecar(exact_name)
    if card is None:
        from aecodec.weights import load_exact, sidecar_of
        card = sidecar_of(load_exact(exact_name))
    family, version = split_version(exact_name)
    info = card["info"]
    return {"name": exact_name, "family": family, "version": version,
            "newest": family_versions(family)[-1][1] == exact_name, "kind": card["kind"],
            "domain": info["domain"], "fixed_size": tuple(info["fixed_size"]) if info["fixed_size"] else None,
            "description": info["description"], "weights_hash": card["weights_hash"], "card": card["card"]}


def families() -> dict[str, list[tuple[int, str]]]:
    """Installed families → their (version, exact name) pairs, oldest first."""
    out: dict[str, list[tuple[int, str]]] = {}
    for name in shipped_names():
        fam, ver = split_version(name)
        out.setdefault(fam, []).append((ver, name))
    return {f: sorted(v) for f, v in sorted(out.items())}


def family_versions(family: str) -> list[tuple[int, str]]:
    return families().get(family, [])


def not_installed(name: str) -> AecModelError:
    known = ", ".join(shipped_names()) or "none"
    return AecModelError(f"model {name!r} is not installed (installed: {known})")


def resolve(name: str) -> str:
    """The exact installed name a user's model name means: an alias or a family name is the
    family's newest version; an exact name (``conv-photos.v1`` for version 1) is itself."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise not_installed(str(name))
    name = ALIASES.get(name, name)
    installed = set(shipped_names())
    fam, ver = split_version(name)
    if is_versioned(name):
        exact = versioned_name(fam, ver)
        if exact in installed:
            return exact
        raise not_installed(name)
    versions = family_versions(name)
    if versions:
        return versions[-1][1]
    raise not_installed(name)


def sidecar(exact: str) -> dict[str, Any] | None:
    """The JSON card of an installed exact name; None when the weights have none (then only
    torch can tell). AecModelError if the name is not installed or the card is damaged."""
    if not NAME_RE.match(exact) or exact not in shipped_names():
        raise not_installed(exact)
    return _read_sidecar(str(shipped_dir() / f"{exact}.json"))


@lru_cache(maxsize=32)
def _read_sidecar(path: str) -> dict[str, Any] | None:
    p = Path(path)
    if not p.exists():
        return None
    try:
        card = json.loads(p.read_text())
        if card.get("format") != SIDECAR_FORMAT or not isinstance(card.get("weights_hash"), str):
            raise ValueError("unknown card format")
        bytes.fromhex(card["weights_hash"])
    except (OSError, ValueError, AttributeError) as exc:
        raise AecModelError(f"the card {p.name} of installed weights is damaged ({exc})") from None
    return card


def pca_step(quality: float, step_lo: float, step_hi: float) -> float:
    """Quantization step of the PCA models: log-linear from ``step_lo`` (q=1) to ``step_hi`` (q=100)."""
    t = (float(quality) - QUALITY_MIN) / (QUALITY_MAX - QUALITY_MIN)
    return math.exp((1 - t) * math.log(step_lo) + t * math.log(step_hi))


def kept_components(std: list[float], keep_ratio: float, step: float) -> int:
    """PCA components kept at a step: those whose float32 std exceeds ``keep_ratio * step``
    rounded to float32, as the model compares them (torch casts the scalar to float32); at
    least one."""
    import numpy as np

    return max(1, int((np.asarray(std, np.float32) > np.float32(keep_ratio * step)).sum()))


def latent_shape(spec: dict[str, Any], width: int, height: int, quality: float) -> tuple[int, ...]:
    """The symbol shape a model's card rule gives for an image size and quality:
    ``{"grid": [channels, stride]}``, ``{"vector": n}``, or ``{"pca": {"std": [...],
    "keep_ratio", "step_lo", "step_hi", "block": b | null}}`` (kept components, then the block
    grid for block PCA)."""
    if "grid" in spec:
        channels, stride = spec["grid"]
        return (int(channels), -(-height // stride), -(-width // stride))
    if "vector" in spec:
        return (int(spec["vector"]),)
    p = spec["pca"]
    kept = kept_components(p["std"], p["keep_ratio"], pca_step(quality, p["step_lo"], p["step_hi"]))
    b = p.get("block")
    return (kept, -(-height // b), -(-width // b)) if b else (kept,)
