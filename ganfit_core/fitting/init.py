"""The fit's starting point: the camera (focal length) and head pose, before any stage runs.

Focal length, in order:

1. ``target.focal_hint`` (a focal length from the photo's EXIF, or a known one for synthetic data):
   used as given (``focal_source`` ``"exif"`` / ``"given"``);
2. ``config.focal_hypotheses`` > 1: :func:`ganfit_core.fitting.camera_search.search_camera` solves
   the landmark fit from every (focal, start rotation) pair (fields of view over
   ``fov_min_deg..fov_max_deg`` across the photo's longer side; the closed-form rotation and pure
   yaws up to 90 degrees) and keeps the best (``"search"``);
3. else the assumed ``config.initial_fov_deg`` (``"assumed"``); with ``focal_hypotheses`` = 1 the
   start rotations are still searched at that focal length, with 0 only the closed-form pose is used.

With a focal length given (1.) the start rotations are searched at it.

Later stages refine the focal length around this start (``lr_focal``, ``focal_reg_weight``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ganfit_core.fitting.config import FitConfig
from ganfit_core.fitting.context import FitContext
from ganfit_core.fitting.expression_prior import ExpressionPrior
from ganfit_core.fitting.params import FaceParameters
from ganfit_core.fitting.types import FitTarget
from ganfit_core.model.layout import CONTOUR_LANDMARKS, JAW_CENTRES, NUM_LANDMARKS

__all__ = ["initial_parameters", "initial_state", "pose_from_landmarks", "StartInfo", "YAW_STARTS_DEG"]

#: Pure-yaw start rotations tried by the hypothesis search besides the closed-form one (degrees).
YAW_STARTS_DEG: tuple[float, ...] = (-90.0, -60.0, -30.0, 0.0, 30.0, 60.0, 90.0)


@dataclass(frozen=True)
class StartInfo:
    """How the fit's camera was started (one per photo).

    Attributes:
        focal_source: ``"exif"``, ``"given"`` (``FitTarget.focal_hint`` set by the caller),
            ``"search"`` (best of the focal hypotheses) or ``"assumed"`` (``initial_fov_deg``).
        focal: the start focal length, crop px.
        hypotheses: how many (focal, rotation) hypotheses were scored (0 without a search).
    """

    focal_source: str
    focal: float
    hypotheses: int = 0


@dataclass(frozen=True)
class _ViewStart:
    """One photo's start: camera, pose and (after a search) landmark-fitted shape."""

    focal: float
    principal: np.ndarray  # (2,) crop px
    rotation: np.ndarray  # (3,) axis-angle rad, relative to FRONTAL_ROTATION
    translation_xy: np.ndarray  # (2,) px
    depth: float  # mm
    identity: np.ndarray | None  # (K,) from the search, or None
    expression: np.ndarray | None  # (E,) from the search, or None
    info: StartInfo


def _photo_px_per_crop_px(target: FitTarget) -> float:
    linear = target.crop_to_photo[:2, :2]
    return math.sqrt(abs(float(np.linalg.det(linear)))) or 1.0


def _view_start(target: FitTarget, config: FitConfig, ctx: FitContext, prior: ExpressionPrior) -> _ViewStart:
    """The start of one photo (see the module docstring)."""
    px_per_crop = _photo_px_per_crop_px(target)
    photo_w, photo_h = target.photo_size
    centre = np.array([photo_w / 2.0, photo_h / 2.0, 1.0])
    principal = (np.linalg.inv(target.crop_to_photo) @ centre)[:2]  # the photo's centre, crop px
    focal_assumed = 0.5 * max(photo_w, photo_h) / math.tan(math.radians(config.initial_fov_deg) / 2.0)
    focal_assumed /= px_per_crop
    if target.focal_hint is None and config.focal_hypotheses <= 0:
        rotation, translation0, depth0 = pose_from_landmarks(ctx.model, target.landmarks, focal_assumed,
                                                             principal)
        return _ViewStart(focal_assumed, principal, np.asarray(rotation), np.asarray(translation0),
                          float(depth0), None, None, StartInfo("assumed", focal_assumed, 0))
    if target.focal_hint is not None:
        focals = np.array([float(target.focal_hint)])
        source = target.focal_hint_source
    else:
        from ganfit_core.fitting.camera_search import focal_candidates

        side = max(photo_w, photo_h) / px_per_crop
        fov_range = (config.fov_min_deg, config.fov_max_deg)
        focals = (np.array([focal_assumed]) if config.focal_hypotheses == 1 else
                  focal_candidates(side, fov_range, config.focal_hypotheses))
        source = "search" if config.focal_hypotheses > 1 else "assumed"
    start = _search(target, config, ctx, principal, focals, focal_assumed, prior)
    return _ViewStart(start.focal, principal, np.asarray(start.rotation), np.asarray(start.translation_xy),
                      float(start.depth), np.asarray(start.identity), np.asarray(start.expression),
                      StartInfo(source, start.focal, len(start.scores)))


