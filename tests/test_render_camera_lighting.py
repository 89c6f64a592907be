"""Camera, projection, rotations and SH lighting."""

from __future__ import annotations

import math

import pytest
import torch

from ganfit_core.render import (
    FRONTAL_ROTATION,
    PinholeCamera,
    ambient_sh,
    axis_angle_to_matrix,
    clip_space,
    project,
    sh_basis,
    sh_shading,
)


def test_project_matches_hand_computation():
    camera = PinholeCamera(
        torch.tensor([500.0, 250.0]), torch.tensor([[128.0, 100.0], [64.0, 64.0]]), 256, 200
    )
    points = torch.tensor(
        [[[10.0, -20.0, 400.0], [0.0, 0.0, 800.0]], [[30.0, 15.0, 600.0], [-5.0, 5.0, 50.0]]]
    )
    expected = torch.tensor(
        [
            [[128.0 + 500.0 * 10 / 400, 100.0 - 500.0 * 20 / 400], [128.0, 100.0]],
            [[64.0 + 250.0 * 30 / 600, 64.0 + 250.0 * 15 / 600], [64.0 - 25.0, 64.0 + 25.0]],
        ]
    )
    torch.testing.assert_close(project(points, camera), expected)


def test_camera_rejects_bad_shapes():
    with pytest.raises(ValueError, match="principal"):
        PinholeCamera(torch.tensor([500.0]), torch.tensor([128.0, 100.0]), 256, 200)
    camera = PinholeCamera(torch.tensor([500.0]), torch.tensor([[128.0, 100.0]]), 256, 200)
    with pytest.raises(ValueError, match="points_cam"):
        project(torch.zeros(2, 5, 3), camera)


def test_clip_space_maps_pixels_to_ndc():
    camera = PinholeCamera(torch.tensor([300.0]), torch.tensor([[60.0, 50.0]]), 120, 100)
    points = torch.tensor([[[10.0, -20.0, 400.0], [3.0, 4.0, 10.0], [0.0, 0.0, 1000.0]]])
    clip = clip_space(points, camera, near=10.0, far=1000.0)
    ndc = clip[..., :3] / clip[..., 3:]
    pixels = project(points, camera)
    torch.testing.assert_close(ndc[..., 0], 2 * pixels[..., 0] / 120 - 1)
    torch.testing.assert_close(ndc[..., 1], 2 * pixels[..., 1] / 100 - 1)
    torch.testing.assert_close(ndc[0, 1:, 2], torch.tensor([-1.0, 1.0]))


def test_axis_angle_known_rotations_and_zero():
    aa = torch.tensor([[0.0, 0.0, 0.0], [math.pi, 0.0, 0.0], [0.0, math.pi / 2, 0.0]], requires_grad=True)
    rot = axis_angle_to_matrix(aa)
    torch.testing.assert_close(rot[0], torch.eye(3))
    torch.testing.assert_close(rot[1], FRONTAL_ROTATION, atol=1e-6, rtol=0)
    torch.testing.assert_close(rot[2], torch.tensor([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]]), atol=1e-6, rtol=0)
    rot.sum().backward()
    assert torch.isfinite(aa.grad).all()


def test_axis_angle_is_orthonormal_and_gradcheck():
    aa = torch.randn(6, 3, dtype=torch.float64)
    rot = axis_angle_to_matrix(aa)
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(6, 3, 3))
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(6, dtype=torch.float64))
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (aa.requires_grad_(True),))
    tiny = (1e-6 * torch.randn(2, 3, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (tiny,))


def test_ambient_sh_is_constant():
    normals = torch.nn.functional.normalize(torch.randn(2, 50, 3), dim=-1)
    shading = sh_shading(normals, ambient_sh(2, 0.7))
    torch.testing.assert_close(shading, torch.full_like(shading, 0.7))


def test_sh_basis_lambertian_directional_light():
    # A light from direction d: coefficients = basis(d) * k reproduces (approximately) clamped cosine.
    # Exactness check instead: the basis is linear in the coefficients and band 1 is linear in n.
    n = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    basis = sh_basis(n)
    k1 = 2 * math.pi / math.sqrt(3) * math.sqrt(3) / math.sqrt(4 * math.pi)
    torch.testing.assert_close(basis[:, 1:4], torch.tensor([[0, 0, -k1], [-k1, 0, 0], [0, k1, 0]]))
    torch.testing.assert_close(basis[:, 0], torch.full((3,), math.pi / math.sqrt(4 * math.pi)))
