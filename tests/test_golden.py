"""Golden `.aec` files made by an earlier version must still decode to the same image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

import aecodec

DATA = Path(__file__).resolve().parent / "data"
GOLDEN = sorted(DATA.glob("golden_*.aec"))


def test_golden_files_exist() -> None:
    assert len(GOLDEN) >= 3


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_file_still_decodes_to_its_reference(path: Path) -> None:
    ref = Image.open(path.with_suffix(".png"))
    out = aecodec.decompress(path.read_bytes())
    assert out.size == ref.size and out.mode == ref.mode
    a, b = np.asarray(out), np.asarray(ref)
    if out.mode in ("RGBA", "LA"):
        assert np.array_equal(a[..., -1], b[..., -1])  # alpha is lossless
    # Only the decoder network's float arithmetic may differ between machines.
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2
    if not np.array_equal(a, b):
        assert peak_signal_noise_ratio(b, a, data_range=255) > 50


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_header_is_pinned(path: Path) -> None:
    h = aecodec.info(path.read_bytes())
    model = path.stem.split("_")[1]
    assert h.model == model and 1 <= h.quality <= 100


def test_golden_files_cover_every_packing_method() -> None:
    from aecodec.pack import METHODS

    methods = {aecodec.info(p.read_bytes()).packing for p in GOLDEN}
    assert methods >= set(METHODS)



def test_golden_files_cover_every_container_version() -> None:
    from aecodec import container

    versions = {container.read(p.read_bytes()).version for p in GOLDEN}
    assert versions == set(container.READ_VERSIONS)
