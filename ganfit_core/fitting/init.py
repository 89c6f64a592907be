"""The fit's starting point: camera from the photo's assumed field of view, closed-form head pose."""

from __future__ import annotations

import math

import numpy as np
import torch

from ganfit_core.fitting.config import FitConfig
from ganfit_core.fitting.context import FitContext
from ganfit_core.fitting.params import FaceParameters, matrix_to_axis_angle
from ganfit_core.fitting.types import FitTarget
from ganfit_core.render.camera import FRONTAL_ROTATION

__all__ = ["initial_parameters", "pose_from_landmarks"]


def initial_parameters(target: FitTarget, config: FitConfig, ctx: FitContext) -> FaceParameters:
    """Camera guess from the photo's assumed field of view; depth and offset from the landmarks."""
    device = ctx.device
    linear = target.crop_to_photo[:2, :2]
    px_per_crop = math.sqrt(abs(float(np.linalg.det(linear)))) or 1.0
    if target.focal_hint is not None:
        focal0 = float(target.focal_hint)
        principal = np.array([target.size / 2.0, target.size / 2.0])
    else:
        photo_w, photo_h = target.photo_size
        focal_photo = 0.5 * max(photo_w, photo_h) / math.tan(math.radians(config.initial_fov_deg) / 2.0)
        focal0 = focal_photo / px_per_crop
        centre = np.array([photo_w / 2.0, photo_h / 2.0, 1.0])
        principal = (np.linalg.inv(target.crop_to_photo) @ centre)[:2]
    rotation, translation0, depth0 = pose_from_landmarks(ctx.model, target.landmarks, focal0, principal)
    latent = ctx.prior.initial_latent(1).to(device)
    detail = config.detail_resolution if config.detail_steps > 0 else 0
    as_t = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32, device=device)  # noqa: E731
    return FaceParameters(
        batch=1, num_identity=config.num_identity, num_expression=ctx.model.num_expression,
        texture_latent=latent,
        focal0=as_t([focal0]), depth0=as_t([depth0]), principal=as_t(principal[None]),
        translation0=as_t(translation0[None]), detail_resolution=detail, rotation0=as_t(rotation[None]),
    )


def pose_from_landmarks(model: torch.nn.Module, landmarks: np.ndarray, focal: float,
                        principal: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Closed-form start pose: a weak-perspective (scaled orthographic) fit of the mean face's landmarks.

    Solves ``landmarks ~ P @ (X, Y, Z, 1)`` (least squares, P 2x4), orthonormalises P's rows into a
    rotation (SVD), and reads the depth from the scale.

    Args:
        model: the morphable model (its mean face and landmark vertices).
        landmarks: (68, 2) target landmarks, px.
        focal: focal length, px. principal: (2,) principal point, px.

    Returns: (axis-angle relative to FRONTAL_ROTATION (3,) rad, image-plane offset (2,) px, depth mm).
    """
    idx = model.default_landmark_vertices()
    points = model.mean[idx].detach().cpu().double().numpy()  # (68, 3) mm
    lm = np.asarray(landmarks).astype(np.float64)
    design = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    proj, *_ = np.linalg.lstsq(design, lm, rcond=None)  # (4, 2)
    rows = proj[:3].T  # (2, 3)
    scale = float(np.linalg.norm(rows, axis=1).mean())
    u, _, vt = np.linalg.svd(rows, full_matrices=False)
    r12 = u @ vt  # closest matrix with orthonormal rows
    cam_rotation = np.stack([r12[0], r12[1], np.cross(r12[0], r12[1])])
    relative = FRONTAL_ROTATION.double().numpy().T @ cam_rotation
    rotvec = matrix_to_axis_angle(relative)
    if np.linalg.norm(rotvec) > math.radians(80):  # implausible (e.g. degenerate landmarks): start frontal
        rotvec = np.zeros(3)
    depth = focal / max(scale, 1e-6)
    return rotvec, proj[3] - principal, depth
