"""The public API: one-shot ``compress``/``decompress`` and the reusable ``Codec``."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from PIL import Image

from aecodec.codec import (DEFAULT_MODEL, DEFAULT_QUALITY, Encoded, batch_encode, check_quality, decode_file,
                           general_models)
from aecodec.effort import DEFAULT_EFFORT, MODEL_CHOICE_EFFORT, check_effort
from aecodec.container import info
from aecodec.errors import AecError
from aecodec.images import ImageInput
from aecodec.catalog import list_models, model_info
from aecodec.devices import check_device, resolve_device
from aecodec.weights import load_shipped, on_device

__all__ = ["compress", "decompress", "list_models", "model_info", "info", "Codec"]


def compress(image: ImageInput, quality: float = DEFAULT_QUALITY, model: str | None = None,
             effort: int = DEFAULT_EFFORT, device: str | None = None) -> bytes:
    """Compress one image (path, PIL image or numpy array) to `.aec` bytes.

    ``quality`` runs from 1 (smallest) to 100 (best); ``model`` is an installed model name
    (None: the default, ``conv-photos``'s newest version). ``effort`` from 1 (fast, the
    default) to 9 searches harder for a smaller file at the same quality; the decoder is the
    same whatever the effort (see ``aecodec.effort``). ``device``: where the network runs,
    ``cpu`` (default), ``cuda``, ``cuda:N`` or ``auto`` (``aecodec.devices``). Raises AecError (AecInputError,
    AecModelError, ...) with a message for the user.
    """
    return Codec(model=model, quality=quality, effort=effort, device=device).compress(image)


def decompress(data: bytes, device: str | None = None) -> Image.Image:
    """Decode `.aec` bytes to a PIL image in the mode and size it was compressed from
    (``device`` as for ``compress``: the pixels agree within ±1 across devices)."""
    return decode_file(data, device)


class Codec:
    """A model loaded once, for many images.

    Reach for it instead of the one-shot functions when compressing a batch: it keeps the
    model, and ``compress_many`` runs equal-size images (e.g. a folder of 250×250 faces)
    through the network together, which is several times faster than one at a time.
    """

    def __init__(self, model: str | None = None, quality: float = DEFAULT_QUALITY,
                 effort: int = DEFAULT_EFFORT, device: str | None = None) -> None:
        self.quality = check_quality(quality)
        self.effort = check_effort(effort)
        self.device = check_device(device)
        dev = resolve_device(self.device)
        self._lm = on_device(load_shipped(DEFAULT_MODEL if model is None else model), dev)
        # With the model left to the codec, a high effort also picks the best general model per image.
        self._lms = [self._lm]
        if model is None and self.effort >= MODEL_CHOICE_EFFORT:
            self._lms += [on_device(m, dev) for m in general_models() if m.name != self._lm.name]

    @property
    def model(self) -> str:
        return self._lm.name

    def compress(self, image: ImageInput, quality: float | None = None) -> bytes:
        return self.encode(image, quality).data

    def encode(self, image: ImageInput, quality: float | None = None) -> Encoded:
        """Like ``compress`` but also returns the header and notes on conversions made."""
        result = next(batch_encode(self._lms, [image], self.quality if quality is None else quality,
                                   effort=self.effort))
        if isinstance(result, AecError):
            raise result
        return result

    def compress_many(self, images: Iterable[ImageInput], quality: float | None = None,
                      batch: int = 16) -> Iterator[bytes | AecError]:
        """Compress each image in order; a bad one yields its AecError and the rest go on."""
        q = self.quality if quality is None else quality
        for r in batch_encode(self._lms, images, q, batch=batch, effort=self.effort):
            yield r if isinstance(r, AecError) else r.data

    def decompress(self, data: bytes) -> Image.Image:
        return decode_file(data, self.device)

    def decompress_many(self, items: Iterable[bytes | str | Path]) -> Iterator[Image.Image | AecError]:
        """Decode each item (bytes or a path to a `.aec` file); errors are yielded in place."""
        for item in items:
            try:
                data = Path(item).read_bytes() if isinstance(item, (str, Path)) else item
                yield decode_file(data, self.device)
            except AecError as exc:
                yield exc
            except OSError as exc:
                from aecodec.errors import AecInputError
                yield AecInputError(f"{item}: cannot read ({exc.strerror or exc})")
