"""Export a :class:`~ganfit_core.fit.types.FitResult` to files.

Units and axes:

- **GLB** (``mesh.glb``): glTF 2.0 binary, **metres** (glTF's unit), the model's own axes: +y up,
  +z out of the face (towards a viewer in front of it), +x towards the subject's left. The face is
  exported in its fitted shape and expression but without the head pose, so it faces a default
  glTF/three.js/Blender camera. The UV albedo texture is embedded as the PBR base colour
  (metallic 0, roughness 0.9). UV seams: every distinct (vertex, UV) pair of the triangles becomes
  one glTF vertex. The scene holds the ``face`` mesh first, then (for an ICT face, see below) the
  untextured, double-sided ``sclera`` (off-white), ``iris`` (dark brown) and ``pupil`` meshes.
- **OBJ** (``mesh.obj`` + ``mesh.mtl`` + ``texture.png``): **millimetres**, same axes, ``f v/vt``
  faces indexing shared positions and UVs (v up, OBJ convention); the MTL names the PNG as ``map_Kd``.
  Eyes follow as objects ``sclera``, ``iris`` and ``pupil`` (``f v`` faces, plain ``Kd`` materials).
- **Eyes**: the ICT ``face`` region has holes at the eyes; when a result's mesh is an ICT region
  prefix that stops before the eyeballs (``narrow_face``, ``face``, ``face_neck``), the ICT eyeballs
  (full-mesh vertices 21451-24590) are added, shaped by the result's own ``identity`` and
  ``expression`` coefficients so they sit in the fitted sockets. Their ICT UVs lie on other UV tiles,
  so they get flat colours instead of the face texture.
- ``texture.png``: the UV albedo, row 0 at v = 1.
- ``params.json``: every fitted parameter (see ``ganfit_core.fit.params``), the camera in the crop
  (``focal_px``, ``principal_px``, ``rotation_matrix``, ``translation_mm``; OpenCV camera axes,
  ``v_cam = v_model @ R.T + t``), ``crop_to_photo``, ``photo_size``, the config and the units.
- ``losses.json``: final loss terms, seconds per stage, warnings and the per-step history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from ganfit_core.fit.types import FitResult

__all__ = ["export_glb", "export_obj", "export_texture", "export_params", "export_losses", "export_all",
           "split_seams", "EyeMeshes", "eye_meshes"]

MM_TO_M = 1e-3
UNITS = {
    "length_model": "millimetres (params, OBJ); metres in the GLB",
    "focal_px": "pixels of the face crop",
    "rotation": "axis-angle, radians, model space, relative to the frontal camera rotation diag(1,-1,-1)",
    "camera_axes": "OpenCV: +x right, +y down, +z forward; v_cam = v_model @ R.T + t",
    "model_axes": "+y up, +z out of the face, +x towards the subject's left",
    "identity": "standard deviations of the ICT identity modes",
    "expression": "ICT/ARKit blendshape weights in [0, 1]",
    "sh": "spherical harmonics bands 0-2 (9 x RGB) on camera-space normals; image = albedo * shading",
}

# ICT full-mesh vertex ranges (inclusive starts, exclusive ends) of the eyeball parts.
EYE_VERTICES = (21451, 24591)
SCLERA_VERTICES = ((21451, 22221), (23021, 23791))
IRIS_VERTICES = ((22221, 23021), (23791, 24591))
# Vertex counts of the ICT regions that stop before the eyeballs (narrow_face, face, face_neck).
_EYELESS_REGION_SIZES = frozenset({6706, 9409, 11248})
SCLERA_RGB = (0.92, 0.90, 0.88)
IRIS_RGB = (0.25, 0.16, 0.10)
PUPIL_RGB = (0.03, 0.03, 0.03)
IRIS_HALF_ANGLE_DEG = 25.0  # the ICT iris disc and cornea bulge end ~24-26 degrees off the gaze axis
PUPIL_HALF_ANGLE_DEG = 7.5  # the concave pupil of the ICT inner ball


@dataclass(frozen=True)
class _EyeBasis:
    """The eyeball part of the ICT model: ``mean`` (Ve, 3) mm, ``identity_basis`` (100, Ve, 3) mm,
    ``expression_basis`` (53, Ve, 3) mm, ``sclera``/``iris``/``pupil`` (F, 3) int64 triangles into Ve."""

    mean: np.ndarray
    identity_basis: np.ndarray
    expression_basis: np.ndarray
    sclera: np.ndarray
    iris: np.ndarray
    pupil: np.ndarray


@dataclass(frozen=True)
class EyeMeshes:
    """Eyeballs in model space: ``vertices`` (Ve, 3) float32 mm; ``sclera``, ``iris`` and ``pupil``
    (F, 3) int64 triangles into ``vertices``."""

    vertices: np.ndarray
    sclera: np.ndarray
    iris: np.ndarray
    pupil: np.ndarray

    def parts(self) -> tuple[tuple[str, np.ndarray, tuple[float, float, float]], ...]:
        """``(name, faces, rgb)`` of each flat-coloured part."""
        return (("sclera", self.sclera, SCLERA_RGB), ("iris", self.iris, IRIS_RGB),
                ("pupil", self.pupil, PUPIL_RGB))


def _in_ranges(ids: np.ndarray, ranges: tuple[tuple[int, int], ...]) -> np.ndarray:
    return np.logical_or.reduce([(ids >= a) & (ids < b) for a, b in ranges])


def _front_angles(mean: np.ndarray, faces: np.ndarray, sclera_ids: np.ndarray) -> np.ndarray:
    """Angle (degrees) off one eye's gaze axis of each triangle's centroid, as seen from the front.

    The centre and radius are those of the least-squares sphere through the sclera vertices
    ``mean[sclera_ids]`` (mm); the axis points to the cornea bulge (sclera vertices more than 0.4 mm
    outside that sphere). The angle is ``asin(distance from the axis / radius)`` in front of the
    centre and 180 degrees minus that behind it, so the pupil's inward funnel counts as the centre.
    """
    points = mean[sclera_ids]
    system = np.concatenate([2.0 * points, np.ones((len(points), 1))], axis=1)
    solution = np.linalg.lstsq(system, (points ** 2).sum(axis=1), rcond=None)[0]
    centre = solution[:3]
    radius = np.sqrt(solution[3] + centre @ centre)
    offsets = points - centre
    cornea = np.linalg.norm(offsets, axis=1) > radius + 0.4
    if not cornea.any():
        raise ValueError("ICT eyeball: found no cornea bulge on the sclera, cannot orient the eye")
    axis = offsets[cornea].mean(axis=0)
    axis /= np.linalg.norm(axis)
    rays = mean[faces].mean(axis=1) - centre
    axial = rays @ axis
    radial = np.linalg.norm(rays - axial[:, None] * axis, axis=1)
    angle = np.degrees(np.arcsin(np.clip(radial / radius, 0.0, 1.0)))
    return np.where(axial > 0, angle, 180.0 - angle)


@lru_cache(maxsize=2)
def _eye_basis(path: str | None) -> _EyeBasis:
    """Slice the eyeballs out of the full ICT model once per model file (~5 MB kept).

    ICT eyes are two shells: the outer ``sclera`` (with the cornea bulge) and an inner ``iris`` ball
    whose front is the iris disc. Opaque flat colours need the cornea removed, so triangles within
    :data:`IRIS_HALF_ANGLE_DEG` of the gaze axis are: dropped from the sclera shell, coloured as the
    iris on the inner ball (its centre, within :data:`PUPIL_HALF_ANGLE_DEG`, as the pupil); the pupil
    is an opening, so the back of both balls behind it is coloured as the pupil too; the rest of the
    inner ball (hidden) is coloured as sclera.
    """
    from ganfit_core.model.morphable import load_morphable_model

    full = load_morphable_model("full", path=Path(path) if path is not None else None)
    v0, v1 = EYE_VERTICES
    mean = full.mean.numpy()
    faces = full.faces.numpy()
    faces = faces[np.all((faces >= v0) & (faces < v1), axis=1)]
    sclera, iris, pupil = [], [], []
    for sclera_range, iris_range in zip(SCLERA_VERTICES, IRIS_VERTICES, strict=True):
        outer = faces[np.all(_in_ranges(faces, (sclera_range,)), axis=1)]
        inner = faces[np.all(_in_ranges(faces, (iris_range,)), axis=1)]
        sclera_ids = np.arange(*sclera_range)
        outer_angles = _front_angles(mean, outer, sclera_ids)
        inner_angles = _front_angles(mean, inner, sclera_ids)
        front_outer = outer_angles < IRIS_HALF_ANGLE_DEG
        front_inner = inner_angles < IRIS_HALF_ANGLE_DEG
        # the pupil is an opening: the inside of the ball seen through it must be dark too
        dark_outer = outer_angles > 180.0 - IRIS_HALF_ANGLE_DEG
        dark_inner = (inner_angles < PUPIL_HALF_ANGLE_DEG) | (inner_angles > 180.0 - IRIS_HALF_ANGLE_DEG)
        sclera += [outer[~front_outer & ~dark_outer], inner[~front_inner & ~dark_inner]]
        iris.append(inner[front_inner & ~dark_inner])
        pupil += [outer[dark_outer], inner[dark_inner]]
    return _EyeBasis(mean=mean[v0:v1].copy(),
                     identity_basis=full.identity_basis[:, v0:v1].numpy().copy(),
                     expression_basis=full.expression_basis[:, v0:v1].numpy().copy(),
                     sclera=np.concatenate(sclera) - v0, iris=np.concatenate(iris) - v0,
                     pupil=np.concatenate(pupil) - v0)


def _coefficients(params: dict, name: str, limit: int) -> np.ndarray:
    values = np.asarray(params.get(name, []), np.float32).reshape(-1)
    if len(values) > limit:
        raise ValueError(f"params[{name!r}]: expected at most {limit} values, got {len(values)}")
    return values


def eye_meshes(result: FitResult, *, model_path: str | Path | None = None) -> EyeMeshes | None:
    """The ICT eyeballs shaped by ``result.params``' ``identity`` and ``expression`` coefficients.

    Returns None when the result's mesh is not an eyeless ICT region (by vertex count), e.g. the
    ``full`` region, which already holds its eyes. ``model_path`` defaults to the registry's
    ``ict_face_model``; the eyeball basis is cached per path.
    """
    if len(result.vertices) not in _EYELESS_REGION_SIZES:
        return None
    basis = _eye_basis(str(model_path) if model_path is not None else None)
    identity = _coefficients(result.params, "identity", len(basis.identity_basis))
    expression = _coefficients(result.params, "expression", len(basis.expression_basis))
    vertices = (basis.mean + np.tensordot(identity, basis.identity_basis[:len(identity)], axes=1)
                + np.tensordot(expression, basis.expression_basis[:len(expression)], axes=1))
    return EyeMeshes(vertices=vertices.astype(np.float32), sclera=basis.sclera, iris=basis.iris,
                     pupil=basis.pupil)


def _compact(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep only the vertices ``faces`` use: ``(vertices (n, 3), faces (F, 3))``."""
    used, inverse = np.unique(faces, return_inverse=True)
    return vertices[used], inverse.reshape(faces.shape)


