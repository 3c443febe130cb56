"""The `.aec` byte layout: magic, version, header, packed payload and CRC-32, as plain bytes."""

from __future__ import annotations

import math
import operator
import re
import struct
import zlib
from dataclasses import dataclass

from aecodec.errors import AecFormatError, AecHeaderLimitError, AecVersionError

__all__ = [
    "MAGIC", "FORMAT_VERSION", "MAX_SIDE", "MAX_PIXELS", "MAX_SYMBOLS", "MAX_CHUNK", "MODES",
    "FLAG_ALPHA", "PREFIX", "HEADER_FIELDS", "DIM", "CHUNK_LEN", "CRC",
    "Header", "AecFile", "write", "read", "read_header", "info", "looks_like_aec",
]

MAGIC: bytes = b"\x89AEC"  # high bit set, like PNG's, so a text-mode transfer shows at once
FORMAT_VERSION: int = 1
MAX_SIDE = 1 << 15  # width and height limit
MAX_PIXELS = 1 << 25  # width * height limit
MAX_SYMBOLS = 1 << 26  # limit on the product of the latent dims
MAX_CHUNK = 1 << 30  # limit on the payload and on the alpha chunk, in bytes
MODES: dict[str, int] = {"L": 1, "RGB": 2, "RGBA": 3, "LA": 4}
FLAG_ALPHA = 0x01  # flags bit 0: an alpha chunk follows the payload

PREFIX = struct.Struct("<4sBBH")  # magic, version, flags, header_len
HEADER_FIELDS = struct.Struct("<8sIIBfBB")  # after the name: weights_hash .. ndim
DIM = struct.Struct("<I")  # one latent dim
CHUNK_LEN = struct.Struct("<I")  # length of the payload or of the alpha chunk
CRC = struct.Struct("<I")  # zlib.crc32 of every byte before it

_NAME = re.compile(r"[a-z0-9._-]{1,64}")
_MAX_NAME, _MAX_NDIM, _MAX_DIM = 64, 4, 65535
_MIN_HEADER = 1 + 1 + HEADER_FIELDS.size + DIM.size
_MAX_HEADER = 1 + _MAX_NAME + HEADER_FIELDS.size + _MAX_NDIM * DIM.size
_MODE_NAMES = {code: name for name, code in MODES.items()}


def _float32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _dims(shape: object) -> tuple[int, ...] | None:
    """``shape`` as a tuple of Python ints (numpy ints and lists welcome), or None if it is not."""
    try:
        dims = tuple(operator.index(d) for d in shape)  # type: ignore[attr-defined]
    except TypeError:
        return None
    return None if any(isinstance(d, bool) for d in shape) else dims  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Header:
    """What a decoder needs besides the payload: model, weights, geometry, quantization, packing.

    Every field is checked on construction, so a Header that exists is one that can be written
    and read back; ``quality`` is rounded to float32, as stored, so that a round trip is exact.
    """

    model: str  # stable model name, 1..64 chars of [a-z0-9._-]
    weights_hash: bytes  # exactly 8 bytes: a short hash of the weights
    width: int  # 1..MAX_SIDE
    height: int  # 1..MAX_SIDE, width * height <= MAX_PIXELS
    mode: str  # a key of MODES: the mode the decoded image comes back in
    quality: float  # 1.0..100.0, stored as float32
    latent_shape: tuple[int, ...]  # 1..4 dims, each 1..65535, product <= MAX_SYMBOLS
    packing: int  # packing method id 0..255, meaning owned by aecodec.pack

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not _NAME.fullmatch(self.model):
            raise AecFormatError(
                f"model name {self.model!r} must be 1..64 characters of a-z, 0-9, '.', '_', '-'")
        if not isinstance(self.weights_hash, bytes) or len(self.weights_hash) != 8:
            raise AecFormatError(f"weights_hash must be exactly 8 bytes, got {self.weights_hash!r}")
        for name in ("width", "height"):
            side = getattr(self, name)
            if not _is_int(side) or side < 1:
                raise AecFormatError(f"{name} must be a positive integer, got {side!r}")
            if side > MAX_SIDE:
                raise AecHeaderLimitError(f"{name} {side} is over the limit of {MAX_SIDE}")
        if self.width * self.height > MAX_PIXELS:
            raise AecHeaderLimitError(f"{self.width}x{self.height} image is over the limit of "
                                      f"{MAX_PIXELS} pixels")
        if self.mode not in MODES:
            raise AecFormatError(f"mode {self.mode!r} is not one of {', '.join(MODES)}")
        if not isinstance(self.quality, (int, float)) or isinstance(self.quality, bool) \
                or not 1.0 <= self.quality <= 100.0:  # False for NaN too
            raise AecFormatError(f"quality must be a number from 1 to 100, got {self.quality!r}")
        object.__setattr__(self, "quality", _float32(self.quality))
        shape = _dims(self.latent_shape)
        if shape is None or not 1 <= len(shape) <= _MAX_NDIM \
                or not all(1 <= d <= _MAX_DIM for d in shape):
            raise AecFormatError(f"latent_shape must be 1..{_MAX_NDIM} dims, each "
                                 f"1..{_MAX_DIM}, got {self.latent_shape!r}")
        object.__setattr__(self, "latent_shape", shape)
        if math.prod(shape) > MAX_SYMBOLS:
            raise AecHeaderLimitError(f"latent shape {shape} holds {math.prod(shape)} symbols, "
                                      f"over the limit of {MAX_SYMBOLS}")
        if not _is_int(self.packing) or not 0 <= self.packing <= 255:
            raise AecFormatError(f"packing must be an integer 0..255, got {self.packing!r}")


