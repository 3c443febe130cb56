"""Model names and versions, as plain strings (no torch: the CLI's light commands use it).

A model *family* (``conv-photos``) ships versions. Version 1 is named after the family itself
(exact name ``conv-photos``, as the first release wrote it in its files); version N ≥ 2 is
``conv-photos.vN``. ``conv-photos.v1`` is accepted as a spelling of version 1.
"""

from __future__ import annotations

import re

__all__ = ["ALIASES", "split_version", "versioned_name", "is_versioned"]

_VERSION_RE = re.compile(r"^(?P<family>.+)\.v(?P<version>[1-9][0-9]{0,5})$")

# Short names a user may type for a family (each means the family's newest version).
ALIASES = {"photos": "conv-photos", "faces": "conv-faces",
           "photos-denoise": "conv-photos-denoise", "faces-denoise": "conv-faces-denoise"}


def split_version(exact: str) -> tuple[str, int]:
    """``conv-photos.v2`` → (``conv-photos``, 2); an unversioned name is version 1."""
    m = _VERSION_RE.match(exact)
    return (m["family"], int(m["version"])) if m else (exact, 1)


def is_versioned(name: str) -> bool:
    """Whether ``name`` spells out a version (``family.vN``)."""
    return _VERSION_RE.match(name) is not None


def versioned_name(family: str, version: int) -> str:
    """The exact name of a family's version: version 1 is the family's own name."""
    return family if version == 1 else f"{family}.v{version}"
