"""The `.aec` byte layout: magic, version, header, packed payload and CRC-32, as plain bytes.

Two layouts: version 1 (fixed-width fields, the model by name) and version 2, the one written
by default, which says the same in about 20 bytes instead of 66 (the model by a registered id,
sizes as varints, the payload length implied): on a 64x64 thumbnail that is a tenth of the file.
Both are read; ``docs/format.md`` describes them.
"""

from __future__ import annotations

import contextlib
import math
import operator
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from aecodec.errors import AecFormatError, AecHeaderLimitError, AecVersionError

__all__ = [
    "MAGIC", "FORMAT_VERSION", "MAX_SIDE", "MAX_PIXELS", "MAX_SYMBOLS", "MAX_CHUNK", "MODES",
    "FLAG_ALPHA", "PREFIX", "HEADER_FIELDS", "DIM", "CHUNK_LEN", "CRC",
    "READ_VERSIONS", "MODEL_IDS", "FLAG_INT_QUALITY", "FLAG_NAMED", "model_id", "provisional_id", "uvarint",
    "Header", "AecFile", "write", "read", "read_header", "info", "looks_like_aec",
]

MAGIC: bytes = b"\x89AEC"  # high bit set, like PNG's, so a text-mode transfer shows at once
FORMAT_VERSION: int = 2  # what write() writes unless told otherwise
READ_VERSIONS: tuple[int, ...] = (1, 2)
MAX_SIDE = 1 << 15  # width and height limit
MAX_PIXELS = 1 << 25  # width * height limit
MAX_SYMBOLS = 1 << 26  # limit on the product of the latent dims
MAX_CHUNK = 1 << 30  # limit on the payload and on the alpha chunk, in bytes
MODES: dict[str, int] = {"L": 1, "RGB": 2, "RGBA": 3, "LA": 4}
FLAG_ALPHA = 0x01  # flags bit 0: an alpha chunk follows the payload
FLAG_INT_QUALITY = 0x02  # version 2, bit 1: the quality is an integer, stored in one byte
FLAG_NAMED = 0x04  # version 2, bit 2: the model is given by name and weights hash, not by id

# Version 2 names the models aecodec releases by one byte. Append-only: an id, once given, names
# that model and those weights forever (a retrained model is a new version with a new id).
MODEL_IDS: dict[int, tuple[str, bytes]] = {i: (name, bytes.fromhex(h)) for i, (name, h) in enumerate([
    ("conv-photos", "f49e427f719d19e7"), ("conv-photos.v2", "3d4fe41af77c373e"),
    ("conv-photos.v3", "4eeab3dfa057821e"), ("conv-photos.v4", "e825a0cd1eca4e51"),
    ("conv-photos.v5", "8c86ed30d36126ed"), ("conv-photos.v6", "e81326e3d794acac"),
    ("conv-photos.v7", "fcb9122867fa0623"), ("conv-faces", "8a26ad7b7ff682ee"),
    ("conv-faces-denoise", "d8253dca7adc1a4c"), ("conv-photos-denoise", "4235faabe625f801"),
    ("dense-faces", "13ed9321ca83e05f"), ("eigenfaces", "1374be7375a8fe2e"),
    ("linear-faces", "43912502c5208546"), ("pca-block", "04fdf0ff33182f38"),
    ("conv-photos.v8", "d6ec5e204cbe6095"),
    ("conv-photos.v9", "e1487e2d1b74ee8e"),
    ("conv-faces.v2", "f99de5803e4cdfaa"),
    ("conv-photos-denoise.v2", "b1d24bb0d4694a31"),
    ("conv-faces-denoise.v2", "d71d50da20d7f604"),
    ("conv-photos.v10", "c32e29ba67852f50"),
    ("conv-faces.v3", "8857c541a554ef3f"),
], start=1)}
_ID_OF = {model: i for i, model in MODEL_IDS.items()}


def model_id(name: str, weights_hash: bytes) -> int | None:
    """The version-2 id of a released model (these weights under this name), or None."""
    return _ID_OF.get((name, weights_hash))


