"""Loss terms, the face-skin mask, the simple texture prior and its registry, FitConfig."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganfit_core.fitting import losses as L
from ganfit_core.fitting.config import ConfigError, FitConfig
from ganfit_core.fitting.masks import landmark_hull_mask
from ganfit_core.fitting.optim import Adam
from ganfit_core.fitting.params import matrix_to_axis_angle
from ganfit_core.render.camera import axis_angle_to_matrix
from ganfit_core.texture import TexturePriorError, load_texture_prior
from ganfit_core.texture.simple import SKIN_TONE, SimpleTexturePrior


def test_landmark_loss_normalised_by_face_size() -> None:
    target = torch.tensor([[[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]]])
    shifted = target + torch.tensor([1.0, 0.0])
    small = L.landmark_loss(shifted, target)
    # The same relative error on a face twice as large gives the same loss.
    assert torch.isclose(L.landmark_loss(2 * target + torch.tensor([2.0, 0.0]), 2 * target), small)
    assert float(small) == pytest.approx(1.0 / (100.0**2 * 2))
    assert float(L.landmark_loss(target, target)) == 0.0


def test_landmark_loss_weights_and_shapes() -> None:
    target = torch.zeros(1, 3, 2)
    target[0, 1] = torch.tensor([10.0, 0.0])
    pred = target.clone()
    pred[0, 2] += 5.0
    w = torch.tensor([1.0, 1.0, 0.0])
    assert float(L.landmark_loss(pred, target, weights=w)) == 0.0
    assert float(L.landmark_loss(pred, target)) > 0.0
    with pytest.raises(ValueError, match="expected equal shapes"):
        L.landmark_loss(pred[:, :2], target)


def test_slide_contour_stays_in_window() -> None:
    candidates = torch.stack([torch.arange(17.0), torch.zeros(17)], dim=-1)[None]  # points on a line
    target = torch.tensor([[[16.0, 0.0], [0.0, 0.0]]])
    choice = L.slide_contour(candidates, target, [5, 5], window=2)
    assert choice.tolist() == [[7, 3]]
    assert L.slide_contour(candidates, target, [5, 5], window=0).tolist() == [[5, 5]]


def test_masked_pixel_loss_ignores_outside_mask() -> None:
    a = torch.zeros(1, 4, 4, 3)
    b = torch.zeros(1, 4, 4, 3)
    b[:, :2] = 1.0  # differs only in the top half
    mask = torch.zeros(1, 4, 4, 1)
    mask[:, 2:] = 1.0
    assert float(L.masked_pixel_loss(a, b, mask)) == pytest.approx(0.0, abs=1e-6)
    mask[:] = 1.0
    assert float(L.masked_pixel_loss(a, b, mask)) == pytest.approx(0.5 * math.sqrt(3), rel=1e-3)


def test_identity_and_content_losses() -> None:
    e = torch.randn(2, 128)
    assert float(L.identity_loss(e, 3 * e)) == pytest.approx(0.0, abs=1e-6)
    assert float(L.identity_loss(e, -e)) == pytest.approx(2.0, abs=1e-6)
    feats = [torch.randn(1, 4, 5, 5), torch.randn(1, 8, 2, 2)]
    assert float(L.content_loss(feats, feats)) == 0.0
    assert float(L.content_loss([f + 1 for f in feats], feats)) > 0.0
    with pytest.raises(ValueError):
        L.content_loss(feats, feats[:1])


def test_regularisers() -> None:
    assert float(L.coefficient_regulariser(torch.tensor([[3.0, 4.0]]))) == 25.0
    flat = torch.full((1, 8, 8, 3), 0.5)
    assert float(L.texture_smoothness(flat)) == 0.0
    noisy = flat + torch.randn_like(flat) * 0.1
    assert float(L.texture_smoothness(noisy)) > 0.0
    assert float(L.texture_symmetry(noisy + noisy.flip(2))) == pytest.approx(0.0, abs=1e-6)
    assert float(L.texture_symmetry(noisy)) > 0.0


def test_landmark_hull_mask() -> None:
    square = np.array([[2.0, 2.0], [6.0, 2.0], [6.0, 6.0], [2.0, 6.0], [4.0, 4.0]])  # inner point ignored
    mask = landmark_hull_mask(square, (10, 10))
    assert mask.sum() == 16 and mask[2:6, 2:6].all()
    with pytest.raises(ValueError):
        landmark_hull_mask(np.zeros((2, 2)), (4, 4))


def test_simple_prior_contract() -> None:
    prior = load_texture_prior("simple")
    assert isinstance(prior, SimpleTexturePrior)
    z0 = prior.initial_latent(2)
    assert z0.shape == (2, prior.latent_size)
    tex0 = prior.decode(z0)
    assert tex0.shape == (2, prior.resolution, prior.resolution, 3)
    assert torch.allclose(tex0[0, 0, 0], torch.tensor(SKIN_TONE), atol=1e-5)  # uniform skin tone
    assert float(prior.regulariser(z0)) == 0.0
    z = torch.randn(2, prior.latent_size, requires_grad=True)
    tex = prior.decode(z)
    assert float(tex.detach().min()) > 0.0 and float(tex.detach().max()) < 1.0
    assert torch.allclose(tex, tex.flip(2), atol=1e-6)  # mirrored across u = 0.5
    assert not torch.allclose(tex[0], tex[1])
    (tex.mean() + prior.regulariser(z)).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="latent must be"):
        prior.decode(torch.zeros(1, 7))


def test_prior_registry_errors() -> None:
    with pytest.raises(TexturePriorError, match="unknown texture prior"):
        load_texture_prior("nope")


def test_fit_config_round_trip_and_validation() -> None:
    config = FitConfig(full_steps=7, identity_weight=0.5)
    assert FitConfig.from_dict(config.to_dict()) == config
    assert [name for name, _ in FitConfig(detail_steps=0).stages] == ["rigid", "shape", "full"]
    with pytest.raises(ConfigError, match="unknown"):
        FitConfig.from_dict({"no_such_field": 1})
    with pytest.raises(ConfigError, match=r"lr_texture: expected a value in 0.0..1.0, got -1.0"):
        FitConfig(lr_texture=-1.0)
    with pytest.raises(ConfigError, match="device"):
        FitConfig(device="tpu")


def test_axis_angle_round_trip() -> None:
    for vec in ([0.3, -0.2, 0.1], [0.0, 0.0, 0.0], [0.0, 3.1, 0.0]):
        m = axis_angle_to_matrix(torch.tensor([vec], dtype=torch.float64))[0].numpy()
        assert np.allclose(matrix_to_axis_angle(m), vec, atol=1e-6)


def test_adam_matches_torch() -> None:
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(5))
    b = torch.nn.Parameter(a.detach().clone())
    ref, ours = torch.optim.Adam([a], lr=0.05), Adam([{"params": [b], "lr": 0.05}])
    for _ in range(10):
        for p, opt in ((a, ref), (b, ours)):
            opt.zero_grad()
            ((p - 1) ** 2 * torch.arange(5.0)).sum().backward()
            opt.step()
    assert torch.allclose(a, b, atol=1e-6)


def test_lowpass_gradient_keeps_the_value_and_blurs_the_gradient() -> None:
    from ganfit_core.fitting.losses import lowpass_gradient

    image = torch.rand(1, 21, 21, 3, requires_grad=True)
    out = lowpass_gradient(image, 2.0)
    torch.testing.assert_close(out, image)
    weight = torch.zeros(1, 21, 21, 3)
    weight[0, 10, 10] = 1.0  # the gradient of one pixel...
    (out * weight).sum().backward()
    grad = image.grad[0, ..., 0]
    assert float(grad.sum()) == pytest.approx(1.0, abs=1e-5)  # ...spread over its neighbourhood
    assert float(grad[10, 10]) < 0.1 and float(grad[10, 13]) > 0.01 and float(grad[0, 0]) < 1e-6
    plain = torch.rand(1, 5, 5, 3, requires_grad=True)
    assert lowpass_gradient(plain, 0.0) is plain
