"""Spherical-harmonics (bands 0-2) Lambertian lighting, as in Deep3DFaceRecon / Ramamoorthi & Hanrahan.

The basis already includes the Lambertian convolution constants ``a_l`` (pi, 2pi/sqrt(3), 2pi/sqrt(8))
times the real SH normalisation ``c_l``, so ``shading = sh_basis(n) @ sh`` is the irradiance-derived
shading and ``image = albedo * shading``. Normals are unit vectors in camera space (OpenCV).
"""

from __future__ import annotations

import math

import torch

from ganfit_core.errors import check_shape

_A0, _A1, _A2 = math.pi, 2.0 * math.pi / math.sqrt(3.0), 2.0 * math.pi / math.sqrt(8.0)
_C0 = 1.0 / math.sqrt(4.0 * math.pi)
_C1 = math.sqrt(3.0) / math.sqrt(4.0 * math.pi)
_C2 = 3.0 * math.sqrt(5.0) / math.sqrt(12.0 * math.pi)
#: Value of the constant basis function (band 0) including the Lambertian factor.
SH_BAND0 = _A0 * _C0


def sh_basis(normals: torch.Tensor) -> torch.Tensor:
    """SH basis (..., 9) of unit normals (..., 3), Deep3DFaceRecon's order and signs.

    Example:
        >>> sh_basis(torch.tensor([0.0, 0.0, 1.0])).shape
        torch.Size([9])
    """
    if normals.shape[-1] != 3:
        raise ValueError(f"normals: expected shape (..., 3), got {tuple(normals.shape)}")
    x, y, z = normals[..., 0], normals[..., 1], normals[..., 2]
    k1, k2 = _A1 * _C1, _A2 * _C2
    return torch.stack(
        [
            torch.full_like(x, SH_BAND0),
            -k1 * y,
            k1 * z,
            -k1 * x,
            k2 * x * y,
            -k2 * y * z,
            0.5 * k2 / math.sqrt(3.0) * (3.0 * z * z - 1.0),
            -k2 * x * z,
            0.5 * k2 * (x * x - y * y),
        ],
        dim=-1,
    )


def sh_shading(normals: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """Shading (B, ..., 3) of unit normals (B, ..., 3) under SH coefficients (B, 9, 3).

    Example:
        >>> sh_shading(torch.tensor([[[0.0, 0.0, -1.0]]]), ambient_sh(1, 0.7))
        tensor([[[0.7000, 0.7000, 0.7000]]])
    """
    check_shape(sh, (normals.shape[0], 9, 3), "sh")
    basis = sh_basis(normals)
    flat = basis.reshape(basis.shape[0], -1, 9)
    return torch.bmm(flat, sh.to(basis)).reshape(*normals.shape)


def ambient_sh(batch: int, level: float, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """SH coefficients (B, 9, 3) whose shading is the constant ``level`` for every normal.

    Example:
        >>> ambient_sh(2, 1.0).shape
        torch.Size([2, 9, 3])
    """
    sh = torch.zeros(batch, 9, 3, device=device, dtype=dtype)
    sh[:, 0, :] = level / SH_BAND0
    return sh
