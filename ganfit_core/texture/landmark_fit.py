"""A quick landmark-only geometry fit for the texture data pipeline.

Fits pose (axis-angle rotation about the frontal pose, translation), the first identity modes and
the expression weights of the morphable model so the 68 model landmarks project onto 68 detected
landmarks. Focal length is fixed from the photo size (studio portraits are taken with long lenses;
the fit is insensitive to it). Deterministic: full-batch Adam from a fixed start.

This is the pipeline's CPU-cheap stand-in for the fitting engine's landmark stages (about 0.1 s a
photo); it does not fit lighting or texture (:mod:`ganfit_core.texture.unwrap` estimates shading).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ganfit_core.morphable import MorphableModel

__all__ = ["LandmarkFit", "fit_landmarks", "FOCAL_PER_SIDE"]

FOCAL_PER_SIDE = 4.0  # focal length in pixels = 4 x the photo's longer side (about a 100 mm lens)
_FRONTAL = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]], dtype=torch.float64)


@dataclass(frozen=True)
class LandmarkFit:
    """Result of :func:`fit_landmarks`.

    Attributes:
        vertices_cam: (V, 3) float64 fitted vertices, OpenCV camera space, mm.
        focal: focal length in pixels; principal: (cx, cy) in pixels.
        rms_px: root-mean-square landmark error in pixels.
        identity: (K,) identity coefficients; expression: (53,) weights in [0, 1].
    """

    vertices_cam: np.ndarray
    focal: float
    principal: tuple[float, float]
    rms_px: float
    identity: np.ndarray
    expression: np.ndarray


def _rodrigues(aa: torch.Tensor) -> torch.Tensor:
    """Axis-angle (3,) radians -> rotation matrix (3, 3)."""
    theta = torch.sqrt((aa * aa).sum() + 1e-12)
    k = aa / theta
    kx = torch.zeros(3, 3, dtype=aa.dtype)
    kx = torch.stack([
        torch.stack([kx[0, 0], -k[2], k[1]]),
        torch.stack([k[2], kx[1, 1], -k[0]]),
        torch.stack([-k[1], k[0], kx[2, 2]]),
    ])
    eye = torch.eye(3, dtype=aa.dtype)
    return eye + torch.sin(theta) * kx + (1 - torch.cos(theta)) * (kx @ kx)


def fit_landmarks(
    model: MorphableModel,
    landmarks: np.ndarray,
    width: int,
    height: int,
    *,
    num_identity: int = 40,
    steps: int = 300,
    identity_weight: float = 1e-3,
    expression_weight: float = 1e-3,
) -> LandmarkFit:
    """Fit pose, identity and expression of ``model`` to 68 landmarks (68, 2) in pixels.

    The loss is the mean squared landmark distance in units of the face size (the spread of the
    landmarks), plus ``identity_weight * |id|^2 + expression_weight * |expr|^2``.
    """
    lm = torch.as_tensor(np.asarray(landmarks, dtype=np.float64))
    if lm.shape != (68, 2):
        raise ValueError(f"landmarks: expected shape (68, 2), got {tuple(lm.shape)}")
    idx = model.landmark_indices
    mean = model.mean[idx].to(torch.float64)
    id_basis = model.identity_basis[:num_identity, idx].to(torch.float64)
    ex_basis = model.expression_basis[:, idx].to(torch.float64)

    focal = FOCAL_PER_SIDE * max(width, height)
    principal = torch.tensor([width / 2.0, height / 2.0], dtype=torch.float64)
    size_px = float(torch.linalg.norm(lm - lm.mean(0), dim=1).mean())
    size_mm = float(torch.linalg.norm(mean - mean.mean(0), dim=1).mean())
    depth0 = focal * size_mm / size_px
    centre = (lm.mean(0) - principal) * depth0 / focal
    centre_model = mean.mean(0) @ _FRONTAL.T

    aa = torch.full((3,), 1e-4, dtype=torch.float64, requires_grad=True)
    shift = torch.zeros(3, dtype=torch.float64, requires_grad=True)  # translation in units of size_mm
    ident = torch.zeros(num_identity, dtype=torch.float64, requires_grad=True)
    expr = torch.zeros(ex_basis.shape[0], dtype=torch.float64, requires_grad=True)
    t0 = torch.stack([centre[0], centre[1], torch.tensor(depth0, dtype=torch.float64)]) - centre_model
    opt = torch.optim.Adam([
        {"params": [aa], "lr": 0.02},
        {"params": [shift], "lr": 0.02},
        {"params": [ident, expr], "lr": 0.05},
    ])

    def landmarks_px() -> torch.Tensor:
        pts = mean + torch.einsum("k,kvc->vc", ident, id_basis) + torch.einsum("k,kvc->vc", expr, ex_basis)
        cam = pts @ (_rodrigues(aa) @ _FRONTAL).T + t0 + shift * size_mm
        return cam[:, :2] / cam[:, 2:3] * focal + principal

    for step in range(steps):
        opt.zero_grad()
        err = ((landmarks_px() - lm) / size_px).pow(2).sum(1).mean()
        reg = identity_weight * ident.pow(2).sum() + expression_weight * expr.pow(2).sum()
        (err + reg).backward()
        if step < steps // 4:  # pose first: shape and expression wait until the pose settles
            ident.grad = None
            expr.grad = None
        opt.step()
        with torch.no_grad():
            expr.clamp_(0.0, 1.0)

    with torch.no_grad():
        rms = float(torch.sqrt((landmarks_px() - lm).pow(2).sum(1).mean()))
        k = num_identity
        verts = model.mean.to(torch.float64) + torch.einsum(
            "k,kvc->vc", ident, model.identity_basis[:k].to(torch.float64)
        ) + torch.einsum("k,kvc->vc", expr, model.expression_basis.to(torch.float64))
        cam = verts @ (_rodrigues(aa) @ _FRONTAL).T + t0 + shift * size_mm
    return LandmarkFit(
        vertices_cam=cam.numpy(),
        focal=float(focal),
        principal=(float(principal[0]), float(principal[1])),
        rms_px=rms,
        identity=ident.detach().numpy().copy(),
        expression=expr.detach().numpy().copy(),
    )
