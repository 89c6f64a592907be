"""Area-weighted vertex normals (differentiable)."""

from __future__ import annotations

import torch


def vertex_normals(
    vertices: torch.Tensor, faces: torch.Tensor, *, eps: float = 1e-20, corner: torch.Tensor | None = None
) -> torch.Tensor:
    """Unit vertex normals (B, V, 3): sums of the adjacent face normals weighted by face area.

    ``corner`` optionally gives the precomputed corner-major indices (3 * B * F,) of ``faces`` into
    the vertices flattened to (B * V,) (``faces.t()`` plus ``b * V`` offsets).

    For counter-clockwise faces (seen from outside) the normals point outwards. Vertices in no face
    get a zero normal.

    Example:
        >>> v = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]])
        >>> vertex_normals(v, torch.tensor([[0, 1, 2]]))[0, 0]
        tensor([0., 0., 1.])
    """
    batch, num_verts, _ = vertices.shape
    # Corner-major indices (3, B * F) into the vertices flattened to (B * V,); every coordinate is
    # gathered and scattered as a 1-D tensor (much cheaper on CPU than 3-column rows).
    if corner is None:
        corner = faces.t()
        if batch > 1:
            offsets = torch.arange(batch, device=faces.device) * num_verts
            corner = corner[:, None, :] + offsets[None, :, None]
        corner = corner.reshape(-1)
    index = corner
    (x0, x1, x2), (y0, y1, y2), (z0, z1, z2) = (
        coord.index_select(0, index).view(3, -1).unbind(0) for coord in vertices.reshape(-1, 3).unbind(1)
    )
    # Unnormalised face normal (v1 - v0) x (v2 - v0): length is twice the triangle area.
    ax, ay, az = x1 - x0, y1 - y0, z1 - z0
    bx, by, bz = x2 - x0, y2 - y0, z2 - z0
    face_normal = (ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx)
    summed = torch.stack(
        [vertices.new_zeros(batch * num_verts).index_add_(0, index, n.repeat(3)) for n in face_normal], dim=-1
    ).view(batch, num_verts, 3)
    return summed * torch.rsqrt((summed * summed).sum(-1, keepdim=True).clamp(min=eps))
