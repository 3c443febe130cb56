"""Tiles: large images through the convolutional transforms in bounded memory, with the result
of whole-image processing (symbols equal bar float rounding at half-integers, pixels within ±1).

The shipped layout (48-position tiles) only starts at 769 px, so these tests shrink the tile to
a few positions: the code path and the halo are the same."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import aecodec
from aecodec import codec, container, tiles
from aecodec.weights import load_shipped

MODEL = "conv-photos"


@pytest.fixture(scope="module")
def lm():
    return load_shipped(MODEL)


@pytest.fixture(scope="module")
def image(astronaut: np.ndarray) -> np.ndarray:
    """150x200: neither side a multiple of 16, several 64-px tiles each way."""
    return np.ascontiguousarray(astronaut[40:190, 150:350])


@pytest.fixture()
def small_tiles(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(tiles, "TILE", 4)
    return 4


def _whole(lm, rgb: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    sym = lm.model.encode(codec.to_tensor([rgb], 16), q)[0]
    h, w = rgb.shape[:2]
    return sym.numpy(), tiles.to_uint8(lm.model.decode(sym[None], q)[0, :, :h, :w])


@given(n=st.integers(1, 300), tile=st.integers(1, 64), halo=st.integers(0, 5))
@settings(max_examples=200, deadline=None)
def test_windows_cover_the_grid_once_and_hold_their_tile(n: int, tile: int, halo: int) -> None:
    seen = np.zeros((n, 3), int)
    for rows, cols, keep_r, keep_c in tiles.windows(n, 3, halo, tile):
        assert 0 <= rows.start and rows.stop <= n
        assert rows.stop - rows.start <= tile + 2 * halo
        kept = slice(rows.start + keep_r.start, rows.start + keep_r.stop)
        assert rows.start <= kept.start - min(halo, kept.start) and kept.stop + min(halo, n - kept.stop) <= rows.stop
        seen[kept, slice(cols.start + keep_c.start, cols.start + keep_c.stop)] += 1
    assert (seen == 1).all()


def test_tiled_encode_and_decode_match_the_whole_image(lm, image: np.ndarray, small_tiles: int) -> None:
    sym, pixels = _whole(lm, image, 50.0)
    assert tiles.tiled(lm.model, *sym.shape[1:])
    tiled_sym = tiles.encode_tiled(lm.model, image, 50.0)
    assert tiled_sym.shape == sym.shape and tiled_sym.dtype == sym.dtype
    assert np.mean(tiled_sym != sym) < 1e-3
    assert np.abs(tiled_sym.astype(int) - sym).max() <= 1
    h, w = image.shape[:2]
    tiled_px = tiles.decode_tiled(lm.model, torch.from_numpy(sym), 50.0, w, h)
    assert np.abs(tiled_px.astype(int) - pixels).max() <= 1


def test_without_the_halo_tiles_would_show(lm, image: np.ndarray, small_tiles: int, monkeypatch) -> None:
    """The halo is what makes tiles invisible: with none, the seams change the pixels."""
    sym, pixels = _whole(lm, image, 50.0)
    monkeypatch.setattr(type(lm.model), "tile_halo", 0)
    h, w = image.shape[:2]
    assert np.abs(tiles.decode_tiled(lm.model, torch.from_numpy(sym), 50.0, w, h).astype(int) - pixels).max() > 1
    assert np.mean(tiles.encode_tiled(lm.model, image, 50.0) != sym) > 1e-3


def test_the_codec_tiles_large_images_and_the_files_decode_alike(lm, image: np.ndarray, monkeypatch) -> None:
    whole = aecodec.compress(image, quality=40, model=MODEL)
    whole_px = np.asarray(aecodec.decompress(whole))
    calls: list[tuple[int, ...]] = []
    decode = type(lm.model).decode

    def counting(self, symbols, quality):
        calls.append(tuple(symbols.shape))
        return decode(self, symbols, quality)

    monkeypatch.setattr(type(lm.model), "decode", counting)
    monkeypatch.setattr(tiles, "TILE", 4)
    tiled = aecodec.compress(image, quality=40, model=MODEL)
    assert container.read(tiled).header == container.read(whole).header
    tiled_px = np.asarray(aecodec.decompress(whole))
    assert len(calls) == 3 * 4  # 10 x 13 latent positions in 4-position tiles
    assert max(c[2] for c in calls) <= 4 + 2 * lm.model.tile_halo
    assert np.abs(tiled_px.astype(int) - whole_px).max() <= 1
    assert np.abs(np.asarray(aecodec.decompress(tiled)).astype(int) - whole_px).max() <= 2


def test_tiled_effort_refines_each_tile_and_keeps_the_cheaper(lm, image: np.ndarray, small_tiles: int) -> None:
    image = np.ascontiguousarray(image[:70, :100])  # 5 x 7 positions: four tiles
    prep = codec.load_image(image)
    plain = codec.encode_prepared(lm, [prep], 40.0, effort=1)[0]
    refined = codec.encode_prepared(lm, [prep], 40.0, effort=2)[0]
    assert refined.cost is not None
    back = np.asarray(aecodec.decompress(refined.data)).astype(np.float64)
    mse = float(np.mean((back - image) ** 2)) / 255.0**2
    lam = lm.model.lambda_at(40.0)
    plain_back = np.asarray(aecodec.decompress(plain.data)).astype(np.float64)
    plain_mse = float(np.mean((plain_back - image) ** 2)) / 255.0**2
    pixels = image.shape[0] * image.shape[1]
    refined_cost = lam * 255.0**2 * mse + len(container.read(refined.data).payload) * 8 / pixels
    plain_cost = lam * 255.0**2 * plain_mse + len(container.read(plain.data).payload) * 8 / pixels
    assert refined_cost == pytest.approx(refined.cost, rel=1e-6)  # the guard scored the file it wrote
    assert refined_cost <= plain_cost * 1.01


def test_small_images_take_the_untiled_path(lm, astro64: np.ndarray) -> None:
    assert not tiles.tiled(lm.model, 4, 4)
    assert tiles.tiled(lm.model, tiles.TILE + 1, 1)
    assert not tiles.tiled(load_shipped("eigenfaces").model, 100, 100)


def test_a_batch_of_large_images_is_encoded_before_more_are_read(lm, astro64: np.ndarray, monkeypatch) -> None:
    """A batch holds a bounded number of pixels, not only of images; order and errors hold."""
    monkeypatch.setattr(codec, "WINDOW_PIXELS", 2 * 64 * 64)
    flushed: list[int] = []
    encode = codec._encode_parts

    def counting(lm_, preps, quality, effort=1):
        flushed.append(len(preps))
        return encode(lm_, preps, quality, effort)

    monkeypatch.setattr(codec, "_encode_parts", counting)
    images = [astro64, astro64[::-1].copy(), b"not an image", astro64[:, ::-1].copy(), np.rot90(astro64).copy()]
    out = list(codec.batch_encode(lm, images, 50.0, batch=16))
    assert flushed == [2, 2]  # two images at a time, the bad one in between costs nothing
    assert isinstance(out[2], aecodec.AecError)
    for img, enc in zip([images[0], images[1], images[3], images[4]], [out[0], out[1], out[3], out[4]]):
        assert enc.data == aecodec.compress(img, quality=50, model=MODEL)


_PEAK = r"""
import resource, sys
import numpy as np
import aecodec
w, h = int(sys.argv[1]), int(sys.argv[2])
if w:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([(np.sin(xx / 37) * np.cos(yy / 23) + 1) * 120, (xx * 7 + yy * 3) % 251,
                    np.random.default_rng(0).integers(0, 40, (h, w)) + 100], -1).astype(np.uint8)
    del yy, xx
    data = aecodec.compress(rgb)
    del rgb
