"""Context classes: which zstd stream each latent symbol goes to, in exact integer arithmetic.

This is the adaptive part of packing method 3 (``context-ladder`` in ``aecodec.pack``): a
symbol's class is a prediction of its scale from the channel's scale and from symbols decoded
before it, so that each stream pools symbols of one scale and zstd's per-stream Huffman table
fits them. Everything here is integer numpy on int64 (no float, no network), so every machine,
thread count and memory layout routes every symbol alike; the class of a symbol can never sit
near a rounding boundary that flips on another machine.

The grid (K active channels, H, W) is decoded in four phases, each reading only what the
phases before it filled in:

====  ======================  ==============================================
phase symbols                 class from
====  ======================  ==============================================
0     lead channels, black    the channel's scale nibble ``s``
1     lead channels, white    ``s``; ``bN`` of the 4 black neighbours in the channel
2     other channels, black   ``s``; ``bS`` of the lead channels at the position
3     other channels, white   ``s``, ``bS``; ``bN`` of the 4 black neighbours
====  ======================  ==============================================

*Black* positions have ``y + x`` even. The *lead* channels are the ``LEAD`` active channels of
highest ``s`` (ties: the lower index first). ``bS = b(sum of |v| over the lead channels at the
position)`` and ``bN = b(sum of |v| over the up-to-4 neighbours, none outside the grid)``, with
``b(x) = min(15, floor(2 * log2(1 + x)))``, computed exactly as ``bit_length((1 + x)**2) - 1``.
The class is ``clip((A*s + B*bS + C*bN + D) >> 2, 0, 15)`` with one integer row ``(A, B, C, D)``
per phase (``COEFFICIENTS``; ``>>`` floors). The rows were fitted once, by least squares of
``2*log2(mean |v|) `` on these features over training-split latents of ``conv-photos.v2`` and
``conv-faces`` (benchmarks/contexts.md), and are part of the format: they never change for
method 3.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LEAD", "CLASSES", "COEFFICIENTS", "PHASES", "log_bin", "scale_nibbles", "lead_channels",
           "phase_positions", "phase_features", "phase_classes"]

LEAD = 16
CLASSES = 16
COEFFICIENTS = np.array([[4, 0, 0, 10],     # phase 0: lead, black
                         [1, 0, 5, 17],     # phase 1: lead, white
                         [3, 4, 0, -35],    # phase 2: other, black
                         [1, 4, 4, -31]],   # phase 3: other, white
                        np.int64)
PHASES = ((True, True), (True, False), (False, True), (False, False))  # (lead, black)
_BIN_CAP = 181  # b(x) = 15 for every x >= 181: (1 + 181)**2 >= 2**15
_BIN = np.array([((1 + x) ** 2).bit_length() - 1 for x in range(_BIN_CAP + 1)], np.int64)


def log_bin(x: np.ndarray) -> np.ndarray:
    """``min(15, floor(2 * log2(1 + x)))`` for non-negative integers, exactly (a table)."""
    return _BIN[np.minimum(np.asarray(x, np.int64), _BIN_CAP)]


def scale_nibbles(v: np.ndarray) -> np.ndarray:
    """The encoder's scale nibble of each channel (rows of ``v``): ``floor(2*log2(1 + 16 *
    mean|v|))`` capped at 15. Stored in the payload, so the decoder never computes it and the
    float here need not be exact."""
    mean = np.abs(v.reshape(len(v), -1).astype(np.float64)).mean(axis=1) if v.size else np.zeros(len(v))
    return np.minimum(15, np.floor(2 * np.log2(1 + 16 * mean))).astype(np.int64)


def lead_channels(s: np.ndarray) -> np.ndarray:
    """Boolean mask of the lead channels: the ``LEAD`` of highest nibble, lower index first."""
    order = np.lexsort((np.arange(len(s)), -np.asarray(s, np.int64)))
    lead = np.zeros(len(s), bool)
    lead[order[:LEAD]] = True
    return lead


def phase_positions(lead: np.ndarray, height: int, width: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per phase, (channel indices, (H, W) colour mask): the phase's symbols are
    ``grid[channels][:, mask]``, channel after channel, each in raster order."""
    yy, xx = np.indices((height, width))
    black = (yy + xx) % 2 == 0
    out = []
    for is_lead, is_black in PHASES:
        out.append((np.flatnonzero(lead == is_lead), black if is_black else ~black))
    return out


def _neighbours(m: np.ndarray) -> np.ndarray:
    """Sum of the 4-neighbours of every position, per channel (zero outside the grid)."""
    p = np.pad(m, ((0, 0), (1, 1), (1, 1)))
    return p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:]


def phase_features(phase: int, mag: np.ndarray, lead: np.ndarray, channels: np.ndarray,
                   mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bS, bN) of the symbols of ``phase``, each of shape ``(len(channels), mask.sum())``, from
    the magnitudes ``mag`` (K, H, W) int64 of the symbols decoded in the phases before it (the
    others may hold anything: they are not read); 0 where the phase's row does not use one."""
    shape = (len(channels), int(mask.sum()))
    _, b, c, _ = COEFFICIENTS[phase]
    bs = np.broadcast_to(log_bin(mag[lead].sum(axis=0)[mask])[None, :], shape) if b else np.zeros(shape, np.int64)
    bn = log_bin(_neighbours(mag[channels])[:, mask]) if c else np.zeros(shape, np.int64)
    return bs, bn


def phase_classes(phase: int, mag: np.ndarray, s: np.ndarray, lead: np.ndarray,
                  channels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Classes of the symbols of ``phase`` (shape ``(len(channels), mask.sum())``); see
    ``phase_features`` for what is read."""
    a, b, c, d = (int(t) for t in COEFFICIENTS[phase])
    bs, bn = phase_features(phase, mag, lead, channels, mask)
    return np.clip((a * s[channels][:, None] + b * bs + c * bn + d) >> 2, 0, CLASSES - 1)