@contextlib.contextmanager
def provisional_id(name: str, weights_hash: bytes) -> Iterator[int]:
    """For the duration, in this process only, give an unreleased model the id it would get
    when released (the next free one), so that its files are measured with the header they
    will have (``tools/promote.py``: a named header costs ~20 bytes a file more). Files
    written meanwhile name a model no release knows by that id: measure them, never keep them."""
    if (name, weights_hash) in _ID_OF:
        yield _ID_OF[(name, weights_hash)]
        return
    i = max(MODEL_IDS) + 1
    MODEL_IDS[i] = (name, weights_hash)
    _ID_OF[(name, weights_hash)] = i
    try:
        yield i
    finally:
        del MODEL_IDS[i], _ID_OF[(name, weights_hash)]

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
    """A whole `.aec` file: header, packed latent symbols, an optional packed alpha plane, and
    the layout version it is (to be) written in."""

    header: Header
    payload: bytes  # packed latent symbols (aecodec.pack)
    alpha: bytes | None = None  # packed alpha plane, only for the RGBA and LA modes
    version: int = FORMAT_VERSION  # container layout: 1 or 2 (READ_VERSIONS)

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
        if not _is_int(self.version) or self.version not in READ_VERSIONS:
            raise AecFormatError(f"version must be one of {READ_VERSIONS}, got {self.version!r}")


def uvarint(n: int) -> bytes:
    """LEB128: 7 bits a byte, least significant first, the high bit set on all but the last."""
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_uvarint(data: bytes, pos: int, limit: int, what: str) -> tuple[int, int]:
    """(value, position after it) of the minimal LEB128 varint at ``pos``, 0..``limit``."""
    value = shift = 0
    for i in range(pos, min(len(data), pos + 5)):  # 5 bytes hold 35 bits, more than any limit
        byte = data[i]
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if byte == 0 and i > pos:
                raise AecFormatError(f"corrupt .aec file: the {what} is not minimally encoded")
            if value > limit:
                raise AecHeaderLimitError(f"corrupt .aec file: {what} {value} is over the "
                                          f"limit of {limit}")
            return value, i + 1
    if len(data) < pos + 5:
        raise AecFormatError(f"truncated .aec file: it ends in the {what}")
    raise AecFormatError(f"corrupt .aec file: the {what} runs over 5 bytes")


def _header_v1(h: Header) -> bytes:
    name = h.model.encode("ascii")
    return (bytes([len(name)]) + name
            + HEADER_FIELDS.pack(h.weights_hash, h.width, h.height, MODES[h.mode], h.quality,
                                 h.packing, len(h.latent_shape))
            + b"".join(DIM.pack(d) for d in h.latent_shape))


def _header_v2(h: Header, alpha: bytes | None, payload: bytes) -> tuple[int, bytes]:
    """(flags, the bytes from the model field to the payload) of a version-2 file."""
    flags = FLAG_ALPHA if alpha is not None else 0
    mid = model_id(h.model, h.weights_hash)
    if mid is None:
        flags |= FLAG_NAMED
        name = h.model.encode("ascii")
        model = bytes([len(name)]) + name + h.weights_hash
    else:
        model = bytes([mid])
    if h.quality == int(h.quality):
        flags |= FLAG_INT_QUALITY
        quality = bytes([int(h.quality)])
    else:
        quality = struct.pack("<f", h.quality)
    var = (model + bytes([MODES[h.mode], h.packing]) + quality + uvarint(h.width)
           + uvarint(h.height) + bytes([len(h.latent_shape)])
           + b"".join(uvarint(d) for d in h.latent_shape)
           + (uvarint(len(payload)) if alpha is not None else b""))
    return flags, var


def write(f: AecFile) -> bytes:
    """The bytes of ``f`` in its layout version: prefix, header, payload, [alpha], CRC-32 of all
    before it."""
    if f.version == 1:
        var = _header_v1(f.header)
        flags = FLAG_ALPHA if f.alpha is not None else 0
        out = [PREFIX.pack(MAGIC, 1, flags, len(var)), var, CHUNK_LEN.pack(len(f.payload)), f.payload]
        if f.alpha is not None:
            out += [CHUNK_LEN.pack(len(f.alpha)), f.alpha]
    else:
        flags, var = _header_v2(f.header, f.alpha, f.payload)
        out = [MAGIC, bytes([2, flags]), var, f.payload, f.alpha or b""]
    body = b"".join(out)
    return body + CRC.pack(zlib.crc32(body))


