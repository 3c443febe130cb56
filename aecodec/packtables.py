"""Prebuilt stream tables of a model (packing method 5): per class, a fixed ladder and one zstd
dictionary per ladder stage, whose entropy tables fit that class's symbols, so a file codes
its streams without carrying a Huffman table of its own.

A model stores its tables as bytes inside its weight file (covered by the weights hash), so the
tables a file was written with are exactly those it is read with. The bytes::

    b"AEPT" | u8 version (1) | u8 set count | sets

    set:    u8 classes | u16 map length | map (u8 class per channel) | classes x class
    class:  u8 ladder byte (aecodec.pack's) | 257 x u16 cost (bits x 256 of zigzag values
            0..255 and of the escape bin; the encoder's estimate only) | per stage:
            u32 dictionary length (0: no dictionary) | dictionary bytes

Set 0 holds the tables of the latents' classes (the hyperprior routes every latent; no map),
set 1 those of the side symbols, whose class is their channel's (the map). A dictionary is a zstd dictionary (RFC 8878, section 5) built at training time; the
file's frames name no dictionary id, the tables say which.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import zstandard as zstd

from aecodec.errors import AecFormatError, AecModelError
from aecodec.pack import _ladder_byte, _read_ladder

__all__ = ["ClassTable", "PackTables", "COST_UNITS", "ESCAPE_BIN"]

MAGIC, VERSION = b"AEPT", 1
COST_UNITS = 256   # costs count 1/256 bit
ESCAPE_BIN = 256   # cost bin of zigzag values >= 256 (before their stage's own bits)


@dataclass(frozen=True)
class ClassTable:
    ladder: tuple[int, ...]     # stage widths, ending with 8 (aecodec.pack's ladders)
    cost: np.ndarray            # (257,) uint16: bits x COST_UNITS per zigzag value bin
    dicts: tuple[bytes, ...]    # one per stage; b"" where the stage has none

    def bits(self, hist: np.ndarray) -> float:
        """Estimated bits of symbols with zigzag histogram ``hist`` (257 bins) under this table."""
        return float(hist @ self.cost.astype(np.float64)) / COST_UNITS


class PackTables:
    """Parsed tables, with zstd (de)compression contexts made once per dictionary and level."""

    def __init__(self, sets: list[list[ClassTable]], maps: list[np.ndarray] | None = None) -> None:
        if not sets or any(not s or len(s) > 64 for s in sets):
            raise ValueError("tables need 1..64 classes in every set")
        self.sets = sets
        self.maps = [np.asarray(m, np.int64) for m in maps] if maps is not None else [np.zeros(0, np.int64)] * len(sets)
        if len(self.maps) != len(sets) or any(m.size and (m.min() < 0 or m.max() >= len(t))
                                              for m, t in zip(self.maps, sets)):
            raise ValueError("a channel map names a class its set lacks")
        self._ddicts: dict[tuple[int, int, int], zstd.ZstdCompressionDict] = {}
        self._cdicts: dict[tuple[int, int, int, int], zstd.ZstdCompressionDict] = {}
        self._lock = threading.Lock()

    # -- bytes ------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        out = [MAGIC, bytes([VERSION, len(self.sets)])]
        for tables, cmap in zip(self.sets, self.maps):
            out += [bytes([len(tables)]), len(cmap).to_bytes(2, "little"), cmap.astype(np.uint8).tobytes()]
            for t in tables:
                if len(t.dicts) != len(t.ladder) or t.cost.shape != (257,):
                    raise ValueError("a class table needs a dictionary slot per stage and 257 costs")
                out += [bytes([_ladder_byte(t.ladder)]), t.cost.astype("<u2").tobytes()]
                for d in t.dicts:
                    out += [len(d).to_bytes(4, "little"), d]
        return b"".join(out)

    @classmethod
    def from_bytes(cls, blob: bytes) -> "PackTables":
        """Parse tables; AecModelError if the bytes are not tables of this version."""
        try:
            return cls._parse(memoryview(bytes(blob)))
        except (ValueError, IndexError, zstd.ZstdError) as e:
            raise AecModelError(f"the model's stream tables are damaged: {e}") from None

    @classmethod
    def _parse(cls, b: memoryview) -> "PackTables":
        if bytes(b[:4]) != MAGIC or len(b) < 6:
            raise ValueError("no tables magic")
        if b[4] != VERSION:
            raise ValueError(f"tables version {b[4]}, this aecodec reads {VERSION}")
        pos, sets, maps = 6, [], []
        for _ in range(b[5]):
            n, size = b[pos], int.from_bytes(bytes(b[pos + 1:pos + 3]), "little")
            maps.append(np.frombuffer(bytes(b[pos + 3:pos + 3 + size]), np.uint8).astype(np.int64))
            if len(maps[-1]) != size:
                raise ValueError("truncated channel map")
            pos += 3 + size
            tables = []
            for _ in range(n):
                try:
                    ladder = _read_ladder(b[pos])
                except AecFormatError as e:
                    raise ValueError(str(e)) from None
                cost = np.frombuffer(bytes(b[pos + 1:pos + 515]), "<u2").astype(np.uint16)
                if len(cost) != 257:
                    raise ValueError("truncated costs")
                pos += 515
                dicts = []
                for _ in ladder:
                    size = int.from_bytes(bytes(b[pos:pos + 4]), "little")
                    d = bytes(b[pos + 4:pos + 4 + size])
                    if len(d) != size:
                        raise ValueError("truncated dictionary")
                    dicts.append(d)
                    pos += 4 + size
                tables.append(ClassTable(ladder, cost, tuple(dicts)))
            sets.append(tables)
        if pos != len(b):
            raise ValueError(f"{len(b) - pos} bytes after the tables")
        return cls(sets, maps)

    # -- zstd -------------------------------------------------------------------------------

    def compression_dict(self, s: int, c: int, stage: int, level: int) -> zstd.ZstdCompressionDict | None:
        """The stage's dictionary, digested for ``level`` (shareable between compressors)."""
        raw = self.sets[s][c].dicts[stage]
        if not raw:
            return None
        key = (s, c, stage, level)
        with self._lock:
            if key not in self._cdicts:
                d = zstd.ZstdCompressionDict(raw, dict_type=zstd.DICT_TYPE_FULLDICT)
                d.precompute_compress(level=level)
                self._cdicts[key] = d
            return self._cdicts[key]

    def decompression_dict(self, s: int, c: int, stage: int) -> zstd.ZstdCompressionDict | None:
        raw = self.sets[s][c].dicts[stage]
        if not raw:
            return None
        key = (s, c, stage)
        with self._lock:
            if key not in self._ddicts:
                self._ddicts[key] = zstd.ZstdCompressionDict(raw, dict_type=zstd.DICT_TYPE_FULLDICT)
            return self._ddicts[key]
