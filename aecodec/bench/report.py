"""Writing a benchmark's report folder: report.md, the plots and results.json."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from aecodec.bench.results import BenchResult, BDRow, load_results, save_results

__all__ = ["render_report", "markdown_report"]


def _num(x: float | None, fmt: str = ".3f", unit: str = "") -> str:
    if x is None:
        return "–"
    if not math.isfinite(x):
        return "inf"
    return f"{x:{fmt}}{unit}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return out + [""]


def _setup_lines(r: BenchResult) -> list[str]:
    s = r.setup
    imgs: dict[str, Any] = s.get("images", {})
    lines = ["## Setup", ""]
    sizes = ", ".join(f"{k} ×{v}" for k, v in imgs.get("sizes", {}).items())
    lines.append(
        f"- **Images**: {imgs.get('n_images', len(r.images))} ({sizes}; mean "
        f"{imgs.get('megapixels_mean', 0.0):.3f} MP), from: {', '.join(imgs.get('sources', [])) or '–'}"
    )
    jpeg_sources = [i for i in r.images if Path(i.path).suffix.lower() in {".jpg", ".jpeg"}]
    if jpeg_sources:
        lines.append(
            f"- **Caution**: {len(jpeg_sources)} of {len(r.images)} images are JPEG files; their "
            "pixels already carry JPEG's 8x8 quantisation, which flatters the JPEG anchor at high "
            "quality (re-encoding near the source quality can reproduce it almost exactly)."
        )
    for i in r.images:
        if i.note:
            lines.append(f"- {i.image}: {i.note}")
    by_reason: dict[str, list[str]] = {}
    for i in r.images:
        if i.msssim_skip:
            by_reason.setdefault(i.msssim_skip, []).append(i.image)
    if by_reason:
        count = sum(len(v) for v in by_reason.values())
        lines.append(f"- **MS-SSIM not measured** on {count} of {len(r.images)} images:")
        for reason, names in by_reason.items():
            more = f" and {len(names) - 5} more" if len(names) > 5 else ""
            lines.append(f"  - {', '.join(names[:5])}{more}: {reason}")
    m = s.get("machine", {})
    if m:
        lines.append(
            f"- **Machine**: {m.get('platform')}, {m.get('machine')}, {m.get('cpu_count')} CPUs, "
            f"Python {m.get('python')}; run {m.get('date_utc')} UTC"
        )
    libs = s.get("libraries", {})
    if libs:
        lines.append("- **Libraries**: " + ", ".join(f"{k} {v or 'not installed'}" for k, v in libs.items()))
    clibs = s.get("codec_libraries", {})
    if clibs:
        listed = ", ".join(f"{k} {v or '–'}" for k, v in clibs.items())
        lines.append(f"- **Codec libraries in Pillow**: {listed}")
    lines += [
        "- **Rate**: the whole encoded file (headers and container included), "
        "bpp = 8 x bytes / (width x height).",
        f"- **PSNR**: {s.get('psnr', 'RGB, 8 bit')}.",
        f"- **MS-SSIM**: {s.get('msssim', '5-scale')}; only for images with both sides >= 161 px.",
        f"- **Curves**: {s.get('aggregation', 'mean over images of per-image values')}, per codec "
        "and quality.",
        f"- **BD**: Bjøntegaard deltas ({s.get('bd_method', 'pchip')} interpolation) against "
        f"{s.get('anchor', 'jpeg')}, over the overlapping range only (– where the curves do not "
        "overlap; never extrapolated).",
        "",
    ]
    lines += _table(
        ["codec", "settings", "quality knob", "qualities"],
        ([c.name, c.settings, c.quality_meaning, ", ".join(f"{q:g}" for q in c.qualities)] for c in r.codecs),
    )
    return lines


def _bd_lines(r: BenchResult) -> list[str]:
    anchor = r.setup.get("anchor", "jpeg")
    by: dict[tuple[str, str], BDRow] = {(b.codec, b.metric): b for b in r.bd}
    codecs = list(dict.fromkeys(b.codec for b in r.bd))
    rows = []
    for c in codecs:
        p, m = by.get((c, "psnr")), by.get((c, "msssim"))
        notes = "; ".join(
            f"{name}: {b.note}" for name, b in (("PSNR", p), ("MS-SSIM", m)) if b is not None and b.note
        )
        rows.append([
            c,
            _num(p.bd_rate if p else None, "+.1f", " %"),
            _num(p.bd_dist if p else None, "+.2f", " dB"),
            _num(m.bd_rate if m else None, "+.1f", " %"),
            _num(m.bd_dist if m else None, "+.2f", " dB"),
            str(p.n_images if p else 0),
            notes,
        ])
    lines = [f"## BD-rate and BD-PSNR against {anchor}", ""]
    lines.append(
        "Negative BD-rate: fewer bits than the anchor for the same quality. Positive BD-PSNR: "
        "higher quality at the same rate. MS-SSIM deltas are in dB of -10 log10(1 - MS-SSIM)."
    )
    lines.append("")
    return lines + _table(
        ["codec", "BD-rate (PSNR)", "BD-PSNR", "BD-rate (MS-SSIM)", "BD-MS-SSIM", "images", "notes"], rows
    )


def _rd_lines(r: BenchResult, has_psnr_png: bool, has_msssim_png: bool) -> list[str]:
    lines = ["## Rate and distortion", ""]
    lines.append("![PSNR vs bpp](psnr.png)" if has_psnr_png else "_No PSNR plot: no points._")
    lines.append("")
    lines.append(
        "![MS-SSIM vs bpp](msssim.png)" if has_msssim_png
        else "_No MS-SSIM plot: MS-SSIM was not measured on any image (see Setup)._"
    )
    lines.append("")
    for c in dict.fromkeys(a.codec for a in r.aggregates):
        lines += [f"### {c}", ""]
        lines += _table(
            ["quality", "images", "bpp", "PSNR (dB)", "MS-SSIM"],
            (
                [f"{a.quality:g}", str(a.n_images), _num(a.bpp, ".4f"), _num(a.psnr, ".2f"),
                 _num(a.msssim, ".4f")]
                for a in r.aggregates if a.codec == c
            ),
        )
    return lines


def _timing_lines(r: BenchResult) -> list[str]:
    lines = ["## Timing", "", "Wall time (time.perf_counter) per image, mean over all qualities and images; "
             "encode and decode in memory, decode includes conversion to RGB.", ""]
    return lines + _table(
        ["codec", "points", "encode ms/image", "decode ms/image", "encode ms/MP", "decode ms/MP"],
        (
            [t.codec, str(t.n_points), _num(t.encode_ms, ".1f"), _num(t.decode_ms, ".1f"),
             _num(t.encode_ms_per_mp, ".1f"), _num(t.decode_ms_per_mp, ".1f")]
            for t in r.timing
        ),
    )


def _skipped_lines(r: BenchResult) -> list[str]:
    lines = ["## Skipped", ""]
    if not r.skipped:
        return lines + ["Nothing was skipped.", ""]
    return lines + _table(
        ["what", "name", "codec", "quality", "reason"],
        (
            [s.kind, s.name, s.codec or "", "" if s.quality is None else f"{s.quality:g}", s.reason]
            for s in r.skipped
        ),
    )


def markdown_report(r: BenchResult, has_psnr_png: bool, has_msssim_png: bool, has_visual_png: bool) -> str:
    """The text of report.md for a result (plots are referenced by file name)."""
    lines = ["# aecodec benchmark", ""]
    lines += _setup_lines(r) + _bd_lines(r) + _rd_lines(r, has_psnr_png, has_msssim_png)
    lines += _timing_lines(r)
    lines += ["## Visual comparison", ""]
    if r.visual is not None and has_visual_png:
        lines.append(
            f"Centre crop of {r.visual.image}; for each codec the quality whose bpp on this image "
            f"is closest to {r.visual.target_bpp:.3f} bpp (the median aecodec bpp, or 0.5 bpp "
            "without aecodec models, unless set). Crops are in `visual/` as PNG."
        )
        lines += ["", "![visual comparison](visual.png)", ""]
    else:
        lines += ["_No visual comparison (no output folder during the run, or no crops)._", ""]
    lines += _skipped_lines(r)
    return "\n".join(lines)


def render_report(results: BenchResult | str | Path, out_dir: str | Path) -> Path:
    """Write report.md, psnr.png, msssim.png, visual.png and results.json to ``out_dir``.

    ``results`` is a BenchResult or the path of a results.json (or its folder), so an old
    run can be re-rendered or moved: the crops of the visual comparison are copied from
    the results' own folder when it differs. Returns the path of report.md.
    """
    from aecodec.bench.plots import plot_rd, plot_visual  # matplotlib only when drawing

    r = results if isinstance(results, BenchResult) else load_results(results)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if r.visual is not None and r.out_dir is not None and Path(r.out_dir).resolve() != out.resolve():
        for p in r.visual.panels:
            src = Path(r.out_dir) / p.file
            if src.is_file():
                (out / p.file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, out / p.file)
    has_psnr = plot_rd(r.aggregates, "psnr", out / "psnr.png", r.setup.get("anchor", "jpeg"))
    has_ms = plot_rd(r.aggregates, "msssim", out / "msssim.png", r.setup.get("anchor", "jpeg"))
    has_visual = r.visual is not None and plot_visual(r.visual, out, out / "visual.png")
    for name, made in (("psnr.png", has_psnr), ("msssim.png", has_ms), ("visual.png", has_visual)):
        if not made:
            (out / name).unlink(missing_ok=True)  # a stale plot from an earlier run would mislead
    save_results(r, out / "results.json")
    report = out / "report.md"
    report.write_text(markdown_report(r, has_psnr, has_ms, has_visual) + "\n", encoding="utf-8")
    return report
