"""Photo -> UV unwrapping: rasteriser, visibility, texture recovery, shading removal, mirroring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganfit_core.texture.raster import rasterize
from ganfit_core.texture.unwrap import (
    fill_outside,
    mirror_fill,
    remove_shading,
    unwrap_photo,
    uv_layout,
)


def test_rasterize_square_covers_every_pixel_once() -> None:
    points = np.array([[0.0, 0.0], [8.0, 0.0], [8.0, 8.0], [0.0, 8.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    out = rasterize(points, faces, 8, 8)
    assert out.mask.all()
    assert set(np.unique(out.triangle_id)) == {0, 1}
    np.testing.assert_allclose(out.barycentric.sum(-1), 1.0, atol=1e-9)


def test_rasterize_keeps_the_nearest_triangle() -> None:
    points = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]] * 2)
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    depth = np.array([5.0, 5.0, 5.0, 2.0, 2.0, 2.0])
    out = rasterize(points, faces, 6, 6, depth=depth)
    assert (out.triangle_id[out.mask] == 1).all()
    np.testing.assert_allclose(out.depth[out.mask], 2.0)


@pytest.fixture(scope="module")
def face_model():
    from ganfit_core.model.morphable import load_morphable_model

    return load_morphable_model("face")


@pytest.fixture(scope="module")
def layout(face_model):
    return uv_layout(face_model.faces.numpy(), face_model.uvs.numpy(), face_model.uv_faces.numpy(), 64)


def _render(face_model, texture: np.ndarray, yaw: float, sh: torch.Tensor, size: int = 160):
    """Render the mean face (yawed) with the project's torch renderer; returns image and camera."""
    from ganfit_core.render import FRONTAL_ROTATION, PinholeCamera, axis_angle_to_matrix, make_renderer

    rot = axis_angle_to_matrix(torch.tensor([[0.0, yaw, 0.0]])) @ FRONTAL_ROTATION
    verts = face_model.mean.unsqueeze(0) @ rot.transpose(1, 2) + torch.tensor([0.0, 20.0, 900.0])
    focal = 0.55 * size * 900.0 / 200.0
    camera = PinholeCamera(torch.tensor([focal]), torch.tensor([[size / 2, size / 2]]), size, size)
    out = make_renderer("torch").render(
        verts, face_model.faces, face_model.uvs, face_model.uv_faces,
        torch.from_numpy(texture).float().unsqueeze(0), camera, sh,
    )
    return out.image[0].numpy().astype(np.float64), verts[0].numpy().astype(np.float64), focal, size


def _known_texture(resolution: int) -> np.ndarray:
    yy, xx = np.mgrid[0:resolution, 0:resolution] / resolution
    red, green = 0.5 + 0.3 * np.sin(5 * xx), 0.5 + 0.3 * np.cos(4 * yy)
    return np.stack([red, green, 0.45 + 0.2 * np.sin(3 * (xx + yy))], -1)


def test_unwrap_recovers_a_known_texture_on_visible_texels(face_model, layout) -> None:
    from ganfit_core.render import ambient_sh

    texture = _known_texture(64)
    image, verts, focal, size = _render(face_model, texture, 0.35, ambient_sh(1, 1.0))
    got = unwrap_photo(image, verts, layout, focal, (size / 2, size / 2))
    seen = got.weight > 0.5
    assert seen.sum() > 0.25 * layout.mask.sum()
    err = np.abs(got.colour - texture)[seen]
    assert err.mean() < 0.02, err.mean()
    # Turned towards the subject's left (+yaw), the left half of the UV map (u > 0.5) faces the camera.
    left, right = got.weight[:, 40:].sum(), got.weight[:, :24].sum()
    assert left > 1.5 * right
    # The mirror fill then completes the poorly seen side from the well seen one.
    filled, weight = mirror_fill(got.colour, got.weight)
    assert (weight >= got.weight).all()
    hidden = layout.mask & (got.weight == 0) & (got.weight[:, ::-1] > 0.5)
    assert hidden.any()
    mirror_err = np.abs(filled[hidden] - texture[:, ::-1][hidden])
    assert np.median(mirror_err) < 0.01 and mirror_err.mean() < 0.03, mirror_err.mean()


def test_remove_shading_flattens_sh_lighting(face_model, layout) -> None:
    from ganfit_core.render import ambient_sh

    albedo = np.broadcast_to(np.array([0.7, 0.5, 0.4]), (64, 64, 3)).copy()
    sh = ambient_sh(1, 0.8)
    sh[0, 2] = 0.35  # light from the side
    sh[0, 1] = -0.25  # and from above (camera y points down)
    image, verts, focal, size = _render(face_model, albedo, 0.0, sh)
    got = unwrap_photo(image, verts, layout, focal, (size / 2, size / 2))
    seen = got.weight > 0.5
    estimate, shading = remove_shading(got)
    spread_before = got.colour[seen].std(0) / got.colour[seen].mean(0)
    spread_after = estimate[seen].std(0) / estimate[seen].mean(0)
    assert (spread_after < 0.35 * spread_before).all(), (spread_before, spread_after)
    assert shading.shape == (64, 64, 3)


def test_fill_outside_copies_chart_texels(layout) -> None:
    tex = np.where(layout.mask[..., None], 0.5, 0.0) * np.ones(3)
    filled = fill_outside(tex, layout)
    np.testing.assert_allclose(filled, 0.5)
