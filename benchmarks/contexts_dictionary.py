"""Does a trained zstd dictionary take the per-stream table cost off small files? (No.)

    python benchmarks/contexts_dictionary.py

Trains one zstd dictionary (its entropy tables and content) on the raw streams that packing
method 3 writes for training-split latents (the sets of ``contexts.py --fit``), then packs the
test-split latents of ``contexts.py`` with and without it, keeping per stream the smaller
frame (the best a per-stream "dictionary or not" flag could do, the flag not counted).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import zstandard as zstd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contexts import MODELS, QUALITIES, image_sets, latents  # noqa: E402

from aecodec import pack  # noqa: E402

LEVEL = 19


def streams(v: np.ndarray) -> list[bytes]:
    """The raw (uncompressed) stage inputs method 3 hands zstd for one grid."""
    seen: list[bytes] = []
    plain = pack._compressor(LEVEL)

    def record(data: bytes) -> bytes:
        seen.append(data)
        return plain(data)

    flat = v.astype(np.int64).reshape(len(v), -1)
    pack._pack_context(flat, flat.any(axis=1), record, pack._grid_hw(v.shape))
    return seen


def main() -> None:
    train = [s for model in MODELS for images in image_sets("train", 12, 8, cc_n=4).values()
             for q in QUALITIES for v in latents(model, images, q) for s in streams(v)]
    plain = pack._compressor(LEVEL)
    print(f"{len(train)} training streams, {sum(map(len, train))} bytes")
    test = image_sets("test", 24, 12)
    print("| dictionary | model | set | plain bytes | best of plain/dict | change |")
    print("|---:|---|---|---:|---:|---:|")
    for size in (4096, 16384):
        params = zstd.ZstdCompressionParameters(compression_level=LEVEL, format=zstd.FORMAT_ZSTD1_MAGICLESS,
                                                write_content_size=0, write_checksum=0, write_dict_id=0)
        with_dict = zstd.ZstdCompressor(dict_data=zstd.train_dictionary(size, train, level=LEVEL),
                                        compression_params=params).compress
        for model in MODELS:
            for name, images in test.items():
                tot = defaultdict(int)
                for q in QUALITIES:
                    for v in latents(model, images, q):
                        for s in streams(v):
                            a = len(plain(s))
                            tot["plain"] += a
                            tot["best"] += min(a, len(with_dict(s)))
                print(f"| {size} | {model} | {name} | {tot['plain']} | {tot['best']} | "
                      f"{100 * (tot['best'] / tot['plain'] - 1):+.2f} % |")


if __name__ == "__main__":
    main()
