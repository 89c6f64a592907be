"""The optimised parameters of a fit and how they turn into a mesh, a camera and a texture.

One named layout (no magic offsets), held as ``nn.Parameter`` s of :class:`FaceParameters`:

============== ============ ===========================================================
name           shape        meaning
============== ============ ===========================================================
identity       (B, K)       identity coefficients, ~N(0, 1) (first K of 100)
expression     (B, 53)      expression weights, projected into [0, upper] after every step
                            (``expression_prior.upper``; [0, 1] without a prior)
rotation       (B, 3)       axis-angle (rad) of the head in model space; R = FRONTAL @ R(r)
translation_xy (B, 2)       image-plane offset of the model origin from the principal
                            point, px (at the face's depth)
log_depth      (B, 1)       log of the model origin's camera-space z / initial z
log_focal      (B, 1)       log of the focal length / initial focal length
sh             (B, 9, 3)    SH lighting (camera-space normals)
texture_latent (B, L)       the texture prior's latent
detail         (B, D, D, 3) per-texel residual added to the prior's UV texture (optional)
============== ============ ===========================================================

Camera: OpenCV camera space, ``v_cam = v_model @ R.T + t`` with
``t = (tx * z / f, ty * z / f, z)``, ``z = z0 * exp(log_depth)``, ``f = f0 * exp(log_focal)``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganfit_core.fitting.expression_prior import ExpressionPrior
from ganfit_core.render.camera import FRONTAL_ROTATION, PinholeCamera, axis_angle_to_matrix
from ganfit_core.render.lighting import ambient_sh

__all__ = ["FaceParameters", "PARAMETER_GROUPS", "matrix_to_axis_angle"]

#: Parameter names in each optimiser group.
PARAMETER_GROUPS: dict[str, tuple[str, ...]] = {
    "rotation": ("rotation",),
    "translation": ("translation_xy",),
    "depth": ("log_depth",),
    "focal": ("log_focal",),
    "identity": ("identity",),
    "expression": ("expression",),
    "texture": ("texture_latent",),
    "light": ("sh",),
    "detail": ("detail",),
}


def matrix_to_axis_angle(matrix: np.ndarray) -> np.ndarray:
    """Axis-angle (3,) rad of a rotation matrix (3, 3) (inverse of ``axis_angle_to_matrix``).

    Example:
        >>> m = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        >>> np.round(matrix_to_axis_angle(m), 6).tolist()
        [0.0, 0.0, 1.570796]
    """
    m = np.asarray(matrix, dtype=np.float64)
    cos = np.clip((np.trace(m) - 1.0) / 2.0, -1.0, 1.0)
    angle = float(np.arccos(cos))
    axis = np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]])
    sin = np.sin(angle)
    if angle < 1e-6:
        return axis / 2.0
    if sin > 1e-6:
        return axis / (2.0 * sin) * angle
    # angle ~ pi: axis from the diagonal of (m + I) / 2 = a a^T
    aat = (m + np.eye(3)) / 2.0
    k = int(np.argmax(np.diag(aat)))
    a = aat[:, k] / np.sqrt(max(aat[k, k], 1e-12))
    return a * angle


class FaceParameters(nn.Module):
    """All fitted parameters of a batch of B faces plus the fixed camera reference values.

    Args:
        batch: B.
        num_identity: K identity coefficients.
        num_expression: expression weights (53 for ICT).
        texture_latent: (B, L) initial texture latent.
        focal0: (B,) initial focal length, px.
        depth0: (B,) initial depth of the model origin, mm.
        principal: (B, 2) principal point, px (fixed).
        translation0: (B, 2) initial image-plane offset, px.
        detail_resolution: side of the detail layer (0: none).
        light_level: initial ambient shading level.
        rotation0: (B, 3) initial axis-angle (default 0: frontal).
        shared_views: the B faces are photos of one person: ``identity`` (1, K), ``texture_latent``
            (1, L) and ``detail`` (1, D, D, 3) are shared (one row, broadcast to the B views by
            :meth:`identity_rows` and :meth:`texture`); pose, camera, expression and light stay per view.
        expression_prior: bounds (and L1 scales, left/right pairs) of the expression weights;
            None keeps them in [0, 1].
    """

    def __init__(
        self,
        *,
        batch: int,
        num_identity: int,
        num_expression: int,
        texture_latent: torch.Tensor,
        focal0: torch.Tensor,
        depth0: torch.Tensor,
        principal: torch.Tensor,
        translation0: torch.Tensor,
        detail_resolution: int = 0,
        light_level: float = 1.0,
        rotation0: torch.Tensor | None = None,
        shared_views: bool = False,
        expression_prior: ExpressionPrior | None = None,
    ) -> None:
        super().__init__()
        device = texture_latent.device
        zeros = {"device": device, "dtype": torch.float32}
        self.batch = int(batch)
        self.shared_views = bool(shared_views)
        rows = 1 if shared_views else batch
        if texture_latent.shape[0] != rows:
            raise ValueError(f"texture_latent: expected {rows} row(s), "
                             f"got shape {tuple(texture_latent.shape)}")
        self.identity = nn.Parameter(torch.zeros(rows, num_identity, **zeros))
        self.expression = nn.Parameter(torch.zeros(batch, num_expression, **zeros))
        rotation = torch.zeros(batch, 3, **zeros) if rotation0 is None else rotation0.detach().clone().float()
        self.rotation = nn.Parameter(rotation.to(device))
        self.translation_xy = nn.Parameter(translation0.detach().clone().float().to(device))
        self.log_depth = nn.Parameter(torch.zeros(batch, 1, **zeros))
        self.log_focal = nn.Parameter(torch.zeros(batch, 1, **zeros))
        self.sh = nn.Parameter(ambient_sh(batch, light_level, device=device))
        self.texture_latent = nn.Parameter(texture_latent.detach().clone().float())
        self.detail = nn.Parameter(torch.zeros(rows, detail_resolution, detail_resolution, 3, **zeros))
        # Where the detail layer applies (rows, D, D, 1) in [0, 1]; all ones until set_detail_mask.
        mask_shape = (rows, detail_resolution, detail_resolution, 1)
        self.register_buffer("detail_mask", torch.ones(mask_shape, **zeros))
        self.register_buffer("focal0", focal0.detach().clone().float().to(device))
        self.register_buffer("depth0", depth0.detach().clone().float().to(device))
        self.register_buffer("principal", principal.detach().clone().float().to(device))
        self.register_buffer("frontal", FRONTAL_ROTATION.to(device))
        #: Bounds, sparsity scales and left/right pairs of the expression weights (None: [0, 1]).
        self.expression_prior = None if expression_prior is None else expression_prior.to(device)

    def identity_rows(self) -> torch.Tensor:
        """(B, K) identity coefficients of every view (the shared row repeated when ``shared_views``)."""
        return self.identity.expand(self.batch, -1)

    def group(self, name: str) -> list[nn.Parameter]:
        """The parameters of optimiser group ``name`` (see :data:`PARAMETER_GROUPS`)."""
        return [getattr(self, p) for p in PARAMETER_GROUPS[name]]

    @torch.no_grad()
    def project_constraints(self) -> None:
        """Keep expression weights in their bounds (projected gradient descent); call after each step."""
        if self.expression_prior is not None:
            self.expression_prior.project_(self.expression.data)
        else:
            self.expression.clamp_(0.0, 1.0)

    def rotation_matrix(self) -> torch.Tensor:
        """(B, 3, 3) model-to-camera rotation."""
        return self.frontal @ axis_angle_to_matrix(self.rotation)

    def focal(self) -> torch.Tensor:
        """(B,) focal length, px."""
        return self.focal0 * torch.exp(self.log_focal[:, 0])

    def translation(self) -> torch.Tensor:
        """(B, 3) camera-space position of the model origin, mm."""
        z = self.depth0 * torch.exp(self.log_depth[:, 0])
        xy = self.translation_xy * (z / self.focal())[:, None]
        return torch.cat([xy, z[:, None]], dim=-1)

    def camera(self, width: int, height: int, *, scale: float = 1.0) -> PinholeCamera:
        """The camera for a ``width x height`` image; ``scale`` resizes the reference frame's pixels."""
        return PinholeCamera(self.focal() * scale, self.principal * scale, width, height)

    def to_camera_space(self, vertices: torch.Tensor) -> torch.Tensor:
        """Model-space vertices (B, V, 3) mm -> camera space (B, V, 3) mm."""
        return vertices @ self.rotation_matrix().transpose(1, 2) + self.translation()[:, None, :]

    @torch.no_grad()
    def set_detail_mask(self, mask: torch.Tensor) -> None:
        """Restrict the detail layer to ``mask`` (B, D, D) in [0, 1] (D = the detail resolution)."""
        expected = tuple(self.detail.shape[:3])
        if tuple(mask.shape) != expected:
            raise ValueError(f"detail mask: expected shape {expected}, got {tuple(mask.shape)}")
        self.detail_mask.copy_(mask.clamp(0.0, 1.0).unsqueeze(-1))

    def texture(self, base: torch.Tensor) -> torch.Tensor:
        """Prior texture (B, R, R, 3) (or (1, R, R, 3), shared) plus the (masked, upsampled) detail layer,
        clamped to [0, 1]; (B, R, R, 3), the shared texture repeated when ``shared_views``."""
        out = base
        if self.detail.shape[1] > 0:
            mask = self.detail_mask
            detail = self.detail * mask
            if bool((mask < 1.0).any()):
                # Outside the mask the prior's texture gets the detail's local mean, so that the skin
                # tone the photo gave the face carries on over forehead, ears and neck (no edge).
                detail = detail + (1.0 - mask) * low_frequency_fill(detail.detach(), mask)
            if detail.shape[1] != base.shape[1]:
                detail = F.interpolate(detail.permute(0, 3, 1, 2), size=base.shape[1:3], mode="bilinear",
                                       align_corners=False).permute(0, 2, 3, 1)
            out = (base + detail).clamp(0.0, 1.0)
        return out.expand(self.batch, -1, -1, -1) if out.shape[0] == 1 and self.batch > 1 else out

    def snapshot(self) -> dict[str, torch.Tensor]:
        """Detached copies of every parameter (for restoring after a divergence)."""
        return {name: p.detach().clone() for name, p in self.named_parameters()}

    @torch.no_grad()
    def restore(self, snapshot: dict[str, torch.Tensor]) -> None:
        """Copy a :meth:`snapshot` back into the parameters."""
        for name, p in self.named_parameters():
            p.copy_(snapshot[name])

    def all_finite(self) -> bool:
        """True when every parameter is finite."""
        return all(bool(torch.isfinite(p).all()) for p in self.parameters())


