"""The command line: outputs, stdin/stdout, -f, batches with failures, reports, clean errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

import aecodec
from aecodec import container
from aecodec.cli import main
from aecodec.pack import METHODS


def run(*args: str | Path, input: bytes | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


def one_error_line(result: Result, *needles: str) -> str:
    """The single stderr line of a failed run (and no traceback anywhere)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("aecodec: ")
    for needle in needles:
        assert needle in lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


# ---------------------------------------------------------------- compress / decompress

def test_round_trip_with_default_names(png_path: Path) -> None:
    original = png_path.read_bytes()
    r = run("compress", png_path)
    assert r.exit_code == 0, r.output
    aec = png_path.with_suffix(".aec")
    assert aec.read_bytes()[:4] == aecodec.MAGIC and r.stdout == ""
    r = run("decompress", aec)  # beside the image it was made from, which it must not touch
    assert r.exit_code == 0, r.output
    with Image.open(png_path.with_name("astro.decoded.png")) as im:
        assert (im.format, im.size, im.mode) == ("PNG", (64, 64), "RGB")
    assert png_path.read_bytes() == original


def test_decompress_of_an_image_says_it_is_not_an_aec_file(png_path: Path) -> None:
    r = run("decompress", png_path)
    assert r.exit_code == 1
    one_error_line(r, "astro.png", "not an .aec file")
    assert not png_path.with_name("astro.decoded.png").exists()


def test_output_file_option(png_path: Path, tmp_path: Path) -> None:
    assert run("compress", png_path, "-o", tmp_path / "named.aec", "-q", "30").exit_code == 0
    assert aecodec.info((tmp_path / "named.aec").read_bytes()).quality == 30.0
    assert run("decompress", tmp_path / "named.aec", "-o", tmp_path / "x.jpg").exit_code == 0
    with Image.open(tmp_path / "x.jpg") as im:
        assert im.format == "JPEG"


@pytest.mark.parametrize("make_folder", [True, False])
def test_output_folder_for_several_inputs(tmp_path: Path, astro64: np.ndarray, camera32: np.ndarray,
                                          make_folder: bool) -> None:
    Image.fromarray(astro64).save(tmp_path / "a.png")
    Image.fromarray(camera32).save(tmp_path / "b.jpg")
    out = tmp_path / "out"
    if make_folder:
        out.mkdir()
    r = run("compress", tmp_path / "a.png", tmp_path / "b.jpg", "-o", f"{out}/" if not make_folder else out)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["a.aec", "b.aec"]
    r = run("decompress", out / "a.aec", out / "b.aec", "-o", f"{tmp_path / 'back'}/")
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "back" / "b.png").mode == "L"


def test_output_file_with_several_inputs_is_a_usage_error(tmp_path: Path, png_path: Path) -> None:
    r = run("compress", png_path, png_path, "-o", tmp_path / "one.aec")
    assert r.exit_code == 2 and "folder" in r.stderr
    assert not (tmp_path / "one.aec").exists()


def test_stdin_to_stdout_both_ways(png_path: Path) -> None:
    r = run("compress", "-", input=png_path.read_bytes())
    assert r.exit_code == 0, r.stderr
    assert r.stdout_bytes[:4] == aecodec.MAGIC
    r2 = run("decompress", "-", input=r.stdout_bytes)
    assert r2.exit_code == 0, r2.stderr
    assert r2.stdout_bytes[:8] == b"\x89PNG\r\n\x1a\n"
    r3 = run("compress", png_path, "-o", "-", "-v")
    assert r3.stdout_bytes[:4] == aecodec.MAGIC and "bpp" in r3.stderr  # the report keeps off stdout


def test_empty_stdin_is_one_line(tmp_path: Path) -> None:
    r = run("compress", "-", input=b"")
    assert r.exit_code == 1
    one_error_line(r, "<stdin>", "empty")


