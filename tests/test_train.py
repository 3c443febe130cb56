"""Training: the LFW archive reader and person split, a tiny run, resume, closed-form fits, DDP."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from aecodec.train import TrainConfig, train
from aecodec.train.data import is_test_person, lfw_entries, lfw_images, tile_stack
from aecodec.weights import load_model_file

PEOPLE = [f"Person_{i:03d}" for i in range(40)]


def _jpeg(seed: int, size: int = 40) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture()
def fake_lfw(tmp_path: Path) -> Path:
    path = tmp_path / "lfw.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for i, person in enumerate(PEOPLE):
            for n in range(1, 2 + i % 3):
                blob = _jpeg(i * 10 + n)
                info = tarfile.TarInfo(f"lfw/{person}/{person}_{n:04d}.jpg")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    return path


def test_person_split_is_deterministic_and_disjoint(fake_lfw: Path) -> None:
    train_people = {e.person for e in lfw_entries(fake_lfw, "train")}
    test_people = {e.person for e in lfw_entries(fake_lfw, "test")}
    assert train_people and test_people and not train_people & test_people
    assert train_people | test_people == set(PEOPLE)
    assert test_people == {p for p in PEOPLE if is_test_person(p)}


def test_lfw_reader_decodes_images_and_filters_by_count(fake_lfw: Path) -> None:
    entries, images = lfw_images(fake_lfw, "all", min_per_person=2)
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.person] = counts.get(e.person, 0) + 1
    assert min(counts.values()) >= 2 and len(images) == len(entries)
    assert images[0].shape == (40, 40, 3) and images[0].dtype == np.uint8


def test_tiles_cover_the_image() -> None:
    img = np.zeros((50, 70, 3), np.uint8)
    stack = tile_stack([img], (32, 32))
    # Half-tile steps plus one tile flush with each far edge: rows 0, 16, 18; columns 0, 16, 32, 38.
    assert stack.shape[1:] == (32, 32, 3) and len(stack) == 3 * 4


def _photo_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    astro = data.astronaut()
    for i in range(3):
        Image.fromarray(astro[i * 100: i * 100 + 96, 100:196]).save(folder / f"p{i}.png")
    return folder


def test_tiny_training_run_saves_weights_and_resumes(tmp_path: Path) -> None:
    cfg = TrainConfig(name="tiny", model="conv", folders=[str(_photo_folder(tmp_path))],
                      model_config={"channels": 8, "latent_channels": 8, "levels": 2, "lambdas": [0.01, 0.05]},
                      tile=64, crop=32, batch=4, steps=6, lr=1e-3, bf16=False,
                      checkpoint=str(tmp_path / "ck" / "tiny.ckpt"), checkpoint_every=3, out=str(tmp_path / "tiny.pt"))
    first = train(cfg, progress=False)
    assert first.steps == 6 and {"loss", "bpp", "psnr"} <= set(first.last)
    loaded = load_model_file(tmp_path / "tiny.pt")
    assert loaded.name == "tiny" and loaded.card["steps"] == 6
    cfg.steps = 9
    resumed = train(cfg, resume=True, progress=False)
    assert resumed.steps == 9


def test_fine_tune_starts_from_the_given_weights_and_its_card_says_so(tmp_path: Path) -> None:
    base = dict(name="tiny", model="conv", folders=[str(_photo_folder(tmp_path))],
                model_config={"channels": 8, "latent_channels": 8, "levels": 2, "lambdas": [0.01, 0.05]},
                tile=64, crop=32, batch=4, bf16=False)
    first = train(TrainConfig(**base, steps=4, lr=1e-3, checkpoint=str(tmp_path / "a.ckpt"), out=str(tmp_path / "a.pt")),
                  progress=False)
    tuned = train(TrainConfig(**{**base, "name": "tuned"}, steps=1, lr=1e-12, denoise_sigma=0.1,
                              init_weights=str(tmp_path / "a.pt"), checkpoint=str(tmp_path / "b.ckpt"),
                              out=str(tmp_path / "b.pt")), progress=False)
    w0, w1 = load_model_file(tmp_path / "a.pt").model.g_s[0].weight, tuned.model.g_s[0].weight
    assert first.steps == 4 and float((w0 - w1).detach().abs().max()) < 1e-6  # tiny learning rate: the starting weights
    card = load_model_file(tmp_path / "b.pt").card
    assert card["steps"] == 1 and card["fine_tuned_from"]["name"] == "tiny" and card["fine_tuned_from"]["steps"] == 4


def test_config_file_round_trip_and_unknown_keys(tmp_path: Path) -> None:
    cfg = TrainConfig(name="x", steps=3)
    cfg.save(tmp_path / "c.json")
    assert TrainConfig.from_file(tmp_path / "c.json", steps=5).steps == 5
    cfg.out = "weights/x.pt"
    cfg.save(tmp_path / "c.json")
    assert TrainConfig.from_file(tmp_path / "c.json", out=None).out is None  # None overrides too
    (tmp_path / "bad.json").write_text(json.dumps({"stepz": 3}))
    from aecodec.errors import AecInputError
    with pytest.raises(AecInputError, match="stepz"):
        TrainConfig.from_file(tmp_path / "bad.json")


def test_block_pca_fit_through_train(tmp_path: Path) -> None:
    cfg = TrainConfig(name="pca-tiny", model="pca-block", folders=[str(_photo_folder(tmp_path))], tile=64,
                      out=str(tmp_path / "pca-tiny.pt"))
    train(cfg, progress=False)
    m = load_model_file(tmp_path / "pca-tiny.pt").model
    assert float(m.std[0]) > float(m.std[-1]) >= 0


def test_ddp_two_cpu_processes(tmp_path: Path) -> None:
    folder = _photo_folder(tmp_path)
    cfg = TrainConfig(name="ddp", model="conv", folders=[str(folder)],
                      model_config={"channels": 8, "latent_channels": 8, "levels": 2, "lambdas": [0.01, 0.05]},
                      tile=64, crop=32, batch=2, steps=3, bf16=False, device="cpu",
                      checkpoint=str(tmp_path / "ddp.ckpt"), out=str(tmp_path / "ddp.pt"))
    cfg.save(tmp_path / "ddp.json")
    script = tmp_path / "run.py"
    script.write_text("import sys, torch\ntorch.set_num_threads(1)\nfrom aecodec.train import TrainConfig, train\n"
                      "import os, pathlib\nr = train(TrainConfig.from_file(sys.argv[1]), progress=False)\n"
                      "pathlib.Path(sys.argv[2], f\"rank{os.environ['RANK']}\").write_text(str(r.steps))\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script), str(tmp_path / "ddp.json"), str(tmp_path)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "rank0").read_text() == (tmp_path / "rank1").read_text() == "3"
    assert load_model_file(tmp_path / "ddp.pt").card["world_size"] == 2


def test_a_hyperprior_model_fine_tunes_jointly_from_its_weights(tmp_path: Path) -> None:
    import torch

    from aecodec.models.conv import ConvAutoencoder, ConvConfig
    from aecodec.models.hyper import HyperConfig, HyperPrior
    from aecodec.train.hyper import attach, side_sample
    from aecodec.weights import save_model

    torch.manual_seed(0)
    base = ConvAutoencoder(ConvConfig(channels=8, latent_channels=8, levels=2, lambdas=[0.01, 0.05]))
    hyper = HyperPrior(HyperConfig(latent_channels=8, channels=4, classes=12))
    save_model(attach(base, hyper, side_sample(base, hyper, torch.randn(4, 8, 4, 4), n=4)), tmp_path / "h.pt")
    common = dict(name="tuned", folders=[str(_photo_folder(tmp_path))], tile=64, crop=32, batch=2, bf16=False,
                  steps=2, lr=1e-3, denoise_sigma=0.1, init_weights=str(tmp_path / "h.pt"),
                  checkpoint=str(tmp_path / "t.ckpt"), out=str(tmp_path / "t.pt"))
    tuned = train(TrainConfig(**common, model="conv-hyper", model_config={"description": "a twin"}), progress=False)
    m = load_model_file(tmp_path / "t.pt").model
    assert m.kind == "conv-hyper" and m.config.classes == 12 and m.config.description == "a twin"
    assert not torch.equal(tuned.model.hyper.h_a[0].weight, hyper.h_a[0].weight)  # the hyperprior trained too
    from aecodec.errors import AecInputError
    with pytest.raises(AecInputError, match="conv-hyper"):
        train(TrainConfig(**common, model="conv"), progress=False)
