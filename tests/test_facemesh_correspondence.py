"""FaceMesh → ICT dense correspondence: geometry helpers, and the built asset on held-out renders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from ganfit_core.model import facemesh_correspondence as fc


def test_closest_point_on_triangles_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(3, 300, 3))
    p = rng.normal(size=(300, 3)) * 2
    bary = fc._closest_on_triangles(p, a, b, c)
    assert bary.min() >= 0 and np.allclose(bary.sum(axis=1), 1)
    found = np.linalg.norm(bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c - p, axis=1)
    grid = [(u, v) for u in np.linspace(0, 1, 41) for v in np.linspace(0, 1 - u, max(2, int(41 * (1 - u))))]
    brute = np.min([np.linalg.norm((1 - u - v) * a + u * b + v * c - p, axis=1) for u, v in grid], axis=0)
    assert (found <= brute + 1e-9).all() and (brute - found).max() < 0.1


def test_closest_points_on_mesh_recovers_surface_points() -> None:
    # a flat 10 x 10 grid of squares, each split in two triangles
    xs, ys = np.meshgrid(np.arange(11.0), np.arange(11.0))
    vertices = np.stack([xs.ravel(), ys.ravel(), np.zeros(121)], axis=1)
    idx = np.arange(121).reshape(11, 11)
    faces = np.concatenate([
        np.stack([idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel()], axis=1),
        np.stack([idx[1:, 1:].ravel(), idx[1:, :-1].ravel(), idx[:-1, 1:].ravel()], axis=1),
    ])
    points = np.array([[2.3, 4.6, 1.5], [9.9, 0.2, -0.7], [-1.0, 5.5, 0.0]])
    triangles, bary = fc.closest_points_on_mesh(points, vertices, faces)
    surface = (vertices[faces[triangles]] * bary[:, :, None]).sum(axis=1)
    assert np.allclose(surface, [[2.3, 4.6, 0.0], [9.9, 0.2, 0.0], [0.0, 5.5, 0.0]])


def test_occlusion_test_drops_points_in_front_of_the_predicted_depth() -> None:
    rng = np.random.default_rng(1)
    fm_z = rng.uniform(-30, 30, 200)  # FaceMesh relative depth, px
    depth = 500 + 1.3 * fm_z + rng.normal(0, 0.5, 200)  # render depth, mm
    depth[:20] -= 25  # the visible surface is 25 mm in front of where these points should be
    keep = fc._not_occluded(fm_z, depth, np.ones(200, bool))
    assert not keep[:20].any() and keep[20:].all()


def test_points_on_a_batch_of_meshes() -> None:
    corr = fc.FaceMeshCorrespondence(
        triangles=np.zeros(468, np.int64), barycentric=np.tile([0.2, 0.3, 0.5], (468, 1)).astype(np.float32),
        spread_mm=np.ones(468, np.float32), num_samples=np.ones(468, np.int64),
    )
    vertices = torch.tensor([[[0.0, 0, 0], [10, 0, 0], [0, 10, 0]]]).repeat(2, 1, 1)
    vertices[1] += 1
    points = corr.points(vertices, torch.tensor([[0, 1, 2]]))
    assert points.shape == (2, 468, 3)
    assert torch.allclose(points[0, 0], torch.tensor([3.0, 5.0, 0.0]))
    assert torch.allclose(points[1, 0], torch.tensor([4.0, 6.0, 1.0]))


@pytest.fixture(scope="module")
def correspondence(shared_dir: Path) -> Iterator[fc.FaceMeshCorrespondence]:
    """The built asset (built offline from the shared sources on first use, ~30 s)."""
    needed = [shared_dir / "mediapipe" / "face_landmark.tflite", shared_dir / "ict-facekit",
              shared_dir / "london-faces"]
    if not all(p.exists() for p in needed):
        pytest.skip(f"MediaPipe, ICT-FaceKit or london-faces sources missing under {shared_dir}")
    from ganfit_core.assets import resolve

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANFIT_OFFLINE", "1")
        for name in ("ict_face_model", "mediapipe_face_landmark", "texture_pca"):
            resolve(name, source_dir=shared_dir)
        torch.set_num_threads(min(2, torch.get_num_threads()))
        yield fc.load_facemesh_correspondence(resolve(fc.ASSET_NAME, source_dir=shared_dir))


def test_asset_is_a_valid_surface_map(correspondence: fc.FaceMeshCorrespondence) -> None:
    from ganfit_core.model.morphable import load_morphable_model

    model = load_morphable_model(fc.REGION)
    assert correspondence.triangles.shape == (468,) and correspondence.barycentric.shape == (468, 3)
    assert 0 <= correspondence.triangles.min() and correspondence.triangles.max() < model.faces.shape[0]
    bary = correspondence.barycentric
    assert bary.min() >= 0 and np.allclose(bary.sum(1), 1, atol=1e-4)
    spread = correspondence.spread_mm
    eye_corners, contour = [33, 133, 362, 263], [234, 454, 127, 356]
    assert spread[eye_corners].max() < 4.0, spread[eye_corners]
    assert spread[contour].min() > spread[eye_corners].max()  # contour points slide, eye corners do not
    w = correspondence.weights()
    assert w.shape == (468,) and 0 < w.min() and w.max() <= 1
    # anatomy on the mean face (ICT: +x subject's left, +y up, +z out of the face)
    mean = correspondence.points(model.mean, model.faces).numpy()
    assert mean[1, 2] > mean[[33, 263, 61, 291], 2].max()  # nose tip in front of eyes and mouth
    assert mean[33, 0] < mean[133, 0] < mean[362, 0] < mean[263, 0]  # image-left to image-right eyes
    assert mean[10, 1] > mean[1, 1] > mean[13, 1] > mean[152, 1]  # forehead, nose tip, lips, chin


def test_projected_points_match_facemesh_on_held_out_renders(
    correspondence: fc.FaceMeshCorrespondence,
) -> None:
    from ganfit_core.face.facemesh import dense_landmarks, load_facemesh_net
    from ganfit_core.model.morphable import load_morphable_model
    from ganfit_core.render.renderer import make_renderer
    from ganfit_core.texture.pca import load_pca_prior

    model = load_morphable_model(fc.REGION)
    renderer, prior, net = make_renderer("torch", device="cpu"), load_pca_prior(), load_facemesh_net()
    generator = torch.Generator().manual_seed(fc.BUILD_SEED + 1)  # not one of the build's renders
    faces = model.faces.numpy()
    medians = []
    for _ in range(6):
        render = fc.render_face(model, renderer, prior, generator)
        detected = dense_landmarks(render.image, render.landmarks68, net=net).points
        points = correspondence.points(torch.from_numpy(render.vertices_cam), model.faces).numpy()
        size = render.image.shape[0]
        projected = points[:, :2] / points[:, 2:] * render.focal + size / 2
        # visible: the surface under the projection is (within 3 mm) the point itself
        triangles, _, _, depth = fc.sample_surface_points(render, np.c_[projected, np.zeros(468)], faces)
        visible = (triangles >= 0) & (depth > points[:, 2] - 3.0)
        assert visible.mean() > 0.6
        medians.append(float(np.median(np.linalg.norm(projected - detected[:, :2], axis=1)[visible])))
    # 256 px renders, faces ~110-170 px wide; measured medians 1.2-4.2 px
    assert np.median(medians) < 3.5 and max(medians) < 6.0, medians
