"""Export a :class:`~ganfit_core.fit_types.FitResult` to files.

Units and axes:

- **GLB** (``mesh.glb``): glTF 2.0 binary, **metres** (glTF's unit), the model's own axes: +y up,
  +z out of the face (towards a viewer in front of it), +x towards the subject's left. The face is
  exported in its fitted shape and expression but without the head pose, so it faces a default
  glTF/three.js/Blender camera. The UV albedo texture is embedded as the PBR base colour
  (metallic 0, roughness 0.9). UV seams: every distinct (vertex, UV) pair of the triangles becomes
  one glTF vertex.
- **OBJ** (``mesh.obj`` + ``mesh.mtl`` + ``texture.png``): **millimetres**, same axes, ``f v/vt``
  faces indexing shared positions and UVs (v up, OBJ convention); the MTL names the PNG as ``map_Kd``.
- ``texture.png``: the UV albedo, row 0 at v = 1.
- ``params.json``: every fitted parameter (see ``ganfit_core.fit_params``), the camera in the crop
  (``focal_px``, ``principal_px``, ``rotation_matrix``, ``translation_mm``; OpenCV camera axes,
  ``v_cam = v_model @ R.T + t``), ``crop_to_photo``, ``photo_size``, the config and the units.
- ``losses.json``: final loss terms, seconds per stage, warnings and the per-step history.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from ganfit_core.fit_types import FitResult

__all__ = ["export_glb", "export_obj", "export_texture", "export_params", "export_losses", "export_all",
           "split_seams"]

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


def export_glb(result: FitResult, path: str | Path) -> Path:
    """Write the textured mesh as a binary glTF (metres, +y up, facing +z)."""
    import trimesh
    from trimesh.visual.material import PBRMaterial
    from trimesh.visual.texture import TextureVisuals

    path = Path(path)
    vidx, tidx, faces = split_seams(result.faces, result.uv_faces)
    material = PBRMaterial(baseColorTexture=Image.fromarray(result.texture), metallicFactor=0.0,
                           roughnessFactor=0.9, name="face")
    visual = TextureVisuals(uv=result.uvs[tidx], material=material)
    vertices = result.vertices[vidx] * MM_TO_M
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, visual=visual, process=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(mesh.export(file_type="glb"))
    return path


def export_texture(result: FitResult, path: str | Path) -> Path:
    """Write the UV albedo as PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(result.texture).save(path)
    return path


def export_obj(result: FitResult, folder: str | Path, *, stem: str = "mesh",
               texture_name: str = "texture.png") -> dict[str, Path]:
    """Write ``<stem>.obj``, ``<stem>.mtl`` and the texture PNG (millimetres) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    obj, mtl = folder / f"{stem}.obj", folder / f"{stem}.mtl"
    tex = export_texture(result, folder / texture_name)
    mtl.write_text("# ganfit material\nnewmtl face\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nNs 1\nillum 1\n"
                   f"map_Kd {texture_name}\n")
    f = np.concatenate([result.faces[..., None], result.uv_faces[..., None]], axis=-1) + 1  # (F, 3, 2)
    lines = [f"# ganfit reconstruction: {len(result.vertices)} vertices, {len(result.faces)} triangles, "
             "millimetres, +y up, +z out of the face", f"mtllib {mtl.name}", "o face"]
    lines += [f"v {x:.4f} {y:.4f} {z:.4f}" for x, y, z in result.vertices.tolist()]
    lines += [f"vt {u:.6f} {v:.6f}" for u, v in result.uvs.tolist()]
    lines.append("usemtl face")
    lines += [f"f {a}/{b} {c}/{d} {e}/{g}" for (a, b), (c, d), (e, g) in f.tolist()]
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
