"""The hyperprior (packing method 4): an exact integer synthesis that routes every symbol alike
on any thread count, layout or dtype, lossless packing, clear errors on corrupt payloads, and
files that decode to the same symbols in a fresh process."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from aecodec.codec import decode_with, encode_prepared, pack_symbols, read_symbols
from aecodec.container import AecFile, read, write
from aecodec.errors import AecFormatError
from aecodec.images import load_image
from aecodec.models.hyper import (ACT_MAX, Z_MAX, HyperConfig, HyperConvAutoencoder, HyperPrior,
                                  IntSynthesis)
from aecodec.models.conv import ConvAutoencoder
from aecodec.pack import HYPER, LADDER, pack, unpack
from aecodec.train.hyper import attach, hyper_bits, level_gains, side_sample, train_hyper
from aecodec.weights import LoadedModel, load_model_file, save_model, state_hash
from _tiny import TINY_HYPER, tiny_base, tiny_pair


_base = tiny_base


@pytest.fixture(scope="module")
def tiny() -> HyperConvAutoencoder:
    base, hyper = tiny_pair()
    torch.manual_seed(1)
    lat = torch.randn(8, 12, 6, 7) * torch.linspace(0.1, 8, 12)[None, :, None, None]
    train_hyper(base, hyper, lat, steps=4, batch=4, log=lambda _: None)
    return attach(base, hyper, side_sample(base, hyper, lat, n=16))


def _grid(model: HyperConvAutoencoder, seed: int, h: int = 7, w: int = 9) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = np.geomspace(0.05, 9, model.config.latent_channels)[:, None, None] * (1 + 3 * (np.arange(w) > w // 2))
    return np.round(rng.laplace(0, 1, (model.config.latent_channels, h, w)) * scale).astype(np.int32)


def _reference(synth: IntSynthesis, z: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """The integer synthesis with Python integers and explicit loops: no float anywhere."""
    x = [[[int(v) for v in row] for row in ch] for ch in z]
    for layer in synth.layers:
        c, h, w = len(x), len(x[0]), len(x[0][0])
        if layer.up:
            up = [[[0] * (2 * w) for _ in range(2 * h)] for _ in range(c)]
            for ci in range(c):
                for i in range(h):
                    for j in range(w):
                        up[ci][2 * i][2 * j] = x[ci][i][j]
            x, h, w = up, 2 * h, 2 * w
        k, p = layer.k, layer.k // 2
        wt = layer.weight.astype(np.int64).reshape(len(layer.bias), c, k, k).tolist()
        out = []
        for o in range(len(layer.bias)):
            plane = []
            for i in range(h):
                row = []
                for j in range(w):
                    acc = int(layer.bias[o])
                    for ci in range(c):
                        for a in range(k):
                            for b in range(k):
                                ii, jj = i + a - p, j + b - p
                                if 0 <= ii < h and 0 <= jj < w:
                                    acc += wt[o][ci][a][b] * x[ci][ii][jj]
                    v = acc >> layer.shift
                    row.append(min(max(v, 0), ACT_MAX) if layer.relu else v)
                plane.append(row)
            out.append(plane)
        x = out
    return np.array(x, np.int64)[:, :hw[0], :hw[1]]


def test_integer_synthesis_tracks_the_float_one(tiny: HyperConvAutoencoder) -> None:
    grid = _grid(tiny, 0)
    routing = tiny.routing(50)
    z = routing.side(grid)
    ints = tiny.synthesis()(z, grid.shape[1:])
    with torch.no_grad():
        flt = tiny.hyper.log_scale(torch.from_numpy(z).float()[None], grid.shape[1:])[0].numpy() * 8
    assert ints.shape == grid.shape
    assert np.abs(ints - flt).max() < 2.5  # floors and 8-bit weights: within a few 1/8 log2 steps


@settings(max_examples=15, deadline=None)
@given(hnp.arrays(np.int64, (6, 2, 3), elements=st.sampled_from([-Z_MAX, -300, -7, -1, 0, 1, 2, 5, 64, 255, Z_MAX])))
def test_integer_synthesis_equals_python_integers(tiny: HyperConvAutoencoder, z: np.ndarray) -> None:
    synth = tiny.synthesis()
    assert np.array_equal(synth(z, (7, 9)), _reference(synth, z, (7, 9)))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_routing_is_the_same_on_every_layout_dtype_and_thread_count(tiny: HyperConvAutoencoder, seed: int) -> None:
    rng = np.random.default_rng(seed)
    z = rng.integers(-40, 41, (6, 2, 3))
    routing = tiny.routing(float(rng.uniform(1, 100)))
    ref = routing.route(z, (12, 7, 9))
    keys = routing.scale_keys(z, (12, 7, 9))  # method 7's run orders
    assert keys.dtype == np.int32 and ref.dtype == np.int16 and np.array_equal(np.clip((keys - routing.low) >> routing.shift, 0,
                                                             routing.classes - 1), ref)
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for variant in (z.astype(np.int32), z.astype(np.float32), z.astype(np.float64),
                            np.asfortranarray(z), z[:, :, ::-1][:, :, ::-1], z.astype(np.int16)):
                assert np.array_equal(routing.route(variant, (12, 7, 9)), ref)
                assert np.array_equal(tiny.routing(routing.quality).scale_keys(variant, (12, 7, 9)), keys)
    finally:
        torch.set_num_threads(before)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 5), st.integers(0, 6), st.integers(0, 8), st.integers(1, 18),
       hnp.arrays(np.int64, (6, 2, 3), elements=st.integers(-50, 50)))
def test_classes_on_their_boundaries_are_floors(tiny: HyperConvAutoencoder, c: int, i: int, j: int, k: int,
                                                z: np.ndarray) -> None:
    """Where L + G lands exactly on the lower edge of class k, the symbol is in class k; one
    unit below, in class k - 1: the integer floor, with no float to flip either way."""
    routing = tiny.routing(50)
    log_scale = tiny.synthesis()(z, (7, 9))
    on_edge = routing.low + (k << routing.shift) - int(log_scale[c, i, j])
    routing.gain = routing.gain.copy()
    routing.gain[c] = on_edge
    assert routing.route(z, (12, 7, 9))[c, i, j] == k
    routing.gain[c] = on_edge - 1
    assert routing.route(z, (12, 7, 9))[c, i, j] == k - 1


@pytest.mark.parametrize("quality", [1, 37.5, 100])
def test_method_4_round_trips(tiny: HyperConvAutoencoder, quality: float) -> None:
    routing = tiny.routing(quality)
    for seed in range(4):
        grid = _grid(tiny, seed)
        grid[seed % 3] = 0  # an inactive channel
        method, data = pack(grid, method=HYPER, routing=routing)
        assert method == HYPER
        assert np.array_equal(unpack(data, grid.shape, HYPER, routing), grid)
        best, smallest = pack(grid, routing=routing)  # method 4 beside the others: the smallest
        assert len(smallest) == min(len(data), len(pack(grid)[1]))
        assert np.array_equal(unpack(smallest, grid.shape, best, routing), grid)


def test_method_4_on_an_all_zero_grid(tiny: HyperConvAutoencoder) -> None:
    grid = np.zeros((12, 3, 4), np.int32)
    routing = tiny.routing(50)
    _, data = pack(grid, method=HYPER, routing=routing)
    assert np.array_equal(unpack(data, grid.shape, HYPER, routing), grid)


def test_method_4_needs_the_routing(tiny: HyperConvAutoencoder) -> None:
    grid = _grid(tiny, 0)
    _, data = pack(grid, method=HYPER, routing=tiny.routing(50))
    with pytest.raises(AecFormatError, match="hyperprior"):
        unpack(data, grid.shape, HYPER)
    with pytest.raises(ValueError, match="routing"):
        pack(grid, method=HYPER)


def test_corrupt_method_4_payloads_fail_cleanly(tiny: HyperConvAutoencoder) -> None:
    grid = _grid(tiny, 3)
    routing = tiny.routing(60)
    _, data = pack(grid, method=HYPER, routing=routing)
    rng = np.random.default_rng(0)
    for cut in range(0, len(data), max(1, len(data) // 40)):
        with pytest.raises(AecFormatError):
            unpack(data[:cut], grid.shape, HYPER, routing)
    for _ in range(60):
        bad = bytearray(data)
        bad[int(rng.integers(len(bad)))] ^= 1 << int(rng.integers(8))
        try:
            out = unpack(bytes(bad), grid.shape, HYPER, routing)
        except AecFormatError:
            continue
        assert out.shape == grid.shape  # a flip zstd cannot see may decode to other symbols


def test_hyper_bits_are_finite_and_lower_for_fitted_scales() -> None:
    base = _base()
    hyper = HyperPrior(HyperConfig(latent_channels=12, channels=6))
    torch.manual_seed(2)
    lat = torch.randn(16, 12, 4, 4) * torch.linspace(0.05, 6, 12)[None, :, None, None]
    g = level_gains(base)[torch.zeros(4, dtype=torch.long)]
    with torch.no_grad():
        before = sum(float(b.sum()) for b in hyper_bits(hyper, lat[:4], g, noise=False))
    train_hyper(base, hyper, lat, steps=60, batch=8, lr=3e-3, log=lambda _: None)
    with torch.no_grad():
        after = sum(float(b.sum()) for b in hyper_bits(hyper, lat[:4], g, noise=False))
    assert np.isfinite(after) and after < before


def _loaded(model: HyperConvAutoencoder, tmp_path) -> LoadedModel:
    path = tmp_path / "tiny-hyper.pt"
    save_model(model, path)
    return load_model_file(path)


def test_codec_round_trip_and_same_symbols_in_a_fresh_process(tiny: HyperConvAutoencoder, tmp_path) -> None:
    lm = _loaded(tiny, tmp_path)
    rng = np.random.default_rng(5)
    rgb = (rng.random((40, 56, 3)) * 255).astype(np.uint8)
    enc = encode_prepared(lm, [load_image(rgb)], 55)[0]
    assert enc.header.packing in (1, 2, 3, HYPER)
    if enc.header.packing != HYPER:  # the random tiny model may lose to the plain methods: force it
        grid = read_symbols(read(enc.data), lm)
        header = dataclasses.replace(enc.header, packing=HYPER)
        payload = pack(grid, method=HYPER, routing=lm.model.routing(header.quality))[1]
        enc = dataclasses.replace(enc, data=write(AecFile(header=header, payload=payload, alpha=None)))
    f = read(enc.data)
    assert f.header.packing == HYPER
    symbols = read_symbols(f, lm)
    assert np.array_equal(symbols, lm.model.encode(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255, 55.0)[0].numpy())
    assert decode_with(f, lm).size == (56, 40)
    (tmp_path / "file.aec").write_bytes(enc.data)
    np.save(tmp_path / "symbols.npy", symbols)
    script = textwrap.dedent(f"""
        import numpy as np, torch
        torch.set_num_threads(1)
        from aecodec.codec import read_symbols
        from aecodec.container import AecFile, read, write
        from aecodec.weights import load_model_file
        lm = load_model_file({str(tmp_path / 'tiny-hyper.pt')!r})
        f = read(open({str(tmp_path / 'file.aec')!r}, 'rb').read())
        assert np.array_equal(read_symbols(f, lm), np.load({str(tmp_path / 'symbols.npy')!r}))
        print("same")
    """)
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    import os
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "same"


def test_the_saved_model_keeps_its_integers(tiny: HyperConvAutoencoder, tmp_path) -> None:
    lm = _loaded(tiny, tmp_path)
    assert lm.weights_hash == state_hash({k: (v.half() if v.is_floating_point() else v)
                                          for k, v in tiny.state_dict().items()})
    z = np.arange(-18, 18).reshape(6, 2, 3)
    assert np.array_equal(lm.model.synthesis()(z, (7, 9)), tiny.synthesis()(z, (7, 9)))
    grid = _grid(tiny, 1)
    assert pack_symbols(lm, grid, 40) == pack(grid, routing=tiny.routing(40))


def test_plain_models_still_choose_among_methods_1_to_3() -> None:
    grid = np.zeros((12, 3, 4), np.int32)
    grid[0, 0, 0] = 3
    method, _ = pack(grid)
    assert method in (1, 2, 3)
    assert pack(grid, method=LADDER)[0] == LADDER


def test_the_synthesis_in_small_pieces_is_the_same(tiny: HyperConvAutoencoder) -> None:
    z = np.random.default_rng(3).integers(-30, 31, (6, 5, 4))
    whole = tiny.synthesis()(z, (19, 15))
    pieces = IntSynthesis(tiny.synthesis().layers)
    pieces.ROWS = 7  # fewer positions than a row: one row at a time
    assert np.array_equal(pieces(z, (19, 15)), whole)


def _dtypes_used(monkeypatch, synth: IntSynthesis, z: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, list]:
    """The synthesis of ``z`` and the dtype each of its products ran in."""
    import aecodec.models.hyper as hyper_mod

    seen, real = [], hyper_mod._conv_rows

    def spy(*args, **kwargs):
        seen.append(kwargs.get("dtype", args[5] if len(args) > 5 else np.float64))
        return real(*args, **kwargs)

    monkeypatch.setattr(hyper_mod, "_conv_rows", spy)
    try:
        return synth(z, hw), seen
    finally:
        monkeypatch.setattr(hyper_mod, "_conv_rows", real)


def test_float32_products_give_the_float64_integers(tiny: HyperConvAutoencoder, monkeypatch) -> None:
    """Small side symbols take the float32 products, and the integers out are those of float64
    and of Python integers; turned off (as a program allowing bfloat16 products would), float64."""
    import aecodec.models.hyper as hyper_mod

    synth = tiny.synthesis()
    z = np.random.default_rng(5).integers(-20, 21, (6, 2, 3))
    fast, used = _dtypes_used(monkeypatch, synth, z, (7, 9))
    assert np.float32 in used
    monkeypatch.setattr(hyper_mod, "float32_products_are_ieee", lambda: False)
    slow, used64 = _dtypes_used(monkeypatch, synth, z, (7, 9))
    assert set(used64) == {np.float64}
    assert np.array_equal(fast, slow) and np.array_equal(fast, _reference(synth, z, (7, 9)))


def test_float32_products_stop_at_the_exact_bound(monkeypatch) -> None:
    """One 1x1 layer of weights 2**12 - 1 over 2 channels: an input of 2**11 keeps every sum
    below 2**24 (float32), 2**11 + 1 does not (float64); all exact, where float32 would round
    the last one's sum (odd, above 2**24)."""
    from aecodec.models.hyper import F32_EXACT_BELOW, IntLayer

    layer = IntLayer(np.full((1, 2), 4095.0), np.zeros(1), 1, False, 0, False)
    synth = IntSynthesis([layer])
    for v, want in ((2048, np.float32), (2049, np.float64), (4095, np.float64)):
        z = np.array([[[v]], [[v - 1]]], np.int64)
        out, used = _dtypes_used(monkeypatch, synth, z, (1, 1))
        assert used == [want]
        assert int(out[0, 0, 0]) == 4095 * (2 * v - 1) == int(_reference(synth, z, (1, 1))[0, 0, 0])
    assert 4095 * 2 * 2048 < F32_EXACT_BELOW <= 4095 * 2 * 2049
    assert int(np.float32(4095 * 4095) + np.float32(4095 * 4094)) != 4095 * 8189  # what float64 avoided


