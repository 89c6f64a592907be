"""Photo -> UV texture: sample the visible pixels of a fitted face into the ICT UV layout.

Steps (all NumPy, deterministic, no gradients):

1. :func:`uv_layout` rasterises the mesh in UV space once per resolution: for every texel, the
   triangle covering it and its barycentrics, so ``texel -> 3D point`` is a weighted sum of three
   vertices for any fitted shape.
2. :func:`unwrap_photo` places each texel's 3D point in the camera (OpenCV camera space, mm),
   projects it into the photo, tests visibility against a depth buffer rendered from the camera
   (:func:`ganfit_core.texture.raster.rasterize`), samples the colour bilinearly and gives it a
   confidence from the viewing angle (``normal . direction to camera``).
3. :func:`remove_shading` fits low-order spherical-harmonic shading (bands 0-2 on camera-space
   normals) to the sampled colours, assuming one skin albedo, and divides it out.
4. :func:`mirror_fill` fills poorly seen texels from the other side of the face. The ICT UV
   layout is mirror-symmetric (checked: mirroring a vertex x -> -x lands on a vertex whose u is
   1 - u to within 1e-6), so the mirror of a texture is a left-right flip of the array.

UV convention (docs/CONTRACTS.md): arrays are (R, R, ...) with row 0 at v = 1; texel (i, j) has
its centre at u = (j + 0.5) / R, v = 1 - (i + 0.5) / R.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ganfit_core.texture.raster import rasterize

__all__ = [
    "UVLayout",
    "Unwrapped",
    "uv_layout",
    "texel_points",
    "vertex_normals",
    "unwrap_photo",
    "remove_shading",
    "mirror_fill",
    "fill_outside",
    "sample_mask",
]

MIN_COSINE = 0.15  # texels seen at a grazing angle beyond ~81 degrees get no confidence
DEPTH_TOLERANCE_MM = 4.0


@dataclass(frozen=True)
class UVLayout:
    """Where each texel of an R x R UV map lies on the mesh.

    Attributes:
        resolution: R, texels per side.
        faces: (F, 3) int64 geometry triangles (into the vertices).
        triangle_id: (R, R) int64 triangle covering each texel, -1 outside the UV charts.
        barycentric: (R, R, 3) float64 corner weights of that triangle (0 outside).
        mask: (R, R) bool, True on texels covered by the mesh.
        nearest: (R, R) int64 flat index of the nearest covered texel (itself when covered); used to
            pad the charts so bilinear lookups near chart borders stay on skin colours.
    """

    resolution: int
    faces: np.ndarray
    triangle_id: np.ndarray
    barycentric: np.ndarray
    mask: np.ndarray
    nearest: np.ndarray


@dataclass(frozen=True)
class Unwrapped:
    """One photo sampled into UV space.

    Attributes:
        colour: (R, R, 3) float64 photo colours in [0, 1] (0 where unseen).
        weight: (R, R) float64 confidence in [0, 1]: 0 unseen/occluded, 1 seen head-on.
        normals: (R, R, 3) float64 unit camera-space normals of the texels (0 outside the charts).
        pixels: (R, R, 2) float64 where each texel projects in the photo, px (x, y); lets callers
            classify texels with photo-space masks and landmarks (:mod:`ganfit_core.texture.skin`).
    """

    colour: np.ndarray
    weight: np.ndarray
    normals: np.ndarray
    pixels: np.ndarray


def uv_layout(faces: np.ndarray, uvs: np.ndarray, uv_faces: np.ndarray, resolution: int) -> UVLayout:
    """Rasterise the mesh in UV space at ``resolution`` x ``resolution`` texels.

    Args:
        faces: (F, 3) geometry triangles; uvs: (T, 2) (u, v) in [0, 1], v up; uv_faces: (F, 3) into uvs.
    """
    faces = np.asarray(faces, dtype=np.int64)
    uvs = np.asarray(uvs, dtype=np.float64)
    uv_faces = np.asarray(uv_faces, dtype=np.int64)
    if faces.shape != uv_faces.shape:
        raise ValueError(f"faces and uv_faces must match, got {faces.shape} and {uv_faces.shape}")
    if resolution < 8:
        raise ValueError(f"resolution: expected >= 8 texels, got {resolution}")
    points = np.stack([uvs[:, 0] * resolution, (1.0 - uvs[:, 1]) * resolution], axis=1)
    raster = rasterize(points, uv_faces, resolution, resolution)
    mask = raster.mask
    _, (ri, rj) = ndimage.distance_transform_edt(~mask, return_indices=True)
    nearest = ri * resolution + rj
    return UVLayout(resolution, faces, raster.triangle_id, raster.barycentric, mask, nearest)


def texel_points(layout: UVLayout, values: np.ndarray) -> np.ndarray:
    """Interpolate per-vertex ``values`` (V, C) at every texel -> (R, R, C) (0 outside the charts)."""
    tid = np.where(layout.mask, layout.triangle_id, 0)
    corners = values[layout.faces[tid]]  # (R, R, 3, C)
    out = (layout.barycentric[..., None] * corners).sum(axis=2)
    return np.where(layout.mask[..., None], out, 0.0)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (V, 3) of a triangle mesh (V, 3), (F, 3)."""
    tri = vertices[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(vertices, dtype=np.float64)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_n)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def project_points(points_cam: np.ndarray, focal: float, principal: tuple[float, float]) -> np.ndarray:
    """OpenCV pinhole projection of (..., 3) camera-space points (mm) -> (..., 2) pixels."""
    z = np.maximum(points_cam[..., 2:3], 1e-6)
    return points_cam[..., :2] / z * focal + np.asarray(principal, dtype=np.float64)


