"""The benchmark sweep: every codec at every quality on every image, measured and reported."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from aecodec.bench.aggregate import aggregate, bd_table, timing_table
from aecodec.bench.bdrate import Method
from aecodec.bench.codecs import (
    AEC_PREFIX,
    EXTRA_CODECS,
    PILLOW_CODECS,
    Codec,
    default_codec_names,
    make_codec,
    resolve,
)
from aecodec.bench.environment import (
    codec_library_versions,
    image_set_info,
    library_versions,
    machine_info,
)
from aecodec.bench.inputs import ImageSource, find_images, load_rgb
from aecodec.bench.metrics import ms_ssim, ms_ssim_skip_reason, psnr
from aecodec.bench.progress import Progress, ProgressMode, forecast_seconds
from aecodec.bench.report import render_report
from aecodec.bench.results import BenchResult, CodecInfo, ImageInfo, Point, Skipped
from aecodec.bench.visual import VisualCollector
from aecodec.errors import AecError, AecInputError

__all__ = ["run_bench", "DEFAULT_VISUAL_BPP"]

#: Rate the visual comparison aims at when no aecodec model was run.
DEFAULT_VISUAL_BPP = 0.5


@dataclass(frozen=True)
class _Image:
    info: ImageInfo
    source: ImageSource


def _load_images(inputs: Sequence[str | Path], skipped: list[Skipped], msssim: bool) -> list[_Image]:
    sources, missing = find_images(inputs)
    skipped += [Skipped("image", name, reason) for name, reason in missing]
    images = []
    for src in sources:
        try:
            arr, mode, note = load_rgb(src.path)
        except AecInputError as exc:
            skipped.append(Skipped("image", src.name, str(exc)))
            continue
        h, w = arr.shape[:2]
        no_ms = ms_ssim_skip_reason(w, h) if msssim else "MS-SSIM turned off for this run"
        info = ImageInfo(src.name, str(src.path), src.root, w, h, mode, note, no_ms)
        images.append(_Image(info, src))
    return images


def _select_codecs(
    codecs: Sequence[str | Codec] | None, images: Sequence[_Image], skipped: list[Skipped]
) -> tuple[list[Codec], dict[str, set[str]]]:
    """The codecs to run and, for each, the images it takes.

    Explicitly named codecs that cannot code some images run on the rest (each refusal is
    recorded); default aecodec models run only if they take every image, so that the
    default report compares all codecs on one image set.
    """
    explicit = codecs is not None
    if codecs is None:
        names, missing = default_codec_names()
        skipped += [Skipped("codec", name, reason) for name, reason in missing]
        chosen: list[Codec] = []
        for name in names:
            try:
                chosen.append(make_codec(name))
            except AecError as exc:
                skipped.append(Skipped("codec", name, str(exc)))
    else:
        chosen = resolve(codecs)
    run: list[Codec] = []
    takes: dict[str, set[str]] = {}
    for codec in chosen:
        refusals = {im.info.image: codec.accepts(im.info.width, im.info.height) for im in images}
        refused = {k: v for k, v in refusals.items() if v is not None}
        if len(refused) == len(images):
            first = next(iter(refused.values()), "no images")
            skipped.append(Skipped("codec", codec.name, f"takes none of the images ({first})"))
        elif refused and not explicit:
            first = next(iter(refused.values()))
            skipped.append(
                Skipped(
                    "codec",
                    codec.name,
                    f"takes only {len(images) - len(refused)} of {len(images)} images ({first}); "
                    "name it explicitly to run it on those",
                )
            )
        else:
            skipped += [Skipped("codec-image", img, why, codec=codec.name) for img, why in refused.items()]
            run.append(codec)
            takes[codec.name] = set(refusals) - set(refused)
    return run, takes


def _qualities_for(
    codecs: Sequence[Codec], qualities: Mapping[str, Sequence[float]] | None
) -> dict[str, list[float]]:
    """Each codec's sweep: its entry in ``qualities``, the "aec" entry, or its default."""
    given = dict(qualities or {})
    for key in given:
        if key != "aec" and key not in PILLOW_CODECS and key not in EXTRA_CODECS and not key.startswith(AEC_PREFIX):
            raise AecInputError(f"qualities given for unknown codec {key!r}")
    out: dict[str, list[float]] = {}
    for codec in codecs:
        if codec.name in given:
            qs = given[codec.name]
        elif codec.name.startswith(AEC_PREFIX) and "aec" in given:
            qs = given["aec"]
        else:
            qs = codec.default_qualities
        sweep = sorted({float(q) for q in qs})
        if not sweep:
            raise AecInputError(f"{codec.name}: empty list of qualities")
        for q in sweep:
            if not math.isfinite(q):
                raise AecInputError(f"{codec.name}: quality {q} is not a number")
            codec.check_quality(q)
        out[codec.name] = sweep
    return out