@dataclass(frozen=True)
class AecFile:
    """A whole `.aec` file: header, packed latent symbols, and an optional packed alpha plane."""

    header: Header
    payload: bytes  # packed latent symbols (aecodec.pack)
    alpha: bytes | None = None  # packed alpha plane, only for the RGBA and LA modes

    def __post_init__(self) -> None:
        if not isinstance(self.header, Header):
            raise AecFormatError(f"header must be a Header, got {type(self.header).__name__}")
        for name in ("payload", "alpha"):
            chunk = getattr(self, name)
            if chunk is None and name == "alpha":
                continue
            if not isinstance(chunk, bytes):
                raise AecFormatError(f"{name} must be bytes, got {type(chunk).__name__}")
            if len(chunk) > MAX_CHUNK:
                raise AecHeaderLimitError(f"{name} of {len(chunk)} bytes is over the limit "
                                          f"of {MAX_CHUNK}")
        if self.alpha is not None and self.header.mode not in ("RGBA", "LA"):
            raise AecFormatError(f"an alpha chunk needs mode RGBA or LA, not {self.header.mode}")


def write(f: AecFile) -> bytes:
    """The bytes of ``f``: prefix, variable header, payload, [alpha], CRC-32 of all before it."""
    h = f.header
    name = h.model.encode("ascii")
    var = (bytes([len(name)]) + name
           + HEADER_FIELDS.pack(h.weights_hash, h.width, h.height, MODES[h.mode], h.quality,
                                h.packing, len(h.latent_shape))
           + b"".join(DIM.pack(d) for d in h.latent_shape))
    flags = FLAG_ALPHA if f.alpha is not None else 0
    out = [PREFIX.pack(MAGIC, FORMAT_VERSION, flags, len(var)), var,
           CHUNK_LEN.pack(len(f.payload)), f.payload]
    if f.alpha is not None:
        out += [CHUNK_LEN.pack(len(f.alpha)), f.alpha]
    body = b"".join(out)
    return body + CRC.pack(zlib.crc32(body))


def looks_like_aec(prefix: bytes) -> bool:
    """Whether ``prefix`` starts with the `.aec` magic (a Pillow plugin's ``_accept``)."""
    return bytes(prefix[: len(MAGIC)]) == MAGIC


