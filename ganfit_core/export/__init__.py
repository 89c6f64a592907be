"""Export a :class:`~ganfit_core.fitting.types.FitResult` to files.

Units and axes:

- **GLB** (``mesh.glb``): glTF 2.0 binary, **metres** (glTF's unit), the model's own axes: +y up,
  +z out of the face (towards a viewer in front of it), +x towards the subject's left. The face is
  exported in its fitted shape and expression but without the head pose, so it faces a default
  glTF/three.js/Blender camera. The UV albedo texture is embedded as the PBR base colour
  (sRGB texture, white base colour factor, metallic 0, roughness 0.9). UV seams: every distinct
  (vertex, UV) pair of the triangles becomes one glTF vertex. The scene holds the ``face`` mesh
  first, then (for an ICT face, see below) the untextured, double-sided ``sclera`` (off-white),
  ``iris`` (the photo's iris colour, ``FittedFace.iris_rgb``; dark brown when unseen) and
  ``pupil`` meshes (their sRGB colours written as glTF's linear factors).
  Written by :mod:`ganfit_core.export.animated_glb` (no trimesh).
- **Animation** (morph targets): the face carries ICT's 53 expression shapes plus ARKit's
  ``browInnerUp`` and ``cheekPuff`` (the sums of ICT's halves) as glTF morph targets named after
  Apple's ARKit blendshapes (``jawOpen``, ``mouthSmileLeft``...; :mod:`ganfit_core.model.arkit`),
  the names in ``mesh.extras.targetNames`` (read by three.js and Blender). The stored base mesh
  is expressionless; the default ``weights`` are the fitted expression, so a viewer shows the
  fitted face and zero weights the neutral one. The eyeballs turn with ``eyeLook*`` (their own
  morph targets, default weights 0). ICT's shapes are the same for every identity (the model is
  linear), so they are not personalised beyond being added to the fitted identity.
- ``mesh_unlit.glb`` (:func:`export_all`): the same scene with ``KHR_materials_unlit`` materials,
  which show the albedo itself; web viewers light PBR materials with their own environment (Gradio's
  Model3D tints them violet, measured in ``tests/test_animated_browser.py``).
- **OBJ** (``mesh.obj`` + ``mesh.mtl`` + ``texture.png``): **millimetres**, same axes, ``f v/vt``
  faces indexing shared positions and UVs (v up, OBJ convention); the MTL names the PNG as ``map_Kd``.
  Eyes follow as objects ``sclera``, ``iris`` and ``pupil`` (``f v`` faces, plain ``Kd`` materials).
- **Eyes**: the ICT ``face`` region has holes at the eyes; when the result's region stops before the
  eyeballs (``narrow_face``, ``face``, ``face_neck``: ``ganfit_core.model.layout.EYELESS_REGIONS``),
  the ICT eyeballs are added, shaped by the result's own identity and expression coefficients
  (:mod:`ganfit_core.model.eyes`). Pass ``eyes=`` an :class:`~ganfit_core.model.eyes.EyeBasis` to reuse
  one loaded basis (nothing is cached here), ``True`` to load it from the registry's
  ``ict_face_model`` for this call, ``False`` for the face alone.
- ``texture.png``: the UV albedo, row 0 at v = 1.
- ``params.json`` (written from the typed result fields)::

      {"params": {"identity": [K], "expression": [53], "rotation": [3] (axis-angle rad, relative to
                  the frontal rotation), "translation_xy": [2] (px), "log_depth": [1], "log_focal": [1],
                  "sh": [9][3], "texture_latent": [L], "iris_rgb": [3] | null,
                  "rotation_matrix": [3][3], "translation_mm": [3], "focal_px": [1],
                  "principal_px": [2] (camera of the crop: OpenCV axes, v_cam = v_model @ R.T + t),
                  "expression_names": [53]},
       "camera": {"focal_source": "exif" | "given" | "search" | "assumed",
                  "fov_deg": field of view across the photo's longer side},
       "crop_to_photo": [3][3], "photo_size": [w, h], "crop_size": [w, h],
       "target_landmarks_px": [68][2], "region": str, "has_detail": bool,
       "quality": {"status": "good" | "doubtful" | "failed", "landmark_residual": float | null,
                   "detection_score": float | null, "landmark_consistency": float | null,
                   "reasons": [str]} | null,
       "config": {every FitConfig field}, "units": {...}, "num_vertices": int, "num_triangles": int}

  (the detail layer is in ``texture.png``, already added to the albedo).
- ``losses.json``: ``{"final": {term: value}, "stage_seconds": {stage: s}, "warnings": [str],
  "history": [{"step": int, "stage": str, term: value, ...}]}``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ganfit_core.fitting.types import FitResult
from ganfit_core.model.eyes import EyeBasis, EyeMeshes, load_eye_basis, shape_eyes
from ganfit_core.model.layout import EYELESS_REGIONS

__all__ = ["export_glb", "load_expression_shapes", "export_obj", "export_texture", "export_params",
           "export_losses", "export_all", "split_seams", "eye_meshes", "params_document", "losses_document"]

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
    "iris_rgb": "iris albedo of the eyeballs, RGB in [0, 1] (null: not seen in the photo, default brown)",
}

def eye_meshes(result: FitResult, eyes: EyeBasis | bool = True) -> EyeMeshes | None:
    """The eyeballs of ``result`` (see the module docstring), or None when its region has its own eyes
    (``full``) or ``eyes`` is False."""
    if eyes is False or result.region not in EYELESS_REGIONS:
        return None
    basis = load_eye_basis() if eyes is True else eyes
    return shape_eyes(basis, result.face.identity, result.face.expression,
                      result.face.iris_rgb)


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


def load_expression_shapes(region: str) -> np.ndarray:
    """The ICT expression shapes (53, V, 3) float32 mm of ``region``, from the registry's model."""
    from ganfit_core.model.morphable import load_morphable_model

    return load_morphable_model(region).expression_basis.numpy()


