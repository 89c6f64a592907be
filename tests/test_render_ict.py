"""The torch renderer on the real ICT face region: front visible, back of the head culled."""

from __future__ import annotations

import pytest
import torch

from ganfit_core.render import (
    FRONTAL_ROTATION,
    PinholeCamera,
    ambient_sh,
    axis_angle_to_matrix,
    make_renderer,
)


@pytest.fixture(scope="module")
def face():
    from ganfit_core.assets import AssetError
    from ganfit_core.model.morphable import load_morphable_model

    try:
        model = load_morphable_model("face")
    except AssetError as error:  # pragma: no cover - depends on the machine's assets
        pytest.skip(f"ICT face model asset unavailable: {error}")
    with torch.no_grad():
        vertices = model(torch.zeros(1, model.num_identity), torch.zeros(1, model.num_expression))
    return model, vertices


def _render_view(model, vertices, yaw: float, size: int = 96):
    rotation = FRONTAL_ROTATION @ axis_angle_to_matrix(torch.tensor([[0.0, yaw, 0.0]]))[0]
    vertices_cam = vertices @ rotation.T + torch.tensor([0.0, -20.0, 700.0])
    camera = PinholeCamera(torch.tensor([2.0 * size]), torch.tensor([[size / 2, size / 2]]), size, size)
    renderer = make_renderer("torch")
    out = renderer.render(
        vertices_cam,
        model.faces,
        model.uvs,
        model.uv_faces,
        torch.full((1, 8, 8, 3), 0.5),
        camera,
        ambient_sh(1, 1.0),
        buffers=frozenset({"triangle_id", "normals"}),
    )
    return vertices_cam, out


def test_frontal_face_is_visible_and_faces_the_camera(face):
    model, vertices = face
    vertices_cam, out = _render_view(model, vertices, 0.0)
    covered = out.triangle_id[0] >= 0
    assert covered.float().mean() > 0.25  # the face fills a good part of the image
    assert covered[48, 48]  # the image centre (nose/cheeks) is covered
    ids = out.triangle_id[0][covered].unique()
    v = vertices_cam[0][model.faces[ids]]
    normal = torch.linalg.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    assert ((normal * v[:, 0]).sum(-1) < 0).all()
    # Nose tip (largest model z) is the nearest visible point: its pixel shows a nose triangle.
    assert (out.normals[0][covered][:, 2] < 0).float().mean() > 0.99


def test_back_of_the_head_is_culled(face):
    model, vertices = face
    _, front = _render_view(model, vertices, 0.0)
    _, back = _render_view(model, vertices, torch.pi)
    # Seen from behind, the open face shell shows its inside, which is culled (only ears etc. remain).
    assert back.mask.sum() < 0.15 * front.mask.sum()
