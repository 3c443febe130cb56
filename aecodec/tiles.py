"""Tiles: the convolutional codec's transforms over a large image in bounded memory.

The latent grid is cut into tiles of ``TILE`` × ``TILE`` positions (768 × 768 pixels at stride
16). Each tile goes through the network with a margin of ``model.tile_halo`` positions on each
side where the image has them, and only the tile's own part of the output is kept::

    latent grid   ┌──────┬──────┬───┐        window of tile (r, c):
                  │      │      │   │          rows [r0 − halo, r1 + halo) ∩ grid
                  ├──────┼──────┼───┤          the network runs on the window,
                  │      │ tile │   │          the tile's [r0, r1) × [c0, c1) is kept
                  └──────┴──────┴───┘

The margin covers the transforms' whole reach (see ``ConvAutoencoder.tile_halo``), so every kept
value depends only on inputs inside its window, exactly as in the whole image, and windows start
on multiples of the stride, so the image edges are padded as the whole image is. The tiled result
is the whole-image result up to float rounding: the encoder's symbols are equal except where a
latent sits within rounding of a half-integer, and decoded pixels are within ±1
(benchmarks/tiles.md measures both). The layout depends only on the image size, never on the
machine, so every decoder makes the same pixels; images of at most one tile take the untiled path.
Peak memory is that of one window, whatever the image size.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch

__all__ = ["TILE", "spans", "windows", "tiled", "encode_tiled", "map_windows", "decode_tiled", "to_uint8"]

TILE = 48  # latent positions per tile side; part of the decoder's definition, not a tuning knob


def spans(n: int, tile: int | None = None) -> list[tuple[int, int]]:
    """[start, end) ranges of ``tile`` (default ``TILE``) positions covering ``0..n`` (the last
    may be shorter)."""
    tile = TILE if tile is None else tile
    return [(a, min(a + tile, n)) for a in range(0, n, tile)]


def windows(gh: int, gw: int, halo: int, tile: int | None = None) -> Iterator[tuple[slice, slice, slice, slice]]:
    """For a ``gh`` × ``gw`` latent grid: per tile, its (rows, cols) window in the grid and the
    tile's (rows, cols) inside that window, all in latent positions."""
    for r0, r1 in spans(gh, tile):
        a0, a1 = max(r0 - halo, 0), min(r1 + halo, gh)
        for c0, c1 in spans(gw, tile):
            b0, b1 = max(c0 - halo, 0), min(c1 + halo, gw)
            yield slice(a0, a1), slice(b0, b1), slice(r0 - a0, r1 - a0), slice(c0 - b0, c1 - b0)


def tiled(model: object, gh: int, gw: int) -> bool:
    """Whether a ``gh`` × ``gw`` latent grid goes through ``model`` in tiles: models that declare
    a ``tile_halo`` (the fully convolutional ones), on grids larger than one tile."""
    return getattr(model, "tile_halo", None) is not None and (gh > TILE or gw > TILE)


def _scaled(sl: slice, s: int, limit: int) -> slice:
    return slice(sl.start * s, min(sl.stop * s, limit))


def encode_tiled(model: torch.nn.Module, rgb: np.ndarray, quality: float) -> np.ndarray:
    """Symbols (M, gh, gw) of one RGB uint8 image (H, W, 3), tile by tile."""
    (out,) = map_windows(model, rgb, lambda x, size: (model.encode(x, quality),))
    return out


def map_windows(model: torch.nn.Module, rgb: np.ndarray,
                fn: Callable[[torch.Tensor, tuple[int, int]], tuple[torch.Tensor, ...]]) -> tuple[np.ndarray, ...]:
    """Run ``fn(x, (height, width))`` on each tile's window of one RGB uint8 image (H, W, 3)
    (``x``: (1, 3, h, w) float, padded to the stride at the image's own edges; the size is that
    of the real pixels in it) and stitch each of the latent grids it returns from the tiles'
    own positions: (M, gh, gw) arrays."""
    from aecodec.codec import to_tensor  # the same conversion and edge padding as whole images

    s, halo = model.stride, model.tile_halo
    h, w = rgb.shape[:2]
    gh, gw = -(-h // s), -(-w // s)
    outs: list[np.ndarray] = []
    for rows, cols, keep_r, keep_c in windows(gh, gw, halo):
        window = rgb[_scaled(rows, s, h), _scaled(cols, s, w)]
        grids = fn(to_tensor([window], s), window.shape[:2])
        for k, grid in enumerate(grids):
            part = grid[0, :, keep_r, keep_c].numpy()
            if len(outs) <= k:
                outs.append(np.empty((part.shape[0], gh, gw), dtype=part.dtype))
            outs[k][:, rows.start + keep_r.start:rows.start + keep_r.stop,
                    cols.start + keep_c.start:cols.start + keep_c.stop] = part
    return tuple(outs)


def decode_tiled(model: torch.nn.Module, symbols: torch.Tensor, quality: float, w: int, h: int) -> np.ndarray:
    """RGB uint8 (h, w, 3) from symbols (M, gh, gw), tile by tile: each tile's pixels are
    rounded to 8 bits as soon as they are made, so no full-size float image is ever held."""
    s, halo = model.stride, model.tile_halo
    gh, gw = symbols.shape[1:]
    out = np.empty((h, w, 3), dtype=np.uint8)
    for rows, cols, keep_r, keep_c in windows(gh, gw, halo):
        x = model.decode(symbols[None, :, rows, cols], quality)[0]
        top, left = (rows.start + keep_r.start) * s, (cols.start + keep_c.start) * s
        bottom, right = min((rows.start + keep_r.stop) * s, h), min((cols.start + keep_c.stop) * s, w)
        part = x[:, keep_r.start * s:keep_r.start * s + bottom - top, keep_c.start * s:keep_c.start * s + right - left]
        out[top:bottom, left:right] = to_uint8(part)
    return out


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(3, h, w) float in [0, 1] (any excess clipped) to (h, w, 3) uint8, rounding to nearest."""
    return x.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
