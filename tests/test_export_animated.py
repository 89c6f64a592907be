"""Animatable GLB: morph targets under ARKit names, read back the way glTF importers read them.

The file is decoded here by a small reference reader (dense and sparse accessors, as Blender's
importer and three.js' GLTFLoader decode them), checked against the Khronos glTF-Validator (npm
``gltf-validator``; skipped with a reason when npm is unavailable) and loaded with trimesh.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh

from ganfit_core.export.animated_glb import (
    EYE_LOOK_DEG,
    GlbPart,
    arkit_targets,
    eye_look_deltas,
    glb_bytes,
    read_glb_json,
    srgb_to_linear,
    vertex_normals,
    write_face_glb,
)
from ganfit_core.model.arkit import ARKIT_COMBINED, ARKIT_MISSING, ARKIT_NAMES, arkit_name

ROOT = Path(__file__).resolve().parents[1]
_COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}
_DTYPES = {5126: np.float32, 5125: np.uint32, 5123: np.uint16}


class Glb:
    """A parsed GLB: ``json`` and ``accessor(i)`` -> (count, components) array."""

    def __init__(self, data: bytes) -> None:
        magic, version, total = struct.unpack_from("<4sII", data, 0)
        assert (magic, version, total) == (b"glTF", 2, len(data))
        self.json = read_glb_json(data)
        json_length = struct.unpack_from("<I", data, 12)[0]
        bin_length, kind = struct.unpack_from("<I4s", data, 20 + json_length)
        assert kind == b"BIN\0"
        self.bin = data[28 + json_length:28 + json_length + bin_length]
        assert len(self.bin) == self.json["buffers"][0]["byteLength"]

    def _view(self, index: int, dtype: type, count: int) -> np.ndarray:
        view = self.json["bufferViews"][index]
        assert view["byteOffset"] % 4 == 0
        raw = self.bin[view["byteOffset"]:view["byteOffset"] + view["byteLength"]]
        return np.frombuffer(raw, dtype, count)

    def accessor(self, index: int) -> np.ndarray:
        acc = self.json["accessors"][index]
        width, dtype = _COMPONENTS[acc["type"]], _DTYPES[acc["componentType"]]
        if "bufferView" in acc:
            values = self._view(acc["bufferView"], dtype, acc["count"] * width).reshape(acc["count"], width)
        else:
            values = np.zeros((acc["count"], width), dtype)
        if "sparse" in acc:
            sparse = acc["sparse"]
            ids = self._view(sparse["indices"]["bufferView"], _DTYPES[sparse["indices"]["componentType"]],
                             sparse["count"])
            values = values.copy()
            given = self._view(sparse["values"]["bufferView"], dtype, sparse["count"] * width)
            values[ids] = given.reshape(-1, width)
        if "min" in acc:
            np.testing.assert_allclose(values.min(axis=0), acc["min"], rtol=1e-6, atol=1e-9)
            np.testing.assert_allclose(values.max(axis=0), acc["max"], rtol=1e-6, atol=1e-9)
        return values

    def mesh(self, name: str) -> dict:
        return next(m for m in self.json["meshes"] if m["name"] == name)


def _triangle_part(deltas: np.ndarray | None = None, **kwargs: object) -> GlbPart:
    vertices = np.array([[0, 0, 0], [100, 0, 0], [100, 100, 0], [0, 100, 0]], np.float32)
    texture = np.zeros((4, 4, 3), np.uint8)
    return GlbPart("face", vertices=vertices, faces=np.array([[0, 1, 2], [0, 2, 3]]),
                   uvs=np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32), texture=texture,
                   deltas=deltas, **kwargs)


def test_small_file_decodes_to_the_inputs() -> None:
    deltas = np.zeros((3, 4, 3), np.float32)
    deltas[0, 2] = [0.0, 0.0, 5.0]  # one vertex moves: sparse
    deltas[1] = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 1, 1]]  # every vertex: dense
    glb = Glb(glb_bytes([_triangle_part(deltas)], target_names=["a", "b", "c"], weights=[0.25, 0.5, 0.0],
                        normal_deltas=False))
    mesh = glb.mesh("face")
    primitive = mesh["primitives"][0]
    np.testing.assert_allclose(glb.accessor(primitive["attributes"]["POSITION"])[:, 0], [0, 0.1, 0.1, 0])
    np.testing.assert_allclose(glb.accessor(primitive["attributes"]["TEXCOORD_0"])[:, 1], [1, 1, 0, 0])
    assert glb.accessor(primitive["indices"]).reshape(-1).tolist() == [0, 1, 2, 0, 2, 3]
    assert mesh["extras"]["targetNames"] == ["a", "b", "c"] and mesh["weights"] == [0.25, 0.5, 0.0]
    targets = primitive["targets"]
    assert [set(t) for t in targets] == [{"POSITION"}] * 3
    assert "sparse" in glb.json["accessors"][targets[0]["POSITION"]]
    assert "sparse" not in glb.json["accessors"][targets[1]["POSITION"]]
    for target, delta in zip(targets, deltas, strict=True):
        np.testing.assert_allclose(glb.accessor(target["POSITION"]), delta * 1e-3, rtol=1e-6)


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="deltas: expected shape"):
        glb_bytes([_triangle_part(np.zeros((2, 5, 3)))], target_names=["a", "b"])
    with pytest.raises(ValueError, match="unique"):
        glb_bytes([_triangle_part(np.zeros((2, 4, 3)))], target_names=["a", "a"])
    with pytest.raises(ValueError, match="weights: expected shape"):
        glb_bytes([_triangle_part(np.zeros((2, 4, 3)))], target_names=["a", "b"], weights=[1.0])
    with pytest.raises(ValueError, match="faces: indices"):
        glb_bytes([GlbPart("x", np.zeros((3, 3)), np.array([[0, 1, 3]]))])


def test_materials_metallic_zero_srgb_factors_and_unlit() -> None:
    eye = GlbPart("iris", np.eye(3, dtype=np.float32) * 10, np.array([[0, 1, 2]]), rgb=(0.25, 0.16, 0.10))
    lit = Glb(glb_bytes([_triangle_part(), eye])).json
    unlit = Glb(glb_bytes([_triangle_part(), eye], unlit=True)).json
    for material in lit["materials"]:
        assert material["pbrMetallicRoughness"]["metallicFactor"] == 0.0
        assert "extensions" not in material
    face, iris = lit["materials"]
    assert face["pbrMetallicRoughness"]["baseColorFactor"] == [1.0, 1.0, 1.0, 1.0]
    assert face["pbrMetallicRoughness"]["baseColorTexture"] == {"index": 0}
    np.testing.assert_allclose(iris["pbrMetallicRoughness"]["baseColorFactor"][:3],
                               srgb_to_linear((0.25, 0.16, 0.10)))
    assert iris["pbrMetallicRoughness"]["baseColorFactor"][0] < 0.06  # linear, not the sRGB 0.25
    assert unlit["extensionsUsed"] == ["KHR_materials_unlit"]
    assert all(m["extensions"] == {"KHR_materials_unlit": {}} for m in unlit["materials"])
    assert "extensionsUsed" not in lit


def test_vertex_normals_batched_matches_single() -> None:
    rng = np.random.default_rng(0)
    vertices = rng.normal(size=(2, 6, 3))
    faces = np.array([[0, 1, 2], [1, 3, 2], [2, 3, 4], [3, 5, 4]])
    batched = vertex_normals(vertices, faces)
    assert batched.shape == (2, 6, 3)
    for i in range(2):
        np.testing.assert_allclose(batched[i], vertex_normals(vertices[i], faces), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=-1), 1.0, atol=1e-5)


def test_arkit_targets_add_the_combined_shapes() -> None:
    names = ["browInnerUp_L", "browInnerUp_R", "jawOpen"]
    deltas = np.arange(3 * 2 * 3, dtype=np.float32).reshape(3, 2, 3)
    targets = arkit_targets(names, deltas, np.array([0.1, 0.2, 0.3]))
    assert targets.names == ("browInnerUpLeft", "browInnerUpRight", "jawOpen", "browInnerUp")
    np.testing.assert_allclose(targets.deltas[3], deltas[0] + deltas[1])
    np.testing.assert_allclose(targets.weights, [0.1, 0.2, 0.3, 0.0])


def test_eye_look_turns_each_eye_rigidly() -> None:
    rng = np.random.default_rng(1)
    ball = rng.normal(size=(200, 3))
    ball = 12.0 * ball / np.linalg.norm(ball, axis=1, keepdims=True)
    centres = {"Left": np.array([32.0, 36.0, 84.0]), "Right": np.array([-32.0, 36.0, 84.0])}
    vertices = np.concatenate([ball + centres["Left"], ball + centres["Right"]])
    sides = {"Left": np.arange(200), "Right": np.arange(200, 400)}
    names = ["eyeLookOutLeft", "eyeLookInRight", "eyeLookUpLeft", "jawOpen"]
    deltas = eye_look_deltas(vertices, sides, names)
    assert not deltas[3].any()
    assert not deltas[0, 200:].any() and not deltas[1, :200].any()
    for k, side in ((0, "Left"), (1, "Right"), (2, "Left")):
        ids = sides[side]
        moved = vertices[ids] + deltas[k, ids]
        centre = centres[side]
        np.testing.assert_allclose(np.linalg.norm(moved - centre, axis=1), 12.0, atol=1e-6)  # rigid
        front = vertices[ids][:, 2].argmax()  # the gaze point (+z)
        turn = moved[front] - centre
        if k < 2:  # out for the left eye and in for the right eye both look towards +x
            assert np.degrees(np.arctan2(turn[0], turn[2])) == pytest.approx(EYE_LOOK_DEG[0], abs=3)
        else:
            assert np.degrees(np.arctan2(turn[1], turn[2])) == pytest.approx(EYE_LOOK_DEG[1], abs=3)


@pytest.fixture(scope="module")
def ict_glb(ict_face_glb_inputs: Any, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An animatable GLB of the ICT face with random identity and expression, plus its inputs."""
    from ganfit_core.export import split_seams

    rng = np.random.default_rng(0)
    inputs = ict_face_glb_inputs(rng.normal(size=20).astype(np.float32),
                                 rng.uniform(0, 0.3, size=53).astype(np.float32),
                                 rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8))
    path = write_face_glb(tmp_path_factory.mktemp("animated") / "mesh.glb", **inputs)
    vidx, _, _ = split_seams(inputs["faces"], inputs["uv_faces"])
    return {"path": path, "glb": Glb(path.read_bytes()), "inputs": inputs, "vidx": vidx}


