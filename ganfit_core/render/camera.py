"""Pinhole camera (OpenCV convention), projection to pixels, rotations, clip space.

Camera space is OpenCV's: +x right, +y down, +z forward (visible points have z > 0), millimetres.
Pixel coordinates are continuous with (0, 0) the top-left image corner; the centre of pixel
(row i, column j) is (x, y) = (j + 0.5, i + 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ganfit_core.errors import check_shape

#: Model space (+y up, +z towards the viewer) to OpenCV camera space for a frontal face (3, 3).
FRONTAL_ROTATION = torch.diag(torch.tensor([1.0, -1.0, -1.0]))


@dataclass(frozen=True)
class PinholeCamera:
    """A batch of pinhole cameras without distortion.

    Attributes:
        focal: (B,) focal length in pixels (same for x and y).
        principal: (B, 2) principal point (x, y) in pixels.
        width: image width in pixels.
        height: image height in pixels.
    """

    focal: torch.Tensor
    principal: torch.Tensor
    width: int
    height: int

    def __post_init__(self) -> None:
        check_shape(self.focal, ("B",), "PinholeCamera.focal")
        check_shape(self.principal, (self.focal.shape[0], 2), "PinholeCamera.principal")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise ValueError(
                f"PinholeCamera: width and height must be positive, got {self.width}x{self.height}"
            )

    @property
    def batch_size(self) -> int:
        return int(self.focal.shape[0])

    @staticmethod
    def from_fov(
        batch: int, width: int, height: int, fov_deg: float, *, device=None, dtype=torch.float32
    ) -> PinholeCamera:
        """Cameras with the principal point at the image centre and the given horizontal field of view."""
        focal = 0.5 * width / torch.tan(torch.deg2rad(torch.tensor(fov_deg / 2, dtype=torch.float64)))
        return PinholeCamera(
            focal=torch.full((batch,), float(focal), device=device, dtype=dtype),
            principal=torch.tensor([[width / 2, height / 2]], device=device, dtype=dtype).expand(batch, 2),
            width=width,
            height=height,
        )


def project(
    points_cam: torch.Tensor, camera: PinholeCamera, *, min_depth: float | None = None
) -> torch.Tensor:
    """Project camera-space points (B, N, 3) mm to pixel coordinates (B, N, 2).

    ``x = f * X / Z + cx``, ``y = f * Y / Z + cy``. With ``min_depth`` the depth is clamped from below
    (no gradient through clamped points), which keeps points behind the camera finite.

    Example:
        >>> cam = PinholeCamera(torch.tensor([100.0]), torch.tensor([[50.0, 40.0]]), 100, 80)
        >>> project(torch.tensor([[[10.0, -20.0, 200.0]]]), cam)
        tensor([[[55., 30.]]])
    """
    check_shape(points_cam, (camera.batch_size, "N", 3), "points_cam")
    z = points_cam[..., 2:3]
    if min_depth is not None:
        z = z.clamp(min=min_depth)
    focal = camera.focal.to(points_cam)[:, None, None]
    principal = camera.principal.to(points_cam)[:, None, :]
    return points_cam[..., :2] / z * focal + principal


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (B, 3, 3) from axis-angle vectors (B, 3) in radians (Rodrigues).

    Differentiable everywhere, including at zero (Taylor expansion for tiny angles).

    Example:
        >>> import math
        >>> axis_angle_to_matrix(torch.tensor([[0.0, 0.0, math.pi / 2]])).round(decimals=6)
        tensor([[[ 0., -1.,  0.],
                 [ 1.,  0.,  0.],
                 [ 0.,  0.,  1.]]])
    """
    check_shape(axis_angle, ("B", 3), "axis_angle")
    theta2 = (axis_angle * axis_angle).sum(-1)
    small = theta2 < 1e-8
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
    sin_term = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    cos_term = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / (theta * theta))
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).view(-1, 3, 3)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand_as(skew)
    return eye + sin_term[:, None, None] * skew + cos_term[:, None, None] * (skew @ skew)


def clip_space(points_cam: torch.Tensor, camera: PinholeCamera, *, near: float, far: float) -> torch.Tensor:
    """Homogeneous clip-space positions (B, N, 4) for OpenGL-style rasterisers (nvdiffrast).

    NDC x = 2 * px / width - 1 and y = 2 * py / height - 1 with (px, py) the pixel coordinates of
    :func:`project`, so NDC y = -1 is the *top* image row: nvdiffrast's output row 0 is then image
    row 0 and no flip is needed. Depth maps z in [near, far] mm to NDC [-1, 1]; w = z.
    """
    if not 0 < near < far:
        raise ValueError(f"clip_space: expected 0 < near < far, got near={near}, far={far}")
    check_shape(points_cam, (camera.batch_size, "N", 3), "points_cam")
    x, y, z = points_cam.unbind(-1)
    focal = camera.focal.to(points_cam)[:, None]
    cx = camera.principal[:, 0].to(points_cam)[:, None]
    cy = camera.principal[:, 1].to(points_cam)[:, None]
    x_clip = (2.0 * focal / camera.width) * x + (2.0 * cx / camera.width - 1.0) * z
    y_clip = (2.0 * focal / camera.height) * y + (2.0 * cy / camera.height - 1.0) * z
    z_clip = (far + near) / (far - near) * z - 2.0 * far * near / (far - near)
    return torch.stack([x_clip, y_clip, z_clip, z], dim=-1)
