"""An animatable GLB: the face with its expression shapes as glTF morph targets.

trimesh writes no morph targets, so this module writes the glTF 2.0 JSON and binary buffer itself.
Inputs are plain arrays (millimetres, model axes: +y up, +z out of the face); the file is in
**metres**. What a file holds:

- one node and mesh per :class:`GlbPart` (the ``face`` first, then e.g. ``sclera``, ``iris``,
  ``pupil``), each one primitive with ``POSITION``, ``NORMAL`` and (textured parts) ``TEXCOORD_0``;
- on a part with deltas: one morph target per name (``POSITION`` deltas in metres, optionally
  ``NORMAL`` deltas), the default ``weights`` of the mesh, and the names in ``mesh.extras.targetNames``
  (the convention three.js' ``GLTFLoader`` and Blender's importer read into
  ``morphTargetDictionary`` / shape-key names). Targets that move few vertices are stored as sparse
  accessors (three.js, Babylon.js and Blender read them);
- materials: metallic 0, the texture as ``baseColorTexture`` (sRGB, as glTF requires; the base
  colour factor stays white so the rendered colour is the albedo), flat parts as a linear
  ``baseColorFactor`` converted from their sRGB colour; ``unlit=True`` adds ``KHR_materials_unlit``
  so viewers show the albedo itself, without their own lighting.

Example:
    >>> part = GlbPart("tri", vertices=np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0]], np.float32),
    ...                faces=np.array([[0, 1, 2]]), deltas=np.full((1, 3, 3), 1.0, np.float32))
    >>> data = glb_bytes([part], target_names=["jawOpen"], weights=[0.5])
    >>> data[:4], read_glb_json(data)["meshes"][0]["extras"]
    (b'glTF', {'targetNames': ['jawOpen']})
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ganfit_core.model.arkit import ARKIT_COMBINED, arkit_names

__all__ = ["GlbPart", "ArkitTargets", "arkit_targets", "face_part", "eye_look_deltas", "vertex_normals",
           "glb_bytes", "write_animated_glb", "write_face_glb", "flat_parts", "read_glb_json",
           "srgb_to_linear", "EYE_LOOK_DEG"]

MM_TO_M = 1e-3
#: Deltas below this many millimetres are written as zero (sparse storage); far below float32 noise.
DELTA_EPS_MM = 1e-4
NORMAL_DELTA_EPS = 1e-5

_FLOAT, _UINT32 = 5126, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_LINEAR, _LINEAR_MIPMAP_LINEAR, _CLAMP = 9729, 9987, 33071
_UNLIT = "KHR_materials_unlit"


def _check(array: np.ndarray, shape: Sequence[int | None], name: str) -> np.ndarray:
    """``array`` as numpy, or ``ValueError`` naming the expected shape (None = any size)."""
    array = np.asarray(array)
    wanted = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
    if array.ndim != len(shape) or any(s is not None and a != s for a, s in zip(array.shape, shape,
                                                                                   strict=True)):
        raise ValueError(f"{name}: expected shape {wanted}, got {tuple(array.shape)}")
    return array


def srgb_to_linear(rgb: Sequence[float]) -> tuple[float, ...]:
    """sRGB-encoded colour in [0, 1] -> linear (glTF's ``baseColorFactor`` is linear).

    Example:
        >>> [round(c, 4) for c in srgb_to_linear((1.0, 0.5, 0.0))]
        [1.0, 0.214, 0.0]
    """
    c = np.clip(np.asarray(rgb, np.float64), 0.0, 1.0)
    return tuple(np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).tolist())


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (..., V, 3) float32 of triangles ``faces`` (F, 3) over
    ``vertices`` (..., V, 3); a vertex no triangle uses gets (0, 0, 1).

    Example:
        >>> vertex_normals(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]]), np.array([[0, 1, 2]]))[0].tolist()
        [0.0, 0.0, 1.0]
    """
    from scipy.sparse import csr_matrix

    v = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64)
    lead, count = v.shape[:-2], v.shape[-2]
    tri = v[..., faces, :]  # (..., F, 3, 3)
    face_n = np.cross(tri[..., 1, :] - tri[..., 0, :], tri[..., 2, :] - tri[..., 0, :])  # (..., F, 3)
    incidence = csr_matrix((np.ones(faces.size), (faces.reshape(-1), np.repeat(np.arange(len(faces)), 3))),
                           shape=(count, len(faces)))
    flat = np.moveaxis(face_n.reshape(-1, len(faces), 3), 1, 0).reshape(len(faces), -1)  # (F, B*3)
    n = np.moveaxis((incidence @ flat).reshape(count, -1, 3), 0, 1).reshape(*lead, count, 3)
    length = np.linalg.norm(n, axis=-1, keepdims=True)
    n = np.where(length > 0, n / np.maximum(length, 1e-30), np.array([0.0, 0.0, 1.0]))
    return n.astype(np.float32)