def test_ict_file_carries_arkit_targets_as_importers_read_them(ict_glb: dict) -> None:
    glb, inputs, vidx = ict_glb["glb"], ict_glb["inputs"], ict_glb["vidx"]
    assert [n["name"] for n in glb.json["nodes"]] == ["face", "sclera", "iris", "pupil"]
    face = glb.mesh("face")
    names = face["extras"]["targetNames"]
    arkit = [n for n in names if n in ARKIT_NAMES]
    assert len(arkit) >= 50 and len(set(names)) == len(names)
    assert set(arkit) == set(ARKIT_NAMES) - set(ARKIT_MISSING)
    assert len(face["weights"]) == len(names) == 53 + len(ARKIT_COMBINED)
    # Blender's importer: one shape key per target, named from extras.targetNames; every primitive of
    # a mesh must carry the same number of targets.
    for mesh in glb.json["meshes"]:
        counts = {len(p.get("targets", [])) for p in mesh["primitives"]}
        assert len(counts) == 1
        if "extras" in mesh:
            assert counts == {len(mesh["extras"]["targetNames"])} and len(mesh["weights"]) == counts.pop()
    primitive = face["primitives"][0]
    position = glb.accessor(primitive["attributes"]["POSITION"])
    assert len(position) == len(vidx)
    # what a viewer shows with the default weights is the fitted face; the base is expressionless
    pairs = zip(face["weights"], primitive["targets"], strict=True)
    shown = position + sum(w * glb.accessor(t["POSITION"]) for w, t in pairs)
    np.testing.assert_allclose(shown, inputs["vertices"][vidx] * 1e-3, atol=1e-6)
    neutral = inputs["vertices"] - np.tensordot(inputs["weights"], inputs["deltas"], axes=1)
    np.testing.assert_allclose(position, neutral[vidx] * 1e-3, atol=1e-7)
    for name in ("jawOpen", "mouthSmile_L", "eyeBlink_R"):
        target = primitive["targets"][names.index(arkit_name(name))]
        delta = glb.accessor(target["POSITION"])
        expected = inputs["deltas"][inputs["names"].index(name)][vidx] * 1e-3
        np.testing.assert_allclose(delta, expected, atol=2e-7)  # deltas under 1e-4 mm are stored as 0
    jaw = glb.accessor(primitive["targets"][names.index("jawOpen")]["POSITION"])
    assert np.abs(jaw).max() > 0.02  # jawOpen moves the chin by centimetres
    whole = glb.accessor(primitive["targets"][names.index("browInnerUp")]["POSITION"])
    halves = sum(glb.accessor(primitive["targets"][names.index(f"browInnerUp{s}")]["POSITION"])
                 for s in ("Left", "Right"))
    np.testing.assert_allclose(whole, halves, atol=2.5e-7)  # each stored value is exact to 1e-7 m
    np.testing.assert_allclose(face["weights"][:53], inputs["weights"], atol=1e-6)
    assert face["weights"][53:] == [0.0, 0.0]
    iris = glb.mesh("iris")
    assert iris["extras"]["targetNames"] == names and iris["weights"] == [0.0] * len(names)
    look = iris["extras"]["targetNames"].index("eyeLookOutLeft")
    assert np.abs(glb.accessor(iris["primitives"][0]["targets"][look]["POSITION"])).max() > 1e-3


def test_ict_file_loads_in_trimesh(ict_glb: dict) -> None:
    scene = trimesh.load(ict_glb["path"])
    assert set(scene.geometry) == {"face", "sclera", "iris", "pupil"}
    face = scene.geometry["face"]
    assert len(face.vertices) == len(ict_glb["vidx"])
    assert face.visual.material.baseColorTexture.size == (32, 32)


def test_ict_file_passes_the_khronos_validator(ict_glb: dict, node_modules: Path) -> None:
    done = subprocess.run(["node", str(ROOT / "tests" / "web" / "validate_gltf.mjs"), str(ict_glb["path"])],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "GANFIT_NODE_MODULES": str(node_modules)})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    issues = report["issues"]
    assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, issues["messages"][:10]
    assert report["info"]["hasMorphTargets"] and report["info"]["hasTextures"]
