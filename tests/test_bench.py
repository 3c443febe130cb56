"""Tests of the benchmark: BD-rate, metrics, codec adapters, the sweep and its report."""

from __future__ import annotations

from aecodec.weights import resolve

import io
import json
import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image
from skimage import data

from aecodec.bench import (
    PILLOW_CODECS,
    BenchResult,
    bd_psnr,
    bd_rate,
    bjontegaard,
    load_results,
    ms_ssim,
    ms_ssim_skip_reason,
    psnr,
    render_report,
    run_bench,
)
from aecodec.bench import codecs as codecs_module
from aecodec.bench.aggregate import bd_table
from aecodec.bench.bdrate import Method
from aecodec.errors import AecError, AecFormatError, AecInputError, AecModelError

QUALITIES = {"jpeg": [10, 50, 90], "webp": [10, 50, 90]}
#: The optional codecs this machine has (CI installs the codecs extra: both).
INSTALLED_EXTRAS = [name for name, c in codecs_module.EXTRA_CODECS.items() if c.missing() is None]

# --- BD-rate on synthetic curves --------------------------------------------------------

RATES = [0.1, 0.25, 0.5, 1.0, 2.0]
PSNRS = [26.0, 29.5, 32.5, 36.0, 40.0]


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_bd_of_a_curve_against_itself_is_zero(method: Method) -> None:
    res = bjontegaard(RATES, PSNRS, RATES, PSNRS, method)
    assert res.bd_rate == pytest.approx(0.0, abs=1e-9)
    assert res.bd_dist == pytest.approx(0.0, abs=1e-9)
    assert res.note is None


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_half_the_rate_at_equal_psnr_is_minus_50_percent(method: Method) -> None:
    half = [r / 2 for r in RATES]
    assert bd_rate(RATES, PSNRS, half, PSNRS, method) == pytest.approx(-50.0, abs=1e-6)
    assert bd_rate(half, PSNRS, RATES, PSNRS, method) == pytest.approx(100.0, abs=1e-6)


def test_one_db_better_everywhere_is_bd_psnr_one() -> None:
    better = [p + 1.0 for p in PSNRS]
    assert bd_psnr(RATES, PSNRS, RATES, better) == pytest.approx(1.0, abs=1e-9)
    assert bd_rate(RATES, PSNRS, RATES, better) < 0  # type: ignore[operator]


def test_bd_ignores_point_order_and_lossless_points() -> None:
    shuffled = [3, 0, 4, 1, 2]
    rates = [RATES[i] for i in shuffled] + [5.0]
    dists = [PSNRS[i] for i in shuffled] + [math.inf]
    assert bd_rate(RATES, PSNRS, rates, dists) == pytest.approx(0.0, abs=1e-9)


def test_curves_without_overlap_give_none_and_say_why() -> None:
    far = [p + 30.0 for p in PSNRS]
    res = bjontegaard(RATES, PSNRS, [r * 100 for r in RATES], far)
    assert res.bd_rate is None and res.bd_dist is None
    assert res.note is not None and "overlap" in res.note


def test_cubic_fit_needs_four_points() -> None:
    res = bjontegaard(RATES[:3], PSNRS[:3], RATES[:3], PSNRS[:3], "cubic")
    assert res.bd_rate is None and res.note is not None and "fewer than 4" in res.note


# --- metrics ----------------------------------------------------------------------------


def test_ms_ssim_is_none_worthy_for_small_images_and_in_unit_interval_for_256() -> None:
    reason = ms_ssim_skip_reason(64, 64)
    assert reason is not None and "161" in reason
    assert ms_ssim_skip_reason(161, 161) is None
    a = data.astronaut()[:256, :256]
    noisy = np.clip(a + np.random.default_rng(0).normal(0, 8, a.shape), 0, 255).astype(np.uint8)
    value = ms_ssim(a, noisy)
    assert 0.0 < value < 1.0
    assert ms_ssim(a, a) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        ms_ssim(a[:64, :64], a[:64, :64])
    assert psnr(a, a) == math.inf
    assert 25 < psnr(a, noisy) < 35