@dataclass(frozen=True)
class GlbPart:
    """One mesh of the scene.

    Attributes:
        name: node and mesh name (``face``, ``sclera``...).
        vertices: (V, 3) float mm, model axes.
        faces: (F, 3) int triangles into ``vertices`` (counter-clockwise seen from outside).
        uvs: (V, 2) float per-vertex UV in [0, 1], v up (OBJ convention), or None.
        texture: (Ht, Wt, 3) uint8 RGB albedo, row 0 at v = 1, or None (flat ``rgb`` colour).
        rgb: sRGB colour in [0, 1] of an untextured part (multiplies nothing on a textured one).
        normals: (V, 3) unit normals, or None (computed from ``faces``).
        deltas: (E, V, 3) float mm morph-target offsets, one per target name, or None (no targets).
        normal_deltas: (E, V, 3) normal offsets, or None (computed from ``deltas`` when asked).
        roughness: glTF roughness factor in [0, 1].
        double_sided: glTF ``doubleSided``.
        weights: (E,) this mesh's default morph weights, or None (the file's ``weights``).
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray | None = None
    texture: np.ndarray | None = None
    rgb: tuple[float, float, float] = (1.0, 1.0, 1.0)
    normals: np.ndarray | None = None
    deltas: np.ndarray | None = None
    normal_deltas: np.ndarray | None = None
    roughness: float = 0.9
    double_sided: bool = False
    weights: np.ndarray | None = None


@dataclass(frozen=True)
class ArkitTargets:
    """Morph targets under ARKit names: ``names`` (E',), ``deltas`` (E', V, 3) mm, ``weights`` (E',)."""

    names: tuple[str, ...]
    deltas: np.ndarray
    weights: np.ndarray


def arkit_targets(ict_names: Sequence[str], deltas: np.ndarray, weights: np.ndarray | None = None,
                  ) -> ArkitTargets:
    """ICT expression shapes renamed to ARKit (see :mod:`ganfit_core.model.arkit`), plus ARKit's
    ``browInnerUp`` and ``cheekPuff`` as the sum of ICT's two halves (default weight 0, so the
    fitted face is unchanged; a driver sets either the whole or the halves).

    Args:
        ict_names: (E,) ICT names. deltas: (E, V, 3) mm. weights: (E,) fitted expression, or None (0).
    """
    deltas = _check(deltas, (len(ict_names), None, 3), "deltas")
    weights = np.zeros(len(ict_names), np.float32) if weights is None else \
        _check(np.asarray(weights, np.float32).reshape(-1), (len(ict_names),), "weights")
    names = arkit_names(list(ict_names))
    extra_names, extra_deltas = [], []
    for whole, (left, right) in ARKIT_COMBINED.items():
        if left in ict_names and right in ict_names and whole not in names:
            extra_names.append(whole)
            extra_deltas.append(deltas[list(ict_names).index(left)] + deltas[list(ict_names).index(right)])
    if extra_deltas:
        deltas = np.concatenate([deltas, np.stack(extra_deltas)])
        weights = np.concatenate([weights, np.zeros(len(extra_deltas), np.float32)])
    return ArkitTargets(names=tuple(names + extra_names), deltas=deltas.astype(np.float32),
                        weights=weights.astype(np.float32))


def face_part(vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, uv_faces: np.ndarray,
              texture: np.ndarray, deltas: np.ndarray | None = None, *, name: str = "face",
              roughness: float = 0.9) -> GlbPart:
    """The textured face as a :class:`GlbPart`, one glTF vertex per distinct (vertex, UV) pair.

    Normals (and their morph deltas) come from the shared topology, so UV seams stay smooth.

    Args:
        vertices: (V, 3) mm. faces: (F, 3) int. uvs: (T, 2) in [0, 1], v up. uv_faces: (F, 3) int.
        texture: (Ht, Wt, 3) uint8. deltas: (E, V, 3) mm or None.
    """
    from ganfit_core.export import split_seams

    vertices = _check(vertices, (None, 3), "vertices").astype(np.float32)
    faces = _check(faces, (None, 3), "faces").astype(np.int64)
    uv_faces = _check(uv_faces, (len(faces), 3), "uv_faces").astype(np.int64)
    uvs = _check(uvs, (None, 2), "uvs").astype(np.float32)
    texture = _check(texture, (None, None, 3), "texture")
    if texture.dtype != np.uint8:
        raise ValueError(f"texture: expected uint8, got {texture.dtype}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"faces: indices must lie in [0, {len(vertices)}), "
                         f"got [{faces.min()}, {faces.max()}]")
    normals = vertex_normals(vertices, faces)
    normal_deltas = None
    if deltas is not None:
        deltas = _check(deltas, (None, len(vertices), 3), "deltas").astype(np.float32)
        normal_deltas = vertex_normals(vertices[None] + deltas, faces) - normals[None]
    vidx, tidx, new_faces = split_seams(faces, uv_faces)
    return GlbPart(name=name, vertices=vertices[vidx], faces=new_faces, uvs=uvs[tidx], texture=texture,
                   normals=normals[vidx], roughness=roughness,
                   deltas=None if deltas is None else deltas[:, vidx],
                   normal_deltas=None if normal_deltas is None else normal_deltas[:, vidx])


#: Eye rotation (degrees) at weight 1 of ARKit's eyeLook targets: (in/out, up/down). ICT's eyeLook
#: shapes move only the eyelids, so the eyeballs get these rigid rotations as their own targets.
EYE_LOOK_DEG = (25.0, 20.0)


def _sphere_centre(points: np.ndarray) -> np.ndarray:
    """Least-squares sphere centre (3,) of ``points`` (N, 3)."""
    system = np.concatenate([2.0 * points, np.ones((len(points), 1))], axis=1)
    return np.linalg.lstsq(system, (points ** 2).sum(axis=1), rcond=None)[0][:3]


def _rotation(axis: int, angle_rad: float) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def eye_look_deltas(vertices: np.ndarray, eyes: dict[str, np.ndarray], target_names: Sequence[str], *,
                    look_deg: tuple[float, float] = EYE_LOOK_DEG) -> np.ndarray:
    """Morph deltas (E, Ve, 3) mm that turn each eyeball for ARKit's ``eyeLook*`` targets.

    Args:
        vertices: (Ve, 3) eyeball vertices, mm, model axes (+x the subject's left, +y up, +z gaze).
        eyes: ``{"Left": ids, "Right": ids}``, the vertex indices of each eyeball (subject's sides).
        target_names: (E,) names; ``eyeLook{Up,Down,In,Out}{Left,Right}`` get a rotation of that eye
            about its sphere centre by ``look_deg`` (horizontal, vertical) degrees, the rest zeros.

    A morph target is linear, so a turn of angle a pulls the ball in by 1 - cos(a) of its radius at
    the front (~1 mm at 25 degrees), hidden by the lids.
    """
    vertices = _check(vertices, (None, 3), "vertices").astype(np.float64)
    deltas = np.zeros((len(target_names), len(vertices), 3), np.float32)
    horizontal, vertical = np.radians(look_deg[0]), np.radians(look_deg[1])
    for side, ids in eyes.items():
        if side not in ("Left", "Right"):
            raise ValueError(f"eyes: expected keys 'Left' and 'Right', got {side!r}")
        ids = np.asarray(ids, np.int64)
        centre = _sphere_centre(vertices[ids])
        outward = 1.0 if side == "Left" else -1.0  # the subject's left eye looks out towards +x
        turns = {"Out": _rotation(1, outward * horizontal), "In": _rotation(1, -outward * horizontal),
                 "Up": _rotation(0, -vertical), "Down": _rotation(0, vertical)}
        for direction, rotation in turns.items():
            name = f"eyeLook{direction}{side}"
            if name in target_names:
                offsets = vertices[ids] - centre
                deltas[list(target_names).index(name), ids] = offsets @ rotation.T - offsets
    return deltas


def flat_parts(vertices: np.ndarray, parts: Sequence[tuple[str, np.ndarray, tuple[float, float, float]]],
               deltas: np.ndarray | None = None, *, roughness: float = 0.4,
               double_sided: bool = True, weights: np.ndarray | None = None) -> list[GlbPart]:
    """Untextured :class:`GlbPart` s (e.g. the eyes) sharing one vertex array, each keeping only the
    vertices its triangles use.

    Args:
        vertices: (Ve, 3) mm. parts: ``(name, faces (F, 3) into vertices, sRGB colour)``.
        deltas: (E, Ve, 3) mm morph deltas lined up with the file's target names, or None.
        weights: (E,) the parts' default weights, or None (the file's).
    """
    vertices = _check(vertices, (None, 3), "vertices")
    if deltas is not None:
        deltas = _check(deltas, (None, len(vertices), 3), "deltas")
    out = []
    for name, faces, rgb in parts:
        used, inverse = np.unique(np.asarray(faces, np.int64), return_inverse=True)
        out.append(GlbPart(name=name, vertices=vertices[used], faces=inverse.reshape(-1, 3), rgb=tuple(rgb),
                           deltas=None if deltas is None else deltas[:, used], roughness=roughness,
                           double_sided=double_sided, weights=weights))
    return out


def write_face_glb(path: str | Path, *, vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray,
                   uv_faces: np.ndarray, texture: np.ndarray, deltas: np.ndarray, names: Sequence[str],
                   weights: np.ndarray | None = None, eye_vertices: np.ndarray | None = None,
                   eye_parts: Sequence[tuple[str, np.ndarray, tuple[float, float, float]]] = (),
                   eye_sides: dict[str, np.ndarray] | None = None, unlit: bool = False,
                   normal_deltas: bool = False) -> Path:
    """Write the animatable face: ICT expression shapes as ARKit-named morph targets (see
    :func:`arkit_targets`), ``weights`` (the fitted expression) as the defaults, and the eyes.

    The stored base mesh is the expressionless face ``vertices - weights @ deltas``, so a viewer that
    applies the default weights shows ``vertices`` and all-zero weights show the neutral face.
    The eyes' default weights are zero (they look straight ahead, as in the fit): a driver that sets
    ``eyeLook*`` on every mesh turns them with the lids.

    Args:
        vertices: (V, 3) mm, the fitted face with its expression. faces: (F, 3). uvs: (T, 2), v up.
            uv_faces: (F, 3).
        texture: (Ht, Wt, 3) uint8 albedo. deltas: (E, V, 3) mm expression shapes; names: (E,) ICT
            names; weights: (E,) in [0, 1], the expression in ``vertices`` (None: no expression).
        eye_vertices: (Ve, 3) mm fitted eyeballs, or None (no eyes). eye_parts: ``(name, faces, sRGB)``.
        eye_sides: ``{"Left": ids, "Right": ids}`` into ``eye_vertices``; the eyeballs then turn with
            the eyeLook targets (:func:`eye_look_deltas`); None leaves them still.
        unlit: ``KHR_materials_unlit`` (viewers show the albedo, no shading).
        normal_deltas: also write NORMAL deltas (nearly doubles the file; three.js and Babylon.js
            use them, Blender recomputes normals itself).
    """
    targets = arkit_targets(names, deltas, weights)
    vertices = _check(vertices, (None, 3), "vertices").astype(np.float32)
    neutral = vertices - np.tensordot(targets.weights, targets.deltas, axes=1)
    parts = [face_part(neutral, faces, uvs, uv_faces, texture, targets.deltas)]
    if eye_vertices is not None:
        eye_deltas = None if eye_sides is None else eye_look_deltas(eye_vertices, eye_sides, targets.names)
        parts += flat_parts(eye_vertices, eye_parts, eye_deltas, weights=np.zeros(len(targets.names)))
    return write_animated_glb(path, parts, target_names=targets.names, weights=targets.weights, unlit=unlit,
                              normal_deltas=normal_deltas)


class _Buffer:
    """The GLB binary chunk being assembled, with its bufferViews and accessors."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def view(self, payload: bytes, target: int | None = None) -> int:
        self.data += b"\0" * (-len(self.data) % 4)
        view = {"buffer": 0, "byteOffset": len(self.data), "byteLength": len(payload)}
        if target is not None:
            view["target"] = target
        self.data += payload
        self.views.append(view)
        return len(self.views) - 1

    def accessor(self, array: np.ndarray, kind: str, *, target: int | None = _ARRAY_BUFFER,
                 bounds: bool = False) -> int:
        array = np.ascontiguousarray(array, np.uint32 if kind == "SCALAR" else np.float32)
        entry = {"bufferView": self.view(array.tobytes(), target),
                 "componentType": _UINT32 if kind == "SCALAR" else _FLOAT,
                 "count": int(len(array)), "type": kind}
        if bounds:
            entry["min"], entry["max"] = array.min(axis=0).tolist(), array.max(axis=0).tolist()
        self.accessors.append(entry)
        return len(self.accessors) - 1

    def delta_accessor(self, delta: np.ndarray, eps: float) -> int:
        """A VEC3 float accessor of ``delta`` (V, 3), sparse when that is smaller; min/max always."""
        delta = np.where(np.abs(delta) < eps, 0.0, delta).astype(np.float32)
        moved = np.flatnonzero(np.any(delta != 0.0, axis=1)).astype(np.uint32)
        entry = {"componentType": _FLOAT, "count": int(len(delta)), "type": "VEC3",
                 "min": delta.min(axis=0).tolist(), "max": delta.max(axis=0).tolist()}
        if len(moved) * 16 < delta.size * 4:
            if len(moved) == 0:  # glTF requires sparse.count >= 1: store one explicit zero
                moved = np.zeros(1, np.uint32)
            values = np.ascontiguousarray(delta[moved]).tobytes()
            indices = {"bufferView": self.view(moved.tobytes()), "componentType": _UINT32}
            entry["sparse"] = {"count": int(len(moved)), "indices": indices,
                               "values": {"bufferView": self.view(values)}}
        else:
            entry["bufferView"] = self.view(delta.tobytes(), _ARRAY_BUFFER)
        self.accessors.append(entry)
        return len(self.accessors) - 1


def _png(texture: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(texture)).save(out, format="PNG")
    return out.getvalue()


def glb_bytes(parts: Sequence[GlbPart], *, target_names: Sequence[str] = (),
              weights: Sequence[float] | np.ndarray | None = None, unlit: bool = False,
              normal_deltas: bool = True, generator: str = "ganfit") -> bytes:
    """The GLB file (bytes) of ``parts``; see the module docstring for what it holds.

    Args:
        parts: the meshes; a part's ``deltas`` (E, V, 3) line up with ``target_names`` (E,).
        target_names: morph target names, unique. weights: (E,) default weights (None: zeros).
        unlit: add ``KHR_materials_unlit`` to every material. normal_deltas: write NORMAL deltas.
    """
    names = [str(n) for n in target_names]
    if len(set(names)) != len(names):
        raise ValueError("target_names: expected unique names")
    default = np.zeros(len(names), np.float32) if weights is None else \
        _check(np.asarray(weights, np.float32).reshape(-1), (len(names),), "weights")
    if not parts:
        raise ValueError("parts: expected at least one mesh")
    buf = _Buffer()
    gltf: dict = {"asset": {"version": "2.0", "generator": generator}, "scene": 0,
                  "scenes": [{"name": "ganfit", "nodes": list(range(len(parts)))}],
                  "nodes": [], "meshes": [], "materials": []}
    images: list[dict] = []
    for part in parts:
        vertices = _check(part.vertices, (None, 3), f"{part.name}.vertices").astype(np.float32)
        faces = _check(part.faces, (None, 3), f"{part.name}.faces").astype(np.int64)
        if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
            raise ValueError(f"{part.name}.faces: indices must lie in [0, {len(vertices)})")
        normals = vertex_normals(vertices, faces) if part.normals is None else \
            _check(part.normals, (len(vertices), 3), f"{part.name}.normals")
        attributes = {"POSITION": buf.accessor(vertices * MM_TO_M, "VEC3", bounds=True),
                      "NORMAL": buf.accessor(normals, "VEC3")}
        material: dict = {"name": part.name, "doubleSided": bool(part.double_sided),
                          "pbrMetallicRoughness": {"metallicFactor": 0.0,
                                                   "roughnessFactor": float(part.roughness)}}
        pbr = material["pbrMetallicRoughness"]
        if part.texture is not None:
            if part.uvs is None:
                raise ValueError(f"{part.name}: a texture needs per-vertex uvs")
            uvs = _check(part.uvs, (len(vertices), 2), f"{part.name}.uvs").astype(np.float32)
            attributes["TEXCOORD_0"] = buf.accessor(np.stack([uvs[:, 0], 1.0 - uvs[:, 1]], 1), "VEC2")
            images.append({"bufferView": buf.view(_png(part.texture)), "mimeType": "image/png",
                           "name": f"{part.name}_albedo"})
            pbr["baseColorTexture"] = {"index": len(images) - 1}
            pbr["baseColorFactor"] = [1.0, 1.0, 1.0, 1.0]
        else:
            pbr["baseColorFactor"] = [*srgb_to_linear(part.rgb), 1.0]
        if unlit:
            material["extensions"] = {_UNLIT: {}}
        gltf["materials"].append(material)
        primitive = {"attributes": attributes, "material": len(gltf["materials"]) - 1, "mode": 4,
                     "indices": buf.accessor(faces.reshape(-1), "SCALAR", target=_ELEMENT_ARRAY_BUFFER)}
        mesh: dict = {"name": part.name, "primitives": [primitive]}
        if part.deltas is not None:
            deltas = _check(part.deltas, (len(names), len(vertices), 3), f"{part.name}.deltas")
            if normal_deltas:
                dn = part.normal_deltas
                dn = vertex_normals(vertices[None] + deltas, faces) - normals[None] if dn is None else \
                    _check(dn, (len(names), len(vertices), 3), f"{part.name}.normal_deltas")
            targets = []
            for e in range(len(names)):
                target = {"POSITION": buf.delta_accessor(deltas[e] * MM_TO_M, DELTA_EPS_MM * MM_TO_M)}
                if normal_deltas:
                    target["NORMAL"] = buf.delta_accessor(dn[e], NORMAL_DELTA_EPS)
                targets.append(target)
            primitive["targets"] = targets
            own = default if part.weights is None else _check(
                np.asarray(part.weights, np.float32).reshape(-1), (len(names),), f"{part.name}.weights")
            mesh["weights"] = own.tolist()
            mesh["extras"] = {"targetNames": names}
        gltf["meshes"].append(mesh)
        gltf["nodes"].append({"name": part.name, "mesh": len(gltf["meshes"]) - 1})
    if images:
        gltf["images"] = images
        gltf["samplers"] = [{"magFilter": _LINEAR, "minFilter": _LINEAR_MIPMAP_LINEAR,
                             "wrapS": _CLAMP, "wrapT": _CLAMP}]
        gltf["textures"] = [{"sampler": 0, "source": i} for i in range(len(images))]
    if unlit:
        gltf["extensionsUsed"] = [_UNLIT]
    buf.data += b"\0" * (-len(buf.data) % 4)
    gltf["buffers"] = [{"byteLength": len(buf.data)}]
    gltf["bufferViews"], gltf["accessors"] = buf.views, buf.accessors
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    total = 12 + 8 + len(text) + 8 + len(buf.data)
    return (struct.pack("<4sII", b"glTF", 2, total) + struct.pack("<I4s", len(text), b"JSON") + text
            + struct.pack("<I4s", len(buf.data), b"BIN\0") + bytes(buf.data))


def write_animated_glb(path: str | Path, parts: Sequence[GlbPart], **options) -> Path:
    """Write :func:`glb_bytes` ``(parts, **options)`` to ``path`` (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(glb_bytes(parts, **options))
    return path


def read_glb_json(data: bytes) -> dict:
    """The JSON chunk of a GLB file's bytes (for inspection and tests)."""
    magic, version, _ = struct.unpack_from("<4sII", data, 0)
    if magic != b"glTF" or version != 2:
        raise ValueError("not a glTF 2.0 binary file")
    length, kind = struct.unpack_from("<I4s", data, 12)
    if kind != b"JSON":
        raise ValueError("GLB: first chunk is not JSON")
    return json.loads(data[20:20 + length])