def split_seams(faces: np.ndarray, uv_faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One output vertex per distinct (vertex, uv) pair.

    Args:
        faces: (F, 3) vertex indices. uv_faces: (F, 3) UV indices.

    Returns: ``(vertex_index (N,), uv_index (N,), new_faces (F, 3))``.

    Example:
        >>> v, t, f = split_seams(np.array([[0, 1, 2], [0, 2, 3]]), np.array([[0, 1, 2], [4, 2, 3]]))
        >>> len(v), f.tolist()
        (5, [[0, 1, 2], [3, 2, 4]])
    """
    pairs = np.stack([faces.reshape(-1), uv_faces.reshape(-1)], axis=1).astype(np.int64)
    unique, first, inverse = np.unique(pairs, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)  # keep first-appearance order (stable, readable output)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    unique = unique[order]
    return unique[:, 0], unique[:, 1], rank[inverse.reshape(-1)].reshape(faces.shape)


def export_glb(result: FitResult, path: str | Path, *, eyes: bool = True,
               model_path: str | Path | None = None) -> Path:
    """Write the textured face (and the eyes, see :func:`eye_meshes`) as a binary glTF scene
    (metres, +y up, facing +z). ``eyes=False`` writes the face alone."""
    import trimesh
    from trimesh.visual.material import PBRMaterial
    from trimesh.visual.texture import TextureVisuals

    path = Path(path)
    vidx, tidx, faces = split_seams(result.faces, result.uv_faces)
    material = PBRMaterial(baseColorTexture=Image.fromarray(result.texture), metallicFactor=0.0,
                           roughnessFactor=0.9, name="face")
    visual = TextureVisuals(uv=result.uvs[tidx], material=material)
    vertices = result.vertices[vidx] * MM_TO_M
    scene = trimesh.Scene()
    scene.add_geometry(trimesh.Trimesh(vertices=vertices, faces=faces, visual=visual, process=False),
                       geom_name="face", node_name="face")
    found = eye_meshes(result, model_path=model_path) if eyes else None
    if found is not None:
        for name, part_faces, rgb in found.parts():
            part_vertices, part_faces = _compact(found.vertices, part_faces)
            part_material = PBRMaterial(baseColorFactor=[*rgb, 1.0], metallicFactor=0.0,
                                        roughnessFactor=0.4, doubleSided=True, name=name)
            mesh = trimesh.Trimesh(vertices=part_vertices * MM_TO_M, faces=part_faces, process=False,
                                   visual=TextureVisuals(material=part_material))
            scene.add_geometry(mesh, geom_name=name, node_name=name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(scene.export(file_type="glb"))
    return path


def export_texture(result: FitResult, path: str | Path) -> Path:
    """Write the UV albedo as PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(result.texture).save(path)
    return path


def export_obj(result: FitResult, folder: str | Path, *, stem: str = "mesh",
               texture_name: str = "texture.png", eyes: bool = True,
               model_path: str | Path | None = None) -> dict[str, Path]:
    """Write ``<stem>.obj``, ``<stem>.mtl`` and the texture PNG (millimetres) into ``folder``.

    The face comes first (its ``v``/``vt`` indices unchanged), then the eyes (see :func:`eye_meshes`)
    as objects ``sclera``, ``iris`` and ``pupil`` with flat-colour materials; ``eyes=False`` leaves them out.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    obj, mtl = folder / f"{stem}.obj", folder / f"{stem}.mtl"
    tex = export_texture(result, folder / texture_name)
    found = eye_meshes(result, model_path=model_path) if eyes else None
    materials = "# ganfit material\nnewmtl face\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nNs 1\nillum 1\n" \
        f"map_Kd {texture_name}\n"
    if found is not None:
        for name, _, (r, g, b) in found.parts():
            materials += f"\nnewmtl {name}\nKa {r} {g} {b}\nKd {r} {g} {b}\nKs 0 0 0\nNs 1\nillum 1\n"
    mtl.write_text(materials)
    f = np.concatenate([result.faces[..., None], result.uv_faces[..., None]], axis=-1) + 1  # (F, 3, 2)
    lines = [f"# ganfit reconstruction: {len(result.vertices)} vertices, {len(result.faces)} triangles, "
             "millimetres, +y up, +z out of the face", f"mtllib {mtl.name}", "o face"]
    lines += [f"v {x:.4f} {y:.4f} {z:.4f}" for x, y, z in result.vertices.tolist()]
    lines += [f"vt {u:.6f} {v:.6f}" for u, v in result.uvs.tolist()]
    lines.append("usemtl face")
    lines += [f"f {a}/{b} {c}/{d} {e}/{g}" for (a, b), (c, d), (e, g) in f.tolist()]
    if found is not None:
        offset = len(result.vertices) + 1
        lines += [f"v {x:.4f} {y:.4f} {z:.4f}" for x, y, z in found.vertices.tolist()]
        for name, part, _ in found.parts():
            lines += [f"o {name}", f"usemtl {name}"]
            lines += [f"f {a} {b} {c}" for a, b, c in (part + offset).tolist()]
    obj.write_text("\n".join(lines) + "\n")
    return {"obj": obj, "mtl": mtl, "texture": tex}


def _jsonable(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def export_params(result: FitResult, path: str | Path) -> Path:
    """Write every parameter, the camera, crop transform, config and units as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "params": result.params,
        "crop_to_photo": result.crop_to_photo,
        "photo_size": list(result.photo_size),
        "target_landmarks_px": result.target_landmarks,
        "config": result.config,
        "units": UNITS,
        "num_vertices": int(len(result.vertices)),
        "num_triangles": int(len(result.faces)),
    }
    path.write_text(json.dumps(_jsonable(doc), indent=1, allow_nan=True))
    return path


def export_losses(result: FitResult, path: str | Path) -> Path:
    """Write final losses, stage timings, warnings and the per-step history as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"final": result.losses, "stage_seconds": result.stage_seconds, "warnings": result.warnings,
           "history": result.history}
    path.write_text(json.dumps(_jsonable(doc), indent=1, allow_nan=True))
    return path


def export_all(result: FitResult, folder: str | Path) -> dict[str, Path]:
    """Write mesh.glb, mesh.obj, mesh.mtl, texture.png, params.json and losses.json into ``folder``.

    Returns: a dict ``{"glb", "obj", "mtl", "texture", "params", "losses"}`` of written paths.
    """
    folder = Path(folder)
    paths = {"glb": export_glb(result, folder / "mesh.glb")}
    paths.update(export_obj(result, folder))
    paths["params"] = export_params(result, folder / "params.json")
    paths["losses"] = export_losses(result, folder / "losses.json")
    return paths