def unwrap_photo(
    image: np.ndarray,
    vertices_cam: np.ndarray,
    layout: UVLayout,
    focal: float,
    principal: tuple[float, float],
    *,
    visibility_scale: float = 0.5,
) -> Unwrapped:
    """Sample a photo into the UV layout, with per-texel visibility and viewing-angle confidence.

    Args:
        image: (H, W, 3) float photo in [0, 1] (or uint8, converted).
        vertices_cam: (V, 3) fitted vertices in camera space (OpenCV, mm), the face in front (z > 0).
        layout: from :func:`uv_layout` for the same mesh topology.
        focal: focal length in pixels of ``image``; principal: (cx, cy) in pixels.
        visibility_scale: the depth buffer is rendered at this fraction of the image size (cheaper;
            visibility needs no more detail than the texel density).
    """
    img = np.asarray(image)
    img = img.astype(np.float64) / 255.0 if img.dtype == np.uint8 else img.astype(np.float64)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image: expected shape (H, W, 3), got {img.shape}")
    verts = np.asarray(vertices_cam, dtype=np.float64)
    if verts.ndim != 2 or verts.shape[1] != 3:
        raise ValueError(f"vertices_cam: expected shape (V, 3), got {verts.shape}")
    if not (verts[:, 2] > 0).all():
        raise ValueError("vertices_cam: every vertex must be in front of the camera (z > 0)")
    height, width = img.shape[:2]

    normals_v = vertex_normals(verts, layout.faces)
    points = texel_points(layout, verts)  # (R, R, 3)
    normals = texel_points(layout, normals_v)
    normals /= np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-12)
    pix = project_points(points, focal, principal)  # (R, R, 2)

    # Depth buffer from the camera, at visibility_scale x the photo's resolution.
    zh, zw = max(1, round(height * visibility_scale)), max(1, round(width * visibility_scale))
    proj_v = project_points(verts, focal, principal) * np.array([zw / width, zh / height])
    zbuf = rasterize(proj_v, layout.faces, zh, zw, depth=verts[:, 2]).depth
    col = np.clip(np.floor(pix[..., 0] * zw / width).astype(np.int64), 0, zw - 1)
    row = np.clip(np.floor(pix[..., 1] * zh / height).astype(np.int64), 0, zh - 1)
    inside = (pix[..., 0] >= 0) & (pix[..., 0] < width) & (pix[..., 1] >= 0) & (pix[..., 1] < height)
    visible = inside & layout.mask & (points[..., 2] <= zbuf[row, col] + DEPTH_TOLERANCE_MM)

    to_camera = -points / np.maximum(np.linalg.norm(points, axis=-1, keepdims=True), 1e-12)
    cosine = (normals * to_camera).sum(axis=-1)
    weight = np.clip((cosine - MIN_COSINE) / (1.0 - MIN_COSINE), 0.0, 1.0) * visible

    # Bilinear sampling; map_coordinates indexes pixel centres, which sit at x - 0.5.
    coords = [pix[..., 1].ravel() - 0.5, pix[..., 0].ravel() - 0.5]
    colour = np.stack(
        [ndimage.map_coordinates(img[..., c], coords, order=1, mode="nearest") for c in range(3)], axis=-1
    ).reshape(points.shape)
    colour = np.where(weight[..., None] > 0, colour, 0.0)
    return Unwrapped(colour=colour, weight=weight, normals=normals, pixels=pix)


