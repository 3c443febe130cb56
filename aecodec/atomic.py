"""Writing a file so that no reader ever sees half of it: a temporary file beside it, then ``os.replace``."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable

__all__ = ["write_atomic"]


def write_atomic(path: str | Path, write: Callable[[BinaryIO], None] | bytes) -> None:
    """Write ``path`` from ``write`` (bytes, or a function that writes to a binary file).

    The temporary file is created with mode 0666 less the umask, like any ``open()``, so the
    output gets the permissions every other file the user makes gets (``tempfile.mkstemp``
    would give 0600). A failure removes it and leaves the old ``path``, if any, untouched.
    Raises OSError.
    """
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            if isinstance(write, (bytes, bytearray, memoryview)):
                f.write(write)
            else:
                write(f)
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