def looks_like_aec(prefix: bytes) -> bool:
    """Whether ``prefix`` starts with the `.aec` magic (a Pillow plugin's ``_accept``)."""
    return bytes(prefix[: len(MAGIC)]) == MAGIC


def _make_header(fields: tuple[object, ...], flags: int) -> Header:
    try:
        header = Header(*fields)  # type: ignore[arg-type]
    except AecFormatError as exc:
        # Same type (a limit stays a limit error), with the file's point of view in the message.
        raise type(exc)(f"corrupt .aec file: {exc}") from None
    if flags & FLAG_ALPHA and header.mode not in ("RGBA", "LA"):  # before a stray length is read as one
        raise AecFormatError(f"corrupt .aec file: the alpha flag is set, but an {header.mode} file "
                             f"must not have an alpha chunk")
    return header


def _ascii_name(name: bytes) -> str:
    try:
        return name.decode("ascii")
    except UnicodeDecodeError:
        raise AecFormatError("corrupt .aec file: the model name is not ASCII") from None


def _parse_v1(data: bytes, flags: int) -> tuple[Header, int]:
    """Version 1's header: (header, offset after it)."""
    if len(data) < PREFIX.size:
        raise AecFormatError(f"truncated .aec file: only {len(data)} bytes")
    header_len = PREFIX.unpack_from(data)[3]
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
    return _make_header((_ascii_name(name), weights_hash, width, height, _MODE_NAMES[mode],
                         quality, shape, packing), flags), end


def _take(data: bytes, pos: int, n: int, what: str) -> int:
    """``pos + n``, after checking that the file holds those bytes."""
    if len(data) < pos + n:
        raise AecFormatError(f"truncated .aec file: it ends in the {what}")
    return pos + n


def _parse_v2(data: bytes, flags: int) -> tuple[Header, int, int | None]:
    """Version 2's header: (header, offset after it, payload length if the file says it)."""
    if flags & ~(FLAG_ALPHA | FLAG_INT_QUALITY | FLAG_NAMED):
        raise AecFormatError(f"corrupt .aec file: unknown flags {flags:#04x}")
    pos = _take(data, 6, 1, "model")
    if flags & FLAG_NAMED:
        name_len = data[6]
        if not 1 <= name_len <= _MAX_NAME:
            raise AecFormatError(f"corrupt .aec file: model name length {name_len} is impossible")
        pos = _take(data, pos, name_len + 8, "model name")
        model, weights_hash = _ascii_name(data[7:7 + name_len]), data[7 + name_len:pos]
        if (model, weights_hash) in _ID_OF:
            raise AecFormatError(f"corrupt .aec file: model {model} is registered, so it must be "
                                 f"given by its id")
    else:
        if data[6] not in MODEL_IDS:
            raise AecFormatError(f"this .aec file names model id {data[6]}, which this aecodec "
                                 f"does not know; a newer aecodec may read it")
        model, weights_hash = MODEL_IDS[data[6]]
    start, pos = pos, _take(data, pos, 2, "header")
    mode, packing = data[start], data[start + 1]
    if mode not in _MODE_NAMES:
        raise AecFormatError(f"corrupt .aec file: unknown mode code {mode}")
    if flags & FLAG_INT_QUALITY:
        pos = _take(data, pos, 1, "quality")
        quality: float = data[pos - 1]
    else:
        pos = _take(data, pos, 4, "quality")
        quality = struct.unpack_from("<f", data, pos - 4)[0]
        if math.isfinite(quality) and quality == int(quality):
            raise AecFormatError("corrupt .aec file: an integer quality must be stored in one byte")
    width, pos = _read_uvarint(data, pos, MAX_SIDE, "width")
    height, pos = _read_uvarint(data, pos, MAX_SIDE, "height")
    pos = _take(data, pos, 1, "header")
    ndim = data[pos - 1]
    if not 1 <= ndim <= _MAX_NDIM:
        raise AecFormatError(f"corrupt .aec file: {ndim} latent dims (must be 1..{_MAX_NDIM})")
    shape = []
    for _ in range(ndim):
        d, pos = _read_uvarint(data, pos, _MAX_DIM, "latent dim")
        shape.append(d)
    header = _make_header((model, weights_hash, width, height, _MODE_NAMES[mode], quality,
                           tuple(shape), packing), flags)
    size = None
    if flags & FLAG_ALPHA:
        size, pos = _read_uvarint(data, pos, MAX_CHUNK, "payload length")
    return header, pos, size


