"""Collecting the crops of the visual comparison while the sweep runs, and saving them."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from aecodec.bench.results import ImageInfo, Point, Visual, VisualPanel

__all__ = ["CROP_SIZE", "VISUAL_DIR", "crop_box", "VisualCollector"]

#: Side of the centre crop shown per codec (the whole image when smaller).
CROP_SIZE = 128
#: Folder, inside the report folder, that holds the crops as lossless PNG files.
VISUAL_DIR = "visual"


def crop_box(width: int, height: int, size: int = CROP_SIZE) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a centred ``size`` square, clipped to the image."""
    w, h = min(size, width), min(size, height)
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


class VisualCollector:
    """Keeps the crop of every decoded point of one image, then keeps one per codec.

    Only crops are held (128x128 each), so the whole sweep of the first image costs little
    memory. ``finish`` picks, per codec, the point whose bpp is closest (in log rate) to the
    target, and writes the crops as PNG so the report can be re-rendered from JSON later.
    """

    def __init__(self, image: ImageInfo, out_dir: Path) -> None:
        self.image = image
        self.out_dir = out_dir
        self.box = crop_box(image.width, image.height)
        self._crops: list[tuple[Point, NDArray[np.uint8]]] = []
        self._result: Visual | None = None

    def offer(self, point: Point, decoded: NDArray[np.uint8]) -> None:
        """Remember the crop of one decoded point of the visual image."""
        left, top, right, bottom = self.box
        self._crops.append((point, decoded[top:bottom, left:right].copy()))

    def finish(self, reference: NDArray[np.uint8], target_bpp: float) -> None:
        """Choose one point per codec near ``target_bpp`` and save the crops."""
        folder = self.out_dir / VISUAL_DIR
        folder.mkdir(parents=True, exist_ok=True)
        left, top, right, bottom = self.box
        original = f"{VISUAL_DIR}/original.png"
        Image.fromarray(reference[top:bottom, left:right]).save(self.out_dir / original)
        panels = [VisualPanel("original", None, None, None, original)]
        best: dict[str, tuple[Point, NDArray[np.uint8]]] = {}
        for point, crop in self._crops:
            gap = abs(math.log(point.bpp / target_bpp))
            if point.codec not in best or gap < abs(math.log(best[point.codec][0].bpp / target_bpp)):
                best[point.codec] = (point, crop)
        for codec, (point, crop) in best.items():
            rel = f"{VISUAL_DIR}/{_safe(codec)}_q{point.quality:g}.png"
            Image.fromarray(crop).save(self.out_dir / rel)
            panels.append(VisualPanel(codec, point.quality, point.bpp, point.psnr, rel))
        self._crops.clear()
        self._result = Visual(self.image.image, list(self.box), float(target_bpp), panels)

    def result(self) -> Visual | None:
        """The chosen panels, or None if ``finish`` never ran (the image failed)."""
        return self._result