def _measure(
    codec: Codec, image: Image.Image, ref: NDArray[np.uint8], quality: float, name: str, with_msssim: bool
) -> tuple[Point, NDArray[np.uint8]]:
    """Encode, decode and score one point; raises on any codec failure."""
    t0 = time.perf_counter()
    data = codec.encode(image, quality)
    t1 = time.perf_counter()
    decoded = codec.decode(data)
    t2 = time.perf_counter()
    out = np.asarray(decoded.convert("RGB") if decoded.mode != "RGB" else decoded, dtype=np.uint8)
    if out.shape != ref.shape:
        raise AecInputError(f"decoded size {out.shape[1]}x{out.shape[0]} differs from the input's")
    h, w = ref.shape[:2]
    point = Point(
        codec=codec.name,
        quality=quality,
        image=name,
        width=w,
        height=h,
        bytes=len(data),
        bpp=8.0 * len(data) / (w * h),
        psnr=psnr(ref, out),
        msssim=ms_ssim(ref, out) if with_msssim else None,
        encode_s=t1 - t0,
        decode_s=t2 - t1,
    )
    return point, out


def _visual_target(points: Sequence[Point], image: str, fallback: float) -> float:
    """Median aecodec bpp on the visual image, or ``fallback`` when no model ran on it."""
    aec = [p.bpp for p in points if p.image == image and p.codec.startswith(AEC_PREFIX)]
    return statistics.median(aec) if aec else fallback


