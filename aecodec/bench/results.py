"""The benchmark's result records and their JSON form, so reports can be re-rendered."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from aecodec.errors import AecFormatError, AecInputError

__all__ = [
    "RESULTS_FORMAT",
    "RESULTS_VERSION",
    "Point",
    "Aggregate",
    "BDRow",
    "Timing",
    "Skipped",
    "ImageInfo",
    "CodecInfo",
    "VisualPanel",
    "Visual",
    "BenchResult",
    "load_results",
    "save_results",
]

RESULTS_FORMAT = "aecodec-bench"
RESULTS_VERSION = 1


@dataclass(frozen=True)
class Point:
    """One codec at one quality on one image. ``psnr`` is inf when decoding was exact."""

    codec: str
    quality: float
    image: str
    width: int
    height: int
    bytes: int
    bpp: float
    psnr: float
    msssim: float | None
    encode_s: float
    decode_s: float


@dataclass(frozen=True)
class Aggregate:
    """Means over images of one codec at one quality (the mean of per-image values).

    ``msssim`` is the mean over the ``n_msssim`` images large enough for MS-SSIM, None if none.
    """

    codec: str
    quality: float
    n_images: int
    bpp: float
    psnr: float
    msssim: float | None
    n_msssim: int


@dataclass(frozen=True)
class BDRow:
    """Bjøntegaard deltas of a codec against the anchor on one metric.

    ``bd_dist`` is in dB: BD-PSNR, or BD on MS-SSIM expressed as -10 log10(1 - MS-SSIM).
    """

    codec: str
    anchor: str
    metric: Literal["psnr", "msssim"]
    bd_rate: float | None
    bd_dist: float | None
    n_images: int
    note: str | None = None


@dataclass(frozen=True)
class Timing:
    """Mean wall time per image of one codec over all its points, in milliseconds."""

    codec: str
    n_points: int
    encode_ms: float
    decode_ms: float
    encode_ms_per_mp: float
    decode_ms_per_mp: float


@dataclass(frozen=True)
class Skipped:
    """Something left out of the benchmark and why.

    ``kind`` is "image" (unreadable input), "codec" (not run at all), "codec-image" (a codec
    that cannot code that image) or "point" (one encode/decode that failed).
    """

    kind: Literal["image", "codec", "codec-image", "point"]
    name: str
    reason: str
    codec: str | None = None
    quality: float | None = None


@dataclass(frozen=True)
class ImageInfo:
    """An image that was benchmarked: its name, file, size, original mode and any conversion.

    ``msssim_skip`` says why MS-SSIM was not measured on it (too small), None if it was.
    """

    image: str
    path: str
    root: str
    width: int
    height: int
    mode: str
    note: str | None = None
    msssim_skip: str | None = None


@dataclass(frozen=True)
class CodecInfo:
    """A codec that was run: its settings and the qualities swept."""

    name: str
    settings: str
    quality_meaning: str
    qualities: list[float]


@dataclass(frozen=True)
class VisualPanel:
    """One crop in the visual comparison; ``file`` is relative to the results folder."""

    codec: str
    quality: float | None
    bpp: float | None
    psnr: float | None
    file: str


@dataclass(frozen=True)
class Visual:
    """The visual comparison: one image, one crop box (left, top, right, bottom), panels."""

    image: str
    box: list[int]
    target_bpp: float
    panels: list[VisualPanel]


@dataclass
class BenchResult:
    """Everything one benchmark run measured, and where its files are (if written)."""

    points: list[Point]
    aggregates: list[Aggregate]
    bd: list[BDRow]
    skipped: list[Skipped]
    images: list[ImageInfo] = field(default_factory=list)
    codecs: list[CodecInfo] = field(default_factory=list)
    timing: list[Timing] = field(default_factory=list)
    setup: dict[str, Any] = field(default_factory=dict)
    visual: Visual | None = None
    out_dir: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form; infinite PSNR (exact decode) is written as null."""
        d = {
            "format": RESULTS_FORMAT,
            "format_version": RESULTS_VERSION,
            "setup": self.setup,
            "images": [asdict(x) for x in self.images],
            "codecs": [asdict(x) for x in self.codecs],
            "points": [asdict(x) for x in self.points],
            "aggregates": [asdict(x) for x in self.aggregates],
            "bd": [asdict(x) for x in self.bd],
            "timing": [asdict(x) for x in self.timing],
            "skipped": [asdict(x) for x in self.skipped],
            "visual": None if self.visual is None else asdict(self.visual),
        }
        return _finite_or_null(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any], out_dir: Path | None = None) -> BenchResult:
        """Rebuild from ``to_dict`` output; raises AecFormatError on a foreign document."""
        if d.get("format") != RESULTS_FORMAT:
            raise AecFormatError("not an aecodec benchmark results file")
        if d.get("format_version") != RESULTS_VERSION:
            raise AecFormatError(
                f"benchmark results version {d.get('format_version')} is not {RESULTS_VERSION}"
            )
        try:
            points = [_build(Point, _inf_psnr(p)) for p in d["points"]]
            vis = d.get("visual")
            visual = None
            if vis is not None:
                panels = [_build(VisualPanel, p) for p in vis["panels"]]
                visual = Visual(vis["image"], list(vis["box"]), vis["target_bpp"], panels)
            return cls(
                points=points,
                aggregates=[_build(Aggregate, _inf_psnr(a)) for a in d["aggregates"]],
                bd=[_build(BDRow, b) for b in d["bd"]],
                skipped=[_build(Skipped, s) for s in d["skipped"]],
                images=[_build(ImageInfo, i) for i in d.get("images", [])],
                codecs=[_build(CodecInfo, c) for c in d.get("codecs", [])],
                timing=[_build(Timing, t) for t in d.get("timing", [])],
                setup=dict(d.get("setup", {})),
                visual=visual,
                out_dir=out_dir,
            )
        except (KeyError, TypeError) as exc:
            raise AecFormatError(f"benchmark results file is incomplete: {exc}") from exc


def _build(cls: Any, d: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


def _inf_psnr(d: dict[str, Any]) -> dict[str, Any]:
    """A null PSNR of a point or aggregate stands for an exact decode (infinite PSNR)."""
    return {**d, "psnr": math.inf} if d.get("psnr", 0.0) is None else d


def _finite_or_null(x: Any) -> Any:
    """Strict JSON has no Infinity/NaN; write them as null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite_or_null(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_or_null(v) for v in x]
    return x


def save_results(result: BenchResult, path: str | Path) -> Path:
    """Write ``result`` as indented, strict JSON to ``path``."""
    p = Path(path)
    p.write_text(json.dumps(result.to_dict(), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return p


def load_results(path: str | Path) -> BenchResult:
    """Read a ``results.json`` (or the folder holding one) written by the benchmark."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AecInputError(f"cannot read {p}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise AecFormatError(f"{p} is not valid JSON: {exc}") from exc
    if not isinstance(d, dict):
        raise AecFormatError(f"{p} is not an aecodec benchmark results file")
    return BenchResult.from_dict(d, out_dir=p.parent)