else:
    data = open(sys.argv[3], "rb").read()
im = aecodec.decompress(data)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def _peak(*args: object) -> int:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _PEAK, *map(str, args)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.slow
def test_a_24_megapixel_photo_round_trips_in_under_2_gb() -> None:
    assert _peak(6000, 4000) < 2e9


@pytest.mark.slow
def test_a_tiny_file_declaring_33_megapixels_decodes_in_under_2_gb(lm, tmp_path) -> None:
    from aecodec import pack

    side = 5792
    shape = lm.model.latent_shape(side, side, 50.0)
    method, payload = pack.pack(np.zeros(shape, np.int32))
    header = container.Header(model=lm.name, weights_hash=lm.weights_hash, width=side, height=side, mode="RGB",
                              quality=50.0, latent_shape=shape, packing=method)
    path = tmp_path / "zero.aec"
    path.write_bytes(container.write(container.AecFile(header=header, payload=payload, alpha=None)))
    assert path.stat().st_size < 100
    assert _peak(0, 0, path) < 2e9


def test_images_are_read_in_the_background_while_the_network_runs(lm, astro64: np.ndarray, monkeypatch) -> None:
    import threading
    import time

    events: list[tuple[str, str]] = []
    load, encode = codec.load_image, codec._encode_parts

    def loading(img):
        events.append(("load", threading.current_thread().name))
        return load(img)

    def encoding(lm_, preps, quality, effort=1):
        events.append(("encode start", threading.current_thread().name))
        time.sleep(0.3)  # long enough for the reader to fetch the next window meanwhile
        out = encode(lm_, preps, quality, effort)
        events.append(("encode end", ""))
        return out

    monkeypatch.setattr(codec, "load_image", loading)
    monkeypatch.setattr(codec, "_encode_parts", encoding)
    out = list(codec.batch_encode(lm, [astro64] * 6, 50.0, batch=2))
    assert len(out) == 6 and all(isinstance(e, codec.Encoded) for e in out)
    assert all(name.startswith("aecodec-read") for kind, name in events if kind == "load")
    first_end = events.index(("encode end", ""))
    assert sum(kind == "load" for kind, _ in events[:first_end]) == 4  # window 2 read during window 1