def _expression_shapes(result: FitResult, expressions: np.ndarray | bool) -> np.ndarray | None:
    if expressions is False:
        return None
    shapes = load_expression_shapes(result.region) if expressions is True else np.asarray(expressions)
    wanted = (len(result.face.expression), len(result.vertices), 3)
    if shapes.shape != wanted:
        raise ValueError(f"expression shapes: expected shape {wanted} (the result's expression weights and "
                         f"vertices), got {shapes.shape}")
    return shapes


def export_glb(result: FitResult, path: str | Path, *, eyes: EyeBasis | bool = True,
               expressions: np.ndarray | bool = True, unlit: bool = False,
               normal_deltas: bool = False) -> Path:
    """Write the textured face (and the eyes, see :func:`eye_meshes`) as a binary glTF scene
    (metres, +y up, facing +z), animatable: see the module docstring.

    Args:
        eyes: see the module docstring; ``False`` writes the face alone.
        expressions: the ICT expression shapes (53, V, 3) mm of the result's mesh, ``True`` to load
            them for ``result.region`` from the registry, ``False`` for a static face (no morph targets).
        unlit: ``KHR_materials_unlit`` materials (viewers show the albedo itself).
        normal_deltas: also write NORMAL morph deltas (about twice the file).
    """
    from ganfit_core.export.animated_glb import (
        GlbPart,
        face_part,
        flat_parts,
        write_animated_glb,
        write_face_glb,
    )

    found = eye_meshes(result, eyes)
    shapes = _expression_shapes(result, expressions)
    eye_args: dict[str, Any] = {}
    if found is not None:
        eye_args = {"eye_vertices": found.vertices, "eye_parts": found.parts(),
                    "eye_sides": {"Left": np.flatnonzero(found.vertices[:, 0] > 0),
                                  "Right": np.flatnonzero(found.vertices[:, 0] <= 0)}}
    if shapes is not None:
        return write_face_glb(path, vertices=result.vertices, faces=result.faces, uvs=result.uvs,
                              uv_faces=result.uv_faces, texture=result.texture, deltas=shapes,
                              names=result.face.expression_names, weights=result.face.expression,
                              unlit=unlit, normal_deltas=normal_deltas, **eye_args)
    parts: list[GlbPart] = [face_part(result.vertices, result.faces, result.uvs, result.uv_faces,
                                      result.texture)]
    if found is not None:
        parts += flat_parts(found.vertices, found.parts())
    return write_animated_glb(path, parts, unlit=unlit)


