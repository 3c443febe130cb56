"""Codec adapters for the benchmark: Pillow's JPEG, WebP, AVIF, JPEG 2000, HEIF and JPEG XL from
optional packages (``pip install "aecodec[codecs]"``), and aecodec models."""

from __future__ import annotations

import importlib
import importlib.util
import io
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from aecodec.errors import AecError, AecInputError, AecModelError

__all__ = [
    "Codec",
    "PillowCodec",
    "ExtraCodec",
    "AecModelCodec",
    "PILLOW_CODECS",
    "EXTRA_CODECS",
    "EXTRAS_HINT",
    "AEC_PREFIX",
    "AEC_DEFAULT_QUALITIES",
    "aec_api",
    "aec_model_names",
    "make_codec",
    "default_codec_names",
    "resolve",
]

#: Codec names of aecodec models are this prefix plus the model's registry name.
AEC_PREFIX = "aec:"

#: Default sweep of aecodec's quality knob, from barely recognisable to near lossless.
AEC_DEFAULT_QUALITIES: tuple[float, ...] = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)


class Codec(ABC):
    """One codec under test: encodes an RGB image at a quality to bytes and back.

    ``quality`` is whatever knob sweeps the codec's rate; ``quality_meaning`` says what it
    is for the report. ``accepts`` lets a codec decline image sizes it cannot code (a model
    trained for one fixed size). Subclass this to benchmark a codec that is not built in.
    """

    name: str
    default_qualities: tuple[float, ...]
    quality_meaning: str
    settings: str

    def accepts(self, width: int, height: int) -> str | None:
        """Why this codec cannot code a width x height image, or None if it can."""
        return None

    def check_quality(self, quality: float) -> None:
        """Raise AecInputError if ``quality`` is outside what this codec takes."""

    @abstractmethod
    def encode(self, image: Image.Image, quality: float) -> bytes:
        """The complete file (headers included) for an RGB image at ``quality``."""

    @abstractmethod
    def decode(self, data: bytes) -> Image.Image:
        """The decoded image of ``data``, in mode RGB."""


def _decode_with_pillow(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.convert("RGB") if im.mode != "RGB" else im.copy()


@dataclass(frozen=True)
class PillowCodec(Codec):
    """A reference codec run through Pillow's own encoder and decoder, in memory."""

    name: str
    format: str
    default_qualities: tuple[float, ...]
    quality_meaning: str
    settings: str
    quality_range: tuple[float, float]
    save_options: Callable[[float], dict[str, Any]] = field(repr=False)
    integer_quality: bool = True

    def check_quality(self, quality: float) -> None:
        _check_range(self.name, quality, self.quality_range, self.integer_quality)

    def encode(self, image: Image.Image, quality: float) -> bytes:
        buf = io.BytesIO()
        image.save(buf, self.format, **self.save_options(quality))
        return buf.getvalue()

    def decode(self, data: bytes) -> Image.Image:
        return _decode_with_pillow(data)


def _check_range(name: str, quality: float, bounds: tuple[float, float], integer: bool) -> None:
    lo, hi = bounds
    if not lo <= quality <= hi:
        raise AecInputError(f"{name}: quality {quality:g} is outside [{lo:g}, {hi:g}]")
    if integer and quality != int(quality):
        raise AecInputError(f"{name}: quality must be a whole number, got {quality:g}")


#: How to get the codecs of optional packages.
EXTRAS_HINT = 'pip install "aecodec[codecs]"'


@dataclass(frozen=True)
class ExtraCodec(Codec):
    """A reference codec from an optional package, imported when first used: benchmarked by
    default when installed, and named as skipped, with how to install it, when not."""

    name: str
    module: str  # import name
    package: str  # pip name
    default_qualities: tuple[float, ...]
    quality_meaning: str
    settings: str
    quality_range: tuple[float, float]
    encoder: Callable[[Any, Image.Image, float], bytes] = field(repr=False)
    decoder: Callable[[Any, bytes], Image.Image] = field(repr=False)

    def missing(self) -> str | None:
        """Why this codec cannot run here, or None."""
        if importlib.util.find_spec(self.module) is None:
            return f"{self.package} is not installed ({EXTRAS_HINT}, or pip install {self.package})"
        return None

    def check_quality(self, quality: float) -> None:
        _check_range(self.name, quality, self.quality_range, True)

    def encode(self, image: Image.Image, quality: float) -> bytes:
        return self.encoder(importlib.import_module(self.module), image, quality)

    def decode(self, data: bytes) -> Image.Image:
        return self.decoder(importlib.import_module(self.module), data)


def _heif_encode(pillow_heif: Any, image: Image.Image, q: float) -> bytes:
    # pillow-heif's own API, so that HEIF is not registered with Pillow as a side effect.
    # 4:4:4 keeps full-resolution chroma, as PSNR on RGB needs to be fair to HEIF; one x265
    # thread pool, as AVIF gets one thread.
    buf = io.BytesIO()
    pillow_heif.from_pillow(image).save(buf, quality=int(q), chroma=444,
                                        enc_params={"x265:pools": "1", "x265:frame-threads": "1"})
    return buf.getvalue()


def _heif_decode(pillow_heif: Any, data: bytes) -> Image.Image:
    return pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True).to_pillow().convert("RGB")