def test_existing_output_needs_force(png_path: Path) -> None:
    aec = png_path.with_suffix(".aec")
    aec.write_bytes(b"precious")
    r = run("compress", png_path)
    assert r.exit_code == 1
    one_error_line(r, "exists", "-f")
    assert aec.read_bytes() == b"precious"
    r = run("compress", png_path, "-f")
    assert r.exit_code == 0 and aec.read_bytes()[:4] == aecodec.MAGIC


def test_output_onto_its_own_input_is_refused(aec_path: Path, png_path: Path) -> None:
    before = aec_path.read_bytes()
    r = run("compress", aec_path, "-f")  # astro.aec -> astro.aec
    assert r.exit_code == 1
    one_error_line(r, "its own input")
    assert aec_path.read_bytes() == before
    r = run("decompress", aec_path, "-o", aec_path, "-f")
    assert r.exit_code == 1 and aec_path.read_bytes() == before


def test_several_inputs_with_one_bad(tmp_path: Path, astro64: np.ndarray) -> None:
    for name in ("a", "c"):
        Image.fromarray(astro64).save(tmp_path / f"{name}.png")
    (tmp_path / "b.png").write_text("not an image")
    r = run("compress", *(tmp_path / f"{n}.png" for n in "abc"))
    assert r.exit_code == 1
    one_error_line(r, "b.png", "not an image")
    assert (tmp_path / "a.aec").exists() and (tmp_path / "c.aec").exists()
    assert not (tmp_path / "b.aec").exists() and no_temp_files(tmp_path)


def test_verbose_reports_real_bpp_and_psnr(png_path: Path, astro64: np.ndarray) -> None:
    r = run("compress", png_path, "-v", "-q", "70")
    assert r.exit_code == 0
    m = re.search(r"(\d+) bytes, 64x64 RGB, ([\d.]+) bpp, PSNR ([\d.]+) dB", r.stdout)
    assert m, r.stdout
    data = png_path.with_suffix(".aec").read_bytes()
    assert int(m.group(1)) == len(data)
    assert float(m.group(2)) == pytest.approx(8 * len(data) / (64 * 64), abs=1e-4)
    decoded = np.asarray(aecodec.decompress(data), dtype=np.float64)
    psnr = 10 * np.log10(255 ** 2 / np.mean((decoded - astro64) ** 2))
    assert float(m.group(3)) == pytest.approx(psnr, abs=0.01)


def test_verbose_shows_conversion_notes(tmp_path: Path, astro64: np.ndarray) -> None:
    Image.fromarray(astro64).convert("P").save(tmp_path / "p.png")
    r = run("compress", tmp_path / "p.png", "-v")
    assert r.exit_code == 0 and "note: palette image decodes as RGB" in r.stdout


def test_rgba_to_jpeg_is_flattened(tmp_path: Path, rgba32: Image.Image) -> None:
    (tmp_path / "t.aec").write_bytes(aecodec.compress(rgba32))
    r = run("decompress", tmp_path / "t.aec", "-o", tmp_path / "t.jpg", "-v")
    assert r.exit_code == 0 and "flattened" in r.stdout
    assert Image.open(tmp_path / "t.jpg").mode == "RGB"


@pytest.mark.parametrize("name", ["out.xyz", "noext", "again.aec"])
def test_unwritable_output_format_is_one_line(aec_path: Path, name: str) -> None:
    r = run("decompress", aec_path, "-o", aec_path.parent / name)
    assert r.exit_code == 1
    one_error_line(r, str(aec_path))
    assert not (aec_path.parent / name).exists() and no_temp_files(aec_path.parent)


def test_unknown_model_and_bad_quality(png_path: Path) -> None:
    r = run("compress", png_path, "-m", "no-such-model")
    assert r.exit_code == 1
    one_error_line(r, "not installed")
    assert run("compress", png_path, "-q", "0").exit_code == 2