def export_texture(result: FitResult, path: str | Path) -> Path:
    """Write the UV albedo as PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(result.texture).save(path)
    return path


def export_obj(result: FitResult, folder: str | Path, *, stem: str = "mesh",
               texture_name: str = "texture.png", eyes: EyeBasis | bool = True) -> dict[str, Path]:
    """Write ``<stem>.obj``, ``<stem>.mtl`` and the texture PNG (millimetres) into ``folder``.

    The face comes first (its ``v``/``vt`` indices unchanged), then the eyes (see :func:`eye_meshes`)
    as objects ``sclera``, ``iris`` and ``pupil`` with flat-colour materials; ``eyes=False`` leaves them out.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    obj, mtl = folder / f"{stem}.obj", folder / f"{stem}.mtl"
    tex = export_texture(result, folder / texture_name)
    found = eye_meshes(result, eyes)
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


def _quality_document(quality: Any) -> dict[str, Any] | None:
    """The fit-quality verdict (``FitQuality``) as JSON fields; None when the result has none."""
    if quality is None:
        return None
    residual = float(quality.landmark_residual)
    return {"status": quality.status, "landmark_residual": residual if math.isfinite(residual) else None,
            "detection_score": quality.detection_score, "landmark_consistency": quality.landmark_consistency,
            "reasons": list(quality.reasons)}


def params_document(result: FitResult) -> dict[str, Any]:
    """The content of ``params.json`` (format in the module docstring), JSON-ready."""
    face, camera, pose = result.face, result.camera, result.pose
    params = {
        "identity": face.identity, "expression": face.expression, "rotation": pose.rotation,
        "translation_xy": pose.translation_xy, "log_depth": [pose.log_depth], "log_focal": [pose.log_focal],
        "sh": face.sh, "texture_latent": face.texture_latent, "iris_rgb": face.iris_rgb,
        "rotation_matrix": camera.rotation, "translation_mm": camera.translation, "focal_px": [camera.focal],
        "principal_px": camera.principal, "expression_names": list(face.expression_names),
    }
    doc = {
        "params": params,
        "camera": {"focal_source": camera.focal_source, "fov_deg": camera.fov_deg},
        "crop_to_photo": result.crop_to_photo,
        "photo_size": list(result.photo_size),
        "crop_size": list(camera.image_size),
        "target_landmarks_px": result.target_landmarks,
        "region": result.region,
        "has_detail": face.detail is not None,
        "quality": _quality_document(result.quality),
        "config": result.config.to_dict(),
        "units": UNITS,
        "num_vertices": int(len(result.vertices)),
        "num_triangles": int(len(result.faces)),
    }
    return _jsonable(doc)


def losses_document(result: FitResult) -> dict[str, Any]:
    """The content of ``losses.json``, JSON-ready."""
    history = [{"step": r.step, "stage": r.stage, **r.losses} for r in result.history]
    return _jsonable({"final": result.losses, "stage_seconds": result.stage_seconds,
                      "warnings": list(result.warnings), "history": history})


def export_params(result: FitResult, path: str | Path) -> Path:
    """Write every parameter, the camera, crop transform, config and units as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(params_document(result), indent=1, allow_nan=True))
    return path


def export_losses(result: FitResult, path: str | Path) -> Path:
    """Write final losses, stage timings, warnings and the per-step history as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(losses_document(result), indent=1, allow_nan=True))
    return path


def export_all(result: FitResult, folder: str | Path, *, eyes: EyeBasis | bool = True,
               expressions: np.ndarray | bool = True, unlit_copy: bool = True) -> dict[str, Path]:
    """Write mesh.glb, mesh.obj, mesh.mtl, texture.png, params.json and losses.json into ``folder``,
    and (``unlit_copy``) mesh_unlit.glb, the same scene with unlit materials (for web viewers).

    ``eyes``: see the module docstring (``True`` loads the eye basis once for both meshes).
    ``expressions``: see :func:`export_glb` (``True`` loads the region's shapes once for both GLBs).

    Returns: a dict ``{"glb", "obj", "mtl", "texture", "params", "losses"}`` (+ ``"glb_unlit"``) of
    written paths.
    """
    folder = Path(folder)
    if eyes is True and result.region in EYELESS_REGIONS:
        eyes = load_eye_basis()
    if expressions is True:
        expressions = load_expression_shapes(result.region)
    paths = {"glb": export_glb(result, folder / "mesh.glb", eyes=eyes, expressions=expressions)}
    if unlit_copy:
        paths["glb_unlit"] = export_glb(result, folder / "mesh_unlit.glb", eyes=eyes, expressions=expressions,
                                        unlit=True)
    paths.update(export_obj(result, folder, eyes=eyes))
    paths["params"] = export_params(result, folder / "params.json")
    paths["losses"] = export_losses(result, folder / "losses.json")
    return paths
