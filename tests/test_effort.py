"""Encoder effort: every effort round-trips through the same decoder, never costs more than
effort 1 on the image's own objective, and bad values are clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import aecodec
from aecodec.cli import main
from aecodec.codec import batch_encode
from aecodec.effort import EFFORT_MAX, EFFORT_MIN, check_effort, iterations
from aecodec.errors import AecInputError
from aecodec.weights import load_shipped


@pytest.fixture(scope="module")
def small(astronaut: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(astronaut[120:152, 190:238])  # 48x32: a 2x3 latent grid


@pytest.mark.parametrize("effort", range(EFFORT_MIN, EFFORT_MAX + 1))
def test_every_effort_round_trips_with_the_same_header_meaning(small: np.ndarray, effort: int) -> None:
    base = aecodec.info(aecodec.compress(small, quality=40, model="conv-faces"))
    data = aecodec.compress(small, quality=40, model="conv-faces", effort=effort)
    h = aecodec.info(data)
    assert (h.model, h.weights_hash, h.width, h.height, h.mode, h.quality, h.latent_shape) == \
        (base.model, base.weights_hash, base.width, base.height, base.mode, base.quality, base.latent_shape)
    out = np.asarray(aecodec.decompress(data))
    assert out.shape == small.shape
    assert np.mean((out.astype(float) - small) ** 2) < 255**2 * 0.01  # a real image, not noise


def test_higher_effort_never_costs_more_on_the_real_objective(small: np.ndarray) -> None:
    lm = load_shipped("conv-faces")
    costs = {}
    for effort in (2, 5):
        (enc,) = list(batch_encode(lm, [small], 40, effort=effort))
        costs[effort] = enc.cost
    lam = lm.model.lambda_at(40)
    base = aecodec.compress(small, quality=40, model="conv-faces")
    out = np.asarray(aecodec.decompress(base)).astype(float)
    payload = len(aecodec.container.read(base).payload)
    base_cost = lam * np.mean((out - small) ** 2) + payload * 8 / small.shape[0] / small.shape[1]
    assert all(c <= base_cost + 1e-9 for c in costs.values())


def test_rate_rises_with_quality_at_a_high_effort(small: np.ndarray) -> None:
    sizes = [len(aecodec.compress(small, quality=q, model="conv-faces", effort=4)) for q in (5, 50, 95)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_model_choice_only_when_the_model_is_left_to_the_codec(small: np.ndarray) -> None:
    chosen = aecodec.info(aecodec.compress(small, quality=40, effort=6)).model
    assert chosen in aecodec.list_models()
    named = aecodec.info(aecodec.compress(small, quality=40, model="conv-photos", effort=6)).model
    assert named == load_shipped("conv-photos").name


def test_batches_refine_together_and_keep_order(small: np.ndarray) -> None:
    codec = aecodec.Codec(model="conv-faces", quality=40, effort=3)
    imgs = [small, small[::-1].copy(), "no-such-file.png", np.ascontiguousarray(small[:, ::-1])]
    out = list(codec.compress_many(imgs))
    assert isinstance(out[2], aecodec.AecError)
    for img, data in zip([imgs[0], imgs[1], imgs[3]], [out[0], out[1], out[3]]):
        dec = np.asarray(aecodec.decompress(data)).astype(float)
        assert np.mean((dec - img) ** 2) < 255**2 * 0.01


@pytest.mark.parametrize("bad", [0, 10, -1, 2.5, "3", None, True, float("nan")])
def test_bad_effort_is_a_clear_error(bad: object, small: np.ndarray) -> None:
    with pytest.raises(AecInputError, match="effort"):
        check_effort(bad)
    with pytest.raises(AecInputError, match="effort"):
        aecodec.compress(small, effort=bad)  # type: ignore[arg-type]


def test_integral_float_effort_is_accepted() -> None:
    assert check_effort(3.0) == 3 and iterations(1) == 0 and iterations(9) > iterations(2) > 0


@pytest.mark.parametrize("arg", ["0", "10", "fast"])
def test_cli_bad_effort_is_a_usage_error(tmp_path, arg: str) -> None:
    from PIL import Image
    p = tmp_path / "a.png"
    Image.new("RGB", (16, 16)).save(p)
    r = CliRunner().invoke(main, ["compress", str(p), "-e", arg])
    assert r.exit_code == 2 and "effort" in r.output and not (tmp_path / "a.aec").exists()


def test_cli_effort_round_trips(tmp_path, small: np.ndarray) -> None:
    from PIL import Image
    p = tmp_path / "a.png"
    Image.fromarray(small).save(p)
    r = CliRunner().invoke(main, ["compress", str(p), "-e", "3", "-m", "faces"])
    assert r.exit_code == 0, r.output
    assert aecodec.decompress((tmp_path / "a.aec").read_bytes()).size == (48, 32)
