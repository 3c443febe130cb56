"""Error types: every error aecodec raises on purpose derives from AecError."""

from __future__ import annotations

__all__ = [
    "AecError",
    "AecFormatError",
    "AecVersionError",
    "AecModelError",
    "AecInputError",
    "AecLimitError",
    "AecHeaderLimitError",
    "AecOutputError",
]


class AecError(Exception):
    """Base class of every error aecodec raises on purpose; the message is for the user."""


class AecFormatError(AecError):
    """A `.aec` byte stream is malformed: bad magic, truncated, corrupt, inconsistent sizes."""


class AecVersionError(AecFormatError):
    """A `.aec` file uses a format version this reader does not know."""


class AecModelError(AecError):
    """An unknown model name, missing weights, or a file made with different weights."""


class AecInputError(AecError):
    """An input image is missing, unreadable, of an unsupported type or mode."""


class AecLimitError(AecInputError):
    """An input or a header asks for more than the configured size limits allow."""


class AecHeaderLimitError(AecFormatError, AecLimitError):
    """A `.aec` header declares sizes beyond the limits: both a format and a limit error, so
    that readers catching AecFormatError for bad files also catch it."""


class AecOutputError(AecError):
    """An output cannot be written (exists without --force, unwritable folder, ...)."""
