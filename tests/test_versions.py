"""Versioned weights: a retrained model ships beside the released one, names resolve to the
newest version, and a file always decodes with exactly the version that wrote it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import aecodec
from aecodec import catalog, weights
from aecodec.cli import main
from aecodec.errors import AecModelError
from aecodec.versions import split_version, versioned_name

DATA = Path(__file__).resolve().parent / "data"


def test_every_installed_version_has_a_golden_file() -> None:
    golden = {p.stem.split("_")[1] for p in DATA.glob("golden_*.aec")}
    assert set(aecodec.list_models()) <= golden


@pytest.mark.parametrize("exact, family, version", [
    ("conv-photos", "conv-photos", 1), ("conv-photos.v2", "conv-photos", 2), ("a.b.v10", "a.b", 10),
    ("x.v0", "x.v0", 1), ("pca-block", "pca-block", 1)])
def test_split_version(exact: str, family: str, version: int) -> None:
    assert split_version(exact) == (family, version)
    if exact != "x.v0":
        assert versioned_name(family, version) == exact


def test_aliases_resolve_to_installed_families() -> None:
    assert weights.resolve("photos") == weights.resolve("conv-photos")
    assert weights.resolve("faces") == weights.resolve("conv-faces")
    assert weights.resolve("conv-photos.v1") == "conv-photos"


@pytest.fixture()
def two_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A weights folder with family ``toy`` at version 1 (pca-block's weights) only; the test
    adds version 2 (the same model with perturbed weights) when it wants."""
    src = weights.shipped_dir() / "pca-block.pt"
    shutil.copy(src, tmp_path / "toy.pt")
    blob = torch.load(src, map_location="cpu", weights_only=True)
    key = next(k for k, v in blob["state"].items() if v.is_floating_point() and v.numel() > 1)
    blob["state"][key] = blob["state"][key] * 1.05

    def add_v2() -> None:
        torch.save(blob, tmp_path / "toy.v2.pt")

    monkeypatch.setattr(catalog, "shipped_dir", lambda: tmp_path)
    weights._load_cached.cache_clear()
    yield add_v2
    weights._load_cached.cache_clear()


def test_new_version_never_orphans_an_old_file(two_versions, astro64: np.ndarray) -> None:
    old = aecodec.compress(astro64, quality=60, model="toy")
    assert aecodec.info(old).model == "toy"
    before = np.asarray(aecodec.decompress(old))
    two_versions()
    assert weights.resolve("toy") == "toy.v2" and weights.resolve("toy.v1") == "toy"
    # the old file still decodes with version 1, to the same pixels
    assert np.array_equal(np.asarray(aecodec.decompress(old)), before)
    new = aecodec.compress(astro64, quality=60, model="toy")
    assert aecodec.info(new).model == "toy.v2"
    assert aecodec.info(new).weights_hash != aecodec.info(old).weights_hash
    assert not np.array_equal(np.asarray(aecodec.decompress(new)), before)
    # naming version 1 explicitly still writes what version 1 wrote
    assert aecodec.compress(astro64, quality=60, model="toy.v1") == old
    assert aecodec.model_info("toy")["version"] == 2
    assert aecodec.model_info("toy", exact=True)["version"] == 1
    with pytest.raises(AecModelError, match="not installed"):
        weights.resolve("toy.v3")


def test_file_naming_a_missing_version_is_a_clear_error(two_versions, astro64: np.ndarray) -> None:
    two_versions()
    data = aecodec.compress(astro64, quality=60, model="toy")
    (catalog.shipped_dir() / "toy.v2.pt").unlink()
    weights._load_cached.cache_clear()
    with pytest.raises(AecModelError, match="toy.v2.*not installed"):
        aecodec.decompress(data)


def test_models_command_lists_versions_newest_marked(two_versions) -> None:
    two_versions()
    r = CliRunner().invoke(main, ["models"])
    assert r.exit_code == 0, r.output
    assert re.search(r"^  toy +v1 ", r.stdout, re.M)
    assert re.search(r"^\* toy\.v2 +v2 ", r.stdout, re.M)
    assert "-m toy means toy.v2" in r.stdout