def test_an_image_too_large_for_pillow_to_open_says_its_size(tmp_path: Path) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    huge = tmp_path / "huge.png"  # a 100000x100000 header, a few bytes of data
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b""))
    r = run("compress", huge)
    assert r.exit_code == 1
    one_error_line(r, "huge.png", "too large (100000x100000)", "32768 px a side")


def test_too_large_image_is_one_line(monkeypatch: pytest.MonkeyPatch, png_path: Path) -> None:
    from aecodec import images
    monkeypatch.setattr(images, "MAX_PIXELS", 100)
    r = run("compress", png_path)
    assert r.exit_code == 1
    one_error_line(r, "too large")


@pytest.mark.parametrize("kind", ["missing", "empty", "folder", "not-image", "truncated"])
def test_bad_image_inputs_are_one_line(tmp_path: Path, png_path: Path, kind: str) -> None:
    bad = tmp_path / "bad.png"
    if kind == "empty":
        bad.write_bytes(b"")
    elif kind == "folder":
        bad.mkdir()
    elif kind == "not-image":
        bad.write_text("hello")
    elif kind == "truncated":
        bad.write_bytes(png_path.read_bytes()[:200])
    r = run("compress", bad)
    assert r.exit_code == 1
    one_error_line(r, str(bad))
    assert not bad.with_suffix(".aec").exists() and no_temp_files(tmp_path)


