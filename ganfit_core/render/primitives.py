"""Small synthetic meshes for tests and benchmarks (counter-clockwise seen from outside)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh with UVs.

    Attributes:
        vertices: (V, 3) positions, mm.
        faces: (F, 3) long, counter-clockwise seen from outside.
        uvs: (T, 2) texture coordinates, v up.
        uv_faces: (F, 3) long indices into ``uvs``.
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    uvs: torch.Tensor
    uv_faces: torch.Tensor


def uv_sphere(rings: int, segments: int, radius: float = 1.0, *, dtype=torch.float32) -> Mesh:
    """A UV sphere (y up) with ``2 * segments * (rings - 1)`` triangles, outward-facing.

    Vertices and UVs share one grid (the seam column is duplicated), so ``uv_faces == faces``.

    Example:
        >>> uv_sphere(4, 8).faces.shape
        torch.Size([48, 3])
    """
    theta = torch.linspace(0.0, math.pi, rings + 1, dtype=torch.float64)  # from the north pole
    phi = torch.linspace(0.0, 2.0 * math.pi, segments + 1, dtype=torch.float64)
    t, p = torch.meshgrid(theta, phi, indexing="ij")
    vertices = torch.stack([t.sin() * p.sin(), t.cos(), t.sin() * p.cos()], dim=-1).reshape(-1, 3) * radius
    uvs = torch.stack([p / (2.0 * math.pi), 1.0 - t / math.pi], dim=-1).reshape(-1, 2)
    cols = segments + 1
    r, s = torch.meshgrid(torch.arange(rings), torch.arange(segments), indexing="ij")
    a = (r * cols + s).reshape(-1)
    b, c, d = a + cols, a + cols + 1, a + 1
    tri = torch.cat([torch.stack([a, b, c], 1)[:-segments], torch.stack([a, c, d], 1)[segments:]])
    return Mesh(vertices.to(dtype), tri, uvs.to(dtype), tri.clone())


def quad(x0: float, y0: float, x1: float, y1: float, z: float, *, dtype=torch.float32) -> Mesh:
    """An axis-aligned rectangle at depth ``z`` in camera space (OpenCV), facing the camera.

    Corners (x0, y0)-(x1, y1) in mm; UV (0, 1) at (x0, y0) (top-left on screen), (1, 0) at (x1, y1).

    Example:
        >>> quad(-1, -1, 1, 1, 5).faces.tolist()
        [[0, 2, 1], [0, 3, 2]]
    """
    vertices = torch.tensor([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], dtype=dtype)
    uvs = torch.tensor([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]], dtype=dtype)
    # Facing the camera (normal towards -z in OpenCV camera space) = negative screen area.
    faces = torch.tensor([[0, 2, 1], [0, 3, 2]])
    return Mesh(vertices, faces, uvs, faces.clone())
