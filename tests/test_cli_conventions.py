"""One convention across every command: error lines, exit statuses, progress bars, output
checks and file modes (issue 14, points 1, 3 and 5)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

import aecodec
from aecodec.cli import main
from aecodec.retrieval import Index

FACES = "conv-faces"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def error_lines(r: Result) -> list[str]:
    """stderr's lines, each of which must be an ``aecodec: `` line (no ``Error:``, no traceback)."""
    lines = r.stderr.strip().splitlines()
    assert lines, r.output
    assert all(ln.startswith("aecodec: ") for ln in lines), r.stderr
    assert "Traceback" not in r.output and "Error:" not in r.output
    return lines


@pytest.fixture()
def folder(tmp_path: Path, astro64: np.ndarray) -> Path:
    """A 64x64 PNG, the same as a conv-faces .aec, and a conv-faces index of the .aec."""
    Image.fromarray(astro64).save(tmp_path / "a.png")
    (tmp_path / "a.aec").write_bytes(aecodec.compress(astro64, 50, FACES))
    assert run("index", tmp_path / "a.aec", "-o", tmp_path / "i.npz").exit_code == 0
    return tmp_path


# ---------------------------------------------------------------- point 1: empty and all-bad index inputs

def test_index_of_an_empty_folder_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "e").mkdir()
    r = run("index", tmp_path / "e", "-o", tmp_path / "e.npz")
    assert r.exit_code == 1
    (line,) = error_lines(r)
    assert "no index written" in line and "no images or .aec files" in line
    assert not (tmp_path / "e.npz").exists()


def test_index_of_only_bad_inputs_names_each_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "flip.aec").write_bytes(aecodec.MAGIC + b"\x01\x00")
    r = run("index", tmp_path / "x.png", tmp_path / "zero.png", tmp_path / "flip.aec", "-o", tmp_path / "i.npz")
    assert r.exit_code == 1
    lines = error_lines(r)
    assert len(lines) == 4 and all(name in r.stderr for name in ("x.png", "zero.png", "flip.aec"))
    assert "none of the 3 inputs" in lines[-1]
    assert not (tmp_path / "i.npz").exists()


def test_an_empty_index_saves_and_loads(tmp_path: Path) -> None:
    Index.empty(FACES).save(tmp_path / "empty.npz")
    back = Index.load(tmp_path / "empty.npz")
    assert len(back) == 0 and back.search_vectors(np.ones(4, np.float32), 3)[0].shape == (1, 0)


# ---------------------------------------------------------------- point 3: errors of the output name the output