def _bad_aec(aec64: bytes, kind: str) -> bytes:
    f = container.read(aec64)
    import dataclasses
    if kind == "truncated":
        return aec64[: len(aec64) // 2]
    if kind == "bitflip":
        return aec64[:-10] + bytes([aec64[-10] ^ 1]) + aec64[-9:]
    if kind == "version":
        return aec64[:4] + b"\x09" + aec64[5:]
    if kind == "model":
        return container.write(container.AecFile(dataclasses.replace(f.header, model="gone"), f.payload))
    if kind == "empty":
        return b""
    return b"GIF89a" + bytes(30)


@pytest.mark.parametrize("kind", ["truncated", "bitflip", "version", "model", "empty", "foreign"])
def test_bad_aec_files_are_one_line(tmp_path: Path, aec64: bytes, kind: str) -> None:
    bad = tmp_path / "bad.aec"
    bad.write_bytes(_bad_aec(aec64, kind))
    r = run("decompress", bad)
    assert r.exit_code == 1
    line = one_error_line(r, str(bad))
    expect = {"version": "version 9", "model": "not installed", "bitflip": "corrupt", "truncated": "truncated",
              "empty": "empty", "foreign": "not an .aec file"}[kind]
    assert expect in line
    assert not (tmp_path / "bad.png").exists() and no_temp_files(tmp_path)


def test_failed_write_leaves_no_temp_file(monkeypatch: pytest.MonkeyPatch, png_path: Path) -> None:
    def boom(*args: Any) -> None:
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr("aecodec.atomic.os.replace", boom)
    r = run("compress", png_path)
    assert r.exit_code == 1
    one_error_line(r, "Permission denied")
    assert not png_path.with_suffix(".aec").exists() and no_temp_files(png_path.parent)


# ---------------------------------------------------------------- info, models, bench, train

def test_info_prints_the_header(aec_path: Path, aec64: bytes) -> None:
    r = run("info", aec_path)
    assert r.exit_code == 0
    h = aecodec.info(aec64)
    for text in ("conv-photos", h.weights_hash.hex(), "64x64", "RGB", "quality:      50",
                 "x".join(map(str, h.latent_shape)), METHODS[h.packing], f"bytes:        {len(aec64)}",
                 f"{8 * len(aec64) / 4096:.4f}"):
        assert text in r.stdout


@pytest.mark.parametrize("damage", ["half", "flipped byte", "other weights"])
def test_info_checks_the_whole_file_as_decompress_does(tmp_path: Path, aec64: bytes, damage: str) -> None:
    bad = tmp_path / "bad.aec"
    if damage == "half":
        bad.write_bytes(aec64[: len(aec64) // 2])
    elif damage == "flipped byte":
        bad.write_bytes(aec64[:-10] + bytes([aec64[-10] ^ 0x10]) + aec64[-9:])
    else:
        f = container.read(aec64)
        bad.write_bytes(container.write(container.AecFile(
            container.Header(**{**f.header.__dict__, "weights_hash": b"\0" * 8}), f.payload)))
    r = run("info", bad)
    assert r.exit_code == 1 and r.stdout == ""
    expected = {"half": "truncated", "flipped byte": "checksum", "other weights": "other weights"}[damage]
    one_error_line(r, "bad.aec", expected)
    assert run("decompress", bad, "-o", tmp_path / "x.png").exit_code == 1


def test_info_on_a_damaged_header_is_one_line(tmp_path: Path, aec_path: Path, aec64: bytes) -> None:
    (tmp_path / "cut.aec").write_bytes(aec64[:12])
    r = run("info", aec_path, tmp_path / "cut.aec")
    assert r.exit_code == 1 and "model:" in r.stdout
    one_error_line(r, "cut.aec", "truncated")


def test_models_lists_installed_models() -> None:
    r = run("models")
    assert r.exit_code == 0
    for name in aecodec.list_models():
        assert re.search(rf"^[* ] {re.escape(name)} +v\d+ ", r.stdout, re.M)
    assert "any size" in r.stdout and " MB" in r.stdout
    assert "steps:" in run("models", "-v").stdout


def test_bench_prints_table_and_report(tmp_path: Path, png_path: Path) -> None:
    out = tmp_path / "report"
    r = run("bench", png_path, "-c", "jpeg,webp", "-o", out, "--qualities", "jpeg=30,50,70,90",
            "--qualities", "webp=30,50,70,90", "--no-msssim")
    assert r.exit_code == 0, r.output
    assert "webp" in r.stdout and str(out / "report.md") in r.stdout
    assert (out / "report.md").exists()
    assert run("bench", png_path, "--qualities", "x=a").exit_code == 2
    r = run("bench", tmp_path / "nothing-here")
    assert r.exit_code == 1 and "Traceback" not in r.output


def test_train_passes_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def fake_train(cfg: Any, resume: bool = False, progress: bool = True) -> Any:
        seen.update(cfg=cfg, resume=resume)
        return type("R", (), {"steps": cfg.steps, "wall_s": 1.0})()
    monkeypatch.setattr("aecodec.train.train", fake_train)
    cfg = tmp_path / "c.json"
    cfg.write_text('{"name": "t", "steps": 10, "folders": ["%s"]}' % tmp_path)
    r = run("train", "--config", cfg, "--steps", "3", "--time-budget", "5", "--device", "cpu",
            "--out", tmp_path / "w.pt", "--resume")
    assert r.exit_code == 0, r.output
    c = seen["cfg"]
    assert (c.steps, c.time_budget_s, c.device, c.out, seen["resume"]) == (3, 5.0, "cpu", str(tmp_path / "w.pt"), True)
    assert "w.pt" in r.stdout
    r = run("train", "--config", tmp_path / "missing.json")
    assert r.exit_code == 1
    one_error_line(r, "missing.json")


def test_help_and_version() -> None:
    for cmd in ("compress", "decompress", "info", "models", "bench", "train"):
        r = run(cmd, "--help")
        assert r.exit_code == 0 and "Usage:" in r.stdout
    assert aecodec.__version__ in run("--version").stdout


def test_python_dash_m_runs_the_cli() -> None:
    r = subprocess.run([sys.executable, "-m", "aecodec", "--help"], capture_output=True, text=True,
                       cwd=Path(aecodec.__file__).parent.parent)
    assert r.returncode == 0 and "compress" in r.stdout and "Usage: aecodec" in r.stdout


def test_a_folder_goes_to_the_codec_as_one_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The inputs reach ``compress_many`` in one call, so its batches overlap (the network on one
    window while the last is packed) across the whole folder; a bad file in the middle still
    fails alone."""
    rng = np.random.default_rng(3)
    paths = []
    for k in range(20):
        p = tmp_path / f"f{k:02d}.png"
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    (tmp_path / "f07.png").write_bytes(b"not a png")
    calls: list[int] = []
    many = aecodec.Codec.compress_many

    def counting(self: Any, images: Any, *a: Any, **k: Any) -> Any:
        images = list(images)
        calls.append(len(images))
        return many(self, images, *a, **k)

    monkeypatch.setattr(aecodec.Codec, "compress_many", counting)
    r = run("compress", *paths, "-o", str(tmp_path / "out") + "/")
    assert r.exit_code == 1 and calls == [20]
    assert "f07.png" in one_error_line(r)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"f{k:02d}.aec" for k in range(20) if k != 7]


def _faces_aec(tmp_path: Path, n: int) -> list[Path]:
    from skimage import data as skdata

    rgb = skdata.astronaut()
    paths = []
    for k in range(n):
        p = tmp_path / f"f{k}.aec"
        p.write_bytes(aecodec.compress(np.ascontiguousarray(rgb[40 * k:40 * k + 64, 100:164]), quality=40))
        paths.append(p)
    return paths


def test_decompress_decodes_small_files_several_at_a_time_in_order(tmp_path: Path, monkeypatch) -> None:
    """A folder's files decode on as many threads as torch has, in order, a bad one failing alone;
    each file's pixels within ±1 of the API's decode, and the file read once."""
    import threading

    import torch

    from aecodec.cli import commands

    paths = _faces_aec(tmp_path, 5)
    (tmp_path / "bad.aec").write_bytes(b"AEC" + bytes(40))
    srcs = [paths[0], paths[1], tmp_path / "bad.aec", *paths[2:]]
    names: list[str] = []
    decompress = aecodec.decompress

    def recording(data, **kwargs):
        names.append(threading.current_thread().name)
        return decompress(data, **kwargs)

    monkeypatch.setattr(aecodec, "decompress", recording)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        jobs = [commands._Job(str(p), str(tmp_path / f"out{k}.png")) for k, p in enumerate(srcs)]
        out = list(commands._decompress_all(jobs))
    finally:
        torch.set_num_threads(threads)
    assert len(out) == 6 and isinstance(out[2], aecodec.AecError)
    assert all(job.data is None for job in jobs)  # read ahead, then let go
    assert {n.split("_")[0] for n in names} == {"aecodec-decode"}
    for p, got in zip(paths, out[:2] + out[3:]):
        want = np.asarray(decompress(p.read_bytes()).convert("RGB")).astype(int)
        assert np.abs(np.asarray(Image.open(__import__("io").BytesIO(got)).convert("RGB")).astype(int) - want).max() <= 1


def test_decompress_decodes_a_large_file_alone(tmp_path: Path, monkeypatch) -> None:
    import threading

    import torch

    from aecodec.cli import commands

    paths = _faces_aec(tmp_path, 3)
    monkeypatch.setattr(commands, "PARALLEL_DECODE_MAX_PIXELS", 64 * 64 - 1)
    names: list[str] = []
    decompress = aecodec.decompress
    monkeypatch.setattr(aecodec, "decompress", lambda data, **kw: names.append(threading.current_thread().name)
                        or decompress(data, **kw))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        out = list(commands._decompress_all([commands._Job(str(p), str(tmp_path / f"o{k}.png"))
                                             for k, p in enumerate(paths)]))
    finally:
        torch.set_num_threads(threads)
    assert names == ["MainThread"] * 3 and all(isinstance(b, bytes) for b in out)


def test_decompress_writes_png_at_zlib_level_3(tmp_path: Path) -> None:
    from aecodec.cli.commands import encode_image

    im = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8))
    buf = __import__("io").BytesIO()
    im.save(buf, format="PNG", compress_level=3)
    assert encode_image(im, "PNG", []) == buf.getvalue()
