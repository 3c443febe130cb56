"""Output-file rules shared by the CLI commands: never overwrite an input, an earlier output
of the same run, or an existing file without --force."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import BinaryIO

from aecodec.errors import AecOutputError

__all__ = ["STDIO", "check_output", "binary_stream"]

STDIO = "-"


def binary_stream(name: str) -> BinaryIO:
    """The byte stream under ``sys.stdin`` or ``sys.stdout`` (``name``: "stdin"/"stdout")."""
    stream = getattr(sys, name)
    return getattr(stream, "buffer", stream)


def check_output(out: str, src: str, force: bool, claimed: set[str]) -> None:
    """Refuse an output that is its own input, already written in this run, or that exists
    without ``force``."""
    if out == STDIO:  # plan_outputs sends at most one output there
        if binary_stream("stdout").isatty():
            raise AecOutputError("refusing to write binary data to a terminal; use -o FILE")
        return
    p = Path(out)
    key = os.path.realpath(p)
    if src != STDIO and key == os.path.realpath(src):
        raise AecOutputError(f"output {out} would overwrite its own input")
    if key in claimed:
        raise AecOutputError(f"output {out} is also the output of an earlier input")
    if p.is_dir():
        raise AecOutputError(f"output {out} is a folder")
    if p.exists() and not force:
        raise AecOutputError(f"output {out} exists (use -f to overwrite it)")
    claimed.add(key)
