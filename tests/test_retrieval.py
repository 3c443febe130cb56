"""Tests of code retrieval: descriptors, the `.npz` index, search, and the index/similar commands."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from skimage import data as skdata

import aecodec
from aecodec.cli.retrieval import index_cmd, similar_cmd
from aecodec.weights import resolve
from aecodec.errors import AecFormatError, AecInputError, AecOutputError
from aecodec.retrieval import DESCRIPTORS, INDEX_FORMAT, Index, build_index, describe_symbols
from aecodec.sheet import contact_sheet
from aecodec.weights import load_shipped

MODEL = resolve("conv-faces")  # the newest face version: what an index of "conv-faces" records


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six 48x48 astronaut crops as PNG in img/, the same compressed by conv-faces in aec/."""
    root = tmp_path_factory.mktemp("collection")
    (root / "img").mkdir()
    (root / "aec").mkdir()
    astro = skdata.astronaut()
    for i, (y, x) in enumerate([(40, 180), (44, 184), (300, 300), (100, 380), (0, 0), (420, 60)]):
        crop = astro[y:y + 48, x:x + 48]
        Image.fromarray(crop).save(root / "img" / f"c{i}.png")
        (root / "aec" / f"c{i}.aec").write_bytes(aecodec.compress(crop, 50, MODEL))
    return root


def _stems(pairs: list[tuple[str, float]]) -> list[str]:
    return [Path(p).stem for p, _ in pairs]


def test_descriptor_length_does_not_depend_on_image_size() -> None:
    lm = load_shipped(MODEL)
    c = lm.model.config.latent_channels  # 160 up to conv-faces.v2, 320 from v3
    small = np.ones((c, 3, 5), np.int32)
    large = np.ones((c, 16, 16), np.int32)
    for kind in ("centre", "grid4"):
        a, b = describe_symbols(lm, small, 50.0, kind), describe_symbols(lm, large, 30.0, kind)
        assert a.shape == b.shape == (c * 16,)
        assert a.dtype == np.float32 and np.isclose(np.linalg.norm(b), 1.0)
    assert describe_symbols(lm, large, 50.0, "full").shape == (c * 256,)
    with pytest.raises(AecInputError):
        describe_symbols(lm, large, 50.0, "nope")


def test_pca_codes_of_every_quality_give_one_length() -> None:
    lm = load_shipped("eigenfaces")
    short, long_ = np.ones(10, np.int32), np.ones(100, np.int32)
    assert describe_symbols(lm, short, 5.0).shape == describe_symbols(lm, long_, 90.0).shape


def test_index_from_aec_files_matches_index_from_images(collection: Path) -> None:
    from_images = build_index([collection / "img"], model=MODEL, quality=50)
    from_aec = build_index([collection / "aec"])
    assert from_aec.model == MODEL and len(from_aec) == len(from_images) == 6
    np.testing.assert_allclose(from_aec.vectors, from_images.vectors, atol=1e-5)
    for i in range(6):
        assert _stems(from_aec.search(collection / "aec" / f"c{i}.aec", 5)) == \
            _stems(from_images.search(collection / "img" / f"c{i}.png", 5))


def test_index_round_trip_keeps_everything_and_needs_no_pickle(collection: Path, tmp_path: Path) -> None:
    index = build_index([collection / "aec"], descriptor="grid4")
    path = tmp_path / "faces.npz"
    index.save(path)
    with np.load(path, allow_pickle=False) as z:
        assert str(z["format"]) == INDEX_FORMAT and z["vectors"].dtype == np.float32
    back = Index.load(path)
    assert back.paths == index.paths and back.model == index.model and back.descriptor == "grid4"
    assert back.weights_hash == index.weights_hash and back.quality == index.quality
    np.testing.assert_array_equal(back.vectors, index.vectors)
    np.testing.assert_array_equal(back.qualities, index.qualities)
    assert not [p for p in tmp_path.iterdir() if p.name != "faces.npz"]  # no temporary file left


def test_save_never_overwrites_without_being_asked(collection: Path, tmp_path: Path) -> None:
    index = build_index([collection / "aec" / "c0.aec"])
    path = tmp_path / "i.npz"
    path.write_bytes(b"precious")
    with pytest.raises(AecOutputError):
        index.save(path)
    assert path.read_bytes() == b"precious"
    index.save(path, overwrite=True)
    assert len(Index.load(path)) == 1


