"""Pure-PyTorch differentiable rasteriser (CPU and CUDA tensors).

Pipeline:

1. **Visibility, no gradients** (:func:`rasterize_triangle_ids`): every front-facing triangle
   enumerates the pixel centres inside its bounding box (vectorised over all triangles at once,
   chunked to bound memory), keeps those inside it, and a z-buffer keeps the nearest: one
   ``scatter_reduce(amin)`` on int64 keys ``(float32 depth bits << 32) | triangle index``.
2. **Differentiable fragments** (:func:`triangle_table`): for the covered pixels only, barycentrics
   are recomputed in PyTorch from the projected vertices (perspective-correct, from per-triangle
   planes of ``barycentric / depth``), so gradients reach vertex positions, the camera, the texture
   (bilinear ``grid_sample``, align_corners=False, border padding) and the SH lighting.
3. **Silhouette antialiasing** (:func:`antialias_silhouettes`), an analytic approximation of
   nvdiffrast's ``antialias``. Silhouette edges are edges of a visible (front-facing) triangle whose
   neighbour across the edge is missing (open boundary) or culled (back-facing): the outline against
   the background and self-occlusion outlines (a nose over a cheek). For every pair of horizontally
   or vertically adjacent pixels (p, q) showing different triangles, with p nearer than q (or q
   empty), the silhouette edges of p's triangle and of its three edge neighbours are intersected with
   the segment between the pixel centres. With ``a`` the nearest crossing (0 at p's centre, 1 at q's)
   and ``d = a - 0.5``: when d > 0 the triangle covers part of q, which gains ``d * (value_p -
   value_q)``; when d < 0 it misses part of p, which gains ``d * (value_p - value_q)`` (loses colour
   towards q). The result is continuous in the vertex positions, so the image and the mask get
   gradients with respect to silhouette vertices (and the camera) through ``a``. Limits: one crossing
   per pixel pair; a silhouette edge owned by a triangle that is not p's or an edge neighbour of it
   (corners of fans) is missed there; other buffers are not antialiased.

Shading is Gouraud-style: SH shading is evaluated on the vertex normals and interpolated (the optional
``normals`` buffer is interpolated per pixel and renormalised). Triangles with a vertex nearer than
``settings.near`` are dropped (no clipping).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganfit_core.render.base import Renderer, RenderOutput, RenderSettings
from ganfit_core.render.camera import project
from ganfit_core.render.lighting import sh_basis
from ganfit_core.render.normals import vertex_normals

_EMPTY_KEY = torch.iinfo(torch.int64).max
#: Which int32 word of an int64 z-buffer key holds the depth bits (the high word).
_DEPTH_WORD = 1 if sys.byteorder == "little" else 0
#: Largest number of (triangle, pixel) candidates processed at once by the z-buffer.
_CHUNK = 1 << 22


# ----------------------------------------------------------------------------------------------
# Visibility (no gradients)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Visibility:
    """Result of the z-buffer pass (no gradients).

    Attributes:
        triangle_id: (B, H, W) long index into ``faces`` of the nearest triangle, -1 where empty.
        depth: (B, H, W) float32 camera-space z of that triangle at the pixel centre, mm; inf where empty.
        front: (B, F) bool, triangle is front-facing and in front of the near plane (not culled).
    """

    triangle_id: torch.Tensor
    depth: torch.Tensor
    front: torch.Tensor


@torch.no_grad()
def rasterize_triangle_ids(
    xy: torch.Tensor,
    z: torch.Tensor,
    faces: torch.Tensor,
    width: int,
    height: int,
    *,
    near: float,
    corner: torch.Tensor | None = None,
) -> Visibility:
    """Nearest front-facing triangle per pixel centre.

    Args:
        xy: (B, V, 2) projected vertex positions, pixels.
        z: (B, V) camera-space depth, mm.
        faces: (F, 3) long.
        width, height: image size in pixels.
        near: triangles with a vertex at depth <= near are skipped.
        corner: optional precomputed :func:`corner_major_index` of ``faces`` for (B, V).

    Returns:
        :class:`Visibility`. Front-facing means negative signed area on screen (pixels, y down);
        other triangles are culled.
    """
    batch, num_verts = z.shape
    num_faces = faces.shape[0]
    device = xy.device
    # Corner-major gathers: tx[k] is the x of corner k of every triangle (contiguous rows).
    if corner is None:
        corner = corner_major_index(faces, batch, num_verts)
    tx = xy[..., 0].float().reshape(-1).index_select(0, corner).view(3, -1)
    ty = xy[..., 1].float().reshape(-1).index_select(0, corner).view(3, -1)
    tz = z.float().reshape(-1).index_select(0, corner).view(3, -1)
    x0, x1, x2 = tx.unbind(0)
    y0, y1, y2 = ty.unbind(0)
    area2 = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
    # Pixel columns j with centre j + 0.5 inside [xmin, xmax] (same for rows).
    xmin, xmax = torch.minimum(torch.minimum(x0, x1), x2), torch.maximum(torch.maximum(x0, x1), x2)
    ymin, ymax = torch.minimum(torch.minimum(y0, y1), y2), torch.maximum(torch.maximum(y0, y1), y2)
    j0 = torch.ceil((xmin - 0.5).clamp(-1.0, width)).clamp(min=0.0)
    j1 = torch.floor((xmax - 0.5).clamp(-1.0, width)).clamp(max=width - 1.0)
    i0 = torch.ceil((ymin - 0.5).clamp(-1.0, height)).clamp(min=0.0)
    i1 = torch.floor((ymax - 0.5).clamp(-1.0, height)).clamp(max=height - 1.0)
    front = (area2 < 0) & (torch.minimum(torch.minimum(tz[0], tz[1]), tz[2]) > near)
    keep = front & (j1 >= j0) & (i1 >= i0)
    sel = keep.nonzero().squeeze(1)  # flat b * F + f
    zbuf = torch.full((batch * height * width,), _EMPTY_KEY, dtype=torch.int64, device=device)
    if sel.numel() > 0:
        table = torch.cat([tx, ty, tz, torch.stack([area2, j0, i0, j1, i1])]).index_select(1, sel)
        _zbuffer_fill(zbuf, sel, table, num_faces, width, height)
    words = zbuf.view(torch.int32).view(-1, 2)
    ids = words[:, 1 - _DEPTH_WORD].long().view(batch, height, width)  # the empty key's low word is -1
    depth = words[:, _DEPTH_WORD].view(torch.float32)
    depth = torch.where(zbuf == _EMPTY_KEY, torch.inf, depth).view(batch, height, width)
    return Visibility(triangle_id=ids, depth=depth, front=front.view(batch, num_faces))


def corner_major_index(faces: torch.Tensor, batch: int, num_verts: int) -> torch.Tensor:
    """Corner-major indices (3 * B * F,) of triangle corners into per-vertex values flattened to (B * V,)."""
    index = faces.t()
    if batch > 1:
        offsets = torch.arange(batch, device=faces.device) * num_verts
        index = index[:, None, :] + offsets[None, :, None]
    return index.reshape(-1)


def _zbuffer_fill(
    zbuf: torch.Tensor, sel: torch.Tensor, table: torch.Tensor, num_faces: int, width: int, height: int
) -> None:
    """Scatter the nearest (depth, triangle) key of every covered pixel into ``zbuf``.

    Scanline enumeration: each triangle's bounding-box rows are enumerated, the row's span of pixel
    centres inside the triangle is found from the edge crossings at the row centre, and only those
    pixels are visited. Every edge is evaluated from its endpoints in a canonical order, so two
    triangles sharing an edge get bit-identical crossings (no cracks; pixel centres exactly on a
    shared edge go to both and the z-buffer picks one).

    ``table`` (14, K): rows x0..2, y0..2, z0..2, area2, j0, i0, j1, i1 of the selected triangles ``sel``.
    """
    device = zbuf.device
    x, y = table[0:3], table[3:6]
    j0, i0 = table[10], table[11]
    rows_per_tri = (table[13] - i0 + 1).long()
    # 1/z is linear on screen: 1/z = az * (j - j0) + bz * (i - i0) + cz at pixel centre (j, i).
    inv_z = 1.0 / table[6:9]
    lx = x - (j0 + 0.5)
    ly = y - (i0 + 0.5)
    lx1, lx2, ly1, ly2 = lx.roll(-1, 0), lx.roll(-2, 0), ly.roll(-1, 0), ly.roll(-2, 0)
    inv_area = 1.0 / table[9]
    az = ((ly1 - ly2) * inv_area * inv_z).sum(0)
    bz = ((lx2 - lx1) * inv_area * inv_z).sum(0)
    cz = ((lx1 * ly2 - lx2 * ly1) * inv_area * inv_z).sum(0) - az * j0  # now in absolute columns
    # Edges k = (vertex k+1, vertex k+2), endpoints ordered by (y, x).
    xa, ya, xb, yb = x.roll(-1, 0), y.roll(-1, 0), x.roll(-2, 0), y.roll(-2, 0)
    swap = (ya > yb) | ((ya == yb) & (xa > xb))
    lo_x, lo_y = torch.where(swap, xb, xa), torch.where(swap, yb, ya)
    hi_x, hi_y = torch.where(swap, xa, xb), torch.where(swap, ya, yb)
    flat = hi_y > lo_y
    slope = torch.where(flat, (hi_x - lo_x) / torch.where(flat, hi_y - lo_y, 1.0), 0.0)
    hi_y = torch.where(flat, hi_y, -torch.inf)  # horizontal edges never straddle a row
    per_tri = torch.cat([lo_x, lo_y, hi_y, slope, torch.stack([i0, bz, cz, az])])  # (16, K)
    batch_base = torch.div(sel, num_faces, rounding_mode="floor") * (height * width)
    face_index = sel - batch_base // (height * width) * num_faces

    row_ends = rows_per_tri.cumsum(0)
    num_rows = int(row_ends[-1])
    tri = torch.repeat_interleave(
        torch.arange(sel.numel(), device=device), rows_per_tri, output_size=num_rows
    )
    local_row = torch.arange(num_rows, device=device) - (row_ends - rows_per_tri).index_select(0, tri)
    data = per_tri.index_select(1, tri)  # (16, R)
    row = data[12] + local_row.to(data.dtype)  # image row i
    centre_y = row + 0.5
    straddles = (data[3:6] <= centre_y) & (centre_y <= data[6:9])
    cross_x = torch.addcmul(data[0:3], centre_y - data[3:6], data[9:12])
    left = torch.where(straddles, cross_x, torch.inf).amin(0)
    right = torch.where(straddles, cross_x, -torch.inf).amax(0)
    first_col = torch.ceil((left - 0.5).clamp(-1.0, width)).clamp(min=0.0)
    last_col = torch.floor((right - 0.5).clamp(-1.0, width)).clamp(max=width - 1.0)
    span = (last_col - first_col + 1.0).clamp(min=0.0).long()
    row_inv_z = data[13] * local_row.to(data.dtype) + data[14]  # 1/z at column 0 of this row
    row_face = face_index.index_select(0, tri).to(torch.int32)
    span_ends = span.cumsum(0)
    total = int(span_ends[-1]) if num_rows else 0
    bounds = [0]
    if total > _CHUNK:
        marks = torch.arange(_CHUNK, total, _CHUNK, device=device)
        bounds += torch.searchsorted(span_ends, marks, right=True).add(1).clamp(max=num_rows).tolist()
    bounds.append(num_rows)
    span_starts = span_ends - span
    # Pixel g of the enumeration (0 <= g < total) on row r is at column g + col_offset[r].
    col_offset = first_col.long() - span_starts
    pixel_offset = batch_base.index_select(0, tri) + row.long() * width + col_offset
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        if hi <= lo:
            continue
        n = int(span_ends[hi - 1] - span_starts[lo])
        if n == 0:
            continue
        pix_row = torch.repeat_interleave(torch.arange(lo, hi, device=device), span[lo:hi], output_size=n)
        enumeration = torch.arange(int(span_starts[lo]), int(span_starts[lo]) + n, device=device)
        col = enumeration + col_offset.index_select(0, pix_row)
        inv_depth = torch.addcmul(
            row_inv_z.index_select(0, pix_row), data[15].index_select(0, pix_row), col.to(data.dtype)
        )
        depth_bits = (1.0 / inv_depth).view(torch.int32)
        words = [row_face.index_select(0, pix_row), depth_bits]  # key = depth bits << 32 | triangle
        key = torch.stack(words if _DEPTH_WORD == 1 else words[::-1], dim=1).view(torch.int64).view(-1)
        pixel = enumeration + pixel_offset.index_select(0, pix_row)
        zbuf.scatter_reduce_(0, pixel, key, reduce="amin")


def _pixel_centres(pixel: torch.Tensor, width: int, height: int, dtype: torch.dtype) -> torch.Tensor:
    """Centres (N, 2) (x, y) in pixels of flat pixel indices b * H * W + row * W + column."""
    rem = pixel % (width * height)
    row = torch.div(rem, width, rounding_mode="floor")
    return torch.stack([rem - row * width, row], dim=-1).to(dtype) + 0.5


def triangle_table(
    xy: torch.Tensor,
    z: torch.Tensor,
    faces: torch.Tensor,
    *,
    min_depth: float,
    corner: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-triangle planes of the perspective-correct barycentric weights, rows (12, B * F).

    For a pixel centre (px, py) and the triangle's local origin o (row 10-11, floor of its first
    projected vertex, a constant), ``w_k = A_k * (px - ox) + B_k * (py - oy) + C_k`` (rows 0-8) is
    the screen barycentric of corner k times twice the screen area, divided by the corner's depth.
    Perspective-correct barycentrics are ``w_k / sum(w)`` and the depth is ``area2 / sum(w)`` with
    ``area2`` (row 9) twice the signed screen area. Differentiable in ``xy`` and ``z``.
    """
    index = corner_major_index(faces, xy.shape[0], xy.shape[1]) if corner is None else corner
    # Every coordinate is gathered as a 1-D tensor into corner rows (3, B * F): cheap gathers and
    # backward scatters on CPU, contiguous rows for the arithmetic.
    flat_x, flat_y = xy.reshape(-1, 2).unbind(1)
    x = flat_x.index_select(0, index).view(3, -1)
    y = flat_y.index_select(0, index).view(3, -1)
    depth = z.reshape(-1).index_select(0, index).view(3, -1).clamp(min=min_depth)
    origin_x, origin_y = x[0].detach().floor(), y[0].detach().floor()
    x = x - origin_x
    y = y - origin_y
    x1, x2 = x.roll(-1, 0), x.roll(-2, 0)
    y1, y2 = y.roll(-1, 0), y.roll(-2, 0)
    cross = x1 * y2 - x2 * y1
    inv_depth = 1.0 / depth
    return torch.cat(
        [
            (y1 - y2) * inv_depth,
            (x2 - x1) * inv_depth,
            cross * inv_depth,
            cross.sum(0, keepdim=True),
            torch.stack([origin_x, origin_y]),
        ]
    )