def _jxl_encode(pillow_jxl: Any, image: Image.Image, q: float) -> bytes:
    # Importing pillow_jxl registers the JXL format with Pillow (the plugin has no other API).
    buf = io.BytesIO()
    image.save(buf, "JXL", quality=int(q), effort=7, num_threads=1)
    return buf.getvalue()


def _jxl_decode(pillow_jxl: Any, data: bytes) -> Image.Image:
    return _decode_with_pillow(data)


#: HEIF and JPEG XL, from the ``codecs`` extra; default sweeps span about 0.1 to 3 bpp on
#: 250x250 faces.
EXTRA_CODECS: dict[str, ExtraCodec] = {
    "heif": ExtraCodec(
        name="heif",
        module="pillow_heif",
        package="pillow-heif",
        default_qualities=(0, 10, 20, 30, 40, 50, 60, 70, 80, 90),
        quality_meaning="libheif quality 0..100 (higher is better)",
        settings="HEVC (x265) through libheif (pillow-heif), chroma 4:4:4, one x265 thread pool, "
        "libheif's other defaults",
        quality_range=(0, 100),
        encoder=_heif_encode,
        decoder=_heif_decode,
    ),
    "jxl": ExtraCodec(
        name="jxl",
        module="pillow_jxl",
        package="pillow-jxl-plugin",
        default_qualities=(0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95),
        quality_meaning="libjxl quality 0..100 (maps to a butteraugli distance; tuned for appearance)",
        settings="libjxl through pillow-jxl-plugin, lossy, effort 7 (the default), one thread",
        quality_range=(0, 100),
        encoder=_jxl_encode,
        decoder=_jxl_decode,
    ),
}


def _jpeg_options(q: float) -> dict[str, Any]:
    return {"quality": int(q), "optimize": True, "subsampling": "4:2:0"}


def _webp_options(q: float) -> dict[str, Any]:
    return {"quality": float(q), "method": 6, "lossless": False}


def _avif_options(q: float) -> dict[str, Any]:
    # One thread so encode times compare with the single-threaded JPEG/WebP encoders and do
    # not depend on how busy the machine's other cores are.
    return {"quality": int(q), "speed": 6, "subsampling": "4:2:0", "max_threads": 1}


def _jpeg2000_options(bpp: float) -> dict[str, Any]:
    # OpenJPEG's "rates" are compression ratios against the raw 24-bit RGB size.
    return {"quality_mode": "rates", "quality_layers": [24.0 / bpp], "irreversible": True}


#: The reference codecs by name, with default sweeps that span about 0.05 to 3 bpp on
#: natural photos (checked on BSDS500; tiny images cannot reach the lowest rates).
PILLOW_CODECS: dict[str, PillowCodec] = {
    "jpeg": PillowCodec(
        name="jpeg",
        format="JPEG",
        # Pillow advises against quality > 95 (bigger files, little gain).
        default_qualities=(5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95),
        quality_meaning="libjpeg quality 1..100",
        settings="optimize=True (optimised Huffman tables), subsampling 4:2:0, baseline JFIF",
        quality_range=(1, 100),
        save_options=_jpeg_options,
    ),
    "webp": PillowCodec(
        name="webp",
        format="WEBP",
        default_qualities=(0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100),
        quality_meaning="libwebp lossy quality 0..100",
        settings="lossy, method=6 (slowest, best compression)",
        quality_range=(0, 100),
        save_options=_webp_options,
        integer_quality=False,
    ),
    "avif": PillowCodec(
        name="avif",
        format="AVIF",
        default_qualities=(0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95),
        quality_meaning="libavif quality 0..100 (higher is better)",
        settings="speed=6 (Pillow's default of 0..10; 10 is fastest), subsampling 4:2:0, "
        "max_threads=1, HEIF container",
        quality_range=(0, 100),
        save_options=_avif_options,
    ),
    "jpeg2000": PillowCodec(
        name="jpeg2000",
        format="JPEG2000",
        default_qualities=(0.05, 0.1, 0.15, 0.25, 0.375, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0),
        quality_meaning="target bits per pixel (OpenJPEG rate = 24 / bpp)",
        settings="irreversible 9/7 wavelet, quality_mode='rates' single layer, JP2 container",
        quality_range=(1e-3, 24.0),
        save_options=_jpeg2000_options,
        integer_quality=False,
    ),
}


def aec_api() -> Any:
    """aecodec's public API (compress, decompress, list_models, model_info), imported lazily.

    Imported on demand rather than at module import so the benchmark works (with the
    reference codecs) before or without aecodec's models. Raises AecModelError if missing.
    """
    needed = ("compress", "decompress", "list_models", "model_info")
    try:
        top = importlib.import_module("aecodec")
        if all(hasattr(top, n) for n in needed):
            return top
        api = importlib.import_module("aecodec.api")
    except ImportError as exc:
        raise AecModelError(f"aecodec's API cannot be imported: {exc}") from exc
    missing = [n for n in needed if not hasattr(api, n)]
    if missing:
        raise AecModelError(f"aecodec.api lacks {', '.join(missing)}")
    return api