@pytest.mark.parametrize("command", ["compress", "decompress", "denoise", "index", "similar"])
def test_an_output_under_a_file_is_refused_first_and_named(folder: Path, command: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (folder / "afile").write_text("a file, not a folder")
    encoded: list[object] = []
    monkeypatch.setattr(aecodec.Codec, "compress_many", lambda *a, **k: encoded.append(a) or iter(()))
    monkeypatch.setattr(aecodec.Codec, "compress", lambda *a, **k: encoded.append(a))
    target = folder / "afile" / "out.x"
    args = {"compress": ["compress", folder / "a.png", "-o", target.with_suffix(".aec")],
            "decompress": ["decompress", folder / "a.aec", "-o", target.with_suffix(".png")],
            "denoise": ["denoise", folder / "a.png", "-o", target.with_suffix(".png")],
            "index": ["index", folder / "a.png", "-o", target.with_suffix(".npz")],
            "similar": ["similar", folder / "a.png", "-i", folder / "i.npz", "--sheet", target.with_suffix(".png")]}
    r = run(*args[command])
    assert r.exit_code == 1
    (line,) = error_lines(r)
    assert f"{folder / 'afile'} is a file, not a folder" in line and str(folder / "afile" / "out") in line
    assert not encoded and r.stdout == ""


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_an_output_in_a_folder_that_takes_no_files_is_refused_and_named(png_path: Path) -> None:
    r = run("compress", png_path, "-o", "/proc/out.aec")
    assert r.exit_code == 1
    (line,) = error_lines(r)
    assert "output /proc/out.aec: cannot write in /proc" in line


def test_a_failed_write_names_the_output_not_the_input(png_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr("aecodec.atomic.os.replace", refuse)
    out = png_path.with_name("ro.aec")
    r = run("compress", png_path, "-o", out)
    assert r.exit_code == 1
    (line,) = error_lines(r)
    assert f"output {out}: cannot write (Permission denied)" in line
    assert not out.exists() and not [p for p in png_path.parent.iterdir() if p.name.endswith(".tmp")]


# ---------------------------------------------------------------- point 5: one convention for every command

def test_every_command_reports_a_bad_input_as_aecodec_lines_and_exit_1(folder: Path) -> None:
    missing = folder / "missing"
    for args in (["compress", missing], ["decompress", missing], ["info", missing], ["denoise", missing],
                 ["index", missing, "-o", folder / "new.npz"], ["similar", missing, "-i", folder / "i.npz"],
                 ["similar", folder / "a.png", "-i", missing], ["bench", missing, "-o", folder / "r"],
                 ["train", "--config", missing]):
        r = run(*args)
        assert r.exit_code == 1, (args, r.output)
        assert any("missing" in ln for ln in error_lines(r)), args


@pytest.mark.parametrize("command", ["compress", "denoise", "index"])
def test_a_quality_out_of_range_is_a_usage_error_everywhere(folder: Path, command: str) -> None:
    args = [command, folder / "a.png", "-q", "0"] + (["-o", folder / "q.npz"] if command == "index" else [])
    r = run(*args)
    assert r.exit_code == 2 and "1<=x<=100" in r.stderr
    assert not any(folder.glob("q.*")) and not (folder / "a.denoised.png").exists()


def test_index_draws_no_progress_bar_when_stderr_is_not_a_terminal(folder: Path) -> None:
    r = run("index", folder / "a.png", folder / "bad.png", "-o", folder / "j.npz", "-m", FACES)
    assert r.exit_code == 1
    lines = r.stderr.splitlines()
    assert lines[0] == f"aecodec: {folder / 'bad.png'}: no such file or folder"
    assert lines[1].startswith(f"{folder / 'j.npz'}: 1 files") and len(lines) == 2
    assert "\r" not in r.stderr and "file/s" not in r.stderr


def test_similar_never_prints_a_negative_distance() -> None:
    rng = np.random.default_rng(0)
    v = rng.standard_normal((64, 512)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert (1.0 - np.einsum("ij,ij->i", v, v) < 0).any()  # float32 rounding: cos(v, v) a hair over 1
    index = Index(FACES, b"\0" * 8, paths=[f"f{i}" for i in range(64)], qualities=np.full(64, 50, np.float32),
                  vectors=v)
    _, dist = index.search_vectors(v, 1)
    assert (dist >= 0).all() and "-0.0000" not in " ".join(f"{d:.4f}" for d in dist.ravel())


def test_every_output_gets_the_umask_mode(folder: Path) -> None:
    old = os.umask(0o022)
    try:
        assert run("compress", folder / "a.png", "-o", folder / "c.aec").exit_code == 0
        assert run("decompress", folder / "c.aec", "-o", folder / "d.png").exit_code == 0
        assert run("denoise", folder / "a.png", "-o", folder / "n.png").exit_code == 0
        assert run("index", folder / "a.aec", "-o", folder / "m.npz").exit_code == 0
        assert run("similar", folder / "a.png", "-i", folder / "i.npz", "--sheet", folder / "s.png").exit_code == 0
    finally:
        os.umask(old)
    for name in ("c.aec", "d.png", "n.png", "m.npz", "s.png"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o644, name


def test_similar_needs_force_to_overwrite_a_sheet(folder: Path) -> None:
    sheet = folder / "s.png"
    sheet.write_bytes(b"keep me")
    r = run("similar", folder / "a.png", "-i", folder / "i.npz", "--sheet", sheet)
    assert r.exit_code == 1 and "exists" in error_lines(r)[0] and sheet.read_bytes() == b"keep me"
    assert run("similar", folder / "a.png", "-i", folder / "i.npz", "--sheet", sheet, "-f").exit_code == 0
    assert sheet.read_bytes()[:4] == b"\x89PNG"


def test_a_reader_that_closes_the_pipe_ends_the_command_quietly() -> None:
    """`aecodec models | head -1`: no "Broken pipe" line, status 141 (as a tool killed by SIGPIPE)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "aecodec", "models"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the command writes (it starts in ~0.1 s)
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141
    assert err == b""
