"""Packing methods 5 and 6: a hyperprior model's prebuilt stream tables (aecodec.packtables);
method 6 also stores each stage's zstd frame without the headers the decoder rebuilds."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aecodec.codec import decode_with, encode_prepared, read_symbols
from aecodec.container import AecFile, read, write
from aecodec.errors import AecFormatError, AecModelError
from aecodec.images import load_image
from aecodec.models.hyper import HyperConfig, HyperConvAutoencoder, HyperPrior
from aecodec.models.conv import ConvAutoencoder
from aecodec import pack as packing
from aecodec.pack import COMPACT, HYPER, ORDERED, TABLED, pack, unpack
from aecodec.packtables import PackTables
from aecodec.train.hyper import attach, side_sample, train_hyper
from aecodec.train.tables import build_tables, with_tables
from aecodec.weights import load_model_file, save_model
from _tiny import TINY_CONV, tiny_pair


def _latents(n: int, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.randn(n, 12, 6, 7) * torch.linspace(0.1, 8, 12)[None, :, None, None]


@pytest.fixture(scope="module")
def tabled() -> HyperConvAutoencoder:
    base, hyper = tiny_pair()
    lat = _latents(16, 1)
    train_hyper(base, hyper, lat, steps=4, batch=4, log=lambda _: None)
    model = attach(base, hyper, side_sample(base, hyper, lat, n=16))
    tables = build_tables(model, _latents(96, 2) * 3, n=96, side_classes=3, dict_bytes=256, log=lambda _: None)
    return with_tables(model, tables)


def _grid(model: HyperConvAutoencoder, seed: int, h: int = 7, w: int = 9) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = np.geomspace(0.05, 9, model.config.latent_channels)[:, None, None] * (1 + 3 * (np.arange(w) > w // 2))
    return np.round(rng.laplace(0, 1, (model.config.latent_channels, h, w)) * scale).astype(np.int32)


def test_the_tables_have_dictionaries_and_survive_bytes(tabled: HyperConvAutoencoder) -> None:
    tables = tabled.tables()
    assert tables is not None and len(tables.sets) == 2 and len(tables.sets[0]) == 20
    assert any(d for t in tables.sets[0] for d in t.dicts)  # the dictionary path is exercised
    blob = tables.to_bytes()
    again = PackTables.from_bytes(blob)
    assert again.to_bytes() == blob
    assert np.array_equal(again.maps[1], tables.maps[1]) and len(again.maps[1]) == 6


@pytest.mark.parametrize("cut", [3, 40, -1])
def test_damaged_tables_are_a_model_error(tabled: HyperConvAutoencoder, cut: int) -> None:
    blob = tabled.tables().to_bytes()
    with pytest.raises(AecModelError, match="stream tables"):
        PackTables.from_bytes(blob[:cut])
    with pytest.raises(AecModelError, match="stream tables"):
        PackTables.from_bytes(blob + b"\0")


@pytest.mark.parametrize("m", [TABLED, COMPACT, ORDERED])
@pytest.mark.parametrize("quality", [1, 37.5, 100])
def test_methods_5_and_6_round_trips(m: int, tabled: HyperConvAutoencoder, quality: float) -> None:
    routing = tabled.routing(quality)
    for seed in range(4):
        grid = _grid(tabled, seed, 7 + seed, 9 + 3 * seed)
        grid[seed % 3] = 0
        method, data = pack(grid, method=m, routing=routing)
        assert method == m
        assert np.array_equal(unpack(data, grid.shape, m, routing), grid)
        best, smallest = pack(grid, routing=routing)  # tried beside methods 1-4: the smallest wins
        assert len(smallest) <= len(data)
        assert np.array_equal(unpack(smallest, grid.shape, best, routing), grid)


@pytest.mark.parametrize("m", [TABLED, COMPACT, ORDERED])
def test_methods_5_and_6_codes_huge_values_and_zero_grids(m: int, tabled: HyperConvAutoencoder) -> None:
    routing = tabled.routing(50)
    grid = _grid(tabled, 9)
    grid[4, 2, 3], grid[7, 0, 0], grid[0, 1, 1] = 2**31 - 1, -2**31, 300
    _, data = pack(grid, method=m, routing=routing)
    assert np.array_equal(unpack(data, grid.shape, m, routing), grid)
    zero = np.zeros((12, 5, 6), np.int32)
    _, data = pack(zero, method=m, routing=routing)
    assert np.array_equal(unpack(data, zero.shape, m, routing), zero)
    assert len(data) < 16  # all-zero runs store nothing but their flag


@pytest.mark.parametrize("m", [TABLED, COMPACT, ORDERED])
def test_methods_5_and_6_needs_the_tables(m: int, tabled: HyperConvAutoencoder) -> None:
    grid = _grid(tabled, 0)
    _, data = pack(grid, method=m, routing=tabled.routing(50))
    bare = dataclasses.replace(tabled.config, table_bytes=0)
    plain = HyperConvAutoencoder(bare)
    with pytest.raises(ValueError, match="stream tables"):
        pack(grid, method=m, routing=plain.routing(50))
    with pytest.raises(AecFormatError, match="stream tables"):
        unpack(data, grid.shape, m, plain.routing(50))
    with pytest.raises(AecFormatError, match="hyperprior"):
        unpack(data, grid.shape, m)
    assert pack(grid, routing=plain.routing(50))[0] != m


@pytest.mark.parametrize("m", [TABLED, COMPACT, ORDERED])
def test_corrupt_methods_5_and_6_payloads_fail_cleanly(m: int, tabled: HyperConvAutoencoder) -> None:
    grid = _grid(tabled, 3, 12, 14)
    routing = tabled.routing(60)
    _, data = pack(grid, method=m, routing=routing)
    for cut in range(len(data)):
        with pytest.raises(AecFormatError):
            unpack(data[:cut], grid.shape, m, routing)
    with pytest.raises(AecFormatError):
        unpack(data + b"\0", grid.shape, m, routing)
    rng = np.random.default_rng(0)
    for _ in range(150):
        bad = bytearray(data)
        bad[int(rng.integers(len(bad)))] ^= 1 << int(rng.integers(8))
        try:
            out = unpack(bytes(bad), grid.shape, m, routing)
        except AecFormatError:
            continue
        assert out.shape == grid.shape  # a flip zstd cannot see may decode to other symbols


@pytest.mark.parametrize("m", [TABLED, COMPACT, ORDERED])
def test_the_saved_model_keeps_its_tables_and_files_decode_in_the_codec(m: int, tabled: HyperConvAutoencoder, tmp_path) -> None:
    path = tmp_path / "tabled.pt"
    save_model(tabled, path)
    lm = load_model_file(path)
    assert lm.model.tables().to_bytes() == tabled.tables().to_bytes()
    rgb = (np.random.default_rng(5).random((40, 56, 3)) * 255).astype(np.uint8)
    enc = encode_prepared(lm, [load_image(rgb)], 55)[0]
    grid = read_symbols(read(enc.data), lm)
    header = dataclasses.replace(enc.header, packing=m)
    payload = pack(grid, method=m, routing=lm.model.routing(header.quality))[1]
    f = read(write(AecFile(header=header, payload=payload, alpha=None)))
    assert np.array_equal(read_symbols(f, lm), grid)
    assert decode_with(f, lm).size == (56, 40)


@settings(max_examples=40, deadline=None)
@given(st.floats(0.01, 100.0), st.floats(-3.0, 3.0))
def test_the_symbol_density_sums_to_one_at_any_scale(scale: float, shift: float) -> None:
    torch.manual_seed(0)  # +-20000 spans 200 scales: what lies beyond is below the tolerance
    hyper = HyperPrior(HyperConfig(latent_channels=4, channels=4))
    with torch.no_grad():  # move the learned shape's median off 0: the mass must still sum to 1
        hyper.shape.biases[-1].add_(shift)
        s = torch.arange(-20000, 20001, dtype=torch.float32)
        p = hyper.symbol_mass(s, torch.tensor(scale), pass_bound=False)
    assert abs(float(p.double().sum()) - 1.0) < 2e-3
    assert torch.equal(p[:20000].flip(0), p[20001:])  # symmetric


def test_method_6_is_tried_in_place_of_5_only_with_tables(tabled: HyperConvAutoencoder) -> None:
    grid = _grid(tabled, 2, 20, 24)
    routing = tabled.routing(70)
    sizes = {m: len(pack(grid, method=m, routing=routing)[1]) for m in (HYPER, TABLED, COMPACT)}
    best, data = pack(grid, routing=routing)
    assert best != TABLED and len(data) <= min(sizes[HYPER], sizes[COMPACT])


def test_method_6_is_smaller_than_method_5(tabled: HyperConvAutoencoder) -> None:
    n5 = n6 = 0
    for seed, q in enumerate([5, 30, 60, 90]):
        grid = _grid(tabled, seed, 10, 12)
        routing = tabled.routing(q)
        n5 += len(pack(grid, method=TABLED, routing=routing)[1])
        n6 += len(pack(grid, method=COMPACT, routing=routing)[1])
    assert n6 < n5


def _skewed(n: int, seed: int, repeats: bool) -> bytes:
    rng = np.random.default_rng(seed)
    x = np.minimum(rng.geometric(0.4, n) - 1, 255).astype(np.uint8)
    if repeats:
        x[n // 3:2 * n // 3] = 0  # a long run: zstd codes it as a match, so the block has sequences
    return x.tobytes()


@pytest.mark.parametrize(("n", "repeats", "form"), [(40, False, 1), (3000, True, 2), (200, True, 2),
                                                    (300, False, None), (5000, False, None)])
def test_a_compact_stage_rebuilds_zstd_s_frame(n: int, repeats: bool, form: int | None) -> None:
    codes = _skewed(n, n, repeats)
    frame = packing._compressor(19)(codes)
    stage = packing._compact_stage(frame, codes, None)
    assert len(stage) <= len(frame) - 3
    tag = packing._read_varint(packing._Reader(stage), 1 << 30)
    # literals only (odd tags) or a whole block (2 mod 4)
    assert (tag & 1 if form == 1 else tag & 3 == 2) if form else tag & 1 or tag & 3 == 2
    r = packing._Reader(stage)
    assert r.stage(len(codes), None) == codes and r.pos == len(stage)


def test_incompressible_and_unrebuildable_stages_are_kept_whole() -> None:
    noise = np.random.default_rng(0).integers(0, 256, 64, dtype=np.uint8).tobytes()
    frame = packing._compressor(19)(noise)
    stage = packing._compact_stage(frame, noise, None)
    assert stage == b"\x00" + noise  # raw: smaller than any frame of it
    big = _skewed(200_000, 1, True)  # over one block: only the whole frame will do
    frame = packing._compressor(19)(big)
    assert packing._compact_stage(frame, big, None) == b"\x04" + frame
    assert packing._Reader(b"\x04" + frame).stage(len(big), None) == big


@pytest.mark.parametrize("stage", [b"\x08", b"\x0c\x00", b"\x06\x01", b"\x0b\x01\x02", b"\x80"])
def test_bad_compact_stages_are_format_errors(stage: bytes) -> None:
    with pytest.raises(AecFormatError):
        packing._Reader(stage).stage(40, None)


@pytest.mark.parametrize("m", [TABLED, COMPACT, ORDERED])
def test_a_transplanted_hyperprior_codes_new_transforms(m: int, tabled: HyperConvAutoencoder) -> None:
    from aecodec.train.hyper import transplant

    cfg = TINY_CONV
    own = ConvAutoencoder(cfg)
    own.load_state_dict({k: v for k, v in tabled.state_dict().items() if k in own.state_dict()})
    same = transplant(own, tabled)  # the donor's own transforms: the donor back, exactly
    assert all(torch.equal(v, tabled.state_dict()[k]) for k, v in same.state_dict().items())
    torch.manual_seed(7)
    new = ConvAutoencoder(cfg).eval()
    with torch.no_grad():
        new.log_gain_base.add_(math.log(2))  # gains twice the donor's: one log2 step, 8 units up
    other = transplant(new, tabled)
    assert other.tables().to_bytes() == tabled.tables().to_bytes()
    assert torch.equal(other.log_gain_int, tabled.log_gain_int + 8)  # its own gains
    grid = _grid(other, 4)
    routing = other.routing(45)
    _, data = pack(grid, method=m, routing=routing)
    assert np.array_equal(unpack(data, grid.shape, m, routing), grid)


def test_pack_tries_the_methods_that_win_at_each_grid_size(tabled: HyperConvAutoencoder) -> None:
    from aecodec.pack import CONTEXT, LADDER, PLANAR, candidates_for

    routing = tabled.routing(50)
    # method 7 stands in for 6 (the same bytes where every run keeps its raster order)
    assert candidates_for((12, 4, 4), routing) == [PLANAR, LADDER, CONTEXT, ORDERED]  # tiny: 1-3 win some
    assert candidates_for((12, 10, 10), routing) == [ORDERED]
    assert candidates_for((12, 32, 32), routing) == [ORDERED]  # photo-sized: 4 won none against 7
    assert candidates_for((12, 96, 96), routing) == [HYPER, ORDERED]  # 2 megapixels and up: 4 wins some
    assert candidates_for((12, 32, 32), None) == [PLANAR, LADDER, CONTEXT]
    assert candidates_for((160, 32, 32), None) == [LADDER, CONTEXT]  # over TRY_ALL_MAX: no planar
    plain = HyperConvAutoencoder(dataclasses.replace(tabled.config, table_bytes=0))
    assert candidates_for((12, 10, 10), plain.routing(50)) == [PLANAR, LADDER, CONTEXT, HYPER]
    grid = _grid(tabled, 1, 10, 10)
    assert pack(grid, routing=routing)[0] == ORDERED


def test_a_class_table_takes_the_ladder_zstd_stores_smallest_on_held_out_samples() -> None:
    from aecodec.pack import _ladder_stages
    from aecodec.train.tables import _stage_dicts, _stored_bytes, class_table

    rng = np.random.default_rng(7)
    # sparse streams: mostly zeros, a few small values, rare large ones
    streams = [np.where(rng.random(600) < 0.9, 0, rng.geometric(0.3, 600)).astype(np.int64) for _ in range(64)]
    fit, held = streams[0::2], streams[1::2]

    def stored(ladder: tuple[int, ...]) -> int:
        dicts = _stage_dicts([_ladder_stages(x, ladder)[0] for x in fit], ladder, 256, 19)
        out = [_ladder_stages(x, ladder) for x in held]
        return _stored_bytes([s for s, _ in out], sum(len(e) for _, e in out), dicts, 19)

    first = class_table(streams, dict_bytes=256, tried=1)
    chosen = class_table(streams, dict_bytes=256, tried=6)
    assert chosen.ladder != first.ladder and stored(chosen.ladder) < stored(first.ladder)
    assert chosen.ladder[-1] == 8 and len(chosen.dicts) == len(chosen.ladder)
    # too few samples to hold half out: the estimate's choice
    assert class_table(streams[:8], dict_bytes=256, tried=6).ladder == class_table(streams[:8], dict_bytes=256, tried=1).ladder


def test_method_7_is_never_larger_than_method_6_and_orders_runs_by_scale(tabled: HyperConvAutoencoder) -> None:
    orders = set()
    for seed, q in enumerate([5, 30, 60, 90, 100]):
        grid = _grid(tabled, seed, 11, 13)
        routing = tabled.routing(q)
        n6 = len(pack(grid, method=COMPACT, routing=routing)[1])
        _, data = pack(grid, method=ORDERED, routing=routing)
        assert len(data) <= n6  # raster order (order 0) is one of the tries
        assert np.array_equal(unpack(data, grid.shape, ORDERED, routing), grid)
        side = routing.side(grid)
        orders |= {order for _, order, zero in packing.latent_run_picks(data, routing) if not zero}
        assert len(np.unique(routing.scale_keys(side, grid.shape))) > 1
    assert orders <= {0, 1, 2, 3}


class _FixedSide:
    """A routing whose side symbols are given, so that a grid can follow its predicted scales."""

    def __init__(self, routing, side: np.ndarray) -> None:
        self.r, self.z = routing, side
        self.tables, self.classes = routing.tables, routing.classes

    def side_shape(self, shape):
        return self.r.side_shape(shape)

    def side(self, grid):
        return self.z

    def route(self, side, shape):
        return self.r.route(side, shape)

    def scale_keys(self, side, shape):
        return self.r.scale_keys(side, shape)


def test_method_7_sorts_runs_whose_symbols_follow_their_predicted_scales(tabled: HyperConvAutoencoder) -> None:
    rng = np.random.default_rng(3)
    base = tabled.routing(40)
    shape = (tabled.config.latent_channels, 8, 8)  # up to ALL_ORDERS_UPTO positions: all four orders tried
    routing = _FixedSide(base, rng.integers(-3, 4, base.side_shape(shape)))
    keys = routing.scale_keys(routing.z, shape)
    # within a class the scales still differ: the symbols follow them, finer than the classes
    scale = np.exp2((keys - np.median(keys)) / 4.0)
    grid = np.round(rng.laplace(0, 1, shape) * scale).astype(np.int32)
    n6 = len(pack(grid, method=COMPACT, routing=routing)[1])
    _, data = pack(grid, method=ORDERED, routing=routing)
    assert np.array_equal(unpack(data, shape, ORDERED, routing), grid)
    assert len(data) < n6


@pytest.mark.parametrize("order", range(4))
def test_run_orders_are_permutations_the_decoder_rebuilds(order: int) -> None:
    rng = np.random.default_rng(order)
    keys = rng.integers(-3, 3, 60)  # many ties: the sorts must be stable
    idx = np.sort(rng.choice(60, 25, replace=False))
    perm = packing._run_order(idx, order, keys, 12)
    assert sorted(perm.tolist()) == idx.tolist()
    assert np.array_equal(perm, packing._run_order(idx.copy(), order, keys.copy(), 12))
    if order in (1, 2):
        k = keys[perm]
        assert np.all(np.diff(k) >= 0) if order == 1 else np.all(np.diff(k) <= 0)
    if order:
        with pytest.raises(AecFormatError, match="without scales"):
            packing._run_order(idx, order, None, 12)


def test_an_order_in_the_side_section_or_on_a_zero_run_is_a_format_error(tabled: HyperConvAutoencoder) -> None:
    routing = tabled.routing(50)
    zero = np.zeros((12, 5, 6), np.int32)
    _, data = pack(zero, method=ORDERED, routing=routing)
    assert np.array_equal(unpack(data, zero.shape, ORDERED, routing), zero)
    zlen = data[0]
    n1, n0 = len(routing.tables.sets[1]), len(routing.tables.sets[0])
    side_pick = 1 + packing._start_bytes(n1)  # the side section's first run's table byte
    for at in (side_pick, 1 + zlen + packing._start_bytes(n0)):
        bad = bytearray(data)
        assert bad[at] & 0x80  # a zero run
        bad[at] |= 1 << 5
        with pytest.raises(AecFormatError):
            unpack(bytes(bad), zero.shape, ORDERED, routing)


def test_the_side_search_only_shrinks_small_files_and_they_still_decode(tabled: HyperConvAutoencoder) -> None:
    for seed, q in enumerate([5, 20, 50, 80]):
        grid = _grid(tabled, seed, 4, 4)
        grid[:, 1:, :] //= 3  # the encoder's side symbols fit no grid exactly
        routing = tabled.routing(q)
        plain = pack(grid, method=ORDERED, routing=routing)[1]
        method, searched = pack(grid, method=ORDERED, routing=routing, side_search=True)
        assert len(searched) <= len(plain)
        assert np.array_equal(unpack(searched, grid.shape, method, routing), grid)
    big = _grid(tabled, 9, 9, 9)  # over SIDE_SEARCH_UPTO positions: no search
    routing = tabled.routing(50)
    assert pack(big, routing=routing, side_search=True) == pack(big, routing=routing)


@pytest.mark.parametrize("spread", [1, 1 << 58])
def test_the_encoder_s_section_orders_are_the_decoder_s_run_orders(spread: int) -> None:
    """Whether the keys fit one composite sort key or not (``spread``), each run's slice of the
    encoder's permutations is what the decoder's ``_run_order`` rebuilds."""
    rng = np.random.default_rng(11)
    rid = rng.integers(0, 5, 240)
    keys = rng.integers(-4, 4, 240) * spread
    ends = np.cumsum(np.bincount(rid, minlength=5))
    for o in range(4):
        perm = packing._section_order(rid, keys, 20, o)
        for r in range(5):
            lo = ends[r - 1] if r else 0
            assert np.array_equal(perm[lo:ends[r]], packing._run_order(np.flatnonzero(rid == r), o, keys, 20))