def low_frequency_fill(values: torch.Tensor, weights: torch.Tensor, coarse: int = 32) -> torch.Tensor:
    """A smooth extension (B, D, D, C) of ``values`` (B, D, D, C) weighted by ``weights`` (B, D, D, 1).

    Push-pull on a pyramid that starts at ``coarse`` x ``coarse`` cells: each cell's weighted mean
    where it has weight, the coarser level's (bilinear) where it has little; then upsampled to D.
    Only the low frequencies (cells of D / ``coarse`` texels and coarser) are extended.

    Example:
        >>> v = torch.zeros(1, 64, 64, 1); v[:, :, :32] = 1.0
        >>> w = torch.zeros(1, 64, 64, 1); w[:, :, :32] = 1.0
        >>> out = low_frequency_fill(v, w, coarse=8)
        >>> round(float(out[0, 32, 60, 0]), 2), round(float(out[0, 32, 2, 0]), 2)
        (1.0, 1.0)
    """
    v = (values * weights).permute(0, 3, 1, 2)
    w = weights.permute(0, 3, 1, 2).expand(-1, 1, -1, -1)
    size = values.shape[1]
    factor = max(size // coarse, 1)
    sums, fractions = [F.avg_pool2d(v, factor)], [F.avg_pool2d(w, factor)]
    while sums[-1].shape[-1] > 1:
        sums.append(F.avg_pool2d(sums[-1], 2))
        fractions.append(F.avg_pool2d(fractions[-1], 2))
    estimate = sums[-1] / fractions[-1].clamp(min=1e-6)
    for level in range(len(sums) - 2, -1, -1):
        up = F.interpolate(estimate, size=sums[level].shape[-2:], mode="bilinear", align_corners=False)
        trust = (2.0 * fractions[level]).clamp(max=1.0)
        estimate = trust * sums[level] / fractions[level].clamp(min=1e-6) + (1.0 - trust) * up
    out = F.interpolate(estimate, size=values.shape[1:3], mode="bilinear", align_corners=False)
    return out.permute(0, 2, 3, 1)
