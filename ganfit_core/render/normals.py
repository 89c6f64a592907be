"""Area-weighted vertex normals (differentiable)."""

from __future__ import annotations

import torch


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor, *, eps: float = 1e-20) -> torch.Tensor:
    """Unit vertex normals (B, V, 3): sums of the adjacent face normals weighted by face area.

    For counter-clockwise faces (seen from outside) the normals point outwards. Vertices in no face
    get a zero normal.

    Example:
        >>> v = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]])
        >>> vertex_normals(v, torch.tensor([[0, 1, 2]]))[0, 0]
        tensor([0., 0., 1.])
    """
    batch, num_verts, _ = vertices.shape
    num_faces = faces.shape[0]
    corner = faces.t().reshape(-1)  # corner-major (3 F,)
    rows = vertices.transpose(0, 1).reshape(num_verts, batch * 3)
    corners = rows.index_select(0, corner).view(3, num_faces, batch, 3)
    # Unnormalised face normal (v1 - v0) x (v2 - v0): length is twice the triangle area.
    face_normal = torch.linalg.cross(corners[1] - corners[0], corners[2] - corners[0], dim=-1)
    source = face_normal.reshape(1, num_faces, batch * 3).expand(3, -1, -1).reshape(3 * num_faces, batch * 3)
    summed = rows.new_zeros(num_verts, batch * 3).index_add(0, corner, source)
    summed = summed.view(num_verts, batch, 3).transpose(0, 1)
    return summed * torch.rsqrt((summed * summed).sum(-1, keepdim=True).clamp(min=eps))
