"""The fit with dense landmarks: exact projections of the correspondence points of a synthetic face."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ganfit_core.fitting.config import FitConfig
from ganfit_core.fitting.engine import build_context, fit, run_to_end
from ganfit_core.synthetic import make_synthetic_face, procrustes_error_mm

SIZE = 128
CONFIG = FitConfig(render_size=SIZE, device="cpu", renderer="torch", texture_prior="simple",
                   rigid_steps=20, shape_steps=40, full_steps=0, detail_steps=0, identity_weight=0.0,
                   content_weight=0.0, focal_hypotheses=3, search_steps=20, identity_reg_weight=0.003)


@pytest.fixture(scope="module")
def context(ict_model_path):
    torch.set_num_threads(2)
    return build_context(CONFIG)


def _dense_target(face, context):  # noqa: ANN001, ANN202
    """The synthetic face's target with its 468 dense points: exact projections (crop = photo)."""
    from ganfit_core.render.camera import FRONTAL_ROTATION, axis_angle_to_matrix

    points = context.dense(torch.from_numpy(face.identity)[None], torch.from_numpy(face.expression)[None])
    rotation = FRONTAL_ROTATION @ axis_angle_to_matrix(torch.from_numpy(face.rotation)[None])
    cam = points @ rotation.transpose(1, 2) + torch.from_numpy(face.translation)[None, None]
    xy = cam[0, :, :2] / cam[0, :, 2:] * face.focal + SIZE / 2
    dense = torch.cat([xy, cam[0, :, 2:] - cam[0, :, 2:].mean()], dim=1).numpy()
    return dataclasses.replace(face.target, dense_landmarks=dense.astype(np.float32))


def test_dense_term_runs_and_helps(context) -> None:  # noqa: ANN001
    assert context.dense is not None and context.dense.num_points == 468
    face = make_synthetic_face(4, size=SIZE, model=context.model, renderer=context.renderer,
                               identity_scale=1.5)
    target = _dense_target(face, context)
    events = list(fit(target, CONFIG, context=context))
    dense = [e.losses["dense_landmark"] for e in events[:-1] if "dense_landmark" in e.losses]
    assert len(dense) == CONFIG.rigid_steps + CONFIG.shape_steps
    result = events[-1].result
    assert result.camera.focal_source == "search"
    without = run_to_end(fit(face.target, CONFIG, context=context))  # 68 points only
    n = 6706
    with_error = procrustes_error_mm(result.vertices[:n], face.vertices[:n])
    without_error = procrustes_error_mm(without.vertices[:n], face.vertices[:n])
    assert with_error < without_error, (with_error, without_error)


def test_no_dense_points_no_term(context) -> None:  # noqa: ANN001
    face = make_synthetic_face(5, size=SIZE, model=context.model, renderer=context.renderer)
    events = list(fit(face.target, CONFIG.replace(shape_steps=5, rigid_steps=5), context=context))
    assert all("dense_landmark" not in e.losses for e in events)
