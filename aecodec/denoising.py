"""Denoising compression: a model's denoising twin cleans noisy photos while coding them.

A denoising model (``conv-photos-denoise``, ``conv-faces-denoise``) is an ordinary codec model
whose encoder was trained on inputs with added Gaussian noise (σ up to 0.2 on [0, 1] pixels)
and whose decoder was trained to give back the clean image. Its ``.aec`` files are ordinary
files: ``decompress`` needs nothing special. Because the noise never reaches the latents, it
also costs no bits, so a noisy photo comes out both cleaner and smaller than with the plain
model. On clean images it is smoother (and less faithful) than the plain model: use it for
noisy inputs only (see ``benchmarks/denoise.md``).

::

    noisy image ─► compress(model=twin) ─► .aec ─► decompress ─► clean image
"""

from __future__ import annotations

from PIL import Image

from aecodec.api import Codec
from aecodec.codec import DEFAULT_MODEL, DEFAULT_QUALITY
from aecodec.errors import AecModelError
from aecodec.images import ImageInput
from aecodec.weights import shipped_names

__all__ = ["DENOISE_SUFFIX", "denoising_twin", "is_denoising", "denoise", "denoising_codec"]

#: A model's denoising twin is installed under the model's name plus this suffix.
DENOISE_SUFFIX = "-denoise"


def is_denoising(model_name: str) -> bool:
    """Whether ``model_name`` names a denoising model (by the stable naming convention)."""
    return model_name.endswith(DENOISE_SUFFIX)


def denoising_twin(model_name: str) -> str:
    """The denoising model of the same domain: ``conv-faces`` → ``conv-faces-denoise``.

    A denoising model is its own twin. Raises AecModelError for a model that is not installed
    or that has no denoising twin installed (e.g. ``eigenfaces``).
    """
    installed = shipped_names()
    if model_name not in installed:
        known = ", ".join(installed) or "none"
        raise AecModelError(f"model {model_name!r} is not installed (installed: {known})")
    if is_denoising(model_name):
        return model_name
    twin = model_name + DENOISE_SUFFIX
    if twin not in installed:
        with_twin = [n for n in installed if not is_denoising(n) and n + DENOISE_SUFFIX in installed]
        raise AecModelError(f"model {model_name!r} has no denoising twin; denoising works with "
                            f"{', '.join(with_twin) or 'no installed model'}")
    return twin


def denoising_codec(model: str = DEFAULT_MODEL, quality: float = DEFAULT_QUALITY) -> Codec:
    """A reusable ``Codec`` of ``model``'s denoising twin, for denoising many images."""
    return Codec(model=denoising_twin(model), quality=quality)


def denoise(image: ImageInput, quality: float = DEFAULT_QUALITY, model: str = DEFAULT_MODEL) -> Image.Image:
    """Compress ``image`` with ``model``'s denoising twin and decode it: the cleaned image.

    The result is exactly what ``decompress(compress(image, quality, denoising_twin(model)))``
    gives, in the input's mode and size. ``model`` may name the plain model (``conv-photos``)
    or its twin. Raises AecError (AecModelError, AecInputError, ...) with a message for the user.
    """
    codec = denoising_codec(model, quality)
    return codec.decompress(codec.compress(image))
