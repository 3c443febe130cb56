"""Model behaviours: shapes, quality mapping, registry, and that the linear AE finds PCA."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aecodec.errors import AecModelError
from aecodec.models import model_class, registered_names
from aecodec.models.conv import ConvAutoencoder, ConvConfig
from aecodec.models.dense import DenseAEConfig, DenseAutoencoder, LinearAEConfig, LinearAutoencoder
from aecodec.models.pca import BlockPCA, BlockPCAConfig, Eigenfaces, EigenfacesConfig
from aecodec.quantize import quality_position, quantize


def _tiny_conv() -> ConvAutoencoder:
    torch.manual_seed(0)
    return ConvAutoencoder(ConvConfig(channels=8, latent_channels=6, levels=3, lambdas=[0.01, 0.02, 0.04])).eval()


def test_registry_lists_every_family() -> None:
    assert {"conv", "pca-block", "eigenfaces", "linear-ae", "dense-ae"} <= set(registered_names())


def test_unknown_model_kind_raises_model_error() -> None:
    with pytest.raises(AecModelError, match="unknown model kind"):
        model_class("no-such-model")


@pytest.mark.parametrize("q,expected", [(1, (0, 1, 0.0)), (100, (11, 11, 0.0)), (10, (1, 2, 0.0)), (100 - 4.5, (10, 11, 0.5))])
def test_quality_position_puts_levels_on_quality_axis(q: float, expected: tuple[int, int, float]) -> None:
    lo, hi, t = quality_position(q, 12)
    assert (lo, hi) == expected[:2] and t == pytest.approx(expected[2])


@pytest.mark.parametrize("q", [0, 100.5, float("nan")])
def test_quality_out_of_range_raises(q: float) -> None:
    with pytest.raises(ValueError):
        quality_position(q, 12)


def test_quantize_modes() -> None:
    x = torch.tensor([0.2, 0.7, -1.6], requires_grad=True)
    assert torch.equal(quantize(x, "round"), torch.tensor([0.0, 1.0, -2.0]))
    ste = quantize(x, "ste")
    ste.sum().backward()
    assert torch.equal(ste.detach(), torch.tensor([0.0, 1.0, -2.0])) and torch.equal(x.grad, torch.ones(3))
    noisy = quantize(x.detach(), "noise")
    assert torch.all((noisy - x.detach()).abs() <= 0.5)
    with pytest.raises(ValueError):
        quantize(x, "floor")  # type: ignore[arg-type]


@pytest.mark.parametrize("h,w", [(1, 1), (17, 33), (32, 48)])
def test_conv_codes_any_size_after_padding(h: int, w: int) -> None:
    m = _tiny_conv()
    ph, pw = -(-h // 16) * 16, -(-w // 16) * 16
    x = torch.rand(2, 3, ph, pw)
    s = m.encode(x, 50)
    assert s.dtype == torch.int32 and tuple(s.shape[1:]) == m.latent_shape(w, h, 50)
    assert m.decode(s, 50).shape == (2, 3, ph, pw)


def test_conv_gains_rise_with_quality_for_every_channel() -> None:
    m = _tiny_conv()
    with torch.no_grad():
        m.gain_steps.normal_()  # any parameters: monotonicity holds by construction
        gains = [m._gains_at(q)[0].flatten() for q in (1, 20, 50, 50.5, 80, 100)]
    for a, b in zip(gains, gains[1:]):
        assert torch.all(b > a)


def test_conv_forward_gives_bits_per_sample() -> None:
    m = _tiny_conv().train()
    out = m(torch.rand(3, 3, 32, 32), torch.tensor([0, 1, 2]))
    assert out.bits is not None and out.bits.shape == (3,) and torch.all(out.bits > 0)
    assert out.x_hat.shape == (3, 3, 32, 32)


def test_block_pca_basis_is_orthonormal_and_lossless_at_fine_step() -> None:
    m = BlockPCA(BlockPCAConfig(block=4, step_lo=1.0, step_hi=1e-4))
    rng = np.random.default_rng(0)
    stack = torch.from_numpy(rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8))
    m.fit_closed_form(stack)
    eye = m.basis @ m.basis.T
    assert torch.allclose(eye, torch.eye(eye.shape[0]), atol=1e-4)
    x = stack[:1].permute(0, 3, 1, 2).float() / 255
    s = m.encode(x, 100)
    assert s.shape[1] == 48  # every component kept at a fine step
    assert (m.decode(s, 100) - x).abs().max() < 1e-3


def test_higher_quality_keeps_more_pca_components() -> None:
    m = Eigenfaces(EigenfacesConfig(width=4, height=4, components=16))
    rng = np.random.default_rng(1)
    m.fit_closed_form(torch.from_numpy(rng.integers(0, 256, (64, 4, 4, 3), dtype=np.uint8)))
    kept = [m.latent_shape(4, 4, q)[0] for q in (1, 30, 60, 100)]
    assert kept == sorted(kept) and kept[-1] > kept[0]


def test_dense_autoencoder_refuses_hidden_layer_narrower_than_code() -> None:
    with pytest.raises(ValueError, match="narrower"):
        DenseAutoencoder(DenseAEConfig(width=4, height=4, code=32, hidden=[64, 16]))


def _principal_angles_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    qa, _ = torch.linalg.qr(a)
    qb, _ = torch.linalg.qr(b)
    s = torch.linalg.svdvals(qa.T @ qb).clamp(-1, 1)
    return torch.rad2deg(torch.arccos(s))


def test_linear_autoencoder_recovers_the_pca_subspace() -> None:
    torch.manual_seed(0)
    d, k, n = 3 * 2 * 3, 3, 400
    basis, _ = torch.linalg.qr(torch.randn(d, k))
    x = (torch.randn(n, k) * torch.tensor([3.0, 2.0, 1.0])) @ basis.T + 0.05 * torch.randn(n, d) + 0.5
    m = LinearAutoencoder(LinearAEConfig(width=3, height=2, code=k))
    opt = torch.optim.Adam(m.parameters(), lr=0.02)
    for _ in range(1500):
        out = m(x.view(n, 3, 2, 3), torch.zeros(n, dtype=torch.long))
        loss = ((out.x_hat.view(n, d) - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    _, _, vh = torch.linalg.svd(x - x.mean(0), full_matrices=False)
    angles = _principal_angles_deg(m.dec.weight.detach(), vh[:k].T)
    assert angles.max() < 3.0, angles
    # And its reconstruction error matches PCA's at the same code size.
    centered = x - x.mean(0)
    pca_err = ((centered - centered @ vh[:k].T @ vh[:k]) ** 2).mean()
    assert math.isclose(float(loss.detach()), float(pca_err), rel_tol=0.02)


def test_code_step_maps_symbols_back_to_code_units() -> None:
    """symbols × code_step ≈ the continuous code, per channel, for every quantizing family."""
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    conv = ConvAutoencoder(ConvConfig(channels=8, latent_channels=6, levels=3, lambdas=[0.01, 0.02, 0.04])).eval()
    y = conv.g_a(x)
    for q in (1.0, 50.0, 100.0):
        step = conv.code_step(q).view(1, -1, 1, 1)
        assert torch.all((conv.encode(x, q) * step - y).abs() <= 0.5 * step + 1e-5)
    assert torch.all(conv.code_step(100.0) < conv.code_step(1.0)) and conv.code_spread() is None
    pca = Eigenfaces(EigenfacesConfig(width=8, height=8, components=16))
    pca.fit_vectors(torch.rand(40, 3 * 8 * 8))
    assert pca.code_step(10.0).shape == pca.code_spread().shape == pca.std.shape
    assert float(pca.code_step(90.0)[0]) < float(pca.code_step(10.0)[0])


def test_bfloat16_encoder_moves_few_symbols_and_can_be_turned_off(monkeypatch) -> None:
    import torch
    from skimage import data as skdata

    from aecodec.codec import to_tensor
    from aecodec.models import conv
    from aecodec.weights import load_shipped

    model = load_shipped("conv-photos").model
    x = to_tensor([skdata.astronaut()[:128, :128]], model.stride)
    exact = torch.round(model.scaled_latents(x, 50)).to(torch.int32)
    monkeypatch.setenv("AECODEC_ENCODER", "float32")
    assert not conv.bf16_encoder(torch.device("cpu"))
    assert torch.equal(model.encode(x, 50), exact)
    monkeypatch.delenv("AECODEC_ENCODER")
    fast = model.encode(x, 50)
    assert fast.shape == exact.shape
    moved = fast != exact
    assert moved.float().mean() < 0.02 and (fast - exact).abs().max() <= 2


def test_a_large_batch_is_analysed_a_few_images_at_a_time_with_the_same_symbols(monkeypatch) -> None:
    from aecodec.models import conv as conv_module

    torch.manual_seed(0)
    model = ConvAutoencoder(ConvConfig(channels=8, latent_channels=6, levels=3, lambdas=[0.01, 0.02, 0.04])).eval()
    x = torch.rand(5, 3, 32, 32)
    seen: list[int] = []
    g_a = model.g_a.forward

    def counting(t: torch.Tensor) -> torch.Tensor:
        seen.append(len(t))
        return g_a(t)

    monkeypatch.setattr(model.g_a, "forward", counting)
    whole = model.encode(x, 50)
    assert seen == [5]
    monkeypatch.setattr(conv_module, "ANALYSIS_CHUNK_PIXELS", 2 * 32 * 32)
    seen.clear()
    # (the same symbols on this machine; a library may pick other kernels by batch size, so a
    # symbol within rounding of a half may move elsewhere)
    assert _nearly_equal(model.encode(x, 50), whole)
    assert seen == [2, 2, 1]
    monkeypatch.setattr(conv_module, "ANALYSIS_CHUNK_PIXELS", 1)  # an image larger than a chunk: alone
    seen.clear()
    assert _nearly_equal(model.encode(x[:2], 50), whole[:2]) and seen == [1, 1]


def _nearly_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and int((a - b).abs().max()) <= 1 and float((a != b).float().mean()) < 0.01
