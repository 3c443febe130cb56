"""The promotion gate's verdict (tools/promote.py): every gate set, every rival."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _promote():
    spec = importlib.util.spec_from_file_location("promote_tool", ROOT / "tools" / "promote.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gate_needs_every_rival_on_every_gate_set() -> None:
    passes = _promote().passes
    bd = {"faces": {"candidate vs conv-faces": -12.0, "candidate vs conv-photos.v9": -0.4},
          "photos": {"candidate vs conv-faces": +3.0, "candidate vs conv-photos.v9": +9.0}}
    # beats the family's newest on faces, but not the default by the margin: nothing ships
    assert not passes(bd, ["faces"], ["conv-faces", "conv-photos.v9"], 1.0)
    assert passes(bd, ["faces"], ["conv-faces"], 1.0)
    assert passes(bd, ["faces"], ["conv-faces", "conv-photos.v9"], 0.3)
    # a set outside the gate sets does not count; one inside it does
    assert not passes(bd, ["faces", "photos"], ["conv-faces"], 1.0)


def test_gate_fails_without_a_measurement() -> None:
    passes = _promote().passes
    assert not passes({"faces": {"candidate vs conv-faces": None}}, ["faces"], ["conv-faces"], 1.0)
    assert not passes({}, ["faces"], ["conv-faces"], 1.0)
    assert not passes({"faces": {}}, ["faces"], ["conv-faces"], 1.0)


def test_a_denoising_gate_codes_seeded_noisy_inputs_against_clean_references() -> None:
    import numpy as np
    promote = _promote()
    rng = np.random.default_rng(0)
    clean = {"faces": [("a", rng.integers(40, 216, (64, 64, 3), dtype=np.uint8)),
                       ("b", rng.integers(40, 216, (64, 64, 3), dtype=np.uint8))]}
    one, two = promote.noisy_sets(clean, 0.1), promote.noisy_sets(clean, 0.1)
    (name, noisy, ref), (_, noisy_b, _) = one["faces"]
    assert name == "a" and ref is clean["faces"][0][1] and noisy.dtype == np.uint8
    assert np.array_equal(noisy, two["faces"][0][1])  # seeded: the same noise every gate run
    assert not np.array_equal(noisy - ref, noisy_b - clean["faces"][1][1])  # but not the same for each image
    assert abs((noisy.astype(float) - ref).std() / 255 - 0.1) < 0.01
    assert promote._input_and_reference(one["faces"][0]) == (noisy, ref)
    assert promote._input_and_reference(clean["faces"][0]) == (clean["faces"][0][1],) * 2