def test_routing_ignores_a_program_s_bfloat16_matmul_setting(tiny: HyperConvAutoencoder) -> None:
    z = np.random.default_rng(8).integers(-30, 31, (6, 2, 3))
    routing = tiny.routing(40)
    ref = routing.scale_keys(z, (12, 7, 9))
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")
        from aecodec.models.hyper import float32_products_are_ieee

        assert not float32_products_are_ieee()
        assert np.array_equal(tiny.routing(40).scale_keys(z, (12, 7, 9)), ref)
    finally:
        torch.set_float32_matmul_precision(before)


def test_warmed_scales_are_found_and_the_kept_ones_stay_bounded(tiny: HyperConvAutoencoder, monkeypatch) -> None:
    """``warm`` runs the synthesis once per grid for ``scale_keys`` and ``route`` to find; the
    kept scales stay under SCALES_KEPT_BYTES, the newest always kept."""
    sides = [np.random.default_rng(s).integers(-20, 21, (6, 2, 3)) for s in range(4)]
    want = [tiny.routing(40).scale_keys(z, (12, 7, 9)) for z in sides]
    routing = tiny.routing(40)
    synth = tiny.synthesis()
    calls: list[int] = []

    def counting(z, hw):
        calls.append(1)
        return synth(z, hw)

    monkeypatch.setattr(tiny, "synthesis", lambda: counting)
    for z in sides:
        routing.warm(z, (12, 7, 9))
    assert len(calls) == 4
    for z, keys in zip(sides, want):
        assert np.array_equal(routing.scale_keys(z, (12, 7, 9)), keys)
        routing.route(z, (12, 7, 9))
    assert len(calls) == 4  # all found
    one = 12 * 7 * 9 * 4
    monkeypatch.setattr(type(routing), "SCALES_KEPT_BYTES", 2 * one)
    routing.warm(np.zeros((6, 2, 3), np.int64), (12, 7, 9))
    assert sum(v.nbytes for v in routing._scales.values()) <= 2 * one
    assert np.array_equal(routing.scale_keys(sides[3], (12, 7, 9)), want[3]) and len(calls) == 5  # kept
    assert np.array_equal(routing.scale_keys(sides[0], (12, 7, 9)), want[0]) and len(calls) == 6  # dropped: again
    monkeypatch.setattr(type(routing), "SCALES_KEPT_BYTES", 0)
    routing.warm(sides[1], (12, 7, 9))
    assert len(routing._scales) == 1  # the newest, whatever its size


