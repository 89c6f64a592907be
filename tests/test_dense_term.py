"""The dense landmark model and loss (a correspondence made up from ICT triangles)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganfit_core.fitting.dense_term import DenseLandmarkModel, dense_landmark_loss, point_weights


@pytest.fixture(scope="module")
def model(ict_model_path):
    from ganfit_core.model.morphable import load_morphable_model

    return load_morphable_model("face")


def test_points_match_the_full_model(model):
    rng = np.random.default_rng(0)
    triangles = rng.integers(0, model.faces.shape[0], 50)
    bary = rng.dirichlet(np.ones(3), 50)
    dense = DenseLandmarkModel(model, triangles, bary)
    assert dense.num_points == 50 and len(dense.vertex_index) <= 150
    identity = torch.randn(2, 60)
    expression = torch.rand(2, model.num_expression) * 0.3
    points = dense(identity, expression)
    full = model(identity, expression)
    tri = model.faces[torch.as_tensor(triangles)]
    expected = (full[:, tri] * torch.as_tensor(bary, dtype=torch.float32)[None, :, :, None]).sum(2)
    assert points.shape == (2, 50, 3)
    assert torch.allclose(points, expected, atol=1e-3)


def test_bad_barycentric_shape(model):
    with pytest.raises(ValueError, match="barycentric"):
        DenseLandmarkModel(model, np.array([0, 1]), np.ones((3, 3)) / 3)


def test_loss_is_per_face_and_weighted():
    target = torch.tensor([[[0.0, 0.0], [30.0, 40.0], [10.0, 10.0]]]).repeat(2, 1, 1)
    predicted = target.clone()
    predicted[1, 2] += torch.tensor([5.0, 0.0])  # only face 1, point 2 is off
    loss = dense_landmark_loss(predicted, target, torch.tensor([1.0, 1.0, 1.0]))
    assert loss.shape == (2,) and float(loss[0]) == 0.0
    assert float(loss[1]) == pytest.approx(25.0 / 3 / 2500.0)
    ignored = dense_landmark_loss(predicted, target, torch.tensor([1.0, 1.0, 0.0]))
    assert float(ignored[1]) == 0.0
    with pytest.raises(ValueError, match="equal shapes"):
        dense_landmark_loss(predicted[:, :2], target, torch.ones(3))


def test_point_weights_floor():
    w = point_weights(np.array([0.1, 1.0, 3.0]), floor_mm=1.5)
    assert w.tolist() == pytest.approx([1.0, 1.0, 0.25])
