"""The expression prior: bounds, gaze out of the fit, sparsity and left/right coupling."""

from __future__ import annotations

import pytest
import torch

from ganfit_core.fitting.expression_prior import REAL_FACE_UPPER, ExpressionPrior

NAMES = ["browDown_L", "browDown_R", "cheekPuff_L", "cheekPuff_R", "eyeLookIn_L", "eyeLookIn_R",
         "jawOpen", "mouthStretch_L", "mouthStretch_R"]


def test_bounds_and_gaze():
    prior = ExpressionPrior.from_names(NAMES)
    upper = dict(zip(NAMES, prior.upper.tolist(), strict=True))
    assert upper["jawOpen"] == 1.0 and upper["browDown_L"] == 1.0
    assert upper["cheekPuff_L"] == pytest.approx(REAL_FACE_UPPER["cheekPuff"])
    assert upper["mouthStretch_R"] == pytest.approx(REAL_FACE_UPPER["mouthStretch"])
    assert upper["eyeLookIn_L"] == upper["eyeLookIn_R"] == 0.0
    free_gaze = ExpressionPrior.from_names(NAMES, fit_gaze=True)
    assert free_gaze.upper[NAMES.index("eyeLookIn_L")] == 1.0
    full = ExpressionPrior.from_names(NAMES, bounds="full", fit_gaze=True)
    assert full.upper.tolist() == [1.0] * len(NAMES)
    with pytest.raises(ValueError, match="bounds"):
        ExpressionPrior.from_names(NAMES, bounds="loose")


def test_projection_clamps_in_place():
    prior = ExpressionPrior.from_names(NAMES)
    weights = torch.tensor([[1.5, -0.2, 1.0, 0.1, 0.9, 0.0, 0.7, 0.8, 0.2]])
    out = prior.project_(weights)
    assert out is weights
    expected = [1.0, 0.0, REAL_FACE_UPPER["cheekPuff"], 0.1, 0.0, 0.0, 0.7,
                REAL_FACE_UPPER["mouthStretch"], 0.2]
    assert weights[0].tolist() == pytest.approx(expected)


def test_pairs_and_asymmetry():
    prior = ExpressionPrior.from_names(NAMES)
    assert prior.pairs.tolist() == [[0, 1], [2, 3], [4, 5], [7, 8]]
    symmetric = torch.tensor([[0.3, 0.3, 0.1, 0.1, 0.0, 0.0, 0.5, 0.2, 0.2]])
    assert float(prior.asymmetry(symmetric)[0]) == 0.0
    lopsided = symmetric.clone()
    lopsided[0, 7] = 0.6  # mouthStretch_L 0.6 vs _R 0.2
    assert float(prior.asymmetry(lopsided)[0]) == pytest.approx(0.16)


def test_l1_scales_by_displacement_and_has_gradient():
    basis = torch.zeros(len(NAMES), 4, 3)
    basis[:, :, 0] = torch.arange(1, len(NAMES) + 1, dtype=torch.float32)[:, None]  # RMS = index + 1
    prior = ExpressionPrior.from_names(NAMES, basis=basis)
    mean_rms = (torch.arange(1, len(NAMES) + 1).float()).mean()
    assert prior.l1_scale[6] == pytest.approx(7 / mean_rms)
    weights = torch.full((2, len(NAMES)), 0.5, requires_grad=True)
    value = prior.l1(weights)
    assert value.shape == (2,)
    assert float(value[0].detach()) == pytest.approx(0.5 * float(prior.l1_scale.sum()))
    value.sum().backward()
    assert torch.allclose(weights.grad[0], prior.l1_scale)
    with pytest.raises(ValueError, match="basis"):
        ExpressionPrior.from_names(NAMES, basis=torch.zeros(3, 4, 3))


def test_ict_names_pairs(ict_model_path):
    from ganfit_core.model.morphable import load_morphable_model

    model = load_morphable_model("face")
    prior = ExpressionPrior.from_names(model.expression_names, basis=model.expression_basis)
    assert len(prior.pairs) == 20  # 40 of the 53 ICT shapes come in _L/_R pairs
    names = model.expression_names
    assert all(prior.upper[i] == 0 for i, n in enumerate(names) if n.startswith("eyeLook"))
    assert int((prior.upper == 1.0).sum()) >= 15