@pytest.mark.parametrize("name", sorted(PILLOW_CODECS))
def test_reference_codec_round_trips_an_rgb_image(name: str) -> None:
    codec = PILLOW_CODECS[name]
    image = Image.fromarray(data.coffee()[100:132, 200:248])
    encoded = codec.encode(image, codec.default_qualities[len(codec.default_qualities) // 2])
    decoded = codec.decode(encoded)
    assert decoded.mode == "RGB" and decoded.size == image.size
    assert psnr(np.asarray(image), np.asarray(decoded)) > 20


# --- the sweep --------------------------------------------------------------------------


def _write_inputs(folder: Path) -> Path:
    photos = folder / "photos"
    (photos / "sub").mkdir(parents=True)
    Image.fromarray(data.astronaut()[60:100, 180:228]).save(photos / "astronaut.png")  # 48x40
    Image.fromarray(data.coffee()[150:214, 250:314]).save(photos / "sub" / "coffee.png")  # 64x64
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    (photos / "notes.txt").write_text("not an image, and not picked up from a folder")
    return photos


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[BenchResult, Path]:
    root = tmp_path_factory.mktemp("bench")
    photos = _write_inputs(root)
    out = root / "report"
    result = run_bench([photos], ["jpeg", "webp"], out, QUALITIES, progress=False)
    return result, out


def test_report_folder_has_its_files_and_json_its_keys(bench: tuple[BenchResult, Path]) -> None:
    _, out = bench
    for name in ("report.md", "results.json", "psnr.png", "visual.png"):
        assert (out / name).is_file(), name
    assert not (out / "msssim.png").exists()  # both images are too small for MS-SSIM
    doc = json.loads((out / "results.json").read_text())
    for key in ("setup", "images", "codecs", "points", "aggregates", "bd", "timing", "skipped", "visual"):
        assert key in doc, key
    for key in ("codec", "quality", "image", "width", "height", "bytes", "bpp", "psnr", "msssim",
                "encode_s", "decode_s"):
        assert key in doc["points"][0], key
    assert doc["setup"]["libraries"]["pillow"]
    report = (out / "report.md").read_text()
    for heading in ("## Setup", "## BD-rate and BD-PSNR against jpeg", "## Timing", "## Skipped",
                    "psnr.png", "visual.png", "MS-SSIM not measured"):
        assert heading in report, heading


def test_rates_and_psnr_are_plausible(bench: tuple[BenchResult, Path]) -> None:
    result, _ = bench
    assert len(result.points) == 2 * 2 * 3
    assert {p.image for p in result.points} == {"photos/astronaut.png", "photos/sub/coffee.png"}
    for p in result.points:
        assert p.bytes > 0 and p.bpp > 0
        assert p.bpp == pytest.approx(8 * p.bytes / (p.width * p.height))
        assert 15 < p.psnr < 60
        assert p.encode_s >= 0 and p.decode_s >= 0
    for codec in ("jpeg", "webp"):
        for image in ("photos/astronaut.png", "photos/sub/coffee.png"):
            ps = sorted((p for p in result.points if p.codec == codec and p.image == image),
                        key=lambda p: p.quality)
            assert [p.psnr for p in ps] == sorted(p.psnr for p in ps)
            assert [p.bpp for p in ps] == sorted(p.bpp for p in ps)
    agg = [a for a in result.aggregates if a.codec == "jpeg" and a.quality == 50][0]
    mine = [p for p in result.points if p.codec == "jpeg" and p.quality == 50]
    assert agg.n_images == 2 and agg.bpp == pytest.approx(np.mean([p.bpp for p in mine]))


def test_corrupt_image_is_skipped_and_reported(bench: tuple[BenchResult, Path]) -> None:
    result, out = bench
    broken = [s for s in result.skipped if s.kind == "image"]
    assert [s.name for s in broken] == ["photos/broken.png"]
    assert "cannot read" in broken[0].reason
    assert "photos/broken.png" in (out / "report.md").read_text()
    assert not [s for s in result.skipped if s.kind == "point"]


def test_small_images_have_no_ms_ssim_with_a_reason(bench: tuple[BenchResult, Path]) -> None:
    result, _ = bench
    assert all(p.msssim is None for p in result.points)
    assert all(i.msssim_skip and "161" in i.msssim_skip for i in result.images)
    ms_rows = [b for b in result.bd if b.metric == "msssim"]
    assert ms_rows and all(b.bd_rate is None and b.note for b in ms_rows)


def test_jpeg_against_itself_is_zero_and_half_rate_is_minus_half(bench: tuple[BenchResult, Path]) -> None:
    result, _ = bench
    row = [b for b in result.bd if b.codec == "jpeg" and b.metric == "psnr"][0]
    assert row.bd_rate == pytest.approx(0.0, abs=1e-9) and row.n_images == 2
    jpeg = [p for p in result.points if p.codec == "jpeg"]
    half = [replace(p, codec="half", bytes=p.bytes / 2, bpp=p.bpp / 2) for p in jpeg]
    rows = bd_table(jpeg + half, ["half"])
    assert rows[0].bd_rate == pytest.approx(-50.0, abs=1e-6)
    assert rows[0].bd_dist is not None and rows[0].bd_dist > 0


def test_results_json_reloads_and_rerenders_elsewhere(
    bench: tuple[BenchResult, Path], tmp_path: Path
) -> None:
    result, out = bench
    again = load_results(out / "results.json")
    assert again.points == result.points and again.bd == result.bd and again.images == result.images
    report = render_report(out, tmp_path / "copy")
    assert report.is_file() and (tmp_path / "copy" / "visual.png").is_file()
    assert again.visual is not None and (tmp_path / "copy" / again.visual.panels[1].file).is_file()


def test_foreign_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text('{"hello": 1}')
    with pytest.raises(AecFormatError):
        load_results(tmp_path)


def test_ms_ssim_is_measured_on_a_256_image_and_grey_is_noted(tmp_path: Path) -> None:
    grey = Image.fromarray(data.camera()[100:356, 100:356])  # 256x256, mode L
    grey.save(tmp_path / "camera.png")
    result = run_bench([tmp_path / "camera.png"], ["jpeg"], None, {"jpeg": [50]}, progress=False)
    (point,) = result.points
    assert point.msssim is not None and 0.0 < point.msssim <= 1.0
    assert result.images[0].note == "converted from L to RGB"
    assert result.visual is None


def test_usage_errors_are_aecodec_errors(tmp_path: Path) -> None:
    with pytest.raises(AecInputError):
        run_bench([tmp_path / "nothing-here"], ["jpeg"], progress=False)
    Image.fromarray(data.coffee()[:40, :40]).save(tmp_path / "a.png")
    with pytest.raises(AecModelError):
        run_bench([tmp_path], ["gif"], progress=False)
    with pytest.raises(AecInputError):
        run_bench([tmp_path], ["jpeg"], qualities={"jpeg": [500]}, progress=False)
    with pytest.raises(AecError):
        run_bench([tmp_path], ["jpeg"], qualities={"jpg": [50]}, progress=False)


# --- aecodec models through a fake API --------------------------------------------------


def _fake_api() -> Any:
    """Stands in for aecodec's API: 'toy' codes any size via JPEG, 'faces' only 64x64."""

    def compress(image: Image.Image, quality: float, model: str) -> bytes:
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=max(1, int(quality)))
        return buf.getvalue()

    def decompress(payload: bytes) -> Image.Image:
        return Image.open(io.BytesIO(payload)).convert("RGB")

    infos = {
        "toy": {"domain": "photos", "fixed_size": None, "description": "toy model"},
        "faces": {"domain": "faces", "fixed_size": (64, 64), "description": "aligned faces"},
        "toy-denoise": {"domain": "photos", "fixed_size": None, "description": "toy's denoising twin"},
    }
    return SimpleNamespace(
        compress=compress, decompress=decompress, list_models=lambda: list(infos), model_info=infos.__getitem__
    )


def test_aecodec_models_join_by_default_unless_they_refuse_the_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(codecs_module, "aec_api", _fake_api)
    photos = _write_inputs(tmp_path)
    quick = {"jpeg": [20, 80], "webp": [50], "avif": [50], "jpeg2000": [1.0], "aec": [20, 50, 80],
             **{name: [50] for name in INSTALLED_EXTRAS}}
    result = run_bench([photos], None, tmp_path / "out", quick, progress=False)
    ran = [c.name for c in result.codecs]
    assert ran == ["jpeg", "webp", "avif", "jpeg2000", *INSTALLED_EXTRAS, "aec:toy"]  # no denoising twin
    (faces,) = [s for s in result.skipped if s.name == "aec:faces"]
    assert faces.kind == "codec" and "64x64" in faces.reason
    assert result.visual is not None
    toy = [p.bpp for p in result.points if p.codec == "aec:toy" and p.image == result.visual.image]
    assert result.visual.target_bpp == pytest.approx(float(np.median(toy)))
    assert "aec:faces" in (tmp_path / "out" / "report.md").read_text()

    named = run_bench([photos], ["jpeg", "aec:faces"], None, {"jpeg": [50], "aec": [50]}, progress=False)
    assert {p.image for p in named.points if p.codec == "aec:faces"} == {"photos/sub/coffee.png"}
    assert [s.kind for s in named.skipped if s.codec == "aec:faces"] == ["codec-image"]


def test_missing_aecodec_api_only_drops_the_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> Any:
        raise AecModelError("aecodec's API cannot be imported: not yet")

    monkeypatch.setattr(codecs_module, "aec_api", missing)
    Image.fromarray(data.coffee()[:40, :40]).save(tmp_path / "a.png")
    quick = {"jpeg": [50], "webp": [50], "avif": [50], "jpeg2000": [1.0], **{name: [50] for name in INSTALLED_EXTRAS}}
    result = run_bench([tmp_path], None, None, quick, progress=False)
    assert [c.name for c in result.codecs] == ["jpeg", "webp", "avif", "jpeg2000", *INSTALLED_EXTRAS]
    assert [s.name for s in result.skipped if s.kind == "codec" and s.name.startswith("aec")] == ["aec:*"]


# --- HEIF and JPEG XL (the codecs extra), defaults and progress (issue 14, point 7) --------


@pytest.mark.parametrize("name", ["heif", "jxl"])
def test_extra_codec_round_trips_an_rgb_image(name: str) -> None:
    codec = codecs_module.EXTRA_CODECS[name]
    pytest.importorskip(codec.module, reason=f"{codec.package} (the codecs extra) is not installed")
    image = Image.fromarray(data.coffee()[100:132, 200:248])
    encoded = codec.encode(image, 50)
    decoded = codec.decode(encoded)
    assert decoded.mode == "RGB" and decoded.size == image.size
    assert psnr(np.asarray(image), np.asarray(decoded)) > 25
    if name == "heif":  # full-resolution chroma, so that PSNR on RGB is fair to it
        import pillow_heif
        assert pillow_heif.open_heif(io.BytesIO(encoded)).info["chroma"] == 444


def test_missing_extra_codecs_are_named_with_how_to_install_them(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    real = codecs_module.importlib.util.find_spec
    monkeypatch.setattr(codecs_module.importlib.util, "find_spec",
                        lambda name, *a: None if name in ("pillow_heif", "pillow_jxl") else real(name, *a))
    monkeypatch.setattr(codecs_module, "aec_api", _fake_api)
    Image.fromarray(data.coffee()[:40, :40]).save(tmp_path / "a.png")
    result = run_bench([tmp_path], None, None, {"jpeg": [50], "webp": [50], "avif": [50], "jpeg2000": [1.0],
                                                "aec": [50]}, progress=False)
    assert "heif" not in [c.name for c in result.codecs]
    reasons = {s.name: s.reason for s in result.skipped if s.kind == "codec"}
    assert "pillow-heif is not installed" in reasons["heif"] and 'pip install "aecodec[codecs]"' in reasons["heif"]
    assert "pillow-jxl-plugin is not installed" in reasons["jxl"]
    with pytest.raises(AecModelError, match="aecodec\\[codecs\\]"):
        run_bench([tmp_path], ["heif"], progress=False)


def test_default_aecodec_models_are_the_plain_ones() -> None:
    names = codecs_module.aec_model_names()
    assert "aec:" + resolve("conv-photos") in names and "aec:" + resolve("conv-faces") in names
    from aecodec.denoising import is_denoising
    assert not [n for n in names if is_denoising(n.split(":", 1)[1])]
    assert "aec:" + resolve("conv-photos-denoise") in codecs_module.aec_model_names(denoising=True)


def test_bench_reports_a_line_per_codec_and_a_forecast_when_not_a_terminal(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from aecodec.cli import main
    Image.fromarray(data.coffee()[:40, :48]).save(tmp_path / "a.png")
    codecs = ",".join(["jpeg", "webp", *INSTALLED_EXTRAS])
    r = CliRunner().invoke(main, ["bench", str(tmp_path / "a.png"), "-c", codecs, "-o", str(tmp_path / "r"),
                                  "--qualities", "30,60", *[f"--qualities={c}=30,60" for c in codecs.split(",")]],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    lines = r.stderr.splitlines()
    assert lines[0].startswith(f"bench: {len(codecs.split(','))} codecs x 1 images, ") and "about" in lines[0]
    for i, codec in enumerate(codecs.split(","), 1):
        assert lines[i].startswith(f"bench: {codec}: 2 points in "), r.stderr
    report = (tmp_path / "r" / "report.md").read_text()
    for codec in INSTALLED_EXTRAS:
        assert f"| {codec} |" in report and codec in r.stdout
