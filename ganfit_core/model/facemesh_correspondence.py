"""Dense correspondence: MediaPipe FaceMesh's 468 points → points on the ICT face surface.

Each FaceMesh point gets a triangle of the ICT ``face`` region and barycentric coordinates in it,
so a fitter can place the 468 points on any shape of the morphable model
(:meth:`FaceMeshCorrespondence.points`) and compare their projections with FaceMesh's output.

How it is built (:func:`build_correspondence`, asset ``ict_facemesh_correspondence``): FaceMesh
(our port) runs on :data:`NUM_RENDERS` renders of ICT faces with known parameters — random identity,
expression, texture (PCA prior), lighting, focal length and head pose (yaw up to ±45°). Under each
predicted point the render's triangle buffer gives the visible surface; the camera ray through the
point meets that triangle at a surface point, which is carried (same triangle, same barycentrics)
to the mean face. A sample is kept only where FaceMesh is confident, the surface is not seen at a
grazing angle, and it is not occluded: the render depth there agrees with FaceMesh's own relative
depth (after a per-render robust affine fit of one to the other). Per point, the samples' robust
median in mean-face coordinates is snapped to the closest surface point; the samples' spread about
it (mm) is kept as the point's reliability, for per-point weights.

Everything is in mm, ICT model space (+y up, +z out of the face); pixels are continuous with
(0, 0) the top-left corner (docs/CONTRACTS.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "ASSET_NAME",
    "FACE_OVAL",
    "NUM_RENDERS",
    "FaceMeshCorrespondence",
    "RenderedFace",
    "build_correspondence",
    "closest_points_on_mesh",
    "load_facemesh_correspondence",
    "render_face",
    "sample_surface_points",
]

ASSET_NAME = "ict_facemesh_correspondence"
REGION = "face"
NUM_RENDERS = 160
RENDER_SIZE = 256
MAX_YAW_DEG = 45.0
#: Samples whose surface is seen at a grazing angle (|cos| below this) slide too much to be kept.
MIN_VIEW_COSINE = 0.15
#: A sample is occluded when the render depth is this much (mm) nearer than FaceMesh's depth predicts.
OCCLUSION_MM = 6.0
MIN_PRESENCE = 0.5
BUILD_SEED = 20261201
#: FaceMesh's face-oval (silhouette) points, MediaPipe's ``FACEMESH_FACE_OVAL`` in order round the
#: face from the forehead centre: these slide with the pose like the 68-point jawline does.
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)


@dataclass(frozen=True)
class FaceMeshCorrespondence:
    """468 FaceMesh points as surface points of the ICT ``face`` region.

    Attributes:
        triangles: (468,) int64 indices into the region's ``faces``.
        barycentric: (468, 3) float32, non-negative, rows summing to 1.
        spread_mm: (468,) float32 robust spread of the build samples about the point (median
            distance, mm): small = FaceMesh puts this point on the same surface point whatever the
            face and pose (eye corners ~1 mm), large = it slides (face contour).
        num_samples: (468,) int64 renders whose sample was kept.
    """

    triangles: np.ndarray
    barycentric: np.ndarray
    spread_mm: np.ndarray
    num_samples: np.ndarray

    def points(self, vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """The 468 points (..., 468, 3) on a mesh ``vertices`` (..., V, 3) with triangles ``faces`` (F, 3)."""
        tri = faces[torch.as_tensor(self.triangles, device=faces.device)]  # (468, 3)
        bary = torch.as_tensor(self.barycentric, dtype=vertices.dtype, device=vertices.device)
        return (vertices[..., tri, :] * bary[..., None]).sum(dim=-2)

    def weights(self, floor_mm: float = 1.0) -> np.ndarray:
        """Per-point weights (468,) float64 = ``(floor_mm / max(spread, floor_mm))**2`` in (0, 1]."""
        return (floor_mm / np.maximum(self.spread_mm.astype(np.float64), floor_mm)) ** 2


def load_facemesh_correspondence(path: Path | None = None) -> FaceMeshCorrespondence:
    """The correspondence from the ``ict_facemesh_correspondence`` asset (or ``path``)."""
    from safetensors.numpy import load_file

    if path is None:
        from ganfit_core.assets import resolve

        path = resolve(ASSET_NAME)
    data = load_file(str(path))
    return FaceMeshCorrespondence(
        triangles=data["triangles"].astype(np.int64),
        barycentric=data["barycentric"],
        spread_mm=data["spread_mm"],
        num_samples=data["num_samples"].astype(np.int64),
    )


# ---------------------------------------------------------------------------------------------
# Renders with known geometry


@dataclass(frozen=True)
class RenderedFace:
    """An ICT face rendered with known parameters.

    Attributes:
        image: (S, S, 3) uint8.
        vertices: (V, 3) float32 mm, model space (identity + expression applied).
        vertices_cam: (V, 3) float32 mm, OpenCV camera space.
        triangle_id: (S, S) int64 index into ``faces`` per pixel, -1 = background.
        focal: px; the principal point is the image centre.
        landmarks68: (68, 2) float64 px, projections of the model's 68 landmark vertices.
        yaw_deg: head yaw.
    """

    image: np.ndarray
    vertices: np.ndarray
    vertices_cam: np.ndarray
    triangle_id: np.ndarray
    focal: float
    landmarks68: np.ndarray
    yaw_deg: float


@torch.no_grad()
def render_face(model: torch.nn.Module, renderer: object, texture_prior: torch.nn.Module,
                generator: torch.Generator, *, size: int = RENDER_SIZE,
                max_yaw_deg: float = MAX_YAW_DEG, fill_holes: bool = True) -> RenderedFace:
    """One random ICT face (identity ~ N(0, 1), a few expressions, PCA texture, random light, focal
    length for a 15–60° field of view, yaw up to ``max_yaw_deg``), deterministic in ``generator``.

    The ``face`` region has holes at the eyes and mouth; with ``fill_holes`` they show an eye
    (off-white with a brown iris disk) and a dark mouth interior instead of the background."""
    from ganfit_core.render.camera import FRONTAL_ROTATION, PinholeCamera, axis_angle_to_matrix, project
    from ganfit_core.render.lighting import ambient_sh

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=generator))

    identity = torch.randn(1, model.num_identity, generator=generator)
    expression = torch.zeros(1, model.num_expression)
    if float(torch.rand((), generator=generator)) < 0.6:
        active = torch.randperm(model.num_expression, generator=generator)[:4]
        expression[0, active] = torch.rand(4, generator=generator) * 0.6
    vertices = model(identity, expression)
    yaw = uniform(-max_yaw_deg, max_yaw_deg)
    pitch = uniform(-15, 15)
    roll = uniform(-8, 8)
    rotation = torch.tensor([[math.radians(pitch), math.radians(yaw), math.radians(roll)]])
    fov = uniform(15.0, 60.0)
    focal = 0.5 * size / math.tan(math.radians(fov) / 2)
    width_mm = float(vertices[0, :, 0].max() - vertices[0, :, 0].min())
    depth = focal * width_mm / (uniform(0.45, 0.65) * size)
    shift = [uniform(-0.04, 0.04) * size * depth / focal for _ in range(2)]
    cam_vertices = vertices @ (FRONTAL_ROTATION @ axis_angle_to_matrix(rotation)).transpose(1, 2)
    cam_vertices = cam_vertices + torch.tensor([[shift[0], shift[1], depth]])
    camera = PinholeCamera(torch.tensor([focal]), torch.tensor([[size / 2, size / 2]]), size, size)
    latent = torch.randn(1, texture_prior.latent_size, generator=generator) * 0.8
    sh = ambient_sh(1, uniform(0.7, 1.0))
    sh[:, 1:4, :] += (torch.rand(3, generator=generator) * 2 - 1)[None, :, None] * 0.3
    out = renderer.render(cam_vertices, model.faces, model.uvs, model.uv_faces,
                          texture_prior.decode(latent), camera, sh, buffers=frozenset({"triangle_id"}))
    background = torch.rand(3, generator=generator) * 0.8 + 0.1
    landmarks = project(cam_vertices[:, model.landmark_indices], camera)[0]
    mask = out.mask[0].numpy()
    behind = np.broadcast_to(background.numpy(), mask.shape[:2] + (3,))
    if fill_holes:
        behind = _fill_eyes_and_mouth(mask[..., 0], landmarks.numpy(), behind)
    image = out.image[0].numpy() + (1 - mask) * behind
    return RenderedFace(
        image=(np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8),
        vertices=vertices[0].numpy(),
        vertices_cam=cam_vertices[0].numpy(),
        triangle_id=out.triangle_id[0].numpy().astype(np.int64),
        focal=float(focal),
        landmarks68=landmarks.numpy().astype(np.float64),
        yaw_deg=yaw,
    )


def _fill_eyes_and_mouth(mask: np.ndarray, landmarks68: np.ndarray, behind: np.ndarray) -> np.ndarray:
    """``behind`` (S, S, 3) with the mesh's holes (background pixels enclosed by the face, from the
    coverage ``mask`` (S, S)) painted: eye holes (those holding an eye's landmark centre) off-white
    with a brown iris disk of 0.3 eye widths, the others (the mouth) dark red."""
    from scipy.ndimage import binary_fill_holes, label

    holes = binary_fill_holes(mask > 0.5) & (mask <= 0.5)
    if not holes.any():
        return behind
    labels, _ = label(holes)
    size = mask.shape[0]
    centres = [landmarks68[first : first + 6].mean(axis=0) for first in (36, 42)]
    radii = [0.3 * np.linalg.norm(landmarks68[first + 3] - landmarks68[first]) for first in (36, 42)]
    pixels = [(int(np.clip(y, 0, size - 1)), int(np.clip(x, 0, size - 1))) for x, y in centres]
    eye_labels = {int(labels[row, col]) for row, col in pixels} - {0}
    eyes = np.isin(labels, sorted(eye_labels))
    out = np.array(behind, dtype=np.float32)
    out[holes & ~eyes] = (0.2, 0.06, 0.06)
    out[eyes] = (0.8, 0.78, 0.75)
    ys, xs = np.mgrid[:size, :size] + 0.5
    for centre, radius in zip(centres, radii, strict=True):
        out[eyes & ((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 < radius**2)] = (0.25, 0.18, 0.12)
    return out


# ---------------------------------------------------------------------------------------------
# Geometry helpers


def _closest_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentrics (N, 3) of the closest point to ``p`` on triangles ``a, b, c`` (all (N, 3)).

    Ericson, Real-Time Collision Detection, 5.1.5 (vectorised over N).
    """
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    bp = p - b
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    cp = p - c
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = va + vb + vc
        v_in, w_in = vb / denom, vc / denom
        t_ab = d1 / (d1 - d3)
        t_ac = d2 / (d2 - d6)
        t_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
    out = np.stack([1 - v_in - w_in, v_in, w_in], axis=-1)
    # Ericson tests vertex A, vertex B, edge AB, vertex C, edge AC, edge BC and takes the first
    # match; applied here in reverse order, each overwriting, so the first match wins as well
    cases = [
        ((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), lambda: np.stack([0 * t_bc, 1 - t_bc, t_bc], -1)),
        ((vb <= 0) & (d2 >= 0) & (d6 <= 0), lambda: np.stack([1 - t_ac, 0 * t_ac, t_ac], -1)),
        ((d6 >= 0) & (d5 <= d6), lambda: np.tile([0.0, 0.0, 1.0], (len(p), 1))),
        ((vc <= 0) & (d1 >= 0) & (d3 <= 0), lambda: np.stack([1 - t_ab, t_ab, 0 * t_ab], -1)),
        ((d3 >= 0) & (d4 <= d3), lambda: np.tile([0.0, 1.0, 0.0], (len(p), 1))),
        ((d1 <= 0) & (d2 <= 0), lambda: np.tile([1.0, 0.0, 0.0], (len(p), 1))),
    ]
    for mask, value in cases:
        if mask.any():
            out[mask] = value()[mask]
    return np.nan_to_num(out, nan=1.0 / 3.0)


def closest_points_on_mesh(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
                           *, candidates: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Closest surface point of a mesh to each of ``points`` (N, 3).

    Searches the ``candidates`` triangles with the nearest centroids (exact for points near a
    finely, evenly meshed surface, as here).

    Returns:
        triangles (N,) int64 and barycentrics (N, 3) float64.
    """
    tri = vertices[faces]  # (F, 3, 3)
    centroids = tri.mean(axis=1)
    d2 = ((points[:, None, :] - centroids[None]) ** 2).sum(-1)
    near = np.argpartition(d2, min(candidates, len(faces) - 1), axis=1)[:, :candidates]  # (N, K)
    n, k = near.shape
    a, b, c = (tri[near.reshape(-1), i] for i in range(3))
    rep = np.repeat(points, k, axis=0)
    bary = _closest_on_triangles(rep, a, b, c)
    closest = bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c
    dist = ((closest - rep) ** 2).sum(-1).reshape(n, k)
    best = dist.argmin(axis=1)
    rows = np.arange(n) * k + best
    return near[np.arange(n), best].astype(np.int64), bary[rows]


def sample_surface_points(render: RenderedFace, points: np.ndarray, faces: np.ndarray) -> tuple[
        np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The visible surface under image points: for ``points`` (N, 3) FaceMesh output (x, y px, z),
    return triangles (N,) int64 (-1: background or out of the image), barycentrics (N, 3), the view
    cosine (N,) and the camera depth (N,) mm of the ray's hit."""
    size = render.image.shape[0]
    n = len(points)
    triangles = np.full(n, -1, np.int64)
    bary = np.zeros((n, 3))
    cosine = np.zeros(n)
    depth = np.zeros(n)
    cols, rows = np.floor(points[:, 0]).astype(int), np.floor(points[:, 1]).astype(int)
    inside = (cols >= 0) & (cols < size) & (rows >= 0) & (rows < size)
    triangles[inside] = render.triangle_id[rows[inside], cols[inside]]
    hit = triangles >= 0
    if not hit.any():
        return triangles, bary, cosine, depth
    a, b, c = (render.vertices_cam[faces[triangles[hit], i]].astype(np.float64) for i in range(3))
    rays = np.stack([(points[hit, 0] - size / 2) / render.focal, (points[hit, 1] - size / 2) / render.focal,
                     np.ones(hit.sum())], axis=1)
    normal = np.cross(b - a, c - a)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    t = (normal * a).sum(-1) / (normal * rays).sum(-1)
    surface = rays * t[:, None]
    bary[hit] = _closest_on_triangles(surface, a, b, c)
    cosine[hit] = np.abs((normal * rays).sum(-1)) / np.linalg.norm(rays, axis=1)
    depth[hit] = surface[:, 2]
    return triangles, bary, cosine, depth


def _robust_centre(samples: np.ndarray) -> tuple[np.ndarray, float]:
    """Coordinate-wise median after dropping samples far from a first median; and the spread (mm)."""
    centre = np.median(samples, axis=0)
    dist = np.linalg.norm(samples - centre, axis=1)
    keep = dist <= max(3.0 * 1.4826 * float(np.median(dist)), 2.0)
    centre = np.median(samples[keep], axis=0)
    return centre, float(np.median(np.linalg.norm(samples - centre, axis=1)))


def _not_occluded(fm_z: np.ndarray, depth: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Samples whose render depth (mm) agrees with FaceMesh's relative depth ``fm_z`` (px).

    Fits ``depth ≈ scale * fm_z + offset`` by least squares trimmed of outliers (2.5 robust
    sigmas, twice); a sample whose visible surface is more than :data:`OCCLUSION_MM` nearer than
    the fit predicts lies on something in front of FaceMesh's point (occluded).
    """
    ok = usable.copy()
    if usable.sum() < 20:
        return np.zeros_like(usable)
    for _ in range(3):
        design = np.stack([fm_z[ok], np.ones(ok.sum())], axis=1)
        (scale, offset), *_ = np.linalg.lstsq(design, depth[ok], rcond=None)
        residual = depth - (scale * fm_z + offset)
        sigma = 1.4826 * float(np.median(np.abs(residual[ok]))) + 1e-6
        ok = usable & (np.abs(residual) <= max(2.5 * sigma, OCCLUSION_MM))
    return usable & (residual > -OCCLUSION_MM)


# ---------------------------------------------------------------------------------------------
# Builder


def collect_samples(num_renders: int = NUM_RENDERS, *, seed: int = BUILD_SEED,
                    source_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render, run FaceMesh, sample the surface.

    Returns:
        samples (R, 468, 3) float64: each kept sample's surface point carried to the mean face (mm,
        model space), NaN where rejected; the mean face's vertices (V, 3) mm and triangles (F, 3),
        for :func:`aggregate`. (Weighting the median by view cosine or by frontality was tried and
        did not lower the held-out reprojection error.)
    """
    from ganfit_core.face.facemesh import FaceMeshNet, dense_landmarks, load_facemesh_net
    from ganfit_core.model.morphable import load_morphable_model
    from ganfit_core.render.renderer import make_renderer
    from ganfit_core.texture.pca import load_pca_prior

    if source_dir is not None:
        from ganfit_core.assets import resolve

        for name in ("ict_face_model", "mediapipe_face_landmark", "texture_pca"):
            resolve(name, source_dir=source_dir)
    model = load_morphable_model(REGION)
    renderer = make_renderer("torch", device="cpu")
    prior = load_pca_prior()
    net: FaceMeshNet = load_facemesh_net()
    faces = model.faces.numpy()
    mean = model.mean.numpy().astype(np.float64)
    generator = torch.Generator().manual_seed(seed)
    samples = np.full((num_renders, 468, 3), np.nan)
    for r in range(num_renders):
        render = render_face(model, renderer, prior, generator)
        dense = dense_landmarks(render.image, render.landmarks68, net=net)
        if dense.presence < MIN_PRESENCE:
            continue
        triangles, bary, cosine, depth = sample_surface_points(render, dense.points, faces)
        usable = (triangles >= 0) & (cosine >= MIN_VIEW_COSINE)
        keep = _not_occluded(dense.points[:, 2], depth, usable)
        tri = faces[triangles[keep]]
        samples[r, keep] = (mean[tri] * bary[keep, :, None]).sum(axis=1)
    return samples, mean, faces


def aggregate(samples: np.ndarray, mean: np.ndarray, faces: np.ndarray, *, min_samples: int = 5) -> dict[
        str, np.ndarray]:
    """Per point: robust centre of the samples (R, 468, 3), snapped to the mean-face surface."""
    count = np.isfinite(samples[..., 0]).sum(axis=0)
    if (count < min_samples).any():
        bad = np.flatnonzero(count < min_samples)
        raise RuntimeError(f"FaceMesh points {bad.tolist()} have fewer than {min_samples} usable samples")
    centres = np.zeros((samples.shape[1], 3))
    spread = np.zeros(samples.shape[1])
    for i in range(samples.shape[1]):
        valid = samples[np.isfinite(samples[:, i, 0]), i]
        centres[i], spread[i] = _robust_centre(valid)
    triangles, bary = closest_points_on_mesh(centres, mean, faces)
    bary = np.clip(bary, 0.0, 1.0)
    bary /= bary.sum(axis=1, keepdims=True)
    return {
        "triangles": triangles.astype(np.int64),
        "barycentric": np.round(bary, 5).astype(np.float32),
        "spread_mm": np.round(spread, 3).astype(np.float32),
        "num_samples": count.astype(np.int64),
    }


def build_correspondence(source_dir: Path, out_path: Path) -> None:
    """Asset builder (``ict_facemesh_correspondence``): renders → FaceMesh → surface samples → snap.

    ``source_dir`` is the shared source root (ICT-FaceKit, MediaPipe and london-faces under it) for
    the three assets it uses: ``ict_face_model``, ``mediapipe_face_landmark``, ``texture_pca``.
    Runs single-threaded so that the same inputs give the same bytes (~20 s on a CPU).
    """
    from safetensors.numpy import save_file

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        samples, mean, faces = collect_samples(source_dir=Path(source_dir))
    finally:
        torch.set_num_threads(threads)
    tensors = aggregate(samples, mean, faces)
    save_file(tensors, str(out_path), metadata={
        "source": f"FaceMesh (mediapipe_face_landmark) on {NUM_RENDERS} ICT renders, region {REGION!r}, "
                  f"yaw up to {MAX_YAW_DEG:g} deg, seed {BUILD_SEED}",
    })
