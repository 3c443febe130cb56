"""The one registry of models by stable name, filled by ``@register_model``."""

from __future__ import annotations

from typing import Callable, TypeVar

from aecodec.errors import AecModelError

__all__ = ["register_model", "model_class", "registered_names"]

_REGISTRY: dict[str, type] = {}
T = TypeVar("T", bound=type)


def register_model(kind: str) -> Callable[[T], T]:
    """Register a model class under a stable ``kind`` name (used in weight files' configs)."""

    def deco(cls: T) -> T:
        if kind in _REGISTRY and _REGISTRY[kind] is not cls:
            raise ValueError(f"model kind {kind!r} registered twice")
        _REGISTRY[kind] = cls
        cls.kind = kind  # type: ignore[attr-defined]
        return cls

    return deco


def model_class(kind: str) -> type:
    """Return the class registered as ``kind``."""
    try:
        return _REGISTRY[kind]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise AecModelError(f"unknown model kind {kind!r} (known: {known})") from None


def registered_names() -> list[str]:
    """All registered model kinds, sorted."""
    return sorted(_REGISTRY)