def _parse_header(data: bytes) -> tuple[Header, int, int]:
    """Check magic, version, flags and header; return (header, flags, offset after it)."""
    if data[: len(MAGIC)] != MAGIC:
        if len(data) < len(MAGIC) and MAGIC.startswith(data):
            raise AecFormatError(f"truncated .aec file: only {len(data)} bytes")
        raise AecFormatError("not an .aec file (the first bytes are not the .aec magic)")
    if len(data) < PREFIX.size:
        raise AecFormatError(f"truncated .aec file: only {len(data)} bytes")
    _, version, flags, header_len = PREFIX.unpack_from(data)
    if version != FORMAT_VERSION:
        hint = "; a newer aecodec may read it" if version > FORMAT_VERSION else ""
        raise AecVersionError(f"this .aec file has format version {version}, this aecodec "
                              f"reads version {FORMAT_VERSION}{hint}")
    if flags & ~FLAG_ALPHA:
        raise AecFormatError(f"corrupt .aec file: unknown flags {flags:#04x}")
    if not _MIN_HEADER <= header_len <= _MAX_HEADER:
        raise AecFormatError(f"corrupt .aec file: header length {header_len} is impossible "
                             f"(must be {_MIN_HEADER}..{_MAX_HEADER})")
    end = PREFIX.size + header_len
    if len(data) < end:
        raise AecFormatError(f"truncated .aec file: the header needs {end} bytes, "
                             f"only {len(data)} are there")
    name_len = data[PREFIX.size]
    pos = PREFIX.size + 1 + name_len
    if not 1 <= name_len <= _MAX_NAME or pos + HEADER_FIELDS.size > end:
        raise AecFormatError(f"corrupt .aec file: model name length {name_len} does not fit "
                             f"the header")
    name = data[PREFIX.size + 1:pos]
    weights_hash, width, height, mode, quality, packing, ndim = \
        HEADER_FIELDS.unpack_from(data, pos)
    pos += HEADER_FIELDS.size
    if pos + ndim * DIM.size != end:
        raise AecFormatError(f"corrupt .aec file: header length {header_len} does not match "
                             f"its contents ({ndim} latent dims)")
    if mode not in _MODE_NAMES:
        raise AecFormatError(f"corrupt .aec file: unknown mode code {mode}")
    shape = tuple(DIM.unpack_from(data, pos + i * DIM.size)[0] for i in range(ndim))
    try:
        model = name.decode("ascii")
    except UnicodeDecodeError:
        raise AecFormatError("corrupt .aec file: the model name is not ASCII") from None
    try:
        header = Header(model, weights_hash, width, height, _MODE_NAMES[mode], quality, shape,
                        packing)
    except AecFormatError as exc:
        # Same type (a limit stays a limit error), with the file's point of view in the message.
        raise type(exc)(f"corrupt .aec file: {exc}") from None
    if flags & FLAG_ALPHA and header.mode not in ("RGBA", "LA"):  # before a stray length is read as one
        raise AecFormatError(f"corrupt .aec file: the alpha flag is set, but an {header.mode} file "
                             f"must not have an alpha chunk")
    return header, flags, end


def _as_bytes(data: bytes) -> bytes:
    try:
        return bytes(memoryview(data))
    except TypeError:
        raise AecFormatError(f"expected the bytes of an .aec file, got "
                             f"{type(data).__name__}") from None


def read_header(data: bytes) -> Header:
    """Just the header (for ``info``): ``data`` may stop anywhere after it; no CRC check."""
    return _parse_header(_as_bytes(data))[0]


def info(data: bytes) -> Header:
    """The header of `.aec` bytes (model, size, mode, quality, latent shape), without decoding
    or checking the rest (``aecodec.verify.verify`` checks the whole file)."""
    return read_header(data)


def read(data: bytes) -> AecFile:
    """Parse and verify a whole `.aec` file; raises only AecFormatError and its subclasses.

    Every length is checked against the limits and against the bytes actually present before
    anything is sliced, then the CRC-32, so truncation, bit flips and trailing bytes are caught.
    """
    data = _as_bytes(data)
    header, flags, pos = _parse_header(data)
    chunks: list[bytes] = []
    for name in ("payload", "alpha") if flags & FLAG_ALPHA else ("payload",):
        if len(data) < pos + CHUNK_LEN.size:
            raise AecFormatError(f"truncated .aec file: it ends before the {name} length")
        (size,) = CHUNK_LEN.unpack_from(data, pos)
        pos += CHUNK_LEN.size
        if size > MAX_CHUNK:
            raise AecHeaderLimitError(f"corrupt .aec file: {name} of {size} bytes is over the "
                                      f"limit of {MAX_CHUNK}")
        if len(data) < pos + size + CRC.size:
            raise AecFormatError(f"truncated .aec file: the {name} needs {size} bytes, only "
                                 f"{max(0, len(data) - pos - CRC.size)} are there")
        chunks.append(data[pos:pos + size])
        pos += size
    if len(data) != pos + CRC.size:
        raise AecFormatError(f"corrupt .aec file: {len(data) - pos - CRC.size} unexpected "
                             f"bytes after the end of the file")
    if CRC.unpack_from(data, pos)[0] != zlib.crc32(data[:pos]):
        raise AecFormatError("the .aec file is corrupt (checksum mismatch)")
    return AecFile(header, chunks[0], chunks[1] if len(chunks) > 1 else None)