def run_bench(
    inputs: Sequence[str | Path],
    codecs: Sequence[str | Codec] | None = None,
    out_dir: str | Path | None = None,
    qualities: dict[str, Sequence[float]] | None = None,
    progress: bool | ProgressMode = True,
    *,
    anchor: str = "jpeg",
    bd_method: Method = "pchip",
    visual_bpp: float | None = None,
    msssim: bool = True,
) -> BenchResult:
    """Measure rate, distortion and speed of codecs on images, and write a report.

    ``inputs`` are image files and folders (searched recursively for png, jpg, jpeg, bmp,
    tif, tiff, webp); every image is coded as 8-bit RGB. Unreadable inputs are skipped and
    listed in ``BenchResult.skipped``, never fatal. ``codecs`` are names ("jpeg", "webp",
    "avif", "jpeg2000", "heif", "jxl", "aec:<model>") or Codec adapters; None means the
    Pillow codecs, HEIF and JPEG XL where their packages are installed (else they are listed
    as skipped, with how to install them), and every plain (not denoising) aecodec model
    that takes all the images. ``qualities`` maps a codec name (or "aec" for every aecodec
    model) to its sweep, replacing the default.

    ``progress`` reports on stderr: first a rough forecast of the run's length, then a bar
    ("bar" or True) or a line as each codec finishes ("lines", for logs and pipes); False
    says nothing. Codecs run one after the other, each over every image.

    Every point is encoded in memory; bpp counts the whole file, header included. PSNR and
    MS-SSIM (images with both sides >= 161 px) are measured on 8-bit RGB. Curves average
    per-image values; BD-rate and BD-PSNR are against ``anchor`` with ``bd_method``.
    If ``out_dir`` is given, report.md, psnr.png, msssim.png, visual.png and results.json are
    written there; the visual comparison aims at ``visual_bpp`` (default: the median aecodec
    bpp, else 0.5). ``msssim=False`` skips MS-SSIM, the slowest metric (about 0.5 s per
    megapixel and point). Raises AecInputError if no image is readable, AecModelError for an
    unknown codec name.
    """
    skipped: list[Skipped] = []
    images = _load_images(inputs, skipped, msssim)
    if not images:
        reasons = "; ".join(f"{s.name}: {s.reason}" for s in skipped[:5])
        raise AecInputError(f"no readable images in the inputs ({reasons or 'nothing found'})")
    chosen, takes = _select_codecs(codecs, images, skipped)
    sweeps = _qualities_for(chosen, qualities)
    mp = {im.info.image: im.info.width * im.info.height / 1e6 for im in images}
    with_ms = {im.info.image for im in images if im.info.msssim_skip is None}
    counts = {c.name: len(sweeps[c.name]) * len(takes[c.name]) for c in chosen}
    forecasts = {c.name: forecast_seconds(c.name, len(sweeps[c.name]) * sum(mp[i] for i in takes[c.name]),
                                          counts[c.name],
                                          len(sweeps[c.name]) * sum(mp[i] for i in takes[c.name] & with_ms))
                 for c in chosen}
    mode: ProgressMode | None = "bar" if progress is True else (progress or None)  # type: ignore[assignment]
    report = Progress(mode, forecasts, counts, len(images))
    out_path = Path(out_dir) if out_dir is not None else None
    visual = VisualCollector(images[0].info, out_path) if out_path is not None else None
    first = images[0].info.image
    first_ref: NDArray[np.uint8] | None = None
    gone: set[str] = set()  # images that could not be read again

    points: list[Point] = []
    report.start()
    try:
        for codec in chosen:
            report.codec_started(codec.name)
            measured = failed = 0
            for im in images:
                if im.info.image not in takes[codec.name] or im.info.image in gone:
                    continue
                try:
                    ref, _, _ = load_rgb(im.source.path)
                except AecInputError as exc:  # changed on disk since it was first read
                    skipped.append(Skipped("image", im.info.image, str(exc)))
                    gone.add(im.info.image)
                    continue
                if im.info.image == first:
                    first_ref = ref
                pil = Image.fromarray(ref, "RGB")
                for q in sweeps[codec.name]:
                    try:
                        point, decoded = _measure(codec, pil, ref, q, im.info.image, im.info.image in with_ms)
                    except Exception as exc:  # one failing point must not end an hour-long run
                        skipped.append(
                            Skipped("point", im.info.image, f"{type(exc).__name__}: {exc}", codec.name, q)
                        )
                        failed += 1
                    else:
                        points.append(point)
                        measured += 1
                        if visual is not None and im.info.image == first:
                            visual.offer(point, decoded)
                    report.point()
            report.codec_done(codec.name, measured, failed)
    finally:
        report.close()
    if visual is not None and first_ref is not None:
        target = visual_bpp if visual_bpp is not None else _visual_target(points, first, DEFAULT_VISUAL_BPP)
        visual.finish(first_ref, target)

    info = [im.info for im in images]
    for s in skipped:
        if s.kind == "image":
            info = [i for i in info if i.image != s.name]
    setup = {
        "images": image_set_info(info),
        "libraries": library_versions(),
        "codec_libraries": codec_library_versions(),
        "machine": machine_info(),
        "anchor": anchor,
        "bd_method": bd_method,
        "aggregation": "mean over images of per-image bpp, PSNR and MS-SSIM",
        "msssim": "5-scale MS-SSIM (Wang et al. 2003), per RGB channel then averaged; "
        "BD on MS-SSIM uses -10 log10(1 - MS-SSIM) dB",
        "psnr": "8-bit RGB, MSE pooled over the three channels (skimage, data_range=255)",
    }
    result = BenchResult(
        points=points,
        aggregates=aggregate(points),
        bd=bd_table(points, [c.name for c in chosen], anchor=anchor, method=bd_method),
        skipped=skipped,
        images=info,
        codecs=[CodecInfo(c.name, c.settings, c.quality_meaning, sweeps[c.name]) for c in chosen],
        timing=timing_table(points),
        setup=setup,
        visual=visual.result() if visual is not None else None,
        out_dir=out_path,
    )
    if out_path is not None:
        render_report(result, out_path)
    return result
