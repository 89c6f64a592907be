"""Start the fit from the best of several camera hypotheses (focal length x head rotation).

Why: the focal length is not known for most photos (phone selfies ~60-75 degrees of field of
view, portrait lenses ~10-25), and a face fitted at the wrong focal length bends its identity to
absorb the perspective. One closed-form start also fails for profiles (beyond ~80 degrees of
yaw). So the landmark problem is solved from every pair of a focal candidate and a start rotation
at once, as one batch: a rigid phase (rotation, translation, depth; the focal fixed per
hypothesis), then a phase with identity and expression free (regularised as in the fit). Each
hypothesis is scored by its landmark loss plus the regularisers plus a mild log-focal prior; the
best one is returned as the fit's start. The batch costs little: it only moves the 102 landmark
and jawline vertices.

The landmark loss is the fit's (``ganfit_core.fit.losses``: mean squared distance normalised by
the face size squared, times ``landmark_scale``); contour landmarks slide along ICT's extended
jawline within ``sliding_window`` candidates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ganfit_core.render.camera import FRONTAL_ROTATION, PinholeCamera, axis_angle_to_matrix, project

__all__ = ["CameraStart", "SearchSettings", "search_camera", "focal_candidates", "rotation_candidates",
           "closed_form_pose"]


@dataclass(frozen=True)
class SearchSettings:
    """How hard :func:`search_camera` looks.

    Attributes:
        rigid_steps, shape_steps: Adam steps of the two phases.
        lr_rotation (rad), lr_translation (px), lr_depth (log), lr_identity (std), lr_expression.
        identity_reg: weight of ``||identity||^2``; expression_l1, expression_symmetry: weights
            of the expression prior's terms (``ExpressionPrior.l1`` / ``asymmetry``).
        focal_prior: weight of ``log(f / f_prior)^2`` in the score (and the loss).
        landmark_scale: multiplier of the normalised landmark loss (the fit's ``LANDMARK_SCALE``).
        sliding_window: contour landmark sliding (0: fixed at the jaw centres).
        robust_scale: Cauchy scale of the landmark loss, as a fraction of the face size (0: squared).
    """

    rigid_steps: int = 50
    shape_steps: int = 50
    lr_rotation: float = 0.03
    lr_translation: float = 1.0
    lr_depth: float = 0.03
    lr_identity: float = 0.1
    lr_expression: float = 0.03
    identity_reg: float = 1e-3
    expression_l1: float = 0.0
    expression_symmetry: float = 0.0
    focal_prior: float = 0.0
    landmark_scale: float = 1e3
    sliding_window: int = 2
    robust_scale: float = 0.0


@dataclass(frozen=True)
class CameraStart:
    """The winning hypothesis, ready to initialise a fit.

    Attributes:
        focal: focal length, px of the frame the landmarks are in.
        rotation: (3,) axis-angle (rad) relative to ``FRONTAL_ROTATION``.
        translation_xy: (2,) image-plane offset of the model origin from the principal point, px.
        depth: camera-space z of the model origin, mm.
        identity: (K,) and expression: (E,) coefficients reached by the search.
        score: its score; scores: (H,) every hypothesis' score, focal-major (``focals`` x start
            rotations): after the shape phase for the best rotation of each focal, after the rigid
            phase for the others. focals: (H,) focal of each hypothesis, px; index: the winner's.
    """

    focal: float
    rotation: np.ndarray
    translation_xy: np.ndarray
    depth: float
    identity: np.ndarray
    expression: np.ndarray
    score: float
    scores: np.ndarray
    focals: np.ndarray
    index: int


def focal_candidates(side_px: float, fov_range_deg: tuple[float, float], count: int) -> np.ndarray:
    """(count,) focal lengths (px) whose fields of view across ``side_px`` are evenly spaced in log-focal.

    Example:
        >>> f = focal_candidates(1000, (10.0, 75.0), 3)
        >>> [round(math.degrees(2 * math.atan(500 / x)), 1) for x in f]
        [75.0, 29.1, 10.0]
    """
    low, high = sorted(fov_range_deg)
    f_wide = 0.5 * side_px / math.tan(math.radians(high) / 2)
    f_long = 0.5 * side_px / math.tan(math.radians(low) / 2)
    if count <= 1:
        return np.array([math.sqrt(f_wide * f_long)])
    return np.exp(np.linspace(math.log(f_wide), math.log(f_long), count))


def closed_form_pose(points: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Weak-perspective (scaled orthographic) fit of model points to landmarks.

    Solves ``landmarks ~ P @ (X, Y, Z, 1)`` (least squares, P 2x4) and orthonormalises P's rows
    into a rotation (SVD). Returns (axis-angle relative to FRONTAL_ROTATION (3,), image position of
    the model origin (2,) px, scale px per mm). Valid at any yaw (no cut-off).
    """
    from ganfit_core.fitting.params import matrix_to_axis_angle

    design = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    proj, *_ = np.linalg.lstsq(design, landmarks, rcond=None)  # (4, 2)
    rows = proj[:3].T
    scale = float(np.linalg.norm(rows, axis=1).mean())
    u, _, vt = np.linalg.svd(rows, full_matrices=False)
    r12 = u @ vt
    cam_rotation = np.stack([r12[0], r12[1], np.cross(r12[0], r12[1])])
    relative = FRONTAL_ROTATION.double().numpy().T @ cam_rotation
    return matrix_to_axis_angle(relative), proj[3], scale


