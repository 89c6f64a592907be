"""A small, exact, non-differentiable triangle rasteriser in NumPy (z-buffered).

Used by the texture data pipeline for two jobs that need no gradients:

- rasterising the mesh **in UV space** (vertices placed at their UV coordinates) to learn, for
  every texel, which triangle covers it and where (barycentrics);
- a **depth buffer from the camera view** to decide which texels a photo actually sees.

Pixel convention (docs/CONTRACTS.md): continuous coordinates, (0, 0) the top-left corner; the
centre of pixel (row i, column j) is (x, y) = (j + 0.5, i + 0.5). A pixel belongs to a triangle
when its centre lies inside it (edges inclusive; ties go to the nearest depth, then the lower id).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Rasterization", "rasterize"]

_CHUNK = 4096


@dataclass(frozen=True)
class Rasterization:
    """Per-pixel result of :func:`rasterize`.

    Attributes:
        triangle_id: (H, W) int64, the covering triangle, -1 where empty.
        barycentric: (H, W, 3) float64 weights of the triangle's three corners (0 where empty).
        depth: (H, W) float64 interpolated depth (``inf`` where empty).
    """

    triangle_id: np.ndarray
    barycentric: np.ndarray
    depth: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool, True where a triangle covers the pixel."""
        return self.triangle_id >= 0


def rasterize(
    points: np.ndarray, faces: np.ndarray, height: int, width: int, depth: np.ndarray | None = None
) -> Rasterization:
    """Rasterise triangles given in pixel coordinates, keeping the nearest (smallest depth).

    Args:
        points: (N, 2) float vertex positions (x, y) in pixels.
        faces: (F, 3) int triangles into ``points`` (either winding).
        height, width: output size in pixels.
        depth: (N,) float per-vertex depth (any unit; smaller is nearer), or None (all 0).

    Example:
        >>> tri = rasterize(np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]]), np.array([[0, 1, 2]]), 4, 4)
        >>> int(tri.mask.sum())
        10
    """
    points = np.asarray(points, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points: expected shape (N, 2), got {points.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces: expected shape (F, 3), got {faces.shape}")
    z = np.zeros(len(points)) if depth is None else np.asarray(depth, dtype=np.float64)
    if z.shape != (len(points),):
        raise ValueError(f"depth: expected shape ({len(points)},), got {z.shape}")

    tri = points[faces]  # (F, 3, 2)
    # Pixel columns j whose centre j + 0.5 may fall in [min, max]: j in [ceil(min - .5), floor(max - .5)].
    lo = np.ceil(tri.min(axis=1) - 0.5).astype(np.int64)
    hi = np.floor(tri.max(axis=1) - 0.5).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, np.array([width - 1, height - 1]))
    size = hi - lo + 1  # (F, 2) columns, rows
    keep = np.flatnonzero((size > 0).all(axis=1))
    area = size[keep, 0] * size[keep, 1]
    order = keep[np.argsort(area, kind="stable")]

    cand_pix: list[np.ndarray] = []
    cand_tri: list[np.ndarray] = []
    cand_bary: list[np.ndarray] = []
    cand_z: list[np.ndarray] = []
    for start in range(0, len(order), _CHUNK):
        ids = order[start:start + _CHUNK]
        w_max, h_max = size[ids].max(axis=0)
        dx, dy = np.meshgrid(np.arange(w_max), np.arange(h_max))
        px = lo[ids, 0, None] + dx.ravel()[None]  # (C, K)
        py = lo[ids, 1, None] + dy.ravel()[None]
        inside_box = (px <= hi[ids, 0, None]) & (py <= hi[ids, 1, None])
        bary = _barycentric(tri[ids], px + 0.5, py + 0.5)  # (C, K, 3)
        inside = inside_box & (bary >= -1e-9).all(axis=-1)
        c, k = np.nonzero(inside)
        b = bary[c, k]
        cand_pix.append(py[c, k] * width + px[c, k])
        cand_tri.append(ids[c])
        cand_bary.append(b)
        cand_z.append((b * z[faces[ids[c]]]).sum(axis=-1))

    tri_id = np.full(height * width, -1, dtype=np.int64)
    bary_out = np.zeros((height * width, 3))
    depth_out = np.full(height * width, np.inf)
    if cand_pix:
        pix, tid = np.concatenate(cand_pix), np.concatenate(cand_tri)
        bb, zz = np.concatenate(cand_bary), np.concatenate(cand_z)
        sel = np.lexsort((tid, zz, pix))  # by pixel, then depth, then triangle id
        first = np.ones(len(sel), dtype=bool)
        first[1:] = pix[sel][1:] != pix[sel][:-1]
        win = sel[first]
        tri_id[pix[win]] = tid[win]
        bary_out[pix[win]] = bb[win]
        depth_out[pix[win]] = zz[win]
    return Rasterization(tri_id.reshape(height, width), bary_out.reshape(height, width, 3),
                         depth_out.reshape(height, width))


def _barycentric(tri: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Barycentrics of points (x, y) (C, K) in triangles ``tri`` (C, 3, 2) -> (C, K, 3)."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0 = b - a
    v1 = c - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) < 1e-12, np.inf, den)[:, None]  # degenerate triangles cover nothing
    qx = x - a[:, 0, None]
    qy = y - a[:, 1, None]
    w1 = (qx * v1[:, 1, None] - v1[:, 0, None] * qy) / den
    w2 = (v0[:, 0, None] * qy - qx * v0[:, 1, None]) / den
    w0 = 1.0 - w1 - w2
    out = np.stack([w0, w1, w2], axis=-1)
    return np.where(np.isfinite(den)[..., None], out, -1.0)