def _parse_header(data: bytes) -> tuple[Header, int, int, int | None]:
    """Check magic, version, flags and header; return (header, flags, offset after it, and the
    payload length where the header gives it (version 2 without alpha does not))."""
    if data[: len(MAGIC)] != MAGIC:
        if len(data) < len(MAGIC) and MAGIC.startswith(data):
            raise AecFormatError(f"truncated .aec file: only {len(data)} bytes")
        raise AecFormatError("not an .aec file (the first bytes are not the .aec magic)")
    if len(data) < 6:
        raise AecFormatError(f"truncated .aec file: only {len(data)} bytes")
    version, flags = data[4], data[5]
    if version not in READ_VERSIONS:
        hint = "; a newer aecodec may read it" if version > max(READ_VERSIONS) else ""
        raise AecVersionError(f"this .aec file has format version {version}, this aecodec "
                              f"reads versions {', '.join(map(str, READ_VERSIONS))}{hint}")
    if version == 2:
        header, end, size = _parse_v2(data, flags)
        return header, flags, end, size
    if flags & ~FLAG_ALPHA:
        raise AecFormatError(f"corrupt .aec file: unknown flags {flags:#04x}")
    header, end = _parse_v1(data, flags)
    return header, flags, end, None


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


def _chunk(data: bytes, pos: int, size: int, name: str) -> int:
    """The end of a ``size``-byte chunk at ``pos``, checked against the bytes there (and the CRC
    after it) before anything is sliced."""
    if size > MAX_CHUNK:
        raise AecHeaderLimitError(f"corrupt .aec file: {name} of {size} bytes is over the "
                                  f"limit of {MAX_CHUNK}")
    if len(data) < pos + size + CRC.size:
        raise AecFormatError(f"truncated .aec file: the {name} needs {size} bytes, only "
                             f"{max(0, len(data) - pos - CRC.size)} are there")
    return pos + size


def read(data: bytes) -> AecFile:
    """Parse and verify a whole `.aec` file; raises only AecFormatError and its subclasses.

    Every length is checked against the limits and against the bytes actually present before
    anything is sliced, then the CRC-32, so truncation, bit flips and trailing bytes are caught.
    """
    data = _as_bytes(data)
    header, flags, pos, size = _parse_header(data)
    if data[4] == 2:
        if len(data) < pos + CRC.size:
            raise AecFormatError("truncated .aec file: it ends before the checksum")
        if size is None:  # no alpha: the payload is all that comes before the CRC
            size = len(data) - pos - CRC.size
        end = _chunk(data, pos, size, "payload")
        chunks = [data[pos:end]] + ([data[end:len(data) - CRC.size]] if flags & FLAG_ALPHA else [])
        pos = len(data) - CRC.size
    else:
        chunks = []
        for name in ("payload", "alpha") if flags & FLAG_ALPHA else ("payload",):
            if len(data) < pos + CHUNK_LEN.size:
                raise AecFormatError(f"truncated .aec file: it ends before the {name} length")
            (size,) = CHUNK_LEN.unpack_from(data, pos)
            end = _chunk(data, pos + CHUNK_LEN.size, size, name)
            chunks.append(data[pos + CHUNK_LEN.size:end])
            pos = end
        if len(data) != pos + CRC.size:
            raise AecFormatError(f"corrupt .aec file: {len(data) - pos - CRC.size} unexpected "
                                 f"bytes after the end of the file")
    if CRC.unpack_from(data, pos)[0] != zlib.crc32(data[:pos]):
        raise AecFormatError("the .aec file is corrupt or truncated (checksum mismatch)")
    return AecFile(header, chunks[0], chunks[1] if len(chunks) > 1 else None, version=data[4])