def rotation_candidates(closed_form: np.ndarray, yaws_deg: Sequence[float]) -> np.ndarray:
    """(R, 3) start rotations: the closed-form one, then pure yaws (rad axis-angle about model +y).

    Starts more than 120 degrees from frontal (a closed form gone wrong) are left out.
    """
    closed_form = np.asarray(closed_form, dtype=np.float64)
    starts = [closed_form] if np.linalg.norm(closed_form) < math.radians(120) else []
    starts += [np.array([0.0, math.radians(y), 0.0]) for y in yaws_deg]
    return np.stack(starts)


def _per_face_landmark_loss(predicted: torch.Tensor, target: torch.Tensor, weights: torch.Tensor,
                            robust_scale: float = 0.0) -> torch.Tensor:
    """(B,) weighted mean of (distance / face size)^2 per face, or of its Cauchy-robust form.

    With ``robust_scale`` = s > 0 each point's ``r^2`` becomes ``s^2 log(1 + r^2 / s^2)`` (the
    same near 0, bounded growth for outliers), as in :func:`ganfit_core.fitting.losses.landmark_loss`.
    """
    span = target.amax(dim=1) - target.amin(dim=1)
    size = span.norm(dim=-1).clamp_min(1.0)
    sq = (predicted - target).pow(2).sum(-1) / size.pow(2)[:, None]
    if robust_scale > 0:
        sq = robust_scale**2 * torch.log1p(sq / robust_scale**2)
    return (sq * weights).sum(-1) / weights.sum().clamp_min(1e-8)


