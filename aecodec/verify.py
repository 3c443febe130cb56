"""Checking a `.aec` file as ``decompress`` would, short of running the decoder network."""

from __future__ import annotations

from aecodec.codec import _decode_alpha, model_for, read_symbols
from aecodec.container import AecFile, read

__all__ = ["verify"]


def verify(data: bytes) -> AecFile:
    """The parsed file, after every check ``decode_file`` makes before the network runs:
    magic, version, sizes and CRC-32 (``container.read``), the model and its weights hash
    installed, the latent shape the model gives for the file's size and quality, the payload
    unpacked, and the alpha chunk. Raises the same AecError ``decompress`` would.
    """
    f = read(data)
    h = f.header
    read_symbols(f, model_for(h))
    if h.mode in ("RGBA", "LA"):
        _decode_alpha(f.alpha, h)
    return f