def aec_model_names(denoising: bool = False) -> list[str]:
    """Codec names (``aec:<model>``) of the newest installed version of every aecodec model
    family (older versions are benchmarked only when named), without the denoising twins
    unless ``denoising``: on clean images they only measure how much detail they smooth away."""
    from aecodec.denoising import is_denoising
    from aecodec.weights import split_version
    newest: dict[str, tuple[int, str]] = {}
    for m in aec_api().list_models():
        family, version = split_version(m)
        if denoising or not is_denoising(m):
            newest[family] = max(newest.get(family, (0, m)), (version, m))
    return [AEC_PREFIX + m for _, m in newest.values()]


class AecModelCodec(Codec):
    """One aecodec model as a codec: ``aecodec.compress`` / ``aecodec.decompress``."""

    def __init__(self, model: str, api: Any) -> None:
        self.name = AEC_PREFIX + model
        self._api = api
        info = dict(api.model_info(model))
        # Pinned to the exact version the name means now (``conv-photos.v1``, not "newest"),
        # so a recorded point stays reproducible after a new version ships.
        self.model = _pinned(str(info.get("name", model)))
        fixed = info.get("fixed_size")
        self.fixed_size: tuple[int, int] | None = None if fixed is None else (int(fixed[0]), int(fixed[1]))
        self.domain = str(info.get("domain", "")) or None
        self.default_qualities = AEC_DEFAULT_QUALITIES
        self.quality_meaning = "aecodec quality"
        parts = [str(info.get("description", "")).strip(), f"weights {self.model}"]
        if self.domain:
            parts.append(f"domain: {self.domain}")
        if self.fixed_size:
            parts.append(f"fixed size {self.fixed_size[0]}x{self.fixed_size[1]}")
        self.settings = "; ".join(p for p in parts if p) or "aecodec model"

    def accepts(self, width: int, height: int) -> str | None:
        if self.fixed_size is not None and (width, height) != self.fixed_size:
            w, h = self.fixed_size
            return f"model takes only {w}x{h} images, not {width}x{height}"
        return None

    def encode(self, image: Image.Image, quality: float) -> bytes:
        return bytes(self._api.compress(image, quality=quality, model=self.model))

    def decode(self, data: bytes) -> Image.Image:
        out = self._api.decompress(data)
        return out.convert("RGB") if out.mode != "RGB" else out


def _pinned(exact: str) -> str:
    """An exact model name that resolves to itself only: version 1 spelled ``family.v1``."""
    from aecodec.weights import split_version
    family, version = split_version(exact)
    return f"{family}.v{version}"


def make_codec(name: str) -> Codec:
    """The codec adapter for a name: a key of PILLOW_CODECS or EXTRA_CODECS, or ``aec:<model>``.
    Raises AecModelError for an unknown name or a codec whose package is not installed."""
    if name in PILLOW_CODECS:
        return PILLOW_CODECS[name]
    if name in EXTRA_CODECS:
        why = EXTRA_CODECS[name].missing()
        if why is not None:
            raise AecModelError(f"codec {name}: {why}")
        return EXTRA_CODECS[name]
    if name.startswith(AEC_PREFIX):
        api = aec_api()
        model = name[len(AEC_PREFIX):]
        try:
            api.model_info(model)  # a family or alias means its newest version
        except (AecError, KeyError):
            raise AecModelError(
                f"unknown aecodec model {model!r}; known: {', '.join(api.list_models()) or 'none'}"
            )
        return AecModelCodec(model, api)
    known = ", ".join(list(PILLOW_CODECS) + list(EXTRA_CODECS) + [AEC_PREFIX + "<model>"])
    raise AecModelError(f"unknown codec {name!r}; known: {known}")


def default_codec_names() -> tuple[list[str], list[tuple[str, str]]]:
    """All Pillow codecs, the optional ones that are installed and every plain aecodec model,
    and (name, reason) for what is missing."""
    names = list(PILLOW_CODECS)
    missing: list[tuple[str, str]] = []
    for name, codec in EXTRA_CODECS.items():
        why = codec.missing()
        if why is None:
            names.append(name)
        else:
            missing.append((name, why))
    try:
        names += aec_model_names()
    except AecModelError as exc:
        missing.append((AEC_PREFIX + "*", str(exc)))
    return names, missing


def resolve(names: Sequence[str | Codec]) -> list[Codec]:
    """Codec adapters for names (or adapters passed through), refusing duplicates."""
    codecs = [c if isinstance(c, Codec) else make_codec(c) for c in names]
    seen: set[str] = set()
    for c in codecs:
        if c.name in seen:
            raise AecInputError(f"codec {c.name!r} is listed twice")
        seen.add(c.name)
    return codecs
