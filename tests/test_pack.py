"""Tests of symbol packing: exact round trips, bounded and safe decoding, size near entropy."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
import zstandard as zstd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from aecodec.errors import AecFormatError, AecInputError
from aecodec.pack import COMPACT, ORDERED, CONTEXT, HYPER, LADDER, METHODS, PLANAR, TABLED, entropy_bits, pack, unpack

PLAIN = sorted(m for m in METHODS if m < HYPER)  # methods 4 and 5 need a model (tests/test_hyper.py)

I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1
SMALL = np.array([[[0, 1], [-1, 2]], [[0, 0], [0, 0]], [[300, -7], [0, 1 << 30]]], np.int32)
# pack(SMALL, method) as written today: decoders must keep reading these exactly
GOLDEN = {
    PLANAR: bytes.fromhex("a0000041000000020104ff0d00ff5901000001ffff7f"),
    LADDER: bytes.fromhex("a000c0000041000000020104ff0d00ff5901000001ffff7f"),
    CONTEXT: bytes.fromhex("a08f000008c000004100000004ffff02010d005901000001ffff7f"),
}


def _latents(channels: int, side: int, seed: int = 0) -> np.ndarray:
    """A synthetic latent grid: Laplacian channels of widely spread scales, some off centre,
    a few all zero, and the int32 extremes and a large value to exercise the escapes."""
    rng = np.random.default_rng(seed)
    scales = np.geomspace(0.1, 20, channels)
    x = np.round(rng.laplace(0, 1, (channels, side, side)) * scales[:, None, None])
    x[::3] += 3
    x[1::7] = 0
    x = x.astype(np.int32)
    x[0, 0, 0], x[-1, -1, -1], x[-2, 0, 0] = I32_MIN, I32_MAX, 100_000
    return x


def _frame(raw: bytes) -> bytes:
    params = zstd.ZstdCompressionParameters(compression_level=3,
                                            format=zstd.FORMAT_ZSTD1_MAGICLESS,
                                            write_content_size=0, write_checksum=0)
    return zstd.ZstdCompressor(compression_params=params).compress(raw)


def test_method_ids_are_pinned() -> None:
    assert METHODS == {1: "planar-zigzag", 2: "grouped-ladder", 3: "context-ladder", 4: "hyper-ladder",
                       5: "hyper-tables", 6: "hyper-tables-compact", 7: "hyper-tables-ordered"}
    assert (PLANAR, LADDER, CONTEXT, HYPER, TABLED, COMPACT, ORDERED) == (1, 2, 3, 4, 5, 6, 7)


@pytest.mark.parametrize("method", PLAIN)
def test_golden_payloads_still_decode(method: int) -> None:
    assert np.array_equal(unpack(GOLDEN[method], SMALL.shape, method), SMALL)


@pytest.mark.parametrize("method", PLAIN)
def test_synthetic_latents_round_trip_exactly(method: int) -> None:
    x = _latents(48, 16)
    got, data = pack(x, method)
    assert got == method
    back = unpack(data, x.shape, method)
    assert back.dtype == np.int32 and np.array_equal(back, x)


def test_ladder_uses_groups_centres_and_deep_ladders_on_varied_channels() -> None:
    x = _latents(48, 16)
    _, data = pack(x, LADDER)
    head = data[48 // 8]
    assert (head & 0x0F) + 1 > 1 and head & 0x80  # several groups, channels centred
    ladders = data[48 // 8 + 1:48 // 8 + 1 + (head & 0x0F) + 1]
    assert any(b & 0x3F for b in ladders)  # some group has more than one stage


def _elements(dtype: type) -> st.SearchStrategy[int]:
    """Mostly small values, as latents are, plus anything else int32 and the dtype can hold."""
    info = np.iinfo(dtype)
    lo, hi = max(int(info.min), I32_MIN), min(int(info.max), I32_MAX)
    return st.integers(max(lo, -8), min(hi, 8)) | st.integers(lo, hi) | st.sampled_from([lo, hi])


symbols = st.sampled_from([np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint32]).flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=6),
                          elements=_elements(dt)))


@settings(max_examples=150, deadline=None)
@given(symbols)
def test_every_method_round_trips_any_int_array(a: np.ndarray) -> None:
    sizes = {}
    for method in PLAIN:
        got, data = pack(a, method, level=3)
        assert got == method
        back = unpack(data, a.shape, method)
        assert back.dtype == np.int32 and back.shape == a.shape
        assert np.array_equal(back, a.astype(np.int64))
        sizes[method] = len(data)
    best, data = pack(a, level=3)
    assert len(data) == min(sizes.values()) and sizes[best] == len(data)


@pytest.mark.parametrize("shape", [(1,), (5,), (1, 1), (3, 1, 1), (2, 3, 4, 5), (1, 70000)])
@pytest.mark.parametrize("fill", [0, -1, 1, I32_MIN, I32_MAX])
def test_constant_arrays_round_trip(shape: tuple[int, ...], fill: int) -> None:
    a = np.full(shape, fill, np.int32)
    for method in PLAIN:
        _, data = pack(a, method, level=1)
        assert np.array_equal(unpack(data, shape, method), a)


def test_all_zero_grid_packs_to_the_channel_mask_alone() -> None:
    _, data = pack(np.zeros((192, 16, 16), np.int32))
    assert len(data) == 192 // 8


@pytest.mark.parametrize("shape", [(0,), (0, 4), (3, 0), (2, 0, 5)])
def test_empty_arrays_round_trip(shape: tuple[int, ...]) -> None:
    a = np.zeros(shape, np.int32)
    for method in PLAIN:
        _, data = pack(a, method)
        assert unpack(data, shape, method).shape == shape


def test_bad_inputs_to_pack_are_refused() -> None:
    with pytest.raises(AecInputError, match="integer"):
        pack(np.zeros(4, np.float32))
    with pytest.raises(AecInputError, match="int32"):
        pack(np.array([1 << 31]))
    with pytest.raises(AecInputError, match="int32"):
        pack(np.array([I32_MIN - 1]))
    with pytest.raises(ValueError, match="method"):
        pack(SMALL, method=7)
    with pytest.raises(ValueError, match="level"):
        pack(SMALL, level=0)


def test_unknown_method_id_raises_format_error() -> None:
    for method in (0, 8, 255):
        with pytest.raises(AecFormatError, match="unknown packing method"):
            unpack(GOLDEN[PLANAR], SMALL.shape, method)


@pytest.mark.parametrize("method", PLAIN)
def test_wrong_shape_raises_format_error(method: int) -> None:
    x = _latents(48, 16)
    _, data = pack(x, method)
    for shape in [(48, 16, 15), (48, 16, 17), (47, 16, 16), (49, 16, 16), (48 * 256,)]:
        with pytest.raises(AecFormatError):
            unpack(data, shape, method)


@pytest.mark.parametrize("method", PLAIN)
def test_truncated_or_extended_payload_raises_format_error(method: int) -> None:
    x = _latents(24, 8)
    _, data = pack(x, method)
    for n in range(len(data)):
        with pytest.raises(AecFormatError):
            unpack(data[:n], x.shape, method)
    with pytest.raises(AecFormatError, match="too many"):
        unpack(data + b"\0", x.shape, method)


@pytest.mark.parametrize("method", PLAIN)
def test_payload_that_decompresses_larger_than_the_shape_raises_without_allocating(
        method: int) -> None:
    # one active channel of 16 symbols, but a frame that inflates to 64 MiB
    head = b"\x80" + {PLANAR: b"", LADDER: b"\x00\xc0", CONTEXT: b"\x00\x00\x00\x10\xc0"}[method]
    data = head + _frame(bytes(64 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(AecFormatError):
            unpack(data, (1, 16), method)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(PLAIN), st.data())
def test_corrupt_payload_only_raises_format_error(method: int, data: st.DataObject) -> None:
    x = _latents(16, 4, seed=data.draw(st.integers(0, 3)))
    b = bytearray(pack(x, method)[1])
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(b) - 1))
        b[i] = data.draw(st.integers(0, 255))
    try:
        back = unpack(bytes(b), x.shape, method)
    except AecFormatError:
        return
    assert back.shape == x.shape and back.dtype == np.int32


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.sampled_from(PLAIN),
       hnp.array_shapes(min_dims=1, max_dims=3, max_side=8))
def test_random_payload_only_raises_format_error(payload: bytes, method: int,
                                                 shape: tuple[int, ...]) -> None:
    try:
        unpack(payload, shape, method)
    except AecFormatError:
        pass


def test_entropy_bits_matches_a_hand_computation() -> None:
    x = np.array([[0, 0, 1, 1], [5, 5, 5, 5], [0, 0, 0, 1]])
    # channel 0: 4 * 1 bit; channel 1: 0; channel 2: 4 * H(1/4)
    h = -(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75))
    assert entropy_bits(x) == pytest.approx(4 + 4 * h)
    assert entropy_bits(np.array([0, 1, 2, 3])) == pytest.approx(8.0)  # 1-D: one channel
    assert entropy_bits(x.reshape(3, 2, 2)) == pytest.approx(entropy_bits(x))
    assert entropy_bits(np.zeros((0, 3))) == 0.0


def test_grouped_ladder_codes_medium_rate_latents_near_their_entropy() -> None:
    rng = np.random.default_rng(0)
    scales = 10 ** rng.uniform(-0.8, 0.3, 64)
    x = np.round(rng.laplace(0, 1, (64, 32, 48)) * scales[:, None, None]).astype(np.int32)
    x[rng.random(64) < 0.35] = 0
    method, data = pack(x)
    assert method == LADDER
    assert len(data) < 1.10 * entropy_bits(x) / 8


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 5000), st.sampled_from([1, 2, 7, 300, 65536]))
def test_the_chunked_stable_sort_is_numpys(seed: int, n: int, span: int) -> None:
    """The large grids' counting sort (here past 64 keys, in chunks of 100) gives numpy's
    stable permutation, alone and through an index."""
    from unittest import mock

    import aecodec.pack as packing
    rng = np.random.default_rng(seed)
    key = rng.integers(0, span, n).astype(np.uint16)
    index = rng.permutation(n).astype(np.int32)
    with mock.patch.object(packing, "_CHUNKED_SORT_ABOVE", 64), mock.patch.object(packing, "_SORT_CHUNK", 100):
        plain, through = packing._stable_argsort16(key), packing._stable_argsort16(key, index)
    assert np.array_equal(plain, np.argsort(key, kind="stable"))
    assert np.array_equal(through, index[np.argsort(key[index], kind="stable")])
    assert n <= 64 or plain.dtype == np.int32


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([1, 2, 4, 8]), st.integers(0, 70), st.integers(0, 2**32 - 1),
       st.sampled_from([np.uint8, np.uint32, np.int64]))
def test_codes_pack_first_in_the_high_bits_and_back(w: int, n: int, seed: int, dtype: type) -> None:
    """``_pack_codes`` against the plain reading of the format (each byte the sum of its codes
    shifted, first highest, zero padded), and ``_unpack_codes`` back."""
    from aecodec.pack import _pack_codes, _unpack_codes

    codes = np.random.default_rng(seed).integers(0, 1 << w, n)
    k = 8 // w
    want = bytes(sum(int(c) << (8 - w * (j + 1)) for j, c in enumerate(codes[i:i + k])) for i in range(0, n, k))
    assert _pack_codes(codes.astype(dtype), w) == want
    assert np.array_equal(_unpack_codes(want, n, w), codes)
    if n % k:
        with pytest.raises(AecFormatError):
            _unpack_codes(want[:-1] + bytes([want[-1] | 1]), n, w)
