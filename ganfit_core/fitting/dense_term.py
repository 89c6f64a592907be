"""The dense landmark term: MediaPipe FaceMesh's 468 points against their ICT surface points.

A correspondence (``ganfit_core.model.facemesh_correspondence``: per FaceMesh point a triangle of
the ICT ``face`` region and barycentric coordinates, plus the spread of its build samples in mm)
places the 468 points on any shape of the morphable model. :class:`DenseLandmarkModel` keeps only
the vertices of those triangles (about 1,000 of 9,409), so the landmark-only stages stay cheap;
:func:`dense_landmark_loss` compares their projections with FaceMesh's points.

Weights: ``(floor / max(spread, floor))^2`` per point (the correspondence's own reliability), so a
point that FaceMesh puts on the same surface point whatever the face and pose (eye corners, ~1 mm)
counts fully and one that slides with the pose (the face oval, several mm) counts little: the
face-oval points are silhouette points, and their low weight plays the part the sliding jawline
plays for the 68 points.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["DenseLandmarkModel", "dense_landmark_loss", "point_weights"]


def point_weights(spread_mm: np.ndarray, *, floor_mm: float = 1.0) -> np.ndarray:
    """(N,) float32 weights in (0, 1]: ``(floor_mm / max(spread_mm, floor_mm))^2``.

    Example:
        >>> point_weights(np.array([0.5, 1.0, 2.0, 4.0])).tolist()
        [1.0, 1.0, 0.25, 0.0625]
    """
    spread = np.asarray(spread_mm, dtype=np.float64)
    return ((floor_mm / np.maximum(spread, floor_mm)) ** 2).astype(np.float32)


class DenseLandmarkModel(nn.Module):
    """The morphable model evaluated at N correspondence points only.

    Args:
        model: the morphable model (``mean``, ``identity_basis``, ``expression_basis``, ``faces``).
        triangles: (N,) int64 triangle index into ``model.faces`` of each point.
        barycentric: (N, 3) float barycentric coordinates in that triangle.

    Buffers: ``vertex_index`` (U,) model vertices used; ``corner`` (N, 3) int64 rows into them;
    ``barycentric`` (N, 3); ``mean`` (U, 3) mm; ``identity_basis`` (100, U * 3) and
    ``expression_basis`` (E, U * 3) mm per unit coefficient.
    """

    def __init__(self, model: nn.Module, triangles: np.ndarray, barycentric: np.ndarray) -> None:
        super().__init__()
        faces = model.faces.detach().cpu()
        tri = faces[torch.as_tensor(np.asarray(triangles, dtype=np.int64))]  # (N, 3) vertex ids
        unique, inverse = torch.unique(tri.reshape(-1), return_inverse=True)
        device = model.mean.device
        self.register_buffer("vertex_index", unique.to(device))
        self.register_buffer("corner", inverse.reshape(-1, 3).to(device))
        bary = torch.as_tensor(np.asarray(barycentric, dtype=np.float32))
        if bary.shape != tri.shape:
            raise ValueError(f"barycentric: expected {tuple(tri.shape)}, got {tuple(bary.shape)}")
        self.register_buffer("barycentric", bary.to(device))
        index = self.vertex_index
        self.register_buffer("mean", model.mean[index].detach().clone())
        num_id = model.identity_basis.shape[0]
        self.register_buffer("identity_basis", model.identity_basis[:, index].reshape(num_id, -1).clone())
        num_exp = model.expression_basis.shape[0]
        expression_basis = model.expression_basis[:, index].reshape(num_exp, -1).clone()
        self.register_buffer("expression_basis", expression_basis)

    @property
    def num_points(self) -> int:
        return int(self.corner.shape[0])

    def forward(self, identity: torch.Tensor, expression: torch.Tensor) -> torch.Tensor:
        """(B, N, 3) model-space points, mm, from identity (B, K) and expression (B, E)."""
        k = identity.shape[1]
        flat = self.mean.reshape(1, -1) + identity @ self.identity_basis[:k]
        flat = flat + expression @ self.expression_basis
        verts = flat.reshape(identity.shape[0], -1, 3)  # (B, U, 3)
        corners = verts[:, self.corner]  # (B, N, 3, 3)
        return (corners * self.barycentric[None, :, :, None]).sum(dim=2)


def dense_landmark_loss(predicted: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, *,
                        robust_scale: float = 0.0) -> torch.Tensor:
    """(B,) weighted mean squared distance normalised by the target's bounding-box diagonal squared.

    The same normalisation as the 68-point landmark loss, so 1e-4 means an RMS error of 1 % of the
    face size. ``predicted``, ``target``: (B, N, 2) px; ``weights``: (N,) >= 0. ``robust_scale``:
    the Cauchy form of :func:`ganfit_core.fitting.losses.landmark_loss` (0: squared).

    Example:
        >>> t = torch.tensor([[[0.0, 0.0], [30.0, 40.0]]])
        >>> loss = dense_landmark_loss(t + torch.tensor([3.0, 4.0]), t, torch.ones(2))
        >>> [round(v, 6) for v in loss.tolist()]
        [0.01]
    """
    if predicted.shape != target.shape or predicted.shape[-1] != 2:
        raise ValueError(f"dense landmarks: expected equal shapes (B, N, 2), got {tuple(predicted.shape)} "
                         f"and {tuple(target.shape)}")
    w = weights.to(predicted)
    span = target.amax(dim=1) - target.amin(dim=1)
    size = span.norm(dim=-1).clamp_min(1.0)
    sq = (predicted - target).pow(2).sum(-1) / size.pow(2)[:, None]
    if robust_scale > 0:
        sq = robust_scale**2 * torch.log1p(sq / robust_scale**2)
    return (sq * w).sum(-1) / w.sum().clamp_min(1e-8)
