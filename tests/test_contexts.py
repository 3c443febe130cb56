"""Context classes (packing method 3): exact integer routing, the same on any layout or dtype,
reading only what the decoder has, and smaller files where the scale varies across a grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from aecodec import contexts as ctx
from aecodec.pack import CONTEXT, LADDER, _route, _zigzag, pack, unpack


def _reference_bin(x: int) -> int:
    """min(15, floor(2 log2(1 + x))) with Python integers: the largest k with 2**k <= (1+x)**2."""
    k = 0
    while 2 ** (k + 1) <= (1 + x) ** 2:
        k += 1
    return min(15, k)


def test_log_bin_is_exact_on_and_around_every_boundary() -> None:
    edges = {math.isqrt(2 ** k) + d - 1 for k in range(40) for d in (-1, 0, 1, 2)}
    xs = np.array(sorted({x for x in edges if x >= 0} | set(range(400)) | {10 ** 6, 2 ** 40}), np.int64)
    assert ctx.log_bin(xs).tolist() == [_reference_bin(int(x)) for x in xs]
    assert ctx.log_bin(np.array([0, 1, 2, 3, 4, 180, 181])).tolist() == [0, 2, 3, 4, 4, 14, 15]


def _grid(seed: int, channels: int = 24, h: int = 9, w: int = 11) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = np.geomspace(0.05, 6, channels)[:, None, None] * (1 + 4 * (np.arange(w) > w // 2))
    return np.round(rng.laplace(0, 1, (channels, h, w)) * scale).astype(np.int32)


def _classes(v: np.ndarray) -> np.ndarray:
    x = _zigzag(v.reshape(len(v), -1)).reshape(v.shape)
    return _route(x, ctx.scale_nibbles(v))[0]


def test_routing_is_the_same_for_every_dtype_and_memory_layout() -> None:
    v = _grid(0)
    ref = _classes(v)
    for variant in (v.astype(np.int16), v.astype(np.int64), np.asfortranarray(v),
                    np.ascontiguousarray(v[:, ::-1, :])[:, ::-1, :], v.transpose(1, 2, 0).copy().transpose(2, 0, 1)):
        assert variant.strides != v.strides or variant.dtype != v.dtype
        assert np.array_equal(_classes(variant), ref)
        _, data = pack(variant, CONTEXT)
        assert data == pack(v, CONTEXT)[1]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(1, 7), st.integers(1, 7))
def test_a_phase_reads_only_the_phases_before_it(seed: int, channels: int, h: int, w: int) -> None:
    """What the decoder computes with later phases still empty (here: garbage) is what the
    encoder computed from the whole grid, whatever the values; boundary values included."""
    rng = np.random.default_rng(seed)
    edges = np.array([math.isqrt(2 ** k) - 1 + d for k in range(16) for d in (0, 1)])
    mag = rng.choice(edges, (channels * 6, h, w)).astype(np.int64)
    s = rng.integers(0, 16, len(mag))
    lead = ctx.lead_channels(s)
    phases = ctx.phase_positions(lead, h, w)
    later = np.ones(mag.shape, bool)
    for phase, (ch, mask) in enumerate(phases):
        want = ctx.phase_classes(phase, mag, s, lead, ch, mask)
        sel = np.zeros(mag.shape, bool)
        sel[np.ix_(ch, np.arange(h), np.arange(w))] = mask
        later &= ~sel
        garbage = np.where(later, rng.integers(0, 1 << 20, mag.shape), mag)
        assert np.array_equal(ctx.phase_classes(phase, garbage, s, lead, ch, mask), want)
        assert not want.size or (want.min() >= 0 and want.max() < ctx.CLASSES)


def test_every_symbol_is_in_exactly_one_phase() -> None:
    lead = ctx.lead_channels(np.arange(40) % 16)
    assert lead.sum() == ctx.LEAD
    count = np.zeros((40, 5, 6), int)
    for ch, mask in ctx.phase_positions(lead, 5, 6):
        count[np.ix_(ch, np.arange(5), np.arange(6))] += mask
    assert (count == 1).all()


@settings(max_examples=80, deadline=None)
@given(hnp.arrays(np.int32, hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=9),
                  elements=st.integers(-40, 40) | st.sampled_from([-(1 << 31), (1 << 31) - 1, 180, 181, -181])))
def test_context_method_round_trips_any_grid(v: np.ndarray) -> None:
    _, data = pack(v, CONTEXT, level=3)
    assert np.array_equal(unpack(data, v.shape, CONTEXT), v)


def test_context_method_wins_where_the_scale_varies_across_the_grid() -> None:
    """Busy and quiet regions, shared by all channels, as in real latents (sky against
    foliage): one distribution per channel group (method 2) cannot tell them apart."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(3)
    field = gaussian_filter(rng.normal(0, 1, (32, 32)), 2)
    scale = np.geomspace(0.1, 2, 48)[:, None, None] * np.exp(1.2 * field / field.std())
    v = np.round(rng.laplace(0, 1, (48, 32, 32)) * scale).astype(np.int32)
    assert len(pack(v, CONTEXT)[1]) < 0.98 * len(pack(v, LADDER)[1])
    assert pack(v)[0] == CONTEXT


def test_context_method_wins_on_a_shipped_models_latents() -> None:
    import torch
    from skimage import data

    from aecodec.codec import to_tensor
    from aecodec.weights import load_shipped

    lm = load_shipped("conv-photos")
    with torch.inference_mode():
        v = lm.model.encode(to_tensor([data.astronaut()[:256, :256]], lm.model.stride), 50).numpy()[0]
    assert len(pack(v, CONTEXT)[1]) < 0.98 * len(pack(v, LADDER)[1])


@pytest.mark.parametrize("shape", [(7,), (3, 7), (2, 3, 4, 5)])
def test_context_method_takes_grids_of_other_dims(shape: tuple[int, ...]) -> None:
    v = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape) % 5 - 2
    _, data = pack(v, CONTEXT)
    assert np.array_equal(unpack(data, shape, CONTEXT), v)


def test_a_golden_file_pins_the_context_method() -> None:
    """Method 3 is pinned by a real file as well as by the payload in test_pack (GOLDEN)."""
    from pathlib import Path

    import aecodec

    golden = Path(__file__).resolve().parent / "data" / "golden_conv-photos.v2_q50_context_rgb.aec"
    assert aecodec.info(golden.read_bytes()).packing == CONTEXT


@pytest.mark.parametrize("threads", ["1", "2"])
def test_a_context_file_decodes_to_the_same_symbols_in_a_fresh_process(threads: str, tmp_path) -> None:
    """Written here, unpacked in another process with another thread count: the same symbols."""
    import os
    import subprocess
    import sys

    v = _grid(7, channels=40, h=12, w=10)
    _, data = pack(v, CONTEXT)
    (tmp_path / "p.bin").write_bytes(data)
    code = ("import sys, numpy as np; from aecodec.pack import unpack; "
            f"v = unpack(open(sys.argv[1], 'rb').read(), {v.shape}, 3); sys.stdout.write(v.tobytes().hex())")
    env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "p.bin")], capture_output=True, text=True,
                       env=env, timeout=120, check=True)
    assert bytes.fromhex(r.stdout) == v.astype(np.int32).tobytes()
