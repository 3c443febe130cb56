"""Integer latent symbols to bytes and back, exactly, with zstd coding them near their entropy."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np
import zstandard as zstd

from aecodec import contexts as ctx
from aecodec.container import uvarint as _varint
from aecodec.errors import AecFormatError, AecInputError

__all__ = ["METHODS", "PLANAR", "LADDER", "CONTEXT", "HYPER", "TABLED", "COMPACT", "ORDERED", "MODELLED", "TABLE_METHODS", "TRY_ALL_MAX",
           "Routing", "candidates_for", "ordered_ok", "pack", "unpack", "entropy_bits"]

PLANAR, LADDER, CONTEXT, HYPER, TABLED, COMPACT, ORDERED = 1, 2, 3, 4, 5, 6, 7
MODELLED = (HYPER, TABLED, COMPACT, ORDERED)  # methods whose files need the model's routing to unpack
TABLE_METHODS = (TABLED, COMPACT, ORDERED)  # methods that need the model's stream tables
METHODS: dict[int, str] = {PLANAR: "planar-zigzag", LADDER: "grouped-ladder", CONTEXT: "context-ladder",
                           HYPER: "hyper-ladder", TABLED: "hyper-tables", COMPACT: "hyper-tables-compact",
                           ORDERED: "hyper-tables-ordered"}

_WIDTHS = (1, 2, 4, 8)  # bits per code in a ladder stage; 8 // w codes share a byte
_MAX_STAGES = 4  # a ladder byte holds four 2-bit widths
_MAX_OFFSET = 127  # per-channel centre, stored as one zigzag byte
_CENTERED = 0x80  # flag in the group byte: per-channel centres follow
_DP_BUCKETS = 12  # the grouping search cuts the scale-sorted channels into this many runs (<= 16)
_TRIED_LADDERS = 3  # ladders per group compressed for real (the best by estimate)
_HIST_CHUNK = 1 << 22  # symbols a run search's histogram pass takes at a time (_class_hist)
_GROUP_BYTES, _TABLE_BYTES = 40.0, 0.4  # grouping cost of a frame, of one Huffman table entry

_Compress = Callable[[bytes], bytes]


def _zigzag(v: np.ndarray) -> np.ndarray:
    """Signed to unsigned (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...) so that small |v| stay small.
    (2v, inverted where v < 0: ``(v << 1) ^ (v >> 63)`` with one int64 temporary, not three:
    on a 24-megapixel grid each is 240 MB.)"""
    z = np.left_shift(v, 1, dtype=np.int64)
    np.invert(z, out=z, where=np.asarray(v) < 0)
    return z


def _to_symbols(z: np.ndarray, centres: np.ndarray | None = None) -> np.ndarray:
    """Zigzag codes (rows, n), plus each row's centre, back to int32 (AecFormatError if they
    do not fit); int32 arithmetic in place unless a code is huge, to keep memory low."""
    wide = bool(z.size) and int(z.max()) >= 1 << 30
    v = z.astype(np.int64 if wide else np.int32)
    sign = v & 1
    np.negative(sign, out=sign)
    v >>= 1
    v ^= sign
    if centres is not None:
        v += centres.astype(v.dtype)[:, None]
    if wide and (int(v.min()) < -(1 << 31) or int(v.max()) >= 1 << 31):
        raise AecFormatError("corrupt payload: a symbol is outside the int32 range")
    return v.astype(np.int32, copy=False)


def _geometry(shape: tuple[int, ...]) -> tuple[int, int]:
    """(channels, symbols per channel): axis 0 of a 2+ dim array; else one channel."""
    channels = shape[0] if len(shape) >= 2 else 1
    return channels, int(np.prod(shape, dtype=np.int64)) // channels if channels else 0


def _pack_codes(codes: np.ndarray, w: int) -> bytes:
    """Codes < 2**w into bytes, 8 // w per byte, first code in the high bits, zero padded."""
    if w == 8:
        return codes.astype(np.uint8).tobytes()
    if w == 1:  # (numpy's own: first bit in the high bit, zero padded)
        return np.packbits(codes.astype(np.uint8, copy=False)).tobytes()
    k = 8 // w
    c = np.zeros(-(-codes.size // k) * k, np.uint8)
    c[: codes.size] = codes
    c = c.reshape(-1, k)
    out = c[:, 0] << (8 - w)
    for j in range(1, k):
        out |= c[:, j] << (8 - w * (j + 1))
    return out.tobytes()


def _unpack_codes(data: bytes, n: int, w: int) -> np.ndarray:
    """Inverse of ``_pack_codes``; the padding must be zero."""
    b = np.frombuffer(data, np.uint8)
    if w == 8:
        return b
    if w == 1:
        c = np.unpackbits(b)
    else:
        shifts = (8 - w * np.arange(1, 8 // w + 1)).astype(np.uint8)
        c = ((b[:, None] >> shifts) & ((1 << w) - 1)).ravel()
    if c[n:].any():
        raise AecFormatError("corrupt payload: nonzero padding bits")
    return c[:n]


_local = threading.local()
_CACHED_MAX = 256  # compressors (and verifying decompressors) a thread keeps


def _compressor(level: int, dictionary: zstd.ZstdCompressionDict | None = None) -> _Compress:
    """zstd writing magicless frames without content size, checksum or dictionary id: pure
    overhead here, as the container says what the payload is and guards it with a CRC-32.
    With ``dictionary`` (method 5) the frames are written with it. Kept per thread (a compressor
    may not be used by two threads at once): a method 7 face makes ~30 frames, and making a
    compressor for each cost ~0.5 ms of its ~11.5 ms packing (16 LFW test faces at quality 50,
    one thread; the same bytes either way)."""
    cache = getattr(_local, "compressors", None)
    if cache is None:
        cache = _local.compressors = {}
    hit = cache.get((level, id(dictionary)))
    if hit is None or hit[0] is not dictionary:  # (the dictionary is held, so its id is not reused)
        if len(cache) >= _CACHED_MAX:
            cache.clear()
        params = zstd.ZstdCompressionParameters(
            compression_level=level, format=zstd.FORMAT_ZSTD1_MAGICLESS,
            write_content_size=0, write_checksum=0, write_dict_id=0)
        hit = cache[level, id(dictionary)] = (dictionary, zstd.ZstdCompressor(dict_data=dictionary,
                                                                              compression_params=params).compress)
    return hit[1]


def _verifier() -> "_Reader":
    """This thread's reader for checking what the encoder wrote (its decompressors kept)."""
    r = getattr(_local, "verifier", None)
    if r is None:
        r = _local.verifier = _Reader(b"")
    return r


class _Reader:
    """Walks a payload; every read is checked against the bytes present and its known size."""

    def __init__(self, data: bytes, compact: bool = False) -> None:
        self.data, self.pos = data, 0
        self.compact = compact  # method 6: stages of 16 bytes or more are tagged (``stage``)
        self._dctx = zstd.ZstdDecompressor(format=zstd.FORMAT_ZSTD1_MAGICLESS)
        self._dict_dctx: dict[int, tuple[zstd.ZstdCompressionDict, zstd.ZstdDecompressor]] = {}

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise AecFormatError(f"corrupt payload: truncated {what}")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def mask(self, channels: int) -> np.ndarray:
        """Bitmask of the channels that hold any nonzero symbol, channel 0 in the high bit."""
        return _unpack_codes(self.take(-(-channels // 8), "channel mask"), channels, 1) > 0

    def frame(self, size: int, dictionary: zstd.ZstdCompressionDict | None = None) -> bytes:
        """One magicless zstd frame, ended by its last block header (RFC 8878), that must
        decompress to exactly ``size`` bytes; zstd may not write more, whatever the frame says.
        With ``dictionary`` the frame was written with it (the frame does not name it)."""
        start, last = self.pos, 0
        if self.take(2, "zstd frame header")[0] != 0:  # descriptor 0, then window descriptor
            raise AecFormatError("corrupt payload: unexpected zstd frame header flags")
        while not last:
            head = int.from_bytes(self.take(3, "zstd block header"), "little")
            last, kind, block = head & 1, (head >> 1) & 3, head >> 3
            if kind == 3:
                raise AecFormatError("corrupt payload: reserved zstd block type")
            self.take(1 if kind == 1 else block, "zstd block")
        return self.decompress(self.data[start:self.pos], size, dictionary)

    def decompress(self, frame: bytes, size: int, dictionary: zstd.ZstdCompressionDict | None = None) -> bytes:
        """``frame`` (one whole magicless frame), which must decompress to exactly ``size`` bytes."""
        dctx = self._dctx
        if dictionary is not None:
            hit = self._dict_dctx.get(id(dictionary))
            if hit is None or hit[0] is not dictionary:  # (held, so its id is not reused)
                if len(self._dict_dctx) >= _CACHED_MAX:
                    self._dict_dctx.clear()
                hit = self._dict_dctx[id(dictionary)] = (dictionary, zstd.ZstdDecompressor(
                    dict_data=dictionary, format=zstd.FORMAT_ZSTD1_MAGICLESS))
            dctx = hit[1]
        try:
            out = dctx.decompress(frame, max_output_size=size, allow_extra_data=False)
        except zstd.ZstdError as e:
            raise AecFormatError(f"corrupt payload: zstd says {e}") from None
        if len(out) != size:
            raise AecFormatError(f"corrupt payload: a stream holds {len(out)} bytes, not {size}")
        return out

    def stage(self, size: int, dictionary: zstd.ZstdCompressionDict | None) -> bytes:
        """One method 6 stage of ``size`` bytes: a LEB128 tag, then the bytes themselves (tag
        0), a frame (tag 4), or what the frame is rebuilt from (``_rebuilt``)."""
        tag = _read_varint(self, _MAX_COMPACT << 3 | 7, "stage tag")
        if tag == _TAG_RAW:
            return self.take(size, "raw codes")
        if tag == _TAG_FRAME:
            return self.frame(size, dictionary)
        if tag & 3 == 0:
            raise AecFormatError(f"corrupt payload: unknown stage tag {tag}")
        frame = _rebuilt(tag, self.take(tag >> (2 if tag & 3 == 2 else 3), "stage block"), size)
        if frame is None:
            raise AecFormatError("corrupt payload: a stage's block of impossible sizes")
        return self.decompress(frame, size, dictionary)

    def codes(self, n: int, w: int, dictionary: zstd.ZstdCompressionDict | None = None,
              raw_below: int = 0) -> np.ndarray:
        """``n`` codes of ``w`` bits: a frame, or (methods 5 and 6) the bytes themselves if
        fewer than ``raw_below``; in a method 6 reader a tagged stage."""
        size = -(-n * w // 8)
        if size < raw_below:
            return _unpack_codes(self.take(size, "raw codes"), n, w)
        return _unpack_codes(self.stage(size, dictionary) if self.compact else self.frame(size, dictionary), n, w)

    def u32(self, count: int) -> np.ndarray:
        """``count`` escaped values, little-endian u32."""
        return np.frombuffer(self.take(4 * count, "escapes"), "<u4").astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Method 1, planar-zigzag: the simple baseline, and the smallest for a handful of symbols.


def _pack_planar(v: np.ndarray, active: np.ndarray, frames: _Compress) -> bytes:
    """Mask, one frame of zigzag bytes (active channels, channel-major), u32 escapes of 255."""
    z = _zigzag(v[active]).ravel()
    body = frames(np.minimum(z, 255).astype(np.uint8).tobytes()) if z.size else b""
    return np.packbits(active).tobytes() + body + (z[z >= 255] - 255).astype("<u4").tobytes()


def _unpack_planar(r: _Reader, channels: int, n: int) -> np.ndarray:
    active, v = r.mask(channels), np.zeros((channels, n), np.int32)
    k = int(active.sum())
    v[active] = _to_symbols(_read_stages(r, k * n, (8,)).reshape(k, n))
    return v


# ---------------------------------------------------------------------------------------------
# Method 2, grouped-ladder: channels grouped by scale, each group coded through a ladder of
# narrow stages. A stage of width w codes min(x, 2**w - 1), 8 // w codes a byte; values at the
# top code go on, minus it, to the next stage, and what the last stage (always 8 bits) escapes
# follows as u32. Several skewed codes in one byte let zstd's Huffman coder (at least one bit
# a byte) go below one bit a symbol, and one frame per group gives each group its own table.


def _ladder_byte(ladder: tuple[int, ...]) -> int:
    """Stage widths as 2-bit log2 codes from the high bits; the first 8-bit stage ends it."""
    return sum((w.bit_length() - 1) << (6 - 2 * i) for i, w in enumerate(ladder))


def _read_ladder(b: int) -> tuple[int, ...]:
    ladder = tuple(1 << ((b >> s) & 3) for s in (6, 4, 2, 0))
    ladder = ladder[: ladder.index(8) + 1] if 8 in ladder else ()
    if not ladder or _ladder_byte(ladder) != b:
        raise AecFormatError(f"corrupt payload: bad ladder byte {b:#04x}")
    return ladder


def _codes_cost(p: np.ndarray, n: int, w: int) -> float:
    """Estimated bytes of a frame of n w-bit codes with probabilities p: Huffman plus table."""
    k = 8 // w
    nbytes = -(-n // k)
    dist = p[p > 0]
    for _ in range(k - 1):
        dist = np.multiply.outer(dist, p[p > 0]).ravel()
    bits = float((dist * np.maximum(1.0, -np.log2(dist))).sum())  # Huffman: >= 1 bit a byte
    seen = float(-np.expm1(nbytes * np.log1p(-np.minimum(dist, 1 - 1e-12))).sum())
    return 5.0 + min(nbytes * bits / 8 + 0.4 * seen + 8.0, nbytes + 3.0)


def _ladder_estimates(hist: np.ndarray) -> list[tuple[float, tuple[int, ...]]]:
    """Every ladder with its estimated cost, cheapest first; ``hist`` bins 0..255, then 256+."""
    memo: dict[tuple[int, int], float] = {}
    found: dict[tuple[int, ...], float] = {}

    def walk(off: int, depth: int, prefix: tuple[int, ...], total: float) -> None:
        rest = hist[off:]
        n = float(rest.sum())
        if n == 0:
            found[(*prefix, 8)] = min(found.get((*prefix, 8), np.inf), total)
            return
        for w in _WIDTHS if depth < _MAX_STAGES - 1 else (8,):
            top = (1 << w) - 1
            esc = float(rest[top:].sum())
            if (off, w) not in memo:
                memo[(off, w)] = _codes_cost(np.append(rest[:top], esc) / n, int(n), w)
            if w == 8:
                found[(*prefix, 8)] = total + memo[(off, w)] + 4 * esc
            else:
                walk(off + top, depth + 1, (*prefix, w), total + memo[(off, w)])

    walk(0, 0, (), 0.0)
    return sorted((cost, ladder) for ladder, cost in found.items())


def _group_cost(hist: np.ndarray) -> float:
    """Rough bytes for one group: its pooled entropy plus a frame and a Huffman table."""
    n, h = hist.sum(), hist[hist > 0]
    return float(-(h * np.log2(h / n)).sum() / 8 + _GROUP_BYTES + _TABLE_BYTES * len(h))


def _plan(x: np.ndarray) -> tuple[np.ndarray, int, float]:
    """Group the active channels (rows of zigzag values ``x``) by scale: returns group ids,
    group count and estimated size. Channels sorted by mean are cut into runs by dynamic
    programming, so a group exists only where its own Huffman table pays for its frame."""
    k = len(x)
    hist = np.bincount((np.minimum(x, 256) + 257 * np.arange(k)[:, None]).ravel(),
                       minlength=257 * k).reshape(k, 257).astype(np.float64)
    order = np.argsort(x.mean(axis=1), kind="stable")
    edges = np.linspace(0, k, min(_DP_BUCKETS, k) + 1).round().astype(int)
    cum = np.concatenate([np.zeros((1, 257)), np.cumsum(hist[order], axis=0)])[edges]
    best, back = [0.0] + [np.inf] * (len(edges) - 1), [0] * len(edges)
    for j in range(1, len(edges)):
        for i in range(j):
            cost = best[i] + _group_cost(cum[j] - cum[i]) + 1
            if cost < best[j]:
                best[j], back[j] = cost, i
    cuts = [len(edges) - 1]
    while cuts[-1]:
        cuts.append(back[cuts[-1]])
    single = _group_cost(cum[-1]) + 1
    if len(cuts) == 2 or single <= best[-1] + -(-k // 2):  # group ids cost a nibble each
        return np.zeros(k, np.int64), 1, single
    gid = np.zeros(k, np.int64)
    for g, (j, i) in enumerate(zip(cuts[-2::-1], cuts[::-1])):
        gid[order[edges[i]:edges[j]]] = g
    return gid, len(cuts) - 1, best[-1] + -(-k // 2)


def _code_group(x: np.ndarray, frames: _Compress) -> tuple[int, bytes]:
    """Code a group through its best few ladders by estimate; keep the smallest for real.
    Returns the ladder byte and the group's stage frames followed by its u32 escapes."""
    hist = np.bincount(np.minimum(x, 256), minlength=257).astype(np.float64)
    made: dict[tuple[int, int], tuple[bytes, np.ndarray]] = {}  # (offset, width) -> stage
    results = []
    for _, ladder in _ladder_estimates(hist)[:_TRIED_LADDERS]:
        out, rest, off = b"", x, 0
        for w in ladder:
            top = (1 << w) - 1
            if (off, w) not in made:
                made[(off, w)] = (frames(_pack_codes(np.minimum(rest, top), w)),
                                  rest[rest >= top] - top)
            frame, rest = made[(off, w)]
            out, off = out + frame, off + top
            if not rest.size:
                break
        out += rest.astype("<u4").tobytes()
        results.append((len(out), _ladder_byte(ladder), out))
    _, byte, out = min(results)
    return byte, out


def _ladder_stages(x: np.ndarray, ladder: tuple[int, ...]) -> tuple[list[bytes], np.ndarray]:
    """The packed codes of each stage ``x`` reaches through ``ladder`` (none past the first
    stage nothing goes up to), and what the last stage escapes (its values minus 255)."""
    stages, rest = [], x
    for w in ladder:
        if not rest.size:
            break
        top = (1 << w) - 1
        stages.append(_pack_codes(np.minimum(rest, top), w))
        rest = rest[rest >= top] - top
    return stages, rest


def _centres(v: np.ndarray) -> np.ndarray:
    """Each row's most frequent value within +-_MAX_OFFSET: what centring subtracts."""
    k = len(v)
    span = 2 * _MAX_OFFSET + 1
    c = np.clip(v, -_MAX_OFFSET, _MAX_OFFSET) + _MAX_OFFSET + span * np.arange(k)[:, None]
    counts = np.bincount(c.ravel(), minlength=span * k).reshape(k, span)
    return counts.argmax(axis=1) - _MAX_OFFSET


def _pack_ladder(v: np.ndarray, active: np.ndarray, frames: _Compress) -> bytes:
    """Mask, group byte, ladder bytes, group id nibbles, [centres frame], each group's stages."""
    out, va = [np.packbits(active).tobytes()], v[active]
    if not len(va):
        return out[0]
    centres, centred = _centres(va), False
    x = _zigzag(va)
    gid, groups, cost = _plan(x)
    if centres.any():  # centring pays when channels sit off zero; the centres cost ~K/4 bytes
        xc = _zigzag(va - centres[:, None])
        gid_c, groups_c, cost_c = _plan(xc)
        if cost_c + len(va) / 4 + 10 < cost:
            x, gid, groups, centred = xc, gid_c, groups_c, True
    coded = [_code_group(x[gid == g].ravel(), frames) for g in range(groups)]
    out += [bytes([(groups - 1) | (_CENTERED if centred else 0)]), bytes(b for b, _ in coded)]
    if groups > 1:
        out.append(_pack_codes(gid, 4))
    if centred:
        out.append(frames(_zigzag(centres).astype(np.uint8).tobytes()))
    return b"".join(out + [stream for _, stream in coded])


def _read_stages(r: _Reader, count: int, ladder: tuple[int, ...], dicts: tuple = (),
                 raw_below: int = 0) -> np.ndarray:
    """``count`` values coded through ``ladder``; what the last stage escapes follows as u32.
    ``dicts``: each stage's zstd dictionary, and stages of fewer than ``raw_below`` bytes
    stored raw (methods 5 and 6)."""
    if not count or not ladder:
        return r.u32(count)
    x = r.codes(count, ladder[0], dicts[0] if dicts else None, raw_below)
    up = x == (1 << ladder[0]) - 1
    if up.any():  # widen only when something went up the ladder
        x = x.astype(np.int64)
        x[up] += _read_stages(r, int(up.sum()), ladder[1:], dicts[1:], raw_below)
    return x


def _unpack_ladder(r: _Reader, channels: int, n: int) -> np.ndarray:
    active = r.mask(channels)
    k = int(active.sum())
    v = np.zeros((channels, n), np.int32)
    if k == 0:
        return v
    head = r.take(1, "group byte")[0]
    groups = (head & 0x0F) + 1
    if head & 0x70 or groups > k:
        raise AecFormatError(f"corrupt payload: bad group byte {head:#04x} for {k} channels")
    ladders = [_read_ladder(b) for b in r.take(groups, "ladder bytes")]
    gid = np.zeros(k, np.int64)
    if groups > 1:
        gid = _unpack_codes(r.take(-(-k // 2), "group ids"), k, 4)
        if gid.max() >= groups or len(np.unique(gid)) != groups:
            raise AecFormatError("corrupt payload: group ids do not match the group count")
    centres = np.zeros(k, np.int32)
    if head & _CENTERED:
        centres = _to_symbols(np.frombuffer(r.frame(k), np.uint8)[None])[0]
        if np.abs(centres).max() > _MAX_OFFSET:
            raise AecFormatError("corrupt payload: channel centre out of range")
    rows = np.flatnonzero(active)
    for g, ladder in enumerate(ladders):
        rows_g = int((gid == g).sum())
        x = _read_stages(r, rows_g * n, ladder).reshape(rows_g, n)
        v[rows[gid == g]] = _to_symbols(x, centres[gid == g])
    return v


# ---------------------------------------------------------------------------------------------
# Method 3, context-ladder: every symbol gets a class from its channel's scale and from the
# symbols decoded before it (aecodec.contexts, exact integers); the 16 classes, ordered by
# predicted scale, are cut into runs, and each run is one stream coded through a ladder, so a
# stream pools symbols of one scale wherever in the image they sit.


def _grid_hw(shape: tuple[int, ...]) -> tuple[int, int]:
    """The (H, W) a grid of ``shape`` is routed as: a 3-D grid's own; a 4-D one's last two
    dims after merging the middle ones; one or two dims: one row."""
    if len(shape) == 3:
        return shape[1], shape[2]
    if len(shape) == 4:
        return shape[1] * shape[2], shape[3]
    return 1, (shape[-1] if shape else 1)


def _route(x: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The encoder's walk: (classes, zigzag values) of every symbol of grid ``x`` (K, H, W),
    phase after phase in the decoder's order."""
    lead, mag = ctx.lead_channels(s), (x + 1) >> 1
    classes, values = [], []
    for phase, (ch, mask) in enumerate(ctx.phase_positions(lead, *x.shape[1:])):
        classes.append(ctx.phase_classes(phase, mag, s, lead, ch, mask).ravel())
        values.append(x[ch][:, mask].ravel())
    return np.concatenate(classes), np.concatenate(values)


def _class_hist(classes: np.ndarray, x: np.ndarray, n: int, bins: int) -> np.ndarray:
    """(n, bins) counts of the zigzag values ``x`` (capped at 256) per class, in pieces of
    ``_HIST_CHUNK`` symbols: at once, a 24 MP grid's temporaries took ~0.5 GB."""
    hist = np.zeros(bins * n, np.int64)
    for i in range(0, len(x), _HIST_CHUNK):
        hist += np.bincount(classes[i:i + _HIST_CHUNK].astype(np.int64) * bins + np.minimum(x[i:i + _HIST_CHUNK], 256),
                            minlength=bins * n)
    return hist.reshape(n, bins)


def _runs(classes: np.ndarray, x: np.ndarray, n: int = ctx.CLASSES) -> list[tuple[int, int]]:
    """Cut the ``n`` classes (ordered by predicted scale) into runs [lo, hi) by dynamic
    programming on estimated size, so that a run exists only where its own stream pays; no run
    is empty."""
    hist = _class_hist(classes, x, n, 257)
    cum = np.concatenate([np.zeros((1, 257)), np.cumsum(hist, axis=0, dtype=np.float64)])
    best, back = [0.0] + [np.inf] * n, [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j):
            h = cum[j] - cum[i]
            if h.sum():
                cost = best[i] + _group_cost(h) + 3  # + a count and a ladder byte
                if cost < best[j]:
                    best[j], back[j] = cost, i
    cuts = [n]
    while cuts[-1]:
        cuts.append(back[cuts[-1]])
    return list(zip(cuts[:0:-1], cuts[-2::-1]))


def _pack_context(v: np.ndarray, active: np.ndarray, frames: _Compress, hw: tuple[int, int]) -> bytes:
    """Mask, scale nibbles, run starts (u16), run counts (LEB128), ladder bytes, run streams."""
    out, va = [np.packbits(active).tobytes()], v[active]
    if not len(va):
        return out[0]
    s = ctx.scale_nibbles(va)
    classes, x = _route(_zigzag(va).reshape(len(va), *hw), s)
    runs, tail = _class_streams(classes, x, ctx.CLASSES, frames)
    starts = sum(1 << lo for lo, _ in runs[1:])
    return b"".join(out + [_pack_codes(s, 4), starts.to_bytes(2, "little"), tail])


def _class_streams(classes: np.ndarray, x: np.ndarray, n: int, frames: _Compress) -> tuple[list[tuple[int, int]], bytes]:
    """Methods 3 and 4: the runs the ``n`` classes are cut into, and what follows the run
    starts: the run counts (LEB128), the ladder bytes and each run's stream, whose values are
    those of ``x`` whose class falls in the run, in order."""
    runs = _runs(classes, x, n)
    run_of = np.zeros(n, np.int16)  # (at most 64 classes: rid in a quarter of int64's memory)
    for r, (lo, hi) in enumerate(runs):
        run_of[lo:hi] = r
    rid = run_of[classes]
    coded = [_code_group(x[rid == r], frames) for r in range(len(runs))]
    counts = b"".join(_varint(int((rid == r).sum())) for r in range(len(runs)))
    return runs, b"".join([counts, bytes(b for b, _ in coded), *(stream for _, stream in coded)])


def _read_varint(r: _Reader, limit: int, what: str = "run count") -> int:
    n = 0
    for i in range(5):
        b = r.take(1, what)[0]
        n |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            if n > limit:
                break
            return n
    raise AecFormatError(f"corrupt payload: bad {what}")


def _unpack_context(r: _Reader, channels: int, n: int, hw: tuple[int, int]) -> np.ndarray:
    active = r.mask(channels)
    k = int(active.sum())
    v = np.zeros((channels, n), np.int32)
    if k == 0:
        return v
    s = _unpack_codes(r.take(-(-k // 2), "scale nibbles"), k, 4).astype(np.int64)
    starts = int.from_bytes(r.take(2, "run starts"), "little")
    if starts & 1:
        raise AecFormatError("corrupt payload: bad run starts")
    run_of = np.cumsum([0] + [(starts >> c) & 1 for c in range(1, ctx.CLASSES)])
    total = k * n
    counts = [_read_varint(r, total) for _ in range(int(run_of[-1]) + 1)]
    if sum(counts) != total:
        raise AecFormatError(f"corrupt payload: the runs hold {sum(counts)} symbols, not {total}")
    ladders = [_read_ladder(b) for b in r.take(len(counts), "ladder bytes")]
    streams = [_read_stages(r, c, lad).astype(np.int64) for c, lad in zip(counts, ladders)]
    used = [0] * len(counts)
    lead = ctx.lead_channels(s)
    x = np.zeros((k, *hw), np.int64)
    mag = np.zeros_like(x)
    for phase, (ch, mask) in enumerate(ctx.phase_positions(lead, *hw)):
        rid = run_of[ctx.phase_classes(phase, mag, s, lead, ch, mask)]
        vals = np.empty(rid.shape, np.int64)
        for run in np.unique(rid):
            sel = rid == run
            take = int(sel.sum())
            if used[run] + take > counts[run]:
                raise AecFormatError("corrupt payload: a run holds fewer symbols than its classes")
            vals[sel] = streams[run][used[run]:used[run] + take]
            used[run] += take
        part = x[ch]
        part[:, mask] = vals
        x[ch], mag[ch] = part, (part + 1) >> 1
    v[active] = _to_symbols(x.reshape(k, n))
    return v


# ---------------------------------------------------------------------------------------------
# Method 4, hyper-ladder: a model's hyperprior (aecodec.models.hyper) gives every symbol a
# class from side symbols z stored first; the classes are cut into runs as in method 3 and each
# run is one stream. The payload: LEB128 length of the z section, the z section (method 2's
# format, for a (N, h, w) grid the routing names), then the channel mask, the run starts
# (a bit per class but the first, ceil((classes - 1) / 8) bytes, little-endian), the run counts
# (LEB128), ladder bytes and the run streams. A run's stream holds its symbols in
# channel-major raster order of the active channels.


class Routing(Protocol):
    """What method 4 needs from a model at one quality."""

    classes: int  # at most 64
    tables: "_Tables | None"  # the model's prebuilt tables (method 5), if it has them

    def side_shape(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        """The (N, h, w) side grid of a symbol grid of ``shape`` (M, H, W)."""

    def side(self, grid: np.ndarray) -> np.ndarray:
        """The encoder's integer side symbols (N, h, w) for a symbol grid (M, H, W)."""

    def route(self, side: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """Every symbol's class (M, H, W), int64 in [0, classes), from the side symbols alone,
        identically on every machine; ValueError if the side symbols are out of range."""

    # Method 7 also needs ``scale_keys(side, shape)``: every symbol's integer predicted scale
    # (M, H, W), int64, finer than its class, from the side symbols alone, identically on every
    # machine (ValueError as ``route``).


def _start_bytes(classes: int) -> int:
    return -(-(classes - 1) // 8)


def _pack_hyper(v: np.ndarray, active: np.ndarray, frames: _Compress, shape: tuple[int, ...],
                routing: Routing, side: np.ndarray | None = None) -> bytes:
    side = np.asarray(routing.side(v.reshape(shape)) if side is None else side, np.int64)
    zv = side.reshape(len(side), -1)
    zpay = _pack_ladder(zv, zv.any(axis=1), frames)
    out = [_varint(len(zpay)), zpay, np.packbits(active).tobytes()]
    if not active.any():
        return b"".join(out)
    classes = np.asarray(routing.route(side, shape), np.int16).reshape(len(v), -1)[active].ravel()  # (< 64 classes)
    runs, tail = _class_streams(classes, _zigzag(v[active]).ravel(), routing.classes, frames)
    starts = sum(1 << (lo - 1) for lo, _ in runs[1:])
    return b"".join(out + [starts.to_bytes(_start_bytes(routing.classes), "little"), tail])


def _unpack_hyper(r: _Reader, channels: int, n: int, shape: tuple[int, ...], routing: Routing) -> np.ndarray:
    zshape = routing.side_shape(shape)
    zlen = _read_varint(r, len(r.data), "side length")
    zr = _Reader(r.take(zlen, "side symbols"))
    side = _unpack_ladder(zr, zshape[0], zshape[1] * zshape[2])
    if zr.pos != len(zr.data):
        raise AecFormatError(f"corrupt payload: {len(zr.data) - zr.pos} bytes too many in the side symbols")
    active = r.mask(channels)
    k = int(active.sum())
    v = np.zeros((channels, n), np.int32)
    if k == 0:
        return v
    try:
        classes = np.asarray(routing.route(side.reshape(zshape), shape), np.int64)
    except ValueError as e:
        raise AecFormatError(f"corrupt payload: {e}") from None
    nb = _start_bytes(routing.classes)
    starts = int.from_bytes(r.take(nb, "run starts"), "little")
    if starts >> (routing.classes - 1):
        raise AecFormatError("corrupt payload: bad run starts")
    run_of = np.cumsum([0] + [(starts >> c) & 1 for c in range(routing.classes - 1)])
    rid = run_of[classes.reshape(channels, n)[active].ravel()]
    total = k * n
    counts = [_read_varint(r, total) for _ in range(int(run_of[-1]) + 1)]
    if sum(counts) != total:
        raise AecFormatError(f"corrupt payload: the runs hold {sum(counts)} symbols, not {total}")
    ladders = [_read_ladder(b) for b in r.take(len(counts), "ladder bytes")]
    x = np.empty(total, np.int64)
    for run, (c, lad) in enumerate(zip(counts, ladders)):
        sel = rid == run
        if int(sel.sum()) != c:
            raise AecFormatError("corrupt payload: a run's count does not match its classes")
        x[sel] = _read_stages(r, c, lad)
    v[active] = _to_symbols(x.reshape(k, n))
    return v


# ---------------------------------------------------------------------------------------------
# Method 5, hyper-tables: method 4's routing, with the model's prebuilt tables
# (aecodec.packtables) in place of per-file ones. Every class has a fixed ladder and a zstd
# dictionary per ladder stage, fitted at training time to that class's symbols, so a frame
# reuses the dictionary's entropy tables instead of carrying its own (zstd still chooses,
# frame by frame, a new table where one pays). The side symbols are coded the same way, their
# class being their channel's (the tables' channel map). A section, for symbols whose classes
# the decoder knows: the run starts (a bit per class but the first, ceil((classes - 1) / 8)
# bytes, little-endian), a byte per run naming the class whose table it uses (one of the run's
# own; 0x80 set: every symbol of the run is 0 and nothing more is stored), then each run's
# stages and escapes, its symbols in raster order of the grid; a stage of fewer than
# _RAW_BELOW packed bytes is stored raw, as a frame would cost more. No counts: the decoder
# counts the classes. The payload: LEB128 length of the side section, the side
# section, the latent section.


class _Tables(Protocol):
    """What method 5 needs from ``aecodec.packtables.PackTables``."""

    sets: list
    maps: list

    def compression_dict(self, s: int, c: int, stage: int, level: int) -> zstd.ZstdCompressionDict | None: ...

    def decompression_dict(self, s: int, c: int, stage: int) -> zstd.ZstdCompressionDict | None: ...


# A framed stage's overhead, the run search's price (method 6 and 7 stages: a tag, the literals
# header, zstd's 4-stream jump table). 6 gave smaller files than 12, 9, 4.5 or 3 on 24 LFW test
# faces, 8 BSDS500 test photos and their 64x64 crops at qualities 5-90, with conv-photos.v9
# (a scratch sweep; the result is in benchmarks/hyperprior.md).
_FRAME_BYTES = 6.0
_MAX_COMPACT = (1 << 17) - 1  # method 6 compacts stages of up to this many bytes (one zstd block)
_COST_UNITS = 256    # aecodec.packtables.COST_UNITS
_RAW_BELOW = 16      # a stage of fewer packed bytes is stored as they are, without a frame
_ZERO_RUN = 0x80     # flag in a run's table byte: all its symbols are 0, nothing stored


# Method 6 stores a stage's zstd frame without what the decoder can rebuild. zstd writes a small
# stage as a frame of one compressed block: the frame header and the block header (5 bytes)
# follow from the stage's size, which the decoder knows, and the block's length, which a varint
# tag gives (one or two bytes). When the block holds literals only (no sequences), the literals
# section header and the empty sequences section (4-6 more bytes) follow from the literals'
# length and kind, which the tag then gives instead. The decoder rebuilds the frame and zstd
# decodes it: zstd still makes every bit. Tags: 0 raw codes; 4 a whole frame; 2 mod 4 a block
# of (tag >> 2) bytes; odd, literals of (tag >> 3) bytes, bit 2 treeless, bit 1 four streams.
_LIT_FORMATS = ((1, 3, 10), (4, 3, 10), (4, 4, 14), (4, 5, 18))  # (streams, header bytes, bits), RFC 8878 3.1.1.3.1.1
_TAG_RAW, _TAG_FRAME = 0, 4


def _block_frame(block: bytes, size: int) -> bytes | None:
    """The zstd frame of one compressed block ``block`` that decodes to ``size`` bytes."""
    window = max(size, len(block))
    if window > _MAX_COMPACT:
        return None
    exponent = max(0, (window - 1).bit_length() - 10)  # Window_Descriptor: 2 ** (10 + exponent) bytes
    return bytes([0, exponent << 3]) + (1 | 2 << 1 | len(block) << 3).to_bytes(3, "little") + block


def _literals_block(content: bytes, size: int, treeless: bool, four: bool) -> bytes | None:
    """A block of Huffman-coded literals only (``content``: 1 or 4 streams, with the tree or
    ``treeless``) that decodes to ``size`` bytes; None if no literals header holds the sizes."""
    for fmt, (streams, head, bits) in enumerate(_LIT_FORMATS):
        if (streams == 4) == four and max(size, len(content)) < 1 << bits:
            value = (3 if treeless else 2) | fmt << 2 | size << 4 | len(content) << (4 + bits)
            return value.to_bytes(head, "little") + content + b"\x00"  # 0x00: no sequences
    return None


def _rebuilt(tag: int, body: bytes, size: int) -> bytes | None:
    """The frame a method 6 tag (2 mod 4, or odd) and its bytes stand for."""
    block = body if tag & 3 == 2 else _literals_block(body, size, bool(tag & 4), bool(tag & 2))
    return None if block is None else _block_frame(block, size)


def _compact_stage(frame: bytes, codes: bytes, dictionary: zstd.ZstdCompressionDict | None) -> bytes:
    """A method 6 stage for ``codes``, which zstd packed as ``frame``: the smallest of the codes
    themselves, the frame, and the tagged forms the decoder rebuilds the frame from (each
    checked by decoding it, so a frame it cannot rebuild exactly is kept whole)."""
    options = [_varint(_TAG_RAW) + codes, _varint(_TAG_FRAME) + frame]
    size = len(codes)
    if size > _MAX_COMPACT or len(frame) < 6 or frame[0] != 0:
        return min(options, key=len)
    head = int.from_bytes(frame[2:5], "little")
    block = frame[5:]
    if head & 7 != 5 or head >> 3 != len(block):  # not one last compressed block
        return min(options, key=len)
    tags = [(len(block) << 2 | 2, block)]
    kind, fmt = block[0] & 3, block[0] >> 2 & 3
    streams, hb, bits = _LIT_FORMATS[fmt]
    value = int.from_bytes(block[:hb], "little")
    regen, csize = value >> 4 & ((1 << bits) - 1), value >> (4 + bits)
    if kind in (2, 3) and regen == size and block[hb + csize:] == b"\x00":
        tags.append((csize << 3 | (kind == 3) << 2 | (streams == 4) << 1 | 1, block[hb:hb + csize]))
    for tag, body in tags:
        rebuilt = _rebuilt(tag, body, size)
        try:
            ok = rebuilt is not None and _verifier().decompress(rebuilt, size, dictionary) == codes
        except AecFormatError:
            ok = False
        if ok:
            options.append(_varint(tag) + body)
    return min(options, key=len)


def _tabled_runs(classes: np.ndarray, x: np.ndarray, tables: list) -> list[tuple[int, int, int]]:
    """Cut the classes into runs (lo, hi, table) by dynamic programming on estimated bytes: a
    run's table byte, and per stage it reaches either its raw codes (a stage of fewer than
    ``_RAW_BELOW`` packed bytes is stored so) or its symbols under the table's costs plus
    ``_FRAME_BYTES``; a run of zeros alone costs its table byte (``_ZERO_RUN``).

    Pricing the small stages raw and the zero runs free is what the packer stores; priced as
    framed stages (12 bytes each, as before 2026-12-03), a 64x64 crop's side section went as
    one run over all 8 classes (96 symbols, 11-15 nonzero, all in 2 classes) at 16-21 bytes
    where a zero run and one small run take about half. The decoder reads any cut: only the
    encoder's choice changes (``benchmarks/hyperprior.md``)."""
    n = len(tables)
    # Values above the largest present add nothing to any estimate below (their bins are empty
    # and no stage is reached through them), so the bins stop there: a face's values stay under
    # ~40 of the 257, and the search runs that much quicker, with the same result.
    bins = min(int(x.max()), 256) + 1 if len(x) else 1
    hist = _class_hist(classes, x, n, bins)
    cum = np.concatenate([np.zeros((1, bins)), np.cumsum(hist, axis=0, dtype=np.float64)])
    cost = np.stack([t.cost[:bins] for t in tables]).astype(np.float64) / (8 * _COST_UNITS)  # bytes per symbol
    # every run i..j-1 (0 <= i < j <= n) and every table t of it at once: est[i, j, t]. Costs are
    # multiples of 1 / (8 * _COST_UNITS) and counts integers, so these float64 sums are exact in
    # any order (the same runs, however the products are summed)
    # Each sum over classes i..j-1 is a difference of two sums over classes 0..i-1 and 0..j-1
    # (exact, as above), so every quantity is formed on (n + 1, ...) prefix arrays first and
    # only then broadcast to the (n + 1, n + 1, ...) of all runs: 2.5x quicker than building
    # the runs' histograms (same values, so the same runs and tables).
    above = np.cumsum(cum[:, ::-1], axis=1)[:, ::-1]  # (n + 1, bins): symbols of classes < i at or above each value
    # (a 2-D product in torch: numpy's BLAS would start threads of its own, which spin against
    # torch's on a small machine; exact either way. Imported here: reading a file's header
    # needs this module, not torch)
    import torch
    prefix = (torch.from_numpy(cum) @ torch.from_numpy(cost.T.copy())).numpy()  # (n + 1, n)
    sym = prefix[None, :, :] - prefix[:, None, :]  # (n + 1, n + 1, n): run i..j-1 under each table
    # stage k of table t holds the symbols at or above its offset (stage 0 all of them), w bits each
    stages = max(len(t.ladder) for t in tables)
    offset = np.full((n, stages), bins)  # past the bins: a stage no symbol reaches
    width = np.zeros((n, stages))
    for t, table in enumerate(tables):
        off = 0
        for k, w in enumerate(table.ladder):
            offset[t, k], width[t, k] = min(off, 256), w
            off += (1 << w) - 1
    at = np.concatenate([above, np.zeros((n + 1, 1))], axis=1)[:, np.minimum(offset, bins)].transpose(2, 0, 1)  # (stages, n + 1, n)
    raw, framed = np.zeros((n + 1, n + 1, n)), np.zeros((n + 1, n + 1, n))
    for k in range(stages):  # (a stage at a time: sums over a short last axis are slow in numpy)
        size = np.ceil((at[k][None] - at[k][:, None]) * width[:, k] / 8)  # (n + 1, n + 1, n): stage k's packed bytes
        small = size < _RAW_BELOW
        raw += np.where(small, size, 0)
        framed += ~small
    est = np.where(framed > 0, sym + _FRAME_BYTES * framed, 0) + raw + 1
    nonzero = above[None, :, 1] - above[:, None, 1] if bins > 1 else np.zeros((n + 1, n + 1))
    est[nonzero == 0] = 1.0  # nothing but zeros: the table byte alone
    cls, ends = np.arange(n), np.arange(n + 1)
    est[(cls[None, None, :] < ends[:, None, None]) | (cls[None, None, :] >= ends[None, :, None])] = np.inf  # a run's table is one of its own
    pick = np.argmin(est, axis=2)
    c = np.take_along_axis(est, pick[..., None], axis=2)[..., 0]
    empty = above[None, :, 0] - above[:, None, 0] == 0
    c[empty] = 1.0
    pick = np.where(empty, ends[:, None], pick)
    best, back = np.full(n + 1, np.inf), [(0, 0)] * (n + 1)
    best[0] = 0.0
    for j in range(1, n + 1):
        total = best[:j] + c[:j, j]
        i = int(np.argmin(total))
        best[j], back[j] = total[i], (i, int(pick[i, j]))
    runs, j = [], n
    while j:
        i, t = back[j]
        runs.append((i, j, t))
        j = i
    return runs[::-1]


# Method 7: method 6 with an order per run. Each run's symbols may be stored in one of four
# orders the decoder can rebuild from what it knows (the run's positions in the grid's raster
# order, channel-major, and each symbol's integer predicted scale, ``Routing.scale_keys``); the
# encoder packs the run's stages in each and keeps the smallest. Sorting by predicted scale
# gathers the near-certain zeros into long runs, which zstd codes as matches (fractions of a bit
# a symbol), where in raster order they are Huffman literals of a bit or more. Measured on
# conv-photos.v9's payloads at qualities 5-90: 0.7-2.3 % smaller than method 6's on 250x250
# faces, 0.1-1.0 % on BSDS500 photos, 1.7-7.3 % on 64x64 crops (benchmarks/pack_orders.md). The order is bits 5-6 of the
# run's table byte (so at most 32 classes a set); 0 in the side section, which has no scales.
_ORDER_SHIFT, _ORDERS, _MAX_ORDERED_CLASSES = 5, 4, 32
# Which orders the encoder tries (the decoder reads any): each try packs the run again. Orders 0
# and 3 alone gave most of the gain on faces and photos (faces -2.6 / -1.5 / -0.9 % of the latent
# section at qualities 5 / 30 / 70, all four -2.9 / -1.9 / -1.1 %; BSDS500 -1.0 / -0.6 / -0.3 %
# against -1.2 / -0.7 / -0.3 %) at half the packing time; on grids of up to 64 positions (64x64
# crops: -6.3 / -4.1 / -1.7 % against -7.8 / -5.1 / -2.1 %) trying all four costs little.
ALL_ORDERS_UPTO, GRID_ORDERS = 64, (0, 3)
# With ``side_search`` (the codec's effort >= 2), methods 5-7 also try simpler side symbols (all
# zero; +-1 set to 0) on grids of up to this many positions: on 44 64x64 crops with method 7 the
# smallest was 0.4-2 % smaller than the encoder's own at qualities 70-5, for 5x the packing time;
# on 250x250 faces (256 positions) it changed almost nothing (-0.05 %).
SIDE_SEARCH_UPTO = 64


def _run_order(idx: np.ndarray, order: int, keys: np.ndarray | None, positions: int) -> np.ndarray:
    """The grid indices of a run's symbols (``idx``, ascending) in method 7's ``order``: 0 as
    they are; 1 by predicted scale, smallest first; 2 largest first; 3 position-major, then by
    scale, smallest first. Every sort is stable, so ties keep the order before it."""
    if order == 0:
        return idx
    if keys is None:
        raise AecFormatError("corrupt payload: an ordered run in a section without scales")
    if order == 3:
        idx = idx[np.argsort(idx % positions, kind="stable")]
    k = keys[idx]
    return idx[np.argsort(-k if order == 2 else k, kind="stable")]


def _run_key(rid: np.ndarray, keys: np.ndarray, low: int, span: int, order: int, dtype: type) -> np.ndarray:
    """run * span + the symbol's rank by predicted scale within ``span`` (smallest first; order 2
    largest first), built in place in ``dtype``: what ``_section_order`` sorts by."""
    key = rid.astype(dtype)
    key *= span
    if order == 2:
        key += span - 1 + low
        key -= keys
    else:
        key += keys
        key -= low
    return key


# ``_stable_argsort16`` counts past this many keys (about 7 megapixels of a 320-channel grid),
# in chunks of _SORT_CHUNK: on 30 M keys 1.15 s against numpy's 0.84 s, for 480 MB less
_CHUNKED_SORT_ABOVE = 1 << 23
_SORT_CHUNK = 1 << 18


def _stable_argsort16(key: np.ndarray, index: np.ndarray | None = None) -> np.ndarray:
    """``np.argsort(key, kind="stable")`` for keys in 0..65535 (with ``index``: ``index[np.argsort(
    key[index], kind="stable")]``). Past _CHUNKED_SORT_ABOVE keys, a counting sort a chunk at a
    time into int32 (int64 past 2^31 keys), whose working arrays are the chunk's: numpy's radix
    sort holds an int64 result and an int64 buffer beside it, 480 MB on a 24-megapixel grid's
    30 M symbols."""
    n = len(key) if index is None else len(index)
    if n <= _CHUNKED_SORT_ABOVE:
        perm = np.argsort(key if index is None else key[index], kind="stable")
        return perm if index is None else index[perm]

    def part(a: int) -> np.ndarray:
        return key[a:a + _SORT_CHUNK] if index is None else key[index[a:a + _SORT_CHUNK]]

    counts = np.zeros(1 << 16, np.int64)
    for a in range(0, n, _SORT_CHUNK):
        counts += np.bincount(part(a), minlength=1 << 16)
    free = np.cumsum(counts) - counts  # each key's next slot in the result
    out = np.empty(n, np.int32 if n < 1 << 31 else np.int64)
    for a in range(0, n, _SORT_CHUNK):
        k = part(a)
        p = np.argsort(k, kind="stable")
        c = np.bincount(k, minlength=1 << 16)
        sk = k[p]
        slot = free[sk] + np.arange(len(k)) - (np.cumsum(c) - c)[sk]  # the key's slot plus the rank within it
        out[slot] = p + a if index is None else index[a:a + _SORT_CHUNK][p]
        free += c
    return out


def _section_order(rid: np.ndarray, keys: np.ndarray | None, positions: int, order: int) -> np.ndarray:
    """Every run's symbols in ``order`` at once: a permutation of the section whose slice for run
    ``r`` (the runs in turn) is ``_run_order`` of its indices, the decoder's per-run sort; one
    sort of the whole section (``keys``: None, order 0 alone). One order at a time, so a large
    grid holds one permutation beside order 0's, not all four (a 24-megapixel compress peaked at
    2.16 GB with all four held)."""
    if order == 0:
        return _stable_argsort16(rid.astype(np.int16, copy=False).view(np.uint16))  # (runs <= 127) radix sort: 4x quicker
    n = len(rid)
    low = int(keys.min()) if n else 0
    span = int(keys.max()) - low + 1 if n else 1
    if (int(rid.max()) + 1 if n else 1) * span <= 1 << 16:
        # (run, key) fits 16 bits (32 classes of keys spanning up to 2048 eighths of a log2
        # step): a stable radix sort of it, over the symbols already in the order that breaks
        # ties (raster, or position-major for order 3), gives the same permutation 5x quicker.
        key16 = _run_key(rid, keys, low, span, order, np.int32).astype(np.uint16)
        if order != 3:
            return _stable_argsort16(key16)
        # the indices, position-major (int32 where they fit: a 24-megapixel grid's are 30 M)
        major = np.arange(n, dtype=np.int32 if n < 1 << 31 else np.int64).reshape(n // positions, positions).T.ravel()
        return _stable_argsort16(key16, major)
    if (int(rid.max()) + 1 if n else 1) * span * n >= 1 << 62:  # no composite key: the decoder's sorts, run by run
        runs = [np.flatnonzero(rid == r) for r in range(int(rid.max()) + 1)]
        return np.concatenate([_run_order(idx, order, keys, positions) for idx in runs])
    # (run, key, index) and the like are unique integers: any sort gives the stable order. Built
    # in place: on a 24-megapixel grid each temporary is 120 MB.
    key = _run_key(rid, keys, low, span, order, np.int64)
    key *= n
    at = np.arange(n, dtype=np.int64)
    if order == 3:
        at = np.multiply(at % positions, n // positions) + at // positions
    key += at
    del at
    return np.argsort(key)


def _run_body(x_run: np.ndarray, table, s: int, t: int, tables: _Tables, level: int, compact: bool) -> bytes:
    stages, escapes = _ladder_stages(x_run, table.ladder)
    out = []
    for stage, codes in enumerate(stages):
        if len(codes) < _RAW_BELOW:
            out.append(codes)
            continue
        frame = _compressor(level, tables.compression_dict(s, t, stage, level))(codes)
        out.append(_compact_stage(frame, codes, tables.decompression_dict(s, t, stage)) if compact else frame)
    out.append(escapes.astype("<u4").tobytes())
    return b"".join(out)


def _pack_tabled(classes: np.ndarray, x: np.ndarray, tables: _Tables, s: int, level: int,
                 compact: bool = False, keys: np.ndarray | None = None, positions: int = 1,
                 tried_orders: tuple[int, ...] | None = None) -> bytes:
    """One method 5 (``compact``: 6) section: zigzag values ``x`` whose classes in table set
    ``s`` are ``classes``; with ``keys`` (the symbols' predicted scales), method 7's, each run
    in the smallest of ``tried_orders`` (None: all; ``positions``: the grid's H * W)."""
    n = len(tables.sets[s])
    runs = _tabled_runs(classes, x, tables.sets[s])  # the same search as method 5's
    run_of = np.zeros(n, np.int16)  # at most 127 runs (a class table byte)
    for r, (lo, hi, _) in enumerate(runs):
        run_of[lo:hi] = r
    rid = run_of[classes]
    del classes
    orders = [0] if keys is None else sorted(range(_ORDERS) if tried_orders is None else tried_orders)
    ends = np.cumsum(np.bincount(rid, minlength=len(runs)))
    bounds = [(ends[r - 1] if r else 0, ends[r]) for r in range(len(runs))]
    first = _section_order(rid, keys, positions, 0)
    if len(first) < 1 << 31:  # held through every order: int32 halves it (120 MB on a 24 MP grid)
        first = first.astype(np.int32, copy=False)
    live = [r for r, (lo, hi) in enumerate(bounds) if x[first[lo:hi]].any()]
    best: dict[int, tuple[bytes, int]] = {}
    for o in orders:  # the lowest order on ties: tried in turn, a later one kept only if smaller
        perm = _section_order(rid, keys, positions, o) if o else first
        first = None  # order 0's permutation let go once its turn is over (120 MB on a 24 MP grid)
        for r in live:
            lo, hi = bounds[r]
            t = runs[r][2]
            body = _run_body(x[perm[lo:hi]], tables.sets[s][t], s, t, tables, level, compact)
            if r not in best or len(body) < len(best[r][0]):
                best[r] = (body, o)
        del perm
    picks = [t | (best[r][1] << _ORDER_SHIFT if r in best else _ZERO_RUN) for r, (_, _, t) in enumerate(runs)]
    return b"".join([sum(1 << (lo - 1) for lo, _, _ in runs[1:]).to_bytes(_start_bytes(n), "little"),
                     bytes(picks), *(best[r][0] for r in live)])


def _unpack_tabled(r: _Reader, classes: np.ndarray, tables: _Tables, s: int, ordered: bool = False,
                   keys: np.ndarray | None = None, positions: int = 1) -> np.ndarray:
    """Zigzag values (int64, in the order of ``classes``) of one method 5 (6; ``ordered``: 7,
    ``keys`` the symbols' predicted scales where the section has them) section."""
    n = len(tables.sets[s])
    starts = int.from_bytes(r.take(_start_bytes(n), "run starts"), "little")
    if starts >> (n - 1):
        raise AecFormatError("corrupt payload: bad run starts")
    bounds = [0] + [c + 1 for c in range(n - 1) if starts >> c & 1] + [n]
    run_of = np.repeat(np.arange(len(bounds) - 1, dtype=np.int16), np.diff(bounds))  # (at most 64 runs)
    picks = r.take(len(bounds) - 1, "run tables")
    rid = run_of[classes]
    x = np.empty(len(classes), np.int64)
    for run, pick in enumerate(picks):
        order = (pick >> _ORDER_SHIFT) & (_ORDERS - 1) if ordered else 0
        t = pick & ~_ZERO_RUN & ~((_ORDERS - 1) << _ORDER_SHIFT if ordered else 0)
        if not bounds[run] <= t < bounds[run + 1]:
            raise AecFormatError(f"corrupt payload: run {run} names table {t}, outside its classes")
        idx = np.flatnonzero(rid == run)
        if pick & _ZERO_RUN:
            if order:
                raise AecFormatError(f"corrupt payload: run {run} is all zeros and has an order")
            x[idx] = 0
            continue
        table = tables.sets[s][t]
        dicts = tuple(tables.decompression_dict(s, t, k) for k in range(len(table.ladder)))
        x[_run_order(idx, order, keys, positions)] = _read_stages(r, len(idx), table.ladder, dicts, _RAW_BELOW)
    return x


def _side_classes(tables: _Tables, shape: tuple[int, int, int]) -> np.ndarray:
    cmap = tables.maps[1]
    if len(cmap) != shape[0]:
        raise ValueError(f"the tables map {len(cmap)} side channels, the model has {shape[0]}")
    return np.repeat(cmap, shape[1] * shape[2])


def _pack_hyper_tables(v: np.ndarray, shape: tuple[int, ...], routing: Routing, level: int,
                       compact: bool = False, ordered: bool = False, side_search: bool = False,
                       side: np.ndarray | None = None) -> bytes:
    side = np.asarray(routing.side(v.reshape(shape)) if side is None else side, np.int64)
    positions = int(np.prod(shape[1:]))
    if not side_search or positions > SIDE_SEARCH_UPTO:
        return _hyper_tables_payload(v, shape, routing, side, level, compact, ordered, positions)
    # The side symbols only route: any of them decodes to the same image. On a small grid the
    # encoder's own are not always the cheapest file, so a few simpler ones are tried too.
    tried, best = [], None
    for z in (side, np.zeros_like(side), np.where(np.abs(side) <= 1, 0, side),
              np.where(side == 1, 0, side), np.where(side == -1, 0, side)):
        if any(np.array_equal(z, t) for t in tried):
            continue
        tried.append(z)
        data = _hyper_tables_payload(v, shape, routing, z, level, compact, ordered, positions)
        if best is None or len(data) < len(best):
            best = data
    return best


def _hyper_tables_payload(v: np.ndarray, shape: tuple[int, ...], routing: Routing, side: np.ndarray,
                          level: int, compact: bool, ordered: bool, positions: int) -> bytes:
    tables = routing.tables
    zsec = _pack_tabled(_side_classes(tables, side.shape), _zigzag(side).ravel(), tables, 1, level, compact)
    keys = np.asarray(routing.scale_keys(side, shape), np.int32).ravel() if ordered else None
    tried = None if positions <= ALL_ORDERS_UPTO else GRID_ORDERS
    x = _zigzag(v).ravel()
    if x.size and int(x.max()) < 1 << 32:  # (always, for int32 symbols) uint32 halves the section's working arrays
        x = x.astype(np.uint32)
    ysec = _pack_tabled(np.asarray(routing.route(side, shape), np.int16).ravel(), x, tables, 0,
                        level, compact, keys, positions, tried)
    return b"".join([_varint(len(zsec)), zsec, ysec])


def latent_run_picks(data: bytes, routing: Routing) -> list[tuple[int, int, bool]]:
    """(table, order, all zero) of each run of a method 7 payload's latent section, read as
    ``unpack`` reads them: what the encoder chose (benchmarks, tests)."""
    r = _Reader(data, compact=True)
    zlen = _read_varint(r, len(data), "side length")
    r.take(zlen, "side symbols")
    n = len(routing.tables.sets[0])
    starts = int.from_bytes(r.take(_start_bytes(n), "run starts"), "little")
    picks = r.take(1 + bin(starts).count("1"), "run tables")
    mask = (_ORDERS - 1) << _ORDER_SHIFT
    return [(p & ~_ZERO_RUN & ~mask, (p & mask) >> _ORDER_SHIFT, bool(p & _ZERO_RUN)) for p in picks]


def ordered_ok(routing: Routing | None) -> bool:
    """Whether method 7 can pack with ``routing``: stream tables of at most 32 classes a set, and
    the predicted scales."""
    tables = getattr(routing, "tables", None)
    return (tables is not None and hasattr(routing, "scale_keys")
            and all(len(t) <= _MAX_ORDERED_CLASSES for t in tables.sets))


def _unpack_hyper_tables(r: _Reader, channels: int, n: int, shape: tuple[int, ...], routing: Routing,
                         ordered: bool = False) -> np.ndarray:
    tables = routing.tables
    zshape = routing.side_shape(shape)
    zlen = _read_varint(r, len(r.data), "side length")
    zr = _Reader(r.take(zlen, "side symbols"), r.compact)
    side = _to_symbols(_unpack_tabled(zr, _side_classes(tables, zshape), tables, 1)[None])[0]
    if zr.pos != len(zr.data):
        raise AecFormatError(f"corrupt payload: {len(zr.data) - zr.pos} bytes too many in the side symbols")
    try:
        # int16 classes and int32 keys: the same values in a quarter and half the memory (a 24 MP
        # grid's would be 240 MB each as int64)
        classes = np.asarray(routing.route(side.reshape(zshape), shape), np.int16).ravel()
        keys = np.asarray(routing.scale_keys(side.reshape(zshape), shape), np.int32).ravel() if ordered else None
    except ValueError as e:
        raise AecFormatError(f"corrupt payload: {e}") from None
    return _to_symbols(_unpack_tabled(r, classes, tables, 0, ordered, keys, n).reshape(channels, n))


_PACKERS = {PLANAR: _pack_planar, LADDER: _pack_ladder}
_UNPACKERS = {PLANAR: _unpack_planar, LADDER: _unpack_ladder}
TRY_ALL_MAX = 16384  # pack(method=None) tries every method only on grids up to this size
# zstd level, by grid size: on the default model's symbols at qualities 20/50/80
# (benchmarks/pack_speed.md) level 15 made the same bytes as 19 on 1024-px photos (-0.03 %) in
# about 74 % of the time, +0.07 % on 768x512 photos (245,760 symbols) in 80-85 %, but +0.13 % on
# 481x321 BSDS500 photos and 0.2-0.4 % on 250x250 faces, whose packing is quick at any level;
# 12 was 1.7 % larger overall. Only the encoder's effort: every level decodes alike.
SMALL_LEVEL, LARGE_LEVEL, LARGE_FROM = 19, 15, 1 << 17
# Above this many symbols (about 6 megapixels) the methods run one after the other: at once,
# their working memory adds up (a 24-megapixel compress peaked at 2.03 GB against 1.54 GB).
PARALLEL_MAX = 1 << 22


# With a model's stream tables, the methods worth trying depend on the grid (latent positions,
# H * W; benchmarks/pack_choice.md): below 64 positions (128 px) method 2 wins a few files;
# from there method 6 (v7's tables) won every file but 3 of 32 whole BSDS500 photos (651
# positions), which method 4 won. With method 7 (v9's tables) method 4 won none of 64 files of
# 651-2,752 positions (BSDS500, 768x512), but 2 of 8 at 10,880 (2048x1360; by up to 0.3 % in a
# scratch check, where 7 won others by up to 0.6 %): it is tried from ``ORDERED_HYPER_FROM``,
# which spares a 768x512 photo's encode half its packing.
TABLES_PLAIN_BELOW, TABLES_HYPER_FROM, ORDERED_HYPER_FROM = 64, 512, 8192


def candidates_for(shape: tuple[int, ...], routing: Routing | None) -> list[int]:
    """The methods ``pack(method=None)`` tries for a grid of ``shape`` (and the model's routing)."""
    size = int(np.prod(shape))
    plain = [m for m in METHODS if m < HYPER] if size <= TRY_ALL_MAX else [LADDER, CONTEXT]
    if routing is None:
        return plain
    if getattr(routing, "tables", None) is None:
        return plain + [HYPER]
    positions = int(np.prod(shape[1:]))
    # Method 6 stands in for 5: its stages are never more than a byte larger, mostly 8-10 smaller;
    # and 7 for 6, whose files it would write byte for byte but for the method byte.
    ordered = ordered_ok(routing)
    hyper_from = ORDERED_HYPER_FROM if ordered else TABLES_HYPER_FROM
    return ((plain if positions < TABLES_PLAIN_BELOW else []) + ([HYPER] if positions >= hyper_from else [])
            + [ORDERED if ordered else COMPACT])


def pack(symbols: np.ndarray, method: int | None = None, level: int | None = None,
         routing: Routing | None = None, side_search: bool = False,
         side: np.ndarray | None = None) -> tuple[int, bytes]:
    """Pack integer symbols (any shape; axis 0 = channels) losslessly; returns (method, data).

    ``method=None`` tries the methods ``candidates_for`` gives and keeps the smallest result (the
    lowest id on ties); above ``TRY_ALL_MAX`` symbols it skips the planar baseline, which
    loses on every grid of that size measured (benchmarks/packing_synthetic.md). Methods 4-7 need
    a model's ``routing`` (a hyperprior at the file's quality) and a 3-D grid; given one, they are
    tried beside the others (the side symbols cost more than they save on some small grids;
    benchmarks/hyperprior.md counts the files each wins), and with stream tables only where
    they have won (benchmarks/pack_choice.md). ``level`` is
    the zstd level (1..22; None: 19, or 15 from ``LARGE_FROM`` symbols). ``side_search``: on small
    grids, methods 5-7 also try simpler side symbols (``SIDE_SEARCH_UPTO``), an encoder effort.
    ``side``: ``routing.side(symbols)``, where the caller has it already (the batch encoder
    computes it beside the next batch's network). The shape is not stored: the container keeps
    it and hands it back to ``unpack``; method 3 routes a grid by it (``_grid_hw``).
    """
    a = np.asarray(symbols)
    if a.dtype.kind not in "iu":
        raise AecInputError(f"symbols must be an integer array, got dtype {a.dtype}")
    if a.size and (int(a.min()) < -(1 << 31) or int(a.max()) >= 1 << 31):
        raise AecInputError("symbols must fit in int32; the quantizer produced a value outside")
    if method is not None and method not in METHODS:
        raise ValueError(f"unknown packing method {method}; choose one of {sorted(METHODS)}")
    if (method in MODELLED or routing is not None) and (routing is None or a.ndim != 3):
        raise ValueError("packing methods 4 to 7 need a model's routing and a (channels, height, width) grid")
    if method in TABLE_METHODS and getattr(routing, "tables", None) is None:
        raise ValueError(f"packing method {method} needs a model with stream tables")
    if method == ORDERED and not ordered_ok(routing):
        raise ValueError("packing method 7 needs a model's predicted scales and tables of at most 32 classes a set")
    if level is None:
        level = LARGE_LEVEL if a.size >= LARGE_FROM else SMALL_LEVEL
    if not 1 <= level <= zstd.MAX_COMPRESSION_LEVEL:
        raise ValueError(f"zstd level must be 1..{zstd.MAX_COMPRESSION_LEVEL}, got {level}")
    geometry = _geometry(a.shape)
    active = a.reshape(geometry).any(axis=1)
    candidates = [method] if method else candidates_for(a.shape, routing)
    hw = _grid_hw(a.shape)

    def packed(m: int) -> tuple[int, int, bytes]:
        frames = _compressor(level)  # this thread's: each method runs in its own
        if m in TABLE_METHODS:
            assert routing is not None
            # the symbols as they are (any integer type): methods 5-7 widen only what they
            # need, so a 24-megapixel grid holds no int64 copy of itself (240 MB) meanwhile
            d = _pack_hyper_tables(a.reshape(geometry), a.shape, routing, level, compact=m in (COMPACT, ORDERED),
                                   ordered=m == ORDERED, side_search=side_search, side=side)
            return len(d), m, d
        if m == HYPER:  # as methods 5-7: the symbols as they are, its zigzag values widened
            assert routing is not None
            d = _pack_hyper(a.reshape(geometry), active, frames, a.shape, routing, side)
            return len(d), m, d
        v = a.astype(np.int64).reshape(geometry)  # (made per method: sequential methods never hold two)
        d = _pack_context(v, active, frames, hw) if m == CONTEXT else _PACKERS[m](v, active, frames)
        return len(d), m, d

    if len(candidates) > 1 and a.size <= PARALLEL_MAX:  # at once: zstd and numpy release the GIL
        with ThreadPoolExecutor(len(candidates), thread_name_prefix="aecodec-pack") as pool:
            results = list(pool.map(packed, candidates))
    else:
        results = [packed(m) for m in candidates]
    _, best, data = min(results)
    return best, data


def unpack(data: bytes, shape: tuple[int, ...], method: int, routing: Routing | None = None) -> np.ndarray:
    """Exact inverse of ``pack``: int32 symbols of ``shape``; AecFormatError on any bad input.

    Every stream's size follows from ``shape`` and what was decoded before it, and zstd is
    never allowed to write more than that, so a corrupt or hostile payload cannot make this
    allocate more than the shape implies. Method 4 needs the ``routing`` of the file's model
    and quality.
    """
    if method not in METHODS:
        raise AecFormatError(
            f"unknown packing method {method}; this version of aecodec knows {sorted(METHODS)}")
    if not all(isinstance(d, (int, np.integer)) and d >= 0 for d in shape):
        raise AecFormatError(f"bad latent shape {shape!r}")
    channels, n = _geometry(shape := tuple(int(d) for d in shape))
    try:
        r = _Reader(bytes(data), compact=method in (COMPACT, ORDERED))
        if method in MODELLED:
            if routing is None or len(shape) != 3:
                raise AecFormatError(f"packing method {method} needs a hyperprior model and a 3-D latent grid")
            if method in TABLE_METHODS:
                if getattr(routing, "tables", None) is None:
                    raise AecFormatError(f"packing method {method} needs a model with stream tables")
                if method == ORDERED and not ordered_ok(routing):
                    raise AecFormatError("packing method 7 needs a model that predicts scales, with at most 32 classes a set")
                v = _unpack_hyper_tables(r, channels, n, shape, routing, ordered=method == ORDERED)
            else:
                v = _unpack_hyper(r, channels, n, shape, routing)
        elif method == CONTEXT:
            v = _unpack_context(r, channels, n, _grid_hw(shape))
        else:
            v = _UNPACKERS[method](r, channels, n)
        if r.pos != len(r.data):
            raise AecFormatError(f"corrupt payload: {len(r.data) - r.pos} bytes too many")
    except (ValueError, IndexError, OverflowError) as e:  # belt and braces: no numpy traceback
        raise AecFormatError(f"corrupt payload: {e}") from None
    return v.reshape(shape)


def entropy_bits(symbols: np.ndarray) -> float:
    """Empirical order-0 entropy in bits, per channel (axis 0) and summed: sum_c n_c * H(c).
    The packers' yardstick: an ideal static coder with one table per channel, tables free."""
    a = np.asarray(symbols)
    s = np.sort(a.reshape(_geometry(a.shape)), axis=1)
    if s.size == 0:
        return 0.0
    new = np.ones(s.shape, bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]  # each row starts a run, so runs never span rows
    counts = np.diff(np.append(np.flatnonzero(new.ravel()), s.size)).astype(np.float64)
    return float(-(counts * np.log2(counts / s.shape[1])).sum())
