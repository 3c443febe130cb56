"""The README's own commands run as written, so that it cannot drift from the code (issue 14, point 6)."""

from __future__ import annotations

import glob
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text of the README's ``## title`` section."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.S | re.M)


@pytest.fixture()
def shell(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A fresh folder and an environment whose ``aecodec`` is this interpreter's."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "aecodec"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m aecodec "$@"\n')
    shim.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    return work, env


def bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["bash", "-e", "-u", "-o", "pipefail", "-c", script], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{script}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"
    assert "Traceback" not in r.stderr
    return r


def run_in_process(script: str, cwd: Path) -> str:
    """Run a block of ``aecodec`` lines as bash would, in this process (no interpreter start
    per line): comments, globs (sorted, as bash expands them), ``cat FILE | aecodec ... > FILE``.
    Any other shell syntax fails the test, so a new kind of line is noticed. Returns stderr."""
    from click.testing import CliRunner

    from aecodec.cli import main
    stderr = []
    for raw in script.splitlines():
        line = raw.split(" #")[0].strip()
        if not line:
            continue
        words = shlex.split(line)
        stdin = stdout = None
        if words[0] == "cat" and words[2] == "|":
            stdin, words = (cwd / words[1]).read_bytes(), words[3:]
        if len(words) > 2 and words[-2] == ">":
            stdout, words = words[-1], words[:-2]
        assert words[0] == "aecodec" and not {"|", ">", "<", ";", "&&"} & set(words), f"unsupported: {raw}"
        args = [a for w in words[1:] for a in (sorted(glob.glob(w, root_dir=cwd)) or [w] if "*" in w else [w])]
        old = os.getcwd()
        os.chdir(cwd)
        try:
            r = CliRunner().invoke(main, args, input=stdin, catch_exceptions=False)
        finally:
            os.chdir(old)
        assert r.exit_code == 0, f"{raw}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"
        if stdout is not None:
            (cwd / stdout).write_bytes(r.stdout_bytes)
        stderr.append(r.stderr)
    return "".join(stderr)


def use_inputs(work: Path) -> None:
    """What the Use section says its folder has: face.png, photo.jpg, noisy.png, faces/, my_photos/."""
    astro = skdata.astronaut()
    shutil.copy(ROOT / "examples" / "face.png", work / "face.png")
    Image.fromarray(astro[180:276, 160:256]).save(work / "photo.jpg", quality=90)
    rng = np.random.default_rng(0)
    noisy = astro[300:364, 300:364] + rng.normal(0, 0.1 * 255, (64, 64, 3))
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(work / "noisy.png")
    (work / "faces").mkdir()
    for i, (y, x) in enumerate([(60, 180), (70, 190), (300, 300)]):
        Image.fromarray(astro[y:y + 48, x:x + 48]).save(work / "faces" / f"f{i}.png")
    (work / "my_photos").mkdir()
    Image.fromarray(astro[0:40, 0:48]).save(work / "my_photos" / "corner.png")


def check_use_outputs(work: Path, original: bytes) -> None:
    for name in ("face.aec", "out/face.aec", "photo.aec", "piped.aec", "face.decoded.png", "noisy.denoised.png",
                 "denoised/photo.aec", "faces.npz", "sheet.png", "report/report.md", "face-pil.png"):
        assert (work / name).is_file(), name
    assert (work / "face.png").read_bytes() == original
    assert (work / "piped.aec").read_bytes()[:4] == b"\x89AEC"


def test_use_section_runs_as_written_in_a_fresh_folder(tmp_path: Path) -> None:
    use_inputs(tmp_path)
    original = (tmp_path / "face.png").read_bytes()
    shell_block, python_block = blocks(section("Use"), "sh")[0], blocks(section("Use"), "python")[0]
    err = run_in_process(shell_block, tmp_path)
    assert "about" in err and re.search(r"bench: aec:conv-photos(\.v\d+)?:", err)  # bench forecast, a line per codec
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(python_block, "README.md (Use)", "exec"), {})
    finally:
        os.chdir(old)
    check_use_outputs(tmp_path, original)


