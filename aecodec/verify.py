"""Checking a `.aec` file as ``decompress`` would, short of running the decoder network, and
without torch where the installed weights have a JSON card (``aecodec.catalog``)."""

from __future__ import annotations

from aecodec import catalog
from aecodec.container import AecFile, Header, read
from aecodec.errors import AecFormatError, AecModelError

__all__ = ["verify", "decode_alpha", "missing_model", "other_weights", "check_latent_shape"]


def missing_model(name: str) -> AecModelError:
    return AecModelError(f"this file needs model {name!r}, which is not installed (see `aecodec models`)")


def other_weights(name: str, file_hash: bytes, installed: bytes) -> AecModelError:
    return AecModelError(f"this file was made with other weights for model {name!r} "
                         f"(file {file_hash.hex()}, installed {installed.hex()}); "
                         f"decode it with the aecodec version that wrote it")


def check_latent_shape(h: Header, expected: tuple[int, ...]) -> None:
    if tuple(h.latent_shape) != tuple(expected):
        raise AecFormatError(f"latent shape {h.latent_shape} does not match model {h.model} "
                             f"at {h.width}x{h.height}, quality {h.quality:g} (expected {expected})")


def decode_alpha(chunk: bytes | None, h: Header) -> "np.ndarray":  # noqa: F821
    """The file's alpha plane (H, W) uint8, checked against the header's size."""
    import numpy as np
    import zstandard

    if chunk is None:
        raise AecFormatError(f"mode {h.mode} needs an alpha chunk, and the file has none")
    n = h.width * h.height
    try:
        raw = zstandard.ZstdDecompressor().decompress(chunk, max_output_size=n)
    except zstandard.ZstdError as exc:
        raise AecFormatError(f"alpha chunk is corrupt ({exc})") from None
    if len(raw) != n:
        raise AecFormatError(f"alpha chunk holds {len(raw)} bytes, expected {n}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(h.height, h.width)


def verify(data: bytes) -> AecFile:
    """The parsed file, after every check ``decode_file`` makes before the network runs:
    magic, version, sizes and CRC-32 (``container.read``), the model and its weights hash
    installed, the latent shape the model gives for the file's size and quality, the payload
    unpacked, and the alpha chunk. Raises the same AecError ``decompress`` would. Reads the
    weights' JSON card, and loads the weights (torch) only for weights without one.
    """
    from aecodec import pack

    f = read(data)
    h = f.header
    try:
        card = catalog.sidecar(h.model)
    except AecModelError:
        raise missing_model(h.model) from None
    if card is None or card.get("shape") is None or h.packing in pack.MODELLED:  # methods 4 to 7 need the model
        from aecodec.codec import model_for, read_symbols
        read_symbols(f, model_for(h))
    else:
        installed = bytes.fromhex(card["weights_hash"])
        if installed != h.weights_hash:
            raise other_weights(h.model, h.weights_hash, installed)
        check_latent_shape(h, catalog.latent_shape(card["shape"], h.width, h.height, h.quality))
        pack.unpack(f.payload, h.latent_shape, h.packing)
    if h.mode in ("RGBA", "LA"):
        decode_alpha(f.alpha, h)
    return f