def initial_state(target: FitTarget | Sequence[FitTarget], config: FitConfig,
                  ctx: FitContext) -> tuple[FaceParameters, tuple[StartInfo, ...]]:
    """Start parameters of a fit and how each photo's camera was chosen (see the module docstring).

    A sequence of N targets (photos of one person) gives N views with a shared identity and texture
    (``FaceParameters(shared_views=True)``), each view starting from its own camera and pose; the
    shared identity starts at the mean of the views' searched identities.
    """
    device = ctx.device
    views = [target] if isinstance(target, FitTarget) else list(target)
    model = ctx.model
    prior = ExpressionPrior.from_names(model.expression_names, bounds=config.expression_bounds,
                                       fit_gaze=bool(config.fit_gaze), basis=model.expression_basis)
    starts = [_view_start(view, config, ctx, prior) for view in views]
    stack = lambda name: np.stack([np.asarray(getattr(s, name), np.float64) for s in starts])  # noqa: E731
    latent = ctx.prior.initial_latent(1).to(device)
    detail = config.detail_resolution if config.detail_steps > 0 else 0
    as_t = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32, device=device)  # noqa: E731
    params = FaceParameters(
        batch=len(views), num_identity=config.num_identity, num_expression=model.num_expression,
        texture_latent=latent,
        focal0=as_t(stack("focal")), depth0=as_t(stack("depth")), principal=as_t(stack("principal")),
        translation0=as_t(stack("translation_xy")), detail_resolution=detail,
        rotation0=as_t(stack("rotation")), shared_views=len(views) > 1, expression_prior=prior,
    )
    searched = [s for s in starts if s.identity is not None]
    if searched:
        with torch.no_grad():
            identity = np.mean([s.identity for s in searched], axis=0)
            params.identity.copy_(as_t(identity).expand_as(params.identity))
            for i, s in enumerate(starts):
                if s.expression is not None:
                    params.expression[i].copy_(as_t(s.expression))
            params.project_constraints()
    return params, tuple(s.info for s in starts)


def initial_parameters(target: FitTarget | Sequence[FitTarget], config: FitConfig,
                       ctx: FitContext) -> FaceParameters:
    """The start parameters of :func:`initial_state` (without the camera records)."""
    return initial_state(target, config, ctx)[0]


def _search(target: FitTarget, config: FitConfig, ctx: FitContext, principal: np.ndarray,
            focals: np.ndarray, focal_prior: float, prior: ExpressionPrior):  # noqa: ANN202
    from ganfit_core.fitting.camera_search import SearchSettings, search_camera
    from ganfit_core.fitting.objective import LANDMARK_SCALE

    weights = torch.ones(NUM_LANDMARKS, device=ctx.device)
    weights[CONTOUR_LANDMARKS] = config.contour_weight
    steps = config.search_steps if config.rigid_steps + config.shape_steps > 0 else 1
    settings = SearchSettings(
        rigid_steps=steps, shape_steps=steps if config.shape_steps > 0 else 0,
        lr_rotation=config.lr_rotation, lr_translation=config.lr_translation, lr_depth=config.lr_depth,
        lr_identity=config.lr_identity, lr_expression=config.lr_expression,
        identity_reg=config.identity_reg_weight, expression_l1=config.expression_l1_weight,
        expression_symmetry=config.expression_symmetry_weight, focal_prior=config.focal_prior_weight,
        landmark_scale=config.landmark_weight * LANDMARK_SCALE, sliding_window=config.sliding_window,
        robust_scale=config.landmark_robust_scale)
    landmarks = torch.as_tensor(np.asarray(target.landmarks), dtype=torch.float32, device=ctx.device)
    return search_camera(ctx.sparse, landmarks, weights, principal.tolist(), focals,
                         num_identity=config.num_identity, jaw_centres=JAW_CENTRES, yaws_deg=YAW_STARTS_DEG,
                         focal_prior_px=focal_prior, expression_prior=prior, settings=settings,
                         **_dense_inputs(target, config, ctx))


def _dense_inputs(target: FitTarget, config: FitConfig, ctx: FitContext) -> dict:
    """The dense landmark arguments of ``search_camera`` (empty without a dense term)."""
    if ctx.dense is None or target.dense_landmarks is None or config.dense_weight <= 0:
        return {}
    dense = torch.as_tensor(target.dense_landmarks[:, :2], dtype=torch.float32, device=ctx.device)
    return {"dense_model": ctx.dense, "dense_target": dense, "dense_weights": ctx.dense_weights,
            "dense_weight": config.dense_weight}


def pose_from_landmarks(model: torch.nn.Module, landmarks: np.ndarray, focal: float,
                        principal: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Closed-form start pose: a weak-perspective (scaled orthographic) fit of the mean face's landmarks.

    See :func:`ganfit_core.fitting.camera_search.closed_form_pose` (valid at any yaw). Starts more
    than 120 degrees from frontal (degenerate landmarks) fall back to frontal.

    Args:
        model: the morphable model (its mean face and landmark vertices).
        landmarks: (68, 2) target landmarks, px.
        focal: focal length, px. principal: (2,) principal point, px.

    Returns: (axis-angle relative to FRONTAL_ROTATION (3,) rad, image-plane offset (2,) px, depth mm).
    """
    from ganfit_core.fitting.camera_search import closed_form_pose

    idx = model.default_landmark_vertices()
    points = model.mean[idx].detach().cpu().double().numpy()  # (68, 3) mm
    rotvec, origin, scale = closed_form_pose(points, np.asarray(landmarks).astype(np.float64))
    if np.linalg.norm(rotvec) > math.radians(120):
        rotvec = np.zeros(3)
    depth = focal / max(scale, 1e-6)
    return rotvec, origin - principal, depth