@pytest.mark.slow
def test_use_section_runs_in_bash_as_written(shell: tuple[Path, dict[str, str]]) -> None:
    work, env = shell
    use_inputs(work)
    original = (work / "face.png").read_bytes()
    bash(blocks(section("Use"), "sh")[0], work, env)
    subprocess.run([sys.executable, "-c", blocks(section("Use"), "python")[0]], cwd=work, env=env, check=True)
    check_use_outputs(work, original)


def _lfw_archive(path: Path, faces: int) -> None:
    """An LFW-layout archive of ``faces`` 250x250 JPEGs of the train people (crops of the astronaut)."""
    from aecodec.train.data import is_test_person
    astro = skdata.astronaut()
    people = [p for p in (f"Person_{i:03d}" for i in range(200)) if not is_test_person(p)]
    with tarfile.open(path, "w:gz") as tar:
        for i in range(faces):
            person = people[i // 4]
            y, x = (i * 7) % 260, (i * 13) % 260
            buf = io.BytesIO()
            Image.fromarray(astro[y:y + 250, x:x + 250]).save(buf, "JPEG", quality=80)
            info = tarfile.TarInfo(f"lfw/{person}/{person}_{i % 4 + 1:04d}.jpg")
            info.size = len(buf.getvalue())
            tar.addfile(info, io.BytesIO(buf.getvalue()))


def train_inputs(work: Path) -> list[str]:
    """my_photos/ and lfw.tgz, as the Train section describes them; its ``aecodec train`` lines."""
    (work / "my_photos").mkdir()
    Image.fromarray(skdata.astronaut()[:300, :280]).save(work / "my_photos" / "astro.png")
    _lfw_archive(work / "lfw.tgz", 132)
    lines = [ln.split(" #")[0].strip() for ln in blocks(section("Train"), "sh")[0].splitlines()]
    lines = [ln for ln in lines if ln.startswith("aecodec train")]
    assert len(lines) == 3
    return lines


def test_train_section_lines_are_what_the_cli_takes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each line, parsed and checked by the real command (config, data, outputs) in this
    process; only the training itself is stood in for (it runs for real under -m slow)."""
    from click.testing import CliRunner

    from aecodec.cli import main
    lines = train_inputs(tmp_path)
    seen = []

    def fake_train(cfg: Any, resume: bool = False, progress: bool = True) -> Any:
        seen.append((cfg, resume))
        Path(cfg.out).write_bytes(b"weights")
        return SimpleNamespace(steps=cfg.steps, wall_s=0.0)
    monkeypatch.setattr("aecodec.train.train", fake_train)
    monkeypatch.chdir(tmp_path)
    for line in lines:
        r = CliRunner().invoke(main, shlex.split(line)[1:], catch_exceptions=False)
        assert r.exit_code == 0, f"{line}\n{r.output}"
    (photos, _), (resumed, resume), (eigen, _) = seen
    assert photos.folders == ["my_photos/"] and photos.lfw is None and photos.time_budget_s == 3600
    assert (photos.out, photos.checkpoint, photos.model) == ("my-photos.pt", "my-photos.ckpt", "conv")
    assert resume and resumed.time_budget_s == 7200 and resumed.checkpoint == "my-photos.ckpt"
    assert eigen.lfw == "lfw.tgz" and eigen.folders == [] and eigen.face_size == 64
    r = CliRunner().invoke(main, shlex.split(lines[0])[1:], catch_exceptions=False)
    assert r.exit_code == 1 and "exists (use -f" in r.stderr  # never overwritten without -f


@pytest.mark.slow
def test_train_section_runs_as_written_with_one_step(shell: tuple[Path, dict[str, str]]) -> None:
    """Every training line in bash, with ``--steps 1`` added so that each takes seconds."""
    work, env = shell
    for line in train_inputs(work):
        bash(line + " --steps 1", work, env)
    for name in ("my-photos.pt", "my-photos.ckpt", "my-eigenfaces.pt"):
        assert (work / name).is_file(), name