@pytest.mark.parametrize("overlap", [True, False])
def test_a_window_is_packed_while_the_network_runs_on_the_next(lm, astro64: np.ndarray, monkeypatch,
                                                              overlap: bool) -> None:
    """Packing runs in its own thread, one window behind the network; order, bytes and errors hold.
    After a window with an image over ``OVERLAP_MAX_PIXELS`` the network waits for its packing."""
    import threading
    import time

    events: list[tuple[str, str]] = []
    encode, finish = codec._encode_parts, codec._finish

    def encoding(lm_, preps, quality, effort=1):
        events.append(("network", threading.current_thread().name))
        return encode(lm_, preps, quality, effort)

    def finishing(*args, **kwargs):
        events.append(("pack start", threading.current_thread().name))
        time.sleep(0.2)  # long enough for the network to start on the next window meanwhile
        out = finish(*args, **kwargs)
        events.append(("pack end", ""))
        return out

    monkeypatch.setattr(codec, "_encode_parts", encoding)
    monkeypatch.setattr(codec, "_finish", finishing)
    if not overlap:
        monkeypatch.setattr(codec, "OVERLAP_MAX_PIXELS", 64 * 64 - 1)
    images = [astro64, b"not an image", astro64[::-1].copy(), astro64[:, ::-1].copy()]
    threads = torch.get_num_threads()
    out = list(codec.batch_encode(lm, images, 50.0, batch=2))
    assert torch.get_num_threads() == threads  # the network's count during overlap is put back
    assert isinstance(out[1], aecodec.AecError)
    monkeypatch.undo()
    for img, enc in zip([images[0], images[2], images[3]], [out[0], out[2], out[3]]):
        assert enc.data == aecodec.compress(img, quality=50, model=MODEL)
    # in the packing thread, or in the network's once it has nothing else to do
    assert {name.split("_")[0] for kind, name in events if kind == "pack start"} <= {"aecodec-pack", "MainThread"}
    first_pack_end = events.index(("pack end", ""))
    assert sum(kind == "network" for kind, _ in events[:first_pack_end]) == (2 if overlap else 1)


def test_the_network_thread_packs_what_the_packer_has_not_started(lm, astro64: np.ndarray, monkeypatch) -> None:
    """With the network done and packing slow, the images the packing thread has not started
    are packed in the caller's thread, from the window's end; results keep their order and bytes."""
    import threading
    import time

    started: dict[int, str] = {}
    finish = codec._finish

    def finishing(lm_, prep, *args, **kwargs):
        started[prep.rgb.tobytes().__hash__()] = threading.current_thread().name
        time.sleep(0.3)  # the packer is still on its first image when the caller looks
        return finish(lm_, prep, *args, **kwargs)

    monkeypatch.setattr(codec, "_finish", finishing)
    images = [astro64, astro64[::-1].copy(), astro64[:, ::-1].copy(), np.rot90(astro64).copy()]
    out = list(codec.batch_encode(lm, images, 50.0, batch=4))
    monkeypatch.undo()
    names = [started[np.ascontiguousarray(im).tobytes().__hash__()] for im in images]
    # the packer from the start, the caller from the end (each takes one while the other sleeps)
    assert names[0].startswith("aecodec-pack") and names[-1] == "MainThread"
    assert names == sorted(names, key=lambda name: name == "MainThread")
    for img, enc in zip(images, out):
        assert enc.data == aecodec.compress(img, quality=50, model=MODEL)


def test_the_network_takes_the_packers_core_once_it_is_idle(lm, astro64: np.ndarray, monkeypatch) -> None:
    """A window's images go through the network NETWORK_STEP_PIXELS at a time, each step with
    the threads free then: one fewer while the last window is still packing."""
    import threading
    import time

    monkeypatch.setattr(codec, "NETWORK_STEP_PIXELS", 2 * 64 * 64)
    steps: list[tuple[int, int]] = []
    encode, finish = codec._encode_parts, codec._finish
    gate = threading.Event()

    packed: list[int] = []

    def encoding(lm_, preps, quality, effort=1):
        steps.append((len(preps), torch.get_num_threads()))
        if len(steps) == 3:  # the second window's first step: let the first window's packing end
            gate.set()
            deadline = time.monotonic() + 10
            while len(packed) < 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.1)
        return encode(lm_, preps, quality, effort)

    def finishing(*args, **kwargs):
        gate.wait(10)
        out = finish(*args, **kwargs)
        packed.append(1)
        return out

    monkeypatch.setattr(codec, "_encode_parts", encoding)
    monkeypatch.setattr(codec, "_finish", finishing)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        out = list(codec.batch_encode(lm, [astro64] * 8, 50.0, batch=4))
    finally:
        torch.set_num_threads(threads)
    assert len(out) == 8 and all(isinstance(e, codec.Encoded) for e in out)
    assert [n for n, _ in steps] == [2, 2, 2, 2]
    assert [t for _, t in steps] == [2, 2, 1, 2]  # window 1 alone; beside its packing; after it