@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("chw", [(1, 1, 1), (6, 3, 5), (9, 8, 2)])
def test_the_phased_transposed_convolution_is_the_zero_upsampled_one_exactly(k: int, chw: tuple[int, int, int]) -> None:
    from aecodec.models.hyper import _conv_rows, _conv_up_rows, _upsample2

    rng = np.random.default_rng(k * 100 + chw[1])
    x = rng.integers(-4000, 4000, chw).astype(np.float64)
    weight = rng.integers(-2**12, 2**12, (7, chw[0] * k * k)).astype(np.float64)
    for rows in (1, 5, 4096):  # any product size
        assert np.array_equal(_conv_up_rows(x, weight, k, rows), _conv_rows(_upsample2(x), weight, k, 4096))


def test_joint_training_pass_trains_transforms_and_hyperprior_together(tiny: HyperConvAutoencoder) -> None:
    model = HyperConvAutoencoder(tiny.config)
    model.load_state_dict(tiny.state_dict())
    model.train()
    torch.manual_seed(3)
    x = torch.rand(2, 3, 32, 48)
    level = torch.tensor([0, 2])
    out = model(x, level)
    assert out.x_hat.shape == x.shape and out.bits.shape == (2,) and torch.isfinite(out.bits).all()
    (out.bits.mean() + ((out.x_hat - x) ** 2).mean()).backward()
    for name, p in [("g_a", model.g_a[0].weight), ("g_s", model.g_s[-1].weight), ("h_a", model.hyper.h_a[0].weight),
                    ("h_s", model.hyper.h_s[-1].bias), ("gains", model.gain_steps)]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # the rate under autocast is still float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(x, level).bits.dtype == torch.float32