def sh_basis_unnormalised(normals: np.ndarray) -> np.ndarray:
    """Real spherical-harmonic polynomials of bands 0-2 at unit normals (..., 3) -> (..., 9).

    Constant factors are dropped: :func:`remove_shading` only needs a basis spanning the space.
    """
    x, y, z = normals[..., 0], normals[..., 1], normals[..., 2]
    one = np.ones_like(x)
    return np.stack([one, y, z, x, x * y, y * z, 3 * z * z - 1, x * z, x * x - y * y], axis=-1)


def remove_shading(
    unwrapped: Unwrapped, *, min_weight: float = 0.3, clamp: tuple[float, float] = (0.4, 2.5),
    skin: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Divide out low-frequency (SH bands 0-2) shading, assuming a single skin albedo.

    Fits ``colour_c ~ B(n) @ L_c`` by weighted least squares over confidently seen texels (twice,
    dropping the 20 % worst-fitting texels -- eyes, brows, hair -- the second time), then normalises
    each channel's shading to mean 1 over the seen texels so the albedo keeps the photo's colour.
    ``skin`` (R, R) in [0, 1], when given, multiplies the confidence of the fit (only skin texels
    inform the lighting).

    Returns:
        albedo: (R, R, 3) float64 in [0, 1] (0 where unseen); shading: (R, R, 3) relative shading.
    """
    w = unwrapped.weight if skin is None else unwrapped.weight * np.asarray(skin, dtype=np.float64)
    sel = w > min_weight
    if sel.sum() < 50:
        raise ValueError(f"remove_shading: only {int(sel.sum())} texels seen with weight > {min_weight}")
    basis = sh_basis_unnormalised(unwrapped.normals)
    a, c, ws = basis[sel], unwrapped.colour[sel], w[sel]
    coef = _weighted_lstsq(a, c, ws)
    resid = np.abs(a @ coef - c).sum(axis=1)
    good = resid <= np.quantile(resid, 0.8)
    coef = _weighted_lstsq(a[good], c[good], ws[good])
    shading = basis @ coef  # (R, R, 3)
    mean = (shading[sel] * w[sel, None]).sum(axis=0) / w[sel].sum()
    shading = np.clip(shading / np.maximum(mean, 1e-6), *clamp)
    albedo = np.clip(unwrapped.colour / shading, 0.0, 1.0)
    return np.where(unwrapped.weight[..., None] > 0, albedo, 0.0), shading


def _weighted_lstsq(a: np.ndarray, b: np.ndarray, w: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    """argmin_x sum_i w_i |a_i x - b_i|^2 + ridge |x|^2, for a (N, K), b (N, C) -> (K, C)."""
    aw = a * w[:, None]
    lhs = a.T @ aw + ridge * np.eye(a.shape[1])
    return np.linalg.solve(lhs, aw.T @ b)


def mirror_fill(
    texture: np.ndarray, weight: np.ndarray, *, mirror_trust: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Blend each texel with its mirror image (left-right flip of the ICT UV map).

    ``out = (w t + m w' t') / (w + m w')`` with ``t', w'`` the flipped texture and weight and
    ``m = mirror_trust``: a well-seen texel keeps its own colour, an unseen one takes its mirror's.

    Args:
        texture: (R, R, 3); weight: (R, R) in [0, 1].

    Returns:
        texture (R, R, 3) and combined weight ``min(1, w + m w')`` (R, R).
    """
    flipped_t = texture[:, ::-1]
    flipped_w = weight[:, ::-1] * mirror_trust
    total = weight + flipped_w
    blend = texture * weight[..., None] + flipped_t * flipped_w[..., None]
    out = blend / np.maximum(total, 1e-12)[..., None]
    out = np.where(total[..., None] > 0, out, 0.0)
    return out, np.clip(weight + weight[:, ::-1] * mirror_trust, 0.0, 1.0)


def fill_outside(texture: np.ndarray, layout: UVLayout) -> np.ndarray:
    """Copy the nearest chart texel into every texel outside the UV charts: (R, R, C) -> (R, R, C)."""
    flat = texture.reshape(layout.resolution * layout.resolution, -1)
    return flat[layout.nearest.ravel()].reshape(texture.shape)


def sample_mask(mask: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Bilinear lookup of a photo-space mask (H, W) in [0, 1] at texel projections (R, R, 2) px -> (R, R).

    Points outside the photo read 0.
    """
    m = np.asarray(mask, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"mask: expected shape (H, W), got {m.shape}")
    coords = [pixels[..., 1].ravel() - 0.5, pixels[..., 0].ravel() - 0.5]
    return ndimage.map_coordinates(m, coords, order=1, mode="constant", cval=0.0).reshape(pixels.shape[:-1])
