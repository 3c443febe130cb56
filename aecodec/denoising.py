"""Denoising compression: a model's denoising twin cleans noisy photos while coding them.

A denoising model (``conv-photos-denoise``, ``conv-faces-denoise``) is an ordinary codec model
whose encoder was trained on inputs with added Gaussian noise (σ up to 0.2 on [0, 1] pixels)
and whose decoder was trained to give back the clean image. Its ``.aec`` files are ordinary
files: ``decompress`` needs nothing special. Because the noise never reaches the latents, it
also costs fewer bits, so a noisy photo comes out both cleaner and smaller than with the plain
model. On clean images it is smoother (and less faithful) than the plain model, so denoising
looks at each image first: only images whose estimated noise level reaches ``AUTO_SIGMA`` go to
the twin, the others to the plain model (naming the twin itself as the model always uses it).
See ``benchmarks/denoise.md`` and ``benchmarks/denoise_routing.md``.

::

    image ─► estimate_noise ─► σ̂ ≥ AUTO_SIGMA ? twin : plain ─► .aec ─► decompress ─► clean image
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
from PIL import Image

from aecodec.api import Codec
from aecodec.codec import DEFAULT_MODEL, DEFAULT_QUALITY
from aecodec.errors import AecError, AecModelError
from aecodec.images import ImageInput, PreparedImage, load_image
from aecodec.weights import ALIASES, families, family_versions, resolve, split_version

__all__ = ["DENOISE_SUFFIX", "AUTO_SIGMA", "denoising_twin", "is_denoising", "denoise", "denoising_codec",
           "estimate_noise", "DenoisingCodec"]

#: A model's denoising twin is installed under the model's name plus this suffix.
DENOISE_SUFFIX = "-denoise"

#: Estimated noise σ (pixels in [0, 1]) from which an image goes to the denoising twin. Chosen
#: from measurements (benchmarks/denoise_routing.md): clean LFW test faces and BSDS500 test
#: photos estimate at most 0.03 (the most textured photos come closest), and
#: σ = 0.05 noise at 0.039 to 0.067; the twins cost 0.9–4.2 dB on clean images
#: (benchmarks/denoise.md); at σ = 0.05 they take 9–25 % fewer bits than the plain models for
#: −0.6 to +0.2 dB, and from σ = 0.1 on they are far closer to the clean image.
AUTO_SIGMA = 0.04


def estimate_noise(rgb: np.ndarray) -> float:
    """The standard deviation of white Gaussian noise in an image, on [0, 1] pixels.

    Donoho's robust estimator on the finest diagonal Haar detail band, σ̂ = median|HH| / 0.6745,
    averaged over channels: image structure is sparse in that band, noise is not. The same
    estimator scikit-image's ``estimate_sigma`` uses (with a Daubechies wavelet), without PyWavelets.
    """
    x = np.asarray(rgb, dtype=np.float64) / 255.0
    if x.ndim == 2:
        x = x[..., None]
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    if h == 0 or w == 0:
        return 0.0
    x = x[:h, :w]
    hh = (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2.0
    return float(np.mean([np.median(np.abs(hh[..., c])) for c in range(x.shape[2])]) / 0.6745)


def is_denoising(model_name: str) -> bool:
    """Whether ``model_name`` names a denoising model (by the stable naming convention: its
    family ends in ``-denoise``, whatever the version)."""
    return split_version(ALIASES.get(model_name, model_name))[0].endswith(DENOISE_SUFFIX)


def denoising_twin(model_name: str) -> str:
    """The denoising model of the same family, newest version: ``conv-faces`` (any version)
    → ``conv-faces-denoise`` (its newest). Returns an exact name.

    A denoising model is its own twin. Raises AecModelError for a model that is not installed
    or that has no denoising twin installed (e.g. ``eigenfaces``).
    """
    exact = resolve(model_name)
    if is_denoising(exact):
        return exact
    family = split_version(exact)[0]
    twins = family_versions(family + DENOISE_SUFFIX)
    if not twins:
        with_twin = [f for f in families() if not f.endswith(DENOISE_SUFFIX) and family_versions(f + DENOISE_SUFFIX)]
        raise AecModelError(f"model {model_name!r} has no denoising twin; denoising works with "
                            f"{', '.join(with_twin) or 'no installed model'}")
    return twins[-1][1]


class DenoisingCodec:
    """Compress with denoising: each image goes to the denoising twin if it is noisy (its
    estimated σ reaches ``AUTO_SIGMA``), otherwise to the plain model. If ``model`` names the
    twin itself, every image goes to the twin. The ``.aec`` header names the model used."""

    def __init__(self, model: str = DEFAULT_MODEL, quality: float = DEFAULT_QUALITY, effort: int = 1) -> None:
        twin = denoising_twin(model)
        self.twin = Codec(model=twin, quality=quality, effort=effort)
        self.plain = None if is_denoising(model) else Codec(model=model, quality=quality, effort=effort)
        self.quality = self.twin.quality

    def codec_for(self, image: PreparedImage) -> Codec:
        """The codec ``image`` goes to."""
        if self.plain is None or estimate_noise(image.rgb) >= AUTO_SIGMA:
            return self.twin
        return self.plain

    def compress(self, image: ImageInput) -> bytes:
        prep = load_image(image)
        return self.codec_for(prep).compress(prep)

    def compress_many(self, images: Iterable[ImageInput], batch: int = 16) -> Iterator[bytes | AecError]:
        """Compress each image in order, batching equal sizes per model; a bad image yields its
        AecError and the rest go on. At most ``batch`` decoded images are held at once."""
        window: list[ImageInput] = []
        for img in images:
            window.append(img)
            if len(window) >= batch:
                yield from self._window(window, batch)
                window = []
        yield from self._window(window, batch)

    def _window(self, window: list[ImageInput], batch: int) -> Iterator[bytes | AecError]:
        results: dict[int, bytes | AecError] = {}
        routes: dict[str, list[tuple[int, PreparedImage]]] = {}
        codecs: dict[str, Codec] = {}
        for i, img in enumerate(window):
            try:
                prep = load_image(img)
            except AecError as exc:
                results[i] = exc
                continue
            codec = self.codec_for(prep)
            codecs[codec.model] = codec
            routes.setdefault(codec.model, []).append((i, prep))
        for name, items in routes.items():
            for (i, _), r in zip(items, codecs[name].compress_many([p for _, p in items], batch=batch)):
                results[i] = r
        for i in range(len(window)):
            yield results[i]

    def decompress(self, data: bytes) -> Image.Image:
        return self.twin.decompress(data)


def denoising_codec(model: str = DEFAULT_MODEL, quality: float = DEFAULT_QUALITY, effort: int = 1) -> DenoisingCodec:
    """A reusable denoising codec for ``model`` (plain or twin), for denoising many images."""
    return DenoisingCodec(model=model, quality=quality, effort=effort)


def denoise(image: ImageInput, quality: float = DEFAULT_QUALITY, model: str = DEFAULT_MODEL) -> Image.Image:
    """Compress ``image`` with denoising and decode it: the cleaned image.

    A noisy image (estimated σ ≥ ``AUTO_SIGMA``) goes through ``model``'s denoising twin, a
    clean one through ``model`` itself; naming the twin (``conv-photos-denoise``) always uses
    the twin. The result is exactly what ``decompress(compress(image, quality, chosen model))``
    gives, in the input's mode and size. Raises AecError (AecModelError, AecInputError, ...)
    with a message for the user.
    """
    codec = denoising_codec(model, quality)
    return codec.decompress(codec.compress(image))