def test_level_bits_is_the_hyperprior_estimate_of_rounded_symbols(tiny: HyperConvAutoencoder) -> None:
    torch.manual_seed(4)
    x = torch.rand(2, 3, 32, 32)
    level = torch.tensor([1, 1])
    with torch.no_grad():
        y = tiny.g_a(x).float()
        g = level_gains(tiny)[level]
        s = torch.round(y * g[:, :, None, None])
        by, bz = hyper_bits(tiny.hyper, y, g, noise=False)
        assert torch.allclose(tiny.level_bits(s, level), by + bz, rtol=1e-5)
        assert not torch.allclose(tiny.level_bits(s, level), ConvAutoencoder.level_bits(tiny, s, level))


def test_attach_takes_only_the_transforms_of_a_model_that_has_a_hyperprior(tiny: HyperConvAutoencoder) -> None:
    hyper = HyperPrior(TINY_HYPER)
    hyper.load_state_dict(tiny.hyper.state_dict())
    with torch.no_grad():
        hyper.h_s[-1].bias.add_(0.5)  # as if joint training had moved it
    lat = torch.randn(4, 12, 6, 7)
    again = attach(tiny, hyper, side_sample(tiny, hyper, lat, n=8))
    assert torch.equal(again.g_a[0].weight, tiny.g_a[0].weight)
    assert torch.equal(again.hyper.h_s[-1].bias, hyper.h_s[-1].bias)
    assert not torch.equal(again.int_b2, tiny.int_b2)  # the integer synthesis re-exported


def test_the_effort_search_s_rate_is_the_hyperprior_s(tiny: HyperConvAutoencoder) -> None:
    """At a level's own quality, soft_bits of rounded latents is the hyperprior's estimate
    (level_bits), not the factorized density's; it has a gradient in the latents."""
    from aecodec.effort import supports_refinement
    from aecodec.models.conv import ConvAutoencoder, quality_position

    assert supports_refinement(tiny)
    levels = tiny.config.levels
    q = 100.0
    lo, hi, t = quality_position(q, levels)
    level = hi if t >= 0.5 else lo
    grid = torch.from_numpy(_grid(tiny, 4)).float()[None]
    want = tiny.level_bits(grid, torch.tensor([level]))
    got = tiny.soft_bits(grid, q)
    assert torch.allclose(got, want, rtol=1e-4)
    assert not torch.allclose(got, ConvAutoencoder.soft_bits(tiny, grid, q), rtol=1e-2)
    z = (grid + 0.2).requires_grad_(True)
    (g,) = torch.autograd.grad(tiny.soft_bits(z, q).sum(), [z])
    assert torch.isfinite(g).all() and g.abs().sum() > 0
