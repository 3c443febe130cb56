"""The JSON cards beside the shipped weights: present, true to the weights, and enough to check
a file's header without torch."""

from __future__ import annotations

import numpy as np
import pytest

from aecodec import catalog
from aecodec.weights import load_exact, sidecar_of

NAMES = catalog.shipped_names()


@pytest.mark.parametrize("name", NAMES)
def test_every_shipped_model_has_a_card_true_to_its_weights(name: str) -> None:
    card = catalog.sidecar(name)
    assert card is not None, f"weights/{name}.json is missing: run aecodec.weights.write_sidecar"
    assert card == sidecar_of(load_exact(name))


@pytest.mark.parametrize("name", NAMES)
def test_card_latent_shapes_match_the_model(name: str) -> None:
    card, model = catalog.sidecar(name), load_exact(name).model
    qualities = sorted({1.0, 100.0, *np.linspace(1, 100, 397).astype(np.float32).tolist()})
    sizes = [model.fixed_size] if model.fixed_size else [(1, 1), (17, 33), (250, 250), (481, 321)]
    for w, h in sizes:
        for q in qualities:
            assert catalog.latent_shape(card["shape"], w, h, q) == tuple(model.latent_shape(w, h, q)), (w, h, q)


def test_a_damaged_card_is_a_model_error(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aecodec.errors import AecModelError

    (tmp_path / "toy.pt").write_bytes(b"")
    (tmp_path / "toy.json").write_text("{not json")
    monkeypatch.setattr(catalog, "shipped_dir", lambda: tmp_path)
    with pytest.raises(AecModelError, match="card toy.json"):
        catalog.sidecar("toy")
    with pytest.raises(AecModelError, match="not installed"):
        catalog.sidecar("other")