def corner_rows(
    values: torch.Tensor, faces: torch.Tensor, *, corner: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-vertex values (B, V, C) as per-triangle corner rows (3 * C, B * F), corner-major."""
    batch, num_verts, channels = values.shape
    index = corner_major_index(faces, batch, num_verts) if corner is None else corner
    per_channel = [c.index_select(0, index).view(3, -1) for c in values.reshape(-1, channels).unbind(1)]
    return torch.stack(per_channel, dim=1).view(3 * channels, -1)


def interpolate_rows(rows: torch.Tensor, bary: torch.Tensor) -> torch.Tensor:
    """Interpolate gathered corner rows (3 * C, P) with barycentrics (3, P) -> (C, P)."""
    return (rows.view(3, rows.shape[0] // 3, rows.shape[1]) * bary[:, None, :]).sum(0)


def sample_texture(texture: torch.Tensor, uv: torch.Tensor, batch: torch.Tensor | None) -> torch.Tensor:
    """Bilinear texture lookup (``grid_sample``, align_corners=False, border padding).

    Args:
        texture: (B, Ht, Wt, C), row 0 is v = 1.
        uv: (2, P) texture coordinates, v up.
        batch: (P,) long batch index of each lookup (may be None when B == 1).

    Returns:
        (C, P) colours.
    """
    batch_size, tex_h, tex_w, channels = texture.shape
    tex = texture.permute(3, 0, 1, 2).reshape(1, channels, batch_size * tex_h, tex_w)
    gx = uv[0] * 2.0 - 1.0
    if batch_size == 1:
        gy = 1.0 - 2.0 * uv[1]
    else:
        # Textures are stacked vertically; clamping rows to texel centres reproduces border padding
        # without bleeding between neighbouring textures.
        rows = ((1.0 - uv[1]) * tex_h).clamp(0.5, tex_h - 0.5) + batch.to(uv.dtype) * tex_h
        gy = rows * (2.0 / (batch_size * tex_h)) - 1.0
    grid = torch.stack([gx, gy], dim=-1).view(1, 1, -1, 2)
    out = F.grid_sample(tex, grid.to(tex.dtype), mode="bilinear", padding_mode="border", align_corners=False)
    return out.view(channels, -1)


def vertex_shading(normals: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """SH shading (B, V, 3) of unit vertex normals (B, V, 3) under coefficients (B, 9, 3)."""
    return torch.bmm(sh_basis(normals), sh.to(normals))


def edge_neighbours(faces: torch.Tensor) -> torch.Tensor:
    """Triangle across each edge (F, 3) long; edge k is opposite vertex k; -1 on open boundaries.

    Edges shared by more than two triangles are paired arbitrarily.

    Example:
        >>> edge_neighbours(torch.tensor([[0, 1, 2], [2, 1, 3]])).tolist()
        [[1, -1, -1], [-1, -1, 0]]
    """
    num_faces = faces.shape[0]
    a = faces.roll(-1, 1).reshape(-1)
    b = faces.roll(-2, 1).reshape(-1)
    key = torch.minimum(a, b) * (int(faces.max()) + 1) + torch.maximum(a, b)
    order = torch.argsort(key)
    sorted_key = key[order]
    same = (sorted_key[1:] == sorted_key[:-1]).nonzero().squeeze(1)
    first, second = order[same], order[same + 1]
    neighbours = torch.full((num_faces * 3,), -1, dtype=torch.long, device=faces.device)
    neighbours[first] = torch.div(second, 3, rounding_mode="floor")
    neighbours[second] = torch.div(first, 3, rounding_mode="floor")
    return neighbours.view(num_faces, 3)


def _rows_of(pixel: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """Positions (N,) of the flat pixel indices ``query`` in the ascending ``pixel`` (P,); P if absent."""
    row = torch.searchsorted(pixel, query)
    found = pixel.index_select(0, row.clamp(max=max(pixel.numel() - 1, 0))) == query
    return torch.where(found, row, pixel.numel())


def neighbour_keys(neighbours: torch.Tensor, batch: int) -> torch.Tensor:
    """Edge neighbours (F, 3) as flat keys (B * F, 3) ``b * F + f``; missing ones are ``B * F``."""
    num_faces = neighbours.shape[0]
    if batch == 1:
        keys = neighbours
    else:
        offsets = (torch.arange(batch, device=neighbours.device) * num_faces).view(-1, 1, 1)
        keys = (neighbours[None] + offsets).view(-1, 3)
    return torch.where(neighbours.repeat(batch, 1) >= 0, keys, batch * num_faces)


def edge_ends(faces: torch.Tensor) -> torch.Tensor:
    """End vertices (F, 6) of the triangle edges: edge k (opposite vertex k) is (ends k, ends 3 + k)."""
    return torch.cat([faces.roll(-1, 1), faces.roll(-2, 1)], dim=1)


def antialias_silhouettes(
    values: torch.Tensor,
    pixel: torch.Tensor,
    xy: torch.Tensor,
    faces: torch.Tensor,
    neighbours: torch.Tensor,
    vis: Visibility,
    *,
    neighbour_key: torch.Tensor | None = None,
    ends: torch.Tensor | None = None,
) -> torch.Tensor:
    """Blend pixels across silhouette edges (see the module docstring).

    A silhouette edge is an edge of a visible (front-facing) triangle whose neighbour across it is
    missing or culled. For each pair of adjacent pixels (p, q) whose triangles differ and where p is
    nearer than q (or q is empty), the silhouette edges of p's triangle and of its edge neighbours
    are intersected with the segment between the two pixel centres; with ``a`` the nearest crossing
    (fraction of the way from p to q) and ``d = a - 0.5``, ``d * (value_p - value_q)`` is added to q
    when d > 0 or to p when d < 0.

    Args:
        values: (P, C) values of the covered pixels (differentiable); empty pixels hold 0.
        pixel: (P,) ascending flat indices b * H * W + row * W + column of the covered pixels.
        xy: (B, V, 2) projected vertices, pixels (differentiable).
        faces: (F, 3) long.
        neighbours: (F, 3) from :func:`edge_neighbours`.
        vis: visibility of this frame.
        neighbour_key: optional precomputed :func:`neighbour_keys` of ``neighbours`` for batch B.
        ends: optional precomputed :func:`edge_ends` of ``faces``.

    Returns:
        ``(target, change)``: flat pixel indices (N,) and values (N, C) to add to the image (a pixel
        may appear several times).
    """
    triangle_id = vis.triangle_id
    batch_size, height, width = triangle_id.shape
    num_faces = faces.shape[0]
    num_verts = xy.shape[1]
    device = triangle_id.device
    front = vis.front.reshape(-1)  # (B * F,)
    nb_key = neighbour_keys(neighbours, batch_size) if neighbour_key is None else neighbour_key
    missing = batch_size * num_faces
    flat_nb_key = nb_key.view(-1)
    nb_front = torch.cat([front, front.new_zeros(1)]).index_select(0, flat_nb_key).view(-1, 3)
    silhouette = front[:, None] & ~nb_front  # (B * F, 3): edge k (opposite vertex k) is a silhouette
    has_silhouette = torch.cat([silhouette.any(1), silhouette.new_zeros(1)])  # (B * F + 1,)
    near_silhouette = has_silhouette[:-1] | has_silhouette.index_select(0, flat_nb_key).view(-1, 3).any(1)
    near_silhouette = torch.cat([near_silhouette, near_silhouette.new_zeros(1)])
    if batch_size == 1:
        tri_key = torch.where(triangle_id >= 0, triangle_id, missing)
    else:
        offsets = (torch.arange(batch_size, device=device) * num_faces).view(-1, 1, 1)
        tri_key = torch.where(triangle_id >= 0, triangle_id + offsets, missing)
    flat_key = tri_key.view(-1)
    pixel_sil = near_silhouette.take(tri_key)  # (B, H, W)
    horizontal = (triangle_id[:, :, 1:] != triangle_id[:, :, :-1]) & (
        pixel_sil[:, :, 1:] | pixel_sil[:, :, :-1]
    )
    vertical = (triangle_id[:, 1:, :] != triangle_id[:, :-1, :]) & (
        pixel_sil[:, 1:, :] | pixel_sil[:, :-1, :]
    )
    h_idx = horizontal.view(-1).nonzero().squeeze(1)  # flat over (B, H, W - 1)
    v_idx = vertical.view(-1).nonzero().squeeze(1)  # flat over (B, H - 1, W)
    h_first = h_idx + torch.div(h_idx, width - 1, rounding_mode="floor") if width > 1 else h_idx
    v_first = v_idx + torch.div(v_idx, (height - 1) * width, rounding_mode="floor") * width
    first = torch.cat([h_first, v_first])
    second = torch.cat([h_first + 1, v_first + width])
    inner = torch.cat([first, second])
    outer = torch.cat([second, first])
    flat_depth = vis.depth.view(-1)
    usable = pixel_sil.view(-1).index_select(0, inner) & (
        flat_depth.index_select(0, inner) < flat_depth.index_select(0, outer)
    )
    usable = usable.nonzero().squeeze(1)
    if usable.numel() == 0:
        return pixel[:0], values[:0]
    inner = inner.index_select(0, usable)
    outer = outer.index_select(0, usable)
    # Candidate edges: the 3 edges of p's triangle and of its 3 edge neighbours (N, 4 * 3).
    key = flat_key.index_select(0, inner)
    cand = torch.cat([key[:, None], nb_key.index_select(0, key)], dim=1)  # (N, 4); `missing` if none
    silhouette_padded = torch.cat([silhouette, silhouette.new_zeros(1, 3)])
    is_edge = silhouette_padded.index_select(0, cand.view(-1)).view(-1, 12)
    cand = cand.clamp(max=missing - 1)
    cand_face = cand % num_faces
    cand_base = (cand - cand_face) // num_faces * num_verts
    ends = edge_ends(faces) if ends is None else ends
    ends = ends.index_select(0, cand_face.view(-1)).view(-1, 4, 6) + cand_base[..., None]
    # Endpoint coordinates gathered per axis from 1-D tensors (cheap gathers and backward scatters).
    ends = ends.view(-1, 4, 2, 3).transpose(1, 2).reshape(-1)  # (N, end, cand, edge)
    flat_x, flat_y = xy.reshape(-1, 2).unbind(1)
    centre_in = _pixel_centres(inner, width, height, xy.dtype)
    step = _pixel_centres(outer, width, height, xy.dtype) - centre_in  # unit axis vectors
    rel_x = flat_x.index_select(0, ends).view(-1, 24) - centre_in[:, 0:1]
    rel_y = flat_y.index_select(0, ends).view(-1, 24) - centre_in[:, 1:2]
    sx, sy = step[:, 0:1], step[:, 1:2]
    along = rel_x * sx + rel_y * sy  # 0 at p's centre, 1 at q's; (N, end * cand * edge)
    across = rel_y * sx - rel_x * sy
    along_a, along_b = along[:, :12], along[:, 12:]
    across_a, across_b = across[:, :12], across[:, 12:]
    straddles = is_edge & (across_a * across_b <= 0) & (across_a != across_b)
    denom = torch.where(straddles, across_b - across_a, torch.ones_like(across_a))
    crossing = along_a - across_a * (along_b - along_a) / denom
    valid = straddles & (crossing >= 0) & (crossing <= 1)
    crossing = torch.where(valid, crossing, torch.full_like(crossing, 2.0)).amin(1)
    crossed = (crossing <= 1.0).nonzero().squeeze(1)
    delta = crossing.index_select(0, crossed) - 0.5
    inner = inner.index_select(0, crossed)
    outer = outer.index_select(0, crossed)
    target = torch.where(delta > 0, outer, inner)
    # Row of each pixel in `values` (``pixel`` is ascending); empty pixels point at an appended zero row.
    padded = torch.cat([values, values.new_zeros(1, values.shape[1])])
    value_in = padded.index_select(0, _rows_of(pixel, inner))
    value_out = padded.index_select(0, _rows_of(pixel, outer))
    return target, delta[:, None].to(values.dtype) * (value_in - value_out)


@dataclass(frozen=True)
class _Topology:
    """Index buffers of one faces tensor for one (batch size, vertex count), reused across renders."""

    neighbours: torch.Tensor  # (F, 3) edge_neighbours(faces)
    ends: torch.Tensor  # (F, 6) edge_ends(faces)
    neighbour_key: torch.Tensor  # (B * F, 3) neighbour_keys(neighbours, B)
    corner: torch.Tensor  # (3 * B * F,) corner_major_index(faces, B, V)


class TorchRenderer(Renderer):
    """Differentiable rasteriser in plain PyTorch; works on CPU and CUDA tensors.

    Gradients reach vertex positions (through barycentrics, normals and silhouette antialiasing),
    camera intrinsics, texture texels and SH coefficients. Visibility itself has no gradient.
    """

    backend = "torch"

    def __init__(self, device: torch.device | str | None = None, settings: RenderSettings | None = None):
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.settings = settings or RenderSettings()
        # (faces, faces version, {(batch, num_verts): topology})
        self._topology: tuple[torch.Tensor, int, dict[tuple[int, int], _Topology]] | None = None
        # ((uvs, uvs version, uv_faces, uv_faces version, dtype), corner uv table)
        self._uv_cache: tuple[tuple, torch.Tensor] | None = None

    def _topology_of(self, faces: torch.Tensor, batch: int, num_verts: int) -> _Topology:
        """Index buffers of ``faces`` for (B, V), cached while the same unmodified tensor is passed."""
        cached = self._topology
        if cached is None or cached[0] is not faces or cached[1] != faces._version:
            cached = (faces, faces._version, {})
            self._topology = cached
        per_batch = cached[2]
        if (batch, num_verts) not in per_batch:
            if per_batch:
                known = next(iter(per_batch.values()))
                neighbours, ends = known.neighbours, known.ends
            else:
                neighbours, ends = edge_neighbours(faces), edge_ends(faces)
            per_batch[batch, num_verts] = _Topology(
                neighbours,
                ends,
                neighbour_keys(neighbours, batch),
                corner_major_index(faces, batch, num_verts),
            )
        return per_batch[batch, num_verts]

    def _uv_table(self, uvs: torch.Tensor, uv_faces: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Corner uvs (6, F) (rows corner-major), cached while the same unmodified uvs/uv_faces are passed."""
        state = (uvs, uvs._version, uv_faces, uv_faces._version, dtype)
        cached = self._uv_cache
        if cached is not None:
            old = cached[0]
            if old[0] is uvs and old[2] is uv_faces and old[1::2] == state[1::2]:
                return cached[1]
        table = uvs.to(dtype)[uv_faces].reshape(uv_faces.shape[0], 6).t().contiguous()
        # Differentiable uvs are not cached (the table would carry a stale graph).
        self._uv_cache = None if uvs.requires_grad else (state, table)
        return table

    def _render(self, vertices_cam, faces, uvs, uv_faces, texture, camera, sh, buffers) -> RenderOutput:
        batch_size = vertices_cam.shape[0]
        height, width = camera.height, camera.width
        num_pixels = batch_size * height * width
        device = vertices_cam.device
        dtype = vertices_cam.dtype
        faces = faces.to(device=device, dtype=torch.long)
        uv_faces = uv_faces.to(device=device, dtype=torch.long)
        uvs = uvs.to(device=device)
        num_faces = faces.shape[0]
        near = self.settings.near
        xy = project(vertices_cam, camera, min_depth=0.5 * near)
        z = vertices_cam[..., 2]
        topology = self._topology_of(faces, batch_size, vertices_cam.shape[1])
        corner = topology.corner
        vis = rasterize_triangle_ids(xy.detach(), z.detach(), faces, width, height, near=near, corner=corner)

        # Per-triangle tables: weight planes, corner shading, corner uvs (and corner normals), each
        # gathered on its own for the covered pixels (no concatenation of large tables to undo in
        # the backward pass).
        normals_v = vertex_normals(vertices_cam, faces, corner=corner)
        weight_table = triangle_table(xy, z, faces, min_depth=0.5 * near, corner=corner)
        shading_table = corner_rows(vertex_shading(normals_v, sh), faces, corner=corner)

        # Covered pixels: gather their triangle's rows, evaluate the weights at the pixel centre.
        flat_ids = vis.triangle_id.view(-1)
        pixel = (flat_ids >= 0).nonzero().squeeze(1)
        face_key = flat_ids.index_select(0, pixel)
        batch = torch.div(pixel, height * width, rounding_mode="floor") if batch_size > 1 else None
        key = face_key if batch is None else face_key + batch * num_faces
        w_a, w_b, w_c, area, origin = weight_table.index_select(1, key).split([3, 3, 3, 1, 2])
        shading_rows = shading_table.index_select(1, key)
        uv_rows = self._uv_table(uvs, uv_faces, dtype).index_select(1, face_key)
        centre = _pixel_centres(pixel, width, height, dtype)
        local_x = centre[:, 0] - origin[0]
        local_y = centre[:, 1] - origin[1]
        weights = torch.addcmul(torch.addcmul(w_c, w_a, local_x), w_b, local_y)
        inv_sum = 1.0 / weights.sum(0)
        bary = weights * inv_sum
        shading = interpolate_rows(shading_rows, bary)
        uv = interpolate_rows(uv_rows, bary)
        albedo = sample_texture(texture, uv, batch).to(dtype)
        channels = [albedo * shading, torch.ones_like(inv_sum)[None]]

        per_pixel: dict[str, torch.Tensor] = {}
        if "normals" in buffers:
            normals = interpolate_rows(
                corner_rows(normals_v, faces, corner=corner).index_select(1, key), bary
            )
            per_pixel["normals"] = normals * torch.rsqrt((normals * normals).sum(0).clamp(min=1e-20))
        if "depth" in buffers:
            per_pixel["depth"] = area * inv_sum
        if "uv" in buffers:
            per_pixel["uv"] = uv
        if "shading" in buffers:
            per_pixel["shading"] = shading
        if "albedo" in buffers:
            per_pixel["albedo"] = albedo
        image_mask = torch.cat(channels, dim=0).t()  # (P, 4)
        target, source = pixel, image_mask
        if self.settings.antialias:
            extra_target, change = antialias_silhouettes(
                image_mask,
                pixel,
                xy,
                faces,
                topology.neighbours,
                vis,
                neighbour_key=topology.neighbour_key,
                ends=topology.ends,
            )
            target, source = torch.cat([pixel, extra_target]), torch.cat([image_mask, change])
        full = (
            image_mask.new_zeros(num_pixels, 4)
            .index_add(0, target, source)
            .view(batch_size, height, width, 4)
        )
        outputs: dict[str, torch.Tensor] = {}
        if per_pixel:
            packed = torch.cat(list(per_pixel.values()), dim=0)
            extra = packed.new_zeros(num_pixels, packed.shape[0]).index_copy(0, pixel, packed.t())
            start = 0
            for name, value in per_pixel.items():
                size = value.shape[0]
                outputs[name] = extra[:, start : start + size].reshape(batch_size, height, width, size)
                start += size
        if "triangle_id" in buffers:
            outputs["triangle_id"] = vis.triangle_id
        image, mask = full.split([3, 1], dim=-1)  # one backward node (slices would each zero-fill)
        return RenderOutput(image=image, mask=mask.clamp(0.0, 1.0), **outputs)
