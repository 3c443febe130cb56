"""Output-file rules shared by the CLI commands: never overwrite an input, an earlier output
of the same run, or an existing file without --force."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from aecodec.errors import AecInputError, AecOutputError

__all__ = ["STDIO", "check_output", "check_folder", "binary_stream", "read_bytes"]

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
    check_folder(out)
    claimed.add(key)


def check_folder(out: str | Path) -> None:
    """Refuse an output whose folder cannot be made or written in, before any work is spent on
    it: the nearest folder of its path that exists must be a folder, and a file must be
    creatable there (a probe, removed at once; permission bits alone cannot tell, e.g. for root
    or on /proc)."""
    parent = Path(out).parent
    while not parent.exists() and parent != parent.parent:
        if parent.is_symlink():
            raise AecOutputError(f"output {out}: {parent} is a broken link")
        parent = parent.parent
    if not parent.is_dir():
        raise AecOutputError(f"output {out}: {parent} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".aecodec-probe-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise AecOutputError(f"output {out}: cannot write in {parent} ({exc.strerror or exc})") from None


def read_bytes(read: Callable[[], bytes], empty: str = "empty file") -> bytes:
    """``read()``, with the one-line AecInputError every command gives for an input that is
    missing, a folder, unreadable or empty."""
    try:
        data = read()
    except FileNotFoundError:
        raise AecInputError("no such file") from None
    except IsADirectoryError:
        raise AecInputError("is a folder, not a file") from None
    except OSError as exc:
        raise AecInputError(f"cannot read ({exc.strerror or exc})") from None
    if not data:
        raise AecInputError(empty)
    return data
