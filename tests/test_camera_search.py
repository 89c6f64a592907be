"""Camera hypotheses: focal length and head rotation recovered from exact landmarks of ICT faces."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganfit_core.fitting.camera_search import (
    SearchSettings,
    closed_form_pose,
    focal_candidates,
    rotation_candidates,
    search_camera,
)
from ganfit_core.render.camera import FRONTAL_ROTATION, PinholeCamera, axis_angle_to_matrix, project

JAW = (1, 3, 5, 7, 9, 11, 13, 15)
SIZE = 256


@pytest.fixture(scope="module")
def sparse(ict_model_path):
    from ganfit_core.model.morphable import load_morphable_model
    from ganfit_core.model.sparse import SparseLandmarkModel

    return SparseLandmarkModel(load_morphable_model("face"))


def _landmarks(sparse, yaw_deg: float, fov_deg: float, seed: int = 0) -> torch.Tensor:
    """(68, 2) exact projections (contour on the jaw centres) of a random ICT face at a known pose."""
    gen = torch.Generator().manual_seed(seed)
    identity = torch.randn(1, 100, generator=gen)
    verts = sparse(identity, torch.zeros(1, sparse.expression_basis.shape[0]))
    rows = list(range(68))
    rows[0:8] = [68 + j for j in JAW]
    rows[9:17] = [85 + j for j in JAW]
    rotation = FRONTAL_ROTATION @ axis_angle_to_matrix(torch.tensor([[0.1, math.radians(yaw_deg), 0.05]]))
    focal = 0.5 * SIZE / math.tan(math.radians(fov_deg) / 2)
    depth = focal * 150.0 / (0.45 * SIZE)  # a 15 cm wide face over 45 % of the image
    cam = verts[:, rows] @ rotation.transpose(1, 2) + torch.tensor([[5.0, -3.0, depth]])
    camera = PinholeCamera(torch.tensor([focal]), torch.tensor([[SIZE / 2, SIZE / 2]]), SIZE, SIZE)
    return project(cam, camera)[0].detach()


def _fov(focal: float) -> float:
    return math.degrees(2 * math.atan(0.5 * SIZE / focal))


def test_focal_candidates_span_the_range():
    focals = focal_candidates(SIZE, (10.0, 75.0), 6)
    fovs = [_fov(f) for f in focals]
    assert fovs[0] == pytest.approx(75.0) and fovs[-1] == pytest.approx(10.0)
    ratios = focals[1:] / focals[:-1]
    assert np.allclose(ratios, ratios[0])  # evenly spaced in log-focal


def test_rotation_candidates_drop_a_wild_closed_form():
    kept = rotation_candidates(np.array([0.0, 0.2, 0.0]), (-90.0, 90.0))
    assert kept.shape == (3, 3)
    dropped = rotation_candidates(np.array([0.0, math.radians(150), 0.0]), (-90.0, 90.0))
    assert dropped.shape == (2, 3)


@pytest.mark.parametrize(("fov", "yaw"), [(15.0, 10.0), (65.0, -20.0)])
def test_search_prefers_the_true_focal(sparse, fov, yaw):
    landmarks = _landmarks(sparse, yaw, fov)
    weights = torch.ones(68)
    start = search_camera(sparse, landmarks, weights, [SIZE / 2, SIZE / 2],
                          focal_candidates(SIZE, (10, 75), 6), num_identity=40, jaw_centres=JAW)
    # The candidates are ~1.5x apart in focal: the winner is the nearest or next-nearest one.
    assert abs(math.log(start.focal / (0.5 * SIZE / math.tan(math.radians(fov) / 2)))) < math.log(1.5) * 1.01
    assert math.degrees(start.rotation[1]) == pytest.approx(yaw, abs=8.0)
    assert np.isfinite(start.score) and start.score == pytest.approx(start.scores[start.index])


def test_profile_start(sparse):
    """At 88 degrees of yaw the search still finds the profile (the old start gave up beyond 80)."""
    landmarks = _landmarks(sparse, 88.0, 30.0, seed=1)
    start = search_camera(sparse, landmarks, torch.ones(68), [SIZE / 2, SIZE / 2],
                          focal_candidates(SIZE, (10, 75), 3), num_identity=20, jaw_centres=JAW,
                          settings=SearchSettings(shape_steps=20))
    assert math.degrees(start.rotation[1]) == pytest.approx(88.0, abs=10.0)


def test_closed_form_pose_is_exact_for_orthographic_points():
    rng = np.random.default_rng(0)
    points = rng.normal(0, 50, (30, 3))
    relative = axis_angle_to_matrix(torch.tensor([[0.2, 1.2, -0.1]])).double()[0].numpy()
    cam_rot = FRONTAL_ROTATION.double().numpy() @ relative
    image = 2.0 * points @ cam_rot[:2].T + np.array([100.0, 80.0])
    rotvec, origin, scale = closed_form_pose(points, image)
    assert scale == pytest.approx(2.0)
    assert np.allclose(origin, [100.0, 80.0])
    assert np.allclose(rotvec, [0.2, 1.2, -0.1], atol=1e-6)