def search_camera(
    sparse_model: torch.nn.Module,
    landmarks: torch.Tensor,
    weights: torch.Tensor,
    principal: Sequence[float],
    focals: np.ndarray,
    *,
    num_identity: int,
    jaw_centres: Sequence[int],
    yaws_deg: Sequence[float] = (-90.0, -60.0, -30.0, 0.0, 30.0, 60.0, 90.0),
    focal_prior_px: float | None = None,
    expression_prior: object | None = None,
    settings: SearchSettings = SearchSettings(),
    dense_model: torch.nn.Module | None = None,
    dense_target: torch.Tensor | None = None,
    dense_weights: torch.Tensor | None = None,
    dense_weight: float = 0.0,
) -> CameraStart:
    """Solve the landmark fit from every (focal, start rotation) hypothesis; return the best.

    Args:
        sparse_model: ``(identity (B, K), expression (B, E)) -> (B, 102, 3)`` mm, rows: the 68
            landmark vertices, then 17 ``jaw_right`` and 17 ``jaw_left`` candidates.
        landmarks: (68, 2) detected landmarks, px.
        weights: (68,) per-landmark weights.
        principal: (2,) principal point, px.
        focals: (F,) focal candidates, px.
        num_identity: K identity coefficients to fit.
        jaw_centres: default candidate of contour landmarks 0-7 / 9-16 among the 17.
        yaws_deg: pure-yaw start rotations tried besides the closed-form one.
        focal_prior_px: centre of the log-focal prior (default: the geometric mean of ``focals``).
        expression_prior: an ``ExpressionPrior`` (bounds, L1, symmetry) or None ([0, 1] bounds).
        settings: steps, learning rates and weights.
        dense_model: ``(identity, expression) -> (B, N, 3)`` mm at the dense landmarks (FaceMesh's
            468 points), with ``dense_target`` (N, 2) px, ``dense_weights`` (N,) and the term's
            ``dense_weight`` (relative to the 68-point term); None: 68 points only.
    """
    from ganfit_core.fitting.expression_prior import ExpressionPrior
    from ganfit_core.fitting.losses import slide_contour
    from ganfit_core.fitting.optim import Adam

    device = landmarks.device
    lm = landmarks.detach().double().cpu().numpy()
    jaw = list(jaw_centres)
    with torch.no_grad():
        zero_id = torch.zeros(1, num_identity, device=device)
        zero_ex = torch.zeros(1, sparse_model.expression_basis.shape[0], device=device)
        mean_points = sparse_model(zero_id, zero_ex)[0]
    rows = torch.arange(68, device=device)
    rows[0:8] = 68 + torch.as_tensor([j for j in jaw], device=device)
    rows[9:17] = 85 + torch.as_tensor([j for j in jaw], device=device)
    points = mean_points[rows].detach().double().cpu().numpy()
    closed_rot, origin_px, scale = closed_form_pose(points, lm)
    rotations = rotation_candidates(closed_rot, yaws_deg)
    focals = np.asarray(focals, dtype=np.float64)
    n_f, n_r = len(focals), len(rotations)
    count = n_f * n_r
    focal_h = torch.tensor(np.repeat(focals, n_r), dtype=torch.float32, device=device)  # (H,)
    rot = torch.nn.Parameter(torch.tensor(np.tile(rotations, (n_f, 1)), dtype=torch.float32, device=device))
    offset0 = torch.tensor(origin_px - np.asarray(principal, dtype=np.float64), dtype=torch.float32,
                           device=device)
    txy = torch.nn.Parameter(offset0.expand(count, 2).clone())
    depth0 = focal_h / max(scale, 1e-6)
    log_depth = torch.nn.Parameter(torch.zeros(count, 1, device=device))
    identity = torch.nn.Parameter(torch.zeros(count, num_identity, device=device))
    num_exp = sparse_model.expression_basis.shape[0]
    expression = torch.nn.Parameter(torch.zeros(count, num_exp, device=device))
    prior = expression_prior if expression_prior is not None else ExpressionPrior(
        torch.ones(num_exp), torch.zeros(0, 2, dtype=torch.int64), torch.ones(num_exp))
    prior = prior.to(device)
    centre = float(focal_prior_px) if focal_prior_px is not None else float(np.exp(np.log(focals).mean()))
    focal_cost = settings.focal_prior * torch.log(focal_h / centre).pow(2)  # (H,)
    camera = PinholeCamera(focal_h, torch.tensor([list(principal)], dtype=torch.float32, device=device)
                           .expand(count, 2), 1, 1)
    frontal = FRONTAL_ROTATION.to(device)
    target = landmarks.to(torch.float32)[None].expand(count, -1, -1)
    w = weights.to(device, torch.float32)

    use_dense = dense_model is not None and dense_target is not None and dense_weight > 0
    if use_dense and dense_weights is None:
        dense_weights = torch.ones(dense_target.shape[0], device=device)

    def scores(with_shape: bool) -> torch.Tensor:
        verts = sparse_model(identity, expression)
        rmat = frontal @ axis_angle_to_matrix(rot)
        z = depth0 * torch.exp(log_depth[:, 0])
        trans = torch.cat([txy * (z / focal_h)[:, None], z[:, None]], dim=-1)
        cam = verts @ rmat.transpose(1, 2) + trans[:, None]
        pts = project(cam, camera, min_depth=1.0)
        inner = pts[:, :68]
        if settings.sliding_window == 0:
            right, left = pts[:, 68:85][:, jaw], pts[:, 85:102][:, jaw]
        else:
            picks = []
            for offset, sl in ((68, slice(0, 8)), (85, slice(9, 17))):
                cands = pts[:, offset:offset + 17]
                choice = slide_contour(cands.detach(), target[:, sl], jaw, window=settings.sliding_window)
                picks.append(torch.gather(cands, 1, choice[..., None].expand(-1, -1, 2)))
            right, left = picks
        predicted = torch.cat([right, inner[:, 8:9], left, inner[:, 17:]], dim=1)
        landmark = _per_face_landmark_loss(predicted, target, w, settings.robust_scale)
        if use_dense:
            dense_cam = dense_model(identity, expression) @ rmat.transpose(1, 2) + trans[:, None]
            dense_pts = project(dense_cam, camera, min_depth=1.0)
            goal = dense_target.to(dense_pts)[None].expand(dense_pts.shape[0], -1, -1)
            landmark = landmark + dense_weight * _per_face_landmark_loss(
                dense_pts, goal, dense_weights.to(dense_pts), settings.robust_scale)
        total = settings.landmark_scale * landmark + focal_cost
        if with_shape:
            total = total + settings.identity_reg * identity.pow(2).sum(-1)
            total = total + settings.expression_l1 * prior.l1(expression)
            total = total + settings.expression_symmetry * prior.asymmetry(expression)
        return total

    def run(steps: int, with_shape: bool) -> None:
        groups = [{"params": [rot], "lr": settings.lr_rotation},
                  {"params": [txy], "lr": settings.lr_translation},
                  {"params": [log_depth], "lr": settings.lr_depth}]
        if with_shape:
            groups += [{"params": [identity], "lr": settings.lr_identity},
                       {"params": [expression], "lr": settings.lr_expression}]
        optimiser = Adam(groups)
        for _ in range(steps):
            optimiser.zero_grad()
            scores(with_shape).sum().backward()  # hypotheses are independent: sum = each its own loss
            optimiser.step()
            prior.project_(expression.data)

    def finite(values: torch.Tensor) -> torch.Tensor:
        return torch.where(torch.isfinite(values), values, torch.full_like(values, math.inf))

    run(settings.rigid_steps, False)
    all_scores = np.full(count, np.inf)
    with torch.no_grad():
        rigid = finite(scores(False))
    all_scores[:] = rigid.cpu().numpy()
    # Only the best start rotation of each focal goes on to the (dearer) shape phase.
    keep = rigid.view(n_f, n_r).argmin(1) + torch.arange(n_f, device=device) * n_r  # (F,)
    for tensor in (rot, txy, log_depth, identity, expression):
        tensor.data = tensor.data[keep].clone()
    focal_h, depth0, focal_cost = focal_h[keep], depth0[keep], focal_cost[keep]
    camera = PinholeCamera(focal_h, camera.principal[keep], 1, 1)
    target = target[keep]
    if settings.shape_steps > 0:
        run(settings.shape_steps, True)
    with torch.no_grad():
        final = finite(scores(settings.shape_steps > 0))
    all_scores[keep.cpu().numpy()] = final.cpu().numpy()
    best = int(torch.argmin(final))
    with torch.no_grad():
        z = float(depth0[best] * torch.exp(log_depth.detach()[best, 0]))
    return CameraStart(
        focal=float(focal_h[best]), rotation=rot[best].detach().cpu().numpy().astype(np.float64),
        translation_xy=txy[best].detach().cpu().numpy().astype(np.float64), depth=z,
        identity=identity[best].detach().cpu().numpy(), expression=expression[best].detach().cpu().numpy(),
        score=float(final[best]), scores=all_scores, focals=np.repeat(focals, n_r), index=int(keep[best]),
    )
