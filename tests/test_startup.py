"""Commands that need no network start without importing torch (``import aecodec`` is light)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "data"

_PROBE = """
import sys
from aecodec.cli import main
code = 0
try:
    main(sys.argv[1:], prog_name="aecodec")
except SystemExit as e:
    code = e.code
print("TORCH" if "torch" in sys.modules else "NOTORCH", code, file=sys.stderr)
"""


def _run(*args: str) -> tuple[str, str]:
    r = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=120)
    verdict, code = r.stderr.strip().splitlines()[-1].split()
    return verdict, code


@pytest.mark.parametrize("args, code", [
    (["--help"], "0"), (["compress", "--help"], "0"), (["models"], "0"), (["models", "-v"], "0"),
    (["info", str(GOLDEN / "golden_conv-photos.v2_q50_context_rgb.aec")], "0"),
    (["info", str(GOLDEN / "golden_pca-block_q70_gray.aec"), str(GOLDEN / "golden_eigenfaces_q50_rgb.aec")], "0"),
    (["info", str(GOLDEN / "golden_conv-photos_q50_rgb.png")], "1"),  # not an .aec: a clean error
    (["compress", "-q", "0", "x.png"], "2"),
    (["nosuchcommand"], "2"),
])
def test_commands_without_the_network_do_not_import_torch(args: list[str], code: str) -> None:
    assert _run(*args) == ("NOTORCH", code)


def test_import_and_model_listing_do_not_import_torch() -> None:
    probe = ("import sys, aecodec; names = aecodec.list_models(); aecodec.model_info('photos'); "
             "aecodec.info(open(sys.argv[1], 'rb').read()); "
             "print('TORCH' if 'torch' in sys.modules else 'NOTORCH', len(names))")
    r = subprocess.run([sys.executable, "-c", probe, str(GOLDEN / "golden_conv-faces_q20_rgba.aec")],
                       capture_output=True, text=True, timeout=120)
    verdict, n = r.stdout.split()
    assert verdict == "NOTORCH" and int(n) >= 5


def test_the_network_api_loads_on_first_use() -> None:
    r = subprocess.run([sys.executable, "-c", "import sys, aecodec; aecodec.Codec; print('torch' in sys.modules)"],
                       capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "True"
