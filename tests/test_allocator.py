"""aecodec.allocator: glibc's thresholds, set by the command line for its own process."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

_TUNE = "from aecodec import allocator; print(allocator.tune())"


def _tune(env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
                                                                "GLIBC_TUNABLES")}
    return subprocess.run([sys.executable, "-c", _TUNE], env={**clean, **env}, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_the_thresholds_are_set_on_glibc() -> None:
    assert _tune({}) == "True"


def test_a_user_s_own_allocator_settings_are_left_alone() -> None:
    assert _tune({"MALLOC_TRIM_THRESHOLD_": "1000000"}) == "False"
    assert _tune({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1000000"}) == "False"


def test_the_library_leaves_the_allocator_as_it_is() -> None:
    """Only the command line tunes it: importing aecodec and compressing do not."""
    code = ("import ctypes, numpy as np, aecodec; from aecodec import allocator; called = []\n"
            "allocator.tune = lambda: called.append(1)\n"
            "aecodec.compress(np.zeros((32, 32, 3), np.uint8)); print(len(called))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "0"


def test_compress_and_decompress_tune_their_process(tmp_path, monkeypatch) -> None:
    import numpy as np
    from click.testing import CliRunner
    from PIL import Image

    from aecodec import allocator
    from aecodec.cli import main

    calls: list[int] = []
    monkeypatch.setattr(allocator, "tune", lambda: calls.append(1) or True)
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(tmp_path / "a.png")
    runner = CliRunner()
    assert runner.invoke(main, ["compress", str(tmp_path / "a.png")]).exit_code == 0
    assert runner.invoke(main, ["decompress", str(tmp_path / "a.aec")]).exit_code == 0
    assert runner.invoke(main, ["info", str(tmp_path / "a.aec")]).exit_code == 0
    assert calls == [1, 1]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc_trim")
def test_release_trims_only_a_tuned_process() -> None:
    code = ("import ctypes; from aecodec import allocator; calls = []\n"
            "class Libc:\n"
            "    def malloc_trim(self, pad): calls.append(pad); return 1\n"
            "real = ctypes.CDLL; allocator.release(); n = len(calls)\n"
            "allocator.tune(); ctypes.CDLL = lambda name: Libc(); allocator.release(); ctypes.CDLL = real\n"
            "print(n, calls)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}).stdout
    assert out.strip() == "0 [0]"
