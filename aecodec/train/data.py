"""Training data: the LFW archive (read in place, split by person) and plain image folders,
turned into stacks of equal-size uint8 tiles that are cropped and flipped on the device."""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from aecodec.errors import AecInputError

__all__ = ["LfwEntry", "lfw_entries", "is_test_person", "lfw_images", "folder_images", "tile_stack",
           "random_batch", "face_crop", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}


@dataclass(frozen=True)
class LfwEntry:
    person: str
    number: int
    member: str


def is_test_person(person: str, test_fraction: float = 0.2) -> bool:
    """Deterministic person-level split: a stable hash of the name, not of file order, so an
    identity is never in both sets and the split survives adding people."""
    digest = hashlib.sha256(person.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < test_fraction


def _iter_lfw(path: Path) -> Iterator[tuple[LfwEntry, tarfile.TarFile, tarfile.TarInfo]]:
    try:
        tar = tarfile.open(path, "r:*")
    except (OSError, tarfile.TarError) as exc:
        raise AecInputError(f"{path}: not a readable LFW archive ({exc})") from None
    with tar:
        for info in tar:
            parts = info.name.split("/")
            if not info.isfile() or len(parts) < 2 or not parts[-1].lower().endswith(".jpg"):
                continue
            person = parts[-2]
            stem = parts[-1][:-4]
            num = stem.rsplit("_", 1)[-1]
            if not num.isdigit():
                continue
            yield LfwEntry(person, int(num), info.name), tar, info


def lfw_entries(path: str | Path, split: str = "all") -> list[LfwEntry]:
    """List the archive's images (``split`` = "train", "test" or "all"), sorted by member name."""
    out = [e for e, _, _ in _iter_lfw(Path(path)) if _in_split(e.person, split)]
    return sorted(out, key=lambda e: e.member)


def _in_split(person: str, split: str) -> bool:
    if split == "all":
        return True
    if split not in ("train", "test"):
        raise ValueError(f"split must be train, test or all, not {split!r}")
    return is_test_person(person) == (split == "test")


def lfw_images(path: str | Path, split: str = "train", limit: int | None = None,
               min_per_person: int = 1) -> tuple[list[LfwEntry], list[np.ndarray]]:
    """Decode the archive's images of one split, without unpacking to disk (RGB uint8 arrays).

    ``limit`` keeps the first images in sorted order; ``min_per_person`` keeps only people
    with at least that many images (e.g. 2 for identity retrieval)."""
    wanted = lfw_entries(path, split)
    if min_per_person > 1:
        counts: dict[str, int] = {}
        for e in wanted:
            counts[e.person] = counts.get(e.person, 0) + 1
        wanted = [e for e in wanted if counts[e.person] >= min_per_person]
    if limit is not None:
        wanted = wanted[:limit]
    keep = {e.member for e in wanted}
    decoded: dict[str, np.ndarray] = {}
    for e, tar, info in _iter_lfw(Path(path)):
        if e.member in keep:
            f = tar.extractfile(info)
            assert f is not None
            decoded[e.member] = np.asarray(Image.open(io.BytesIO(f.read())).convert("RGB"))
    return wanted, [decoded[e.member] for e in wanted]


def folder_images(paths: list[str | Path]) -> list[np.ndarray]:
    """Decode every image under the given files/folders (sorted, recursive) as RGB uint8."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            files.append(p)
        else:
            raise AecInputError(f"{p}: no such file or folder")
    out = []
    for f in files:
        with Image.open(f) as im:
            out.append(np.asarray(im.convert("RGB")))
    return out


def face_crop(img: np.ndarray, size: int, crop: int = 128) -> np.ndarray:
    """Centre ``crop``×``crop`` of an aligned LFW face, resized to ``size``×``size`` (area filter)."""
    h, w = img.shape[:2]
    top, left = (h - crop) // 2, (w - crop) // 2
    patch = Image.fromarray(img[top:top + crop, left:left + crop])
    if size != crop:
        patch = patch.resize((size, size), Image.Resampling.BOX if crop % size == 0 else Image.Resampling.LANCZOS)
    return np.asarray(patch)


def _starts(size: int, tile: int) -> list[int]:
    """Tile origins at half-tile steps, plus one flush with the far edge, so nothing is lost."""
    starts = list(range(0, size - tile + 1, max(tile // 2, 1)))
    if starts[-1] != size - tile:
        starts.append(size - tile)
    return starts


def tile_stack(images: list[np.ndarray], tile: tuple[int, int]) -> torch.Tensor:
    """Cut images into half-overlapping ``tile`` = (h, w) tiles that cover every pixel;
    returns a (N, h, w, 3) uint8 tensor. Images smaller than a tile are skipped."""
    th, tw = tile
    tiles = []
    for img in images:
        h, w = img.shape[:2]
        if h < th or w < tw:
            continue
        for y in _starts(h, th):
            for x in _starts(w, tw):
                tiles.append(img[y:y + th, x:x + tw])
    if not tiles:
        raise AecInputError(f"no training image is at least {th}x{tw}")
    return torch.from_numpy(np.stack(tiles))


def random_batch(stack: torch.Tensor, batch: int, crop: int | tuple[int, int], gen: torch.Generator,
                 hflip: bool = True) -> torch.Tensor:
    """Random crops with random horizontal flips (unless ``hflip`` is False) from a
    (N, H, W, 3) uint8 stack, as float (B, 3, crop_h, crop_w) in [0, 1] on the stack's device
    (``crop``: a side, or (height, width))."""
    n, h, w, _ = stack.shape
    ch, cw = (crop, crop) if isinstance(crop, int) else crop
    dev = stack.device
    idx = torch.randint(0, n, (batch,), generator=gen).to(dev)
    oy = torch.randint(0, h - ch + 1, (batch,), generator=gen).to(dev)
    ox = torch.randint(0, w - cw + 1, (batch,), generator=gen).to(dev)
    flip = (torch.rand(batch, generator=gen) < (0.5 if hflip else 0.0)).to(dev)  # same draws either way
    ar = torch.arange(cw, device=dev)
    cols = torch.where(flip[:, None], ox[:, None] + cw - 1 - ar, ox[:, None] + ar)
    rows = oy[:, None] + torch.arange(ch, device=dev)
    out = stack[idx[:, None, None], rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).float().div_(255.0)
