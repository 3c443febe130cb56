"""The defaults a user meets (model, quality, effort), in one torch-free place: the command
line's options show them without importing the networks."""

from __future__ import annotations

__all__ = ["DEFAULT_MODEL", "DEFAULT_QUALITY", "EFFORT_MIN", "EFFORT_MAX", "DEFAULT_EFFORT", "MODEL_CHOICE_EFFORT"]

DEFAULT_MODEL = "conv-photos"  # a family: its newest version
DEFAULT_QUALITY = 50.0
EFFORT_MIN, EFFORT_MAX, DEFAULT_EFFORT = 1, 9, 1
MODEL_CHOICE_EFFORT = 6  # from this effort, with no model named, the better general model per image