def test_update_adds_only_files_not_yet_indexed(collection: Path) -> None:
    index = build_index([collection / "aec" / "c0.aec", collection / "aec" / "c1.aec"])
    result = index.update([collection / "aec"])
    assert len(result.added) == 4 and len(result.present) == 2 and not result.skipped
    assert len(index) == 6 and len(set(index.paths)) == 6 and index.vectors.shape[0] == 6


def test_file_of_another_model_is_reported_and_skipped(collection: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.aec"
    other.write_bytes(aecodec.compress(np.zeros((32, 32, 3), np.uint8), 50, "pca-block"))
    skipped: list[tuple[str, str]] = []
    index = build_index([collection / "aec", other], on_skip=lambda p, r: skipped.append((p, r)))
    assert len(index) == 6 and index.model == MODEL
    assert len(skipped) == 1 and "pca-block" in skipped[0][1] and MODEL in skipped[0][1]


def test_a_query_of_another_model_is_decoded_and_encoded_with_the_index_model(collection: Path,
                                                                               tmp_path: Path) -> None:
    crop = np.asarray(Image.open(collection / "img" / "c2.png"))
    other = tmp_path / "c2.aec"
    other.write_bytes(aecodec.compress(crop, 90, "conv-photos"))  # what `aecodec compress` makes by default
    index = build_index([collection / "aec"])
    assert index.model == MODEL
    assert index.search(other, 1) == index.search(aecodec.decompress(other.read_bytes()), 1)
    assert _stems(index.search(other, 1)) == ["c2"]


def test_corrupt_and_unreadable_inputs_are_reported_and_skipped(collection: Path, tmp_path: Path) -> None:
    bad = bytearray((collection / "aec" / "c0.aec").read_bytes())
    bad[len(bad) // 2] ^= 0xFF
    (tmp_path / "bad.aec").write_bytes(bytes(bad))
    (tmp_path / "bad.png").write_bytes(b"not a png")
    skipped: list[tuple[str, str]] = []
    index = build_index([collection / "aec", tmp_path, tmp_path / "missing.jpg"],
                        on_skip=lambda p, r: skipped.append((p, r)))
    assert len(index) == 6
    assert sorted(Path(p).name for p, _ in skipped) == ["bad.aec", "bad.png", "missing.jpg"]
    assert all("\n" not in r for _, r in skipped)


def test_full_descriptor_refuses_a_second_image_size(collection: Path, tmp_path: Path) -> None:
    Image.fromarray(skdata.astronaut()[:80, :80]).save(tmp_path / "big.png")
    index = build_index([collection / "img"], model=MODEL, descriptor="full")
    result = index.update([tmp_path / "big.png"])
    assert not result.added and len(result.skipped) == 1 and "centre" in result.skipped[0][1]


def test_search_finds_planted_neighbours_in_a_large_index() -> None:
    rng = np.random.default_rng(1)
    v = rng.standard_normal((10_000, 64)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    index = Index(MODEL, load_shipped(MODEL).weights_hash, paths=[f"f{i}" for i in range(10_000)],
                  qualities=np.full(10_000, 50, np.float32), vectors=v)
    query = v[[123, 4567]] + 0.001
    idx, dist = index.search_vectors(query, 3)
    assert idx[:, 0].tolist() == [123, 4567] and (np.diff(dist, axis=1) >= 0).all()
    assert [p for p, _ in index.search(v[9999], 1)] == ["f9999"]
    assert index.search_vectors(query, 50_000)[0].shape == (2, 10_000)


def test_search_leaves_the_query_itself_out(collection: Path) -> None:
    index = build_index([collection / "aec"])
    names = _stems(index.search(collection / "aec" / "c0.aec", 10))
    assert len(names) == 5 and "c0" not in names
    assert _stems(index.search(collection / "aec" / "c0.aec", 1, skip_self=False)) == ["c0"]


def test_a_file_that_is_not_an_npz_is_named_so_without_numpy_advice(tmp_path: Path) -> None:
    (tmp_path / "garbage.npz").write_text("garbage\n")
    with pytest.raises(AecFormatError) as err:
        Index.load(tmp_path / "garbage.npz")
    assert "not an aecodec index" in str(err.value) and "pickle" not in str(err.value)


def test_load_rejects_files_that_are_not_an_index(tmp_path: Path) -> None:
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    np.savez(tmp_path / "pickled.npz", vectors=np.array([{"a": 1}], dtype=object))
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    for name in ("junk.npz", "pickled.npz", "other.npz"):
        with pytest.raises(AecFormatError):
            Index.load(tmp_path / name)
    with pytest.raises(AecInputError):
        Index.load(tmp_path / "absent.npz")
    assert zipfile.is_zipfile(tmp_path / "other.npz")


def test_contact_sheet_draws_a_box_for_a_missing_image() -> None:
    im = Image.new("RGB", (40, 30), (0, 128, 0))
    sheet = contact_sheet([(im, "query", "q.png"), (None, "#1  d=0.100", "gone.aec")], size=64)
    assert sheet.size[0] == 2 * (64 + 12) and sheet.mode == "RGB"


def test_cli_index_then_similar_prints_neighbours_and_writes_a_sheet(collection: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "idx.npz"
    r = runner.invoke(index_cmd, [str(collection / "aec"), "-o", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "6 files" in r.stderr
    sheet = tmp_path / "sheet.png"
    r = runner.invoke(similar_cmd, [str(collection / "img" / "c0.png"), "-i", str(out), "-k", "3",
                                    "--sheet", str(sheet)])
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("1\t")
    assert float(lines[0].split("\t")[1]) <= float(lines[2].split("\t")[1])
    with Image.open(sheet) as im:
        assert im.format == "PNG" and im.width > 4 * 128


def test_cli_index_reports_a_corrupt_file_on_one_line_and_exits_1(collection: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.aec"
    bad.write_bytes((collection / "aec" / "c1.aec").read_bytes()[:-5])
    r = CliRunner().invoke(index_cmd, [str(collection / "aec"), str(bad), "-o", str(tmp_path / "i.npz"),
                                       "--no-progress"])
    assert r.exit_code == 1
    skipped = [ln for ln in r.stderr.splitlines() if ln.startswith("aecodec: ")]
    assert len(skipped) == 1 and "bad.aec" in skipped[0] and "truncated" in skipped[0]
    assert len(Index.load(tmp_path / "i.npz")) == 6


def test_cli_index_needs_force_or_update_for_an_existing_index(collection: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = str(tmp_path / "i.npz")
    aec = collection / "aec"
    assert runner.invoke(index_cmd, [str(aec / "c0.aec"), "-o", out, "--no-progress"]).exit_code == 0
    r = runner.invoke(index_cmd, [str(aec), "-o", out, "--no-progress"])
    assert r.exit_code != 0 and "--force" in r.output and len(Index.load(out)) == 1
    r = runner.invoke(index_cmd, [str(aec), "-o", out, "--update", "--no-progress"])
    assert r.exit_code == 0 and "5 added, 1 already indexed" in r.stderr and len(Index.load(out)) == 6
    r = runner.invoke(index_cmd, [str(aec), "-o", out, "--update", "-m", "pca-block", "--no-progress"])
    assert r.exit_code != 0 and "conv-faces" in r.output
    r = runner.invoke(index_cmd, [str(aec / "c2.aec"), "-o", out, "-f", "--no-progress"])
    assert r.exit_code == 0 and len(Index.load(out)) == 1


def test_cli_similar_explains_a_missing_index(tmp_path: Path, collection: Path) -> None:
    r = CliRunner().invoke(similar_cmd, [str(collection / "img" / "c0.png"), "-i", str(tmp_path / "none.npz")])
    assert r.exit_code == 1 and "aecodec index" in r.output


def test_every_descriptor_is_offered_by_the_cli() -> None:
    choices = next(p for p in index_cmd.params if p.name == "descriptor").type.choices  # type: ignore[attr-defined]
    assert tuple(choices) == DESCRIPTORS


def test_cli_update_accepts_the_quality_the_index_was_built_at(collection: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = str(tmp_path / "i.npz")
    args = ["-o", out, "-q", "33.3", "-m", MODEL, "--no-progress"]
    assert runner.invoke(index_cmd, [str(collection / "img" / "c0.png"), *args]).exit_code == 0
    r = runner.invoke(index_cmd, [str(collection / "img" / "c1.png"), *args, "--update"])
    assert r.exit_code == 0, r.output
    assert len(Index.load(out)) == 2 and Index.load(out).quality == pytest.approx(33.3)


def test_an_index_of_files_of_an_older_version_keeps_them(tmp_path: Path) -> None:
    """Files written by conv-faces version 1 (header name `conv-faces`) index with version 1,
    not with the family's newest version, which would skip every one of them."""
    face = skdata.astronaut()[30:158, 170:298]
    for i, q in enumerate((40, 60)):
        (tmp_path / f"old{i}.aec").write_bytes(aecodec.compress(face, quality=q, model="conv-faces.v1"))
    index = build_index([tmp_path])
    assert index.model == "conv-faces" and len(index) == 2
    assert resolve("conv-faces") != "conv-faces"  # the family has a newer version
