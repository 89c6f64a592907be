"""Export: GLB (metres, embedded texture, split UV seams), OBJ + MTL + PNG (mm), JSON files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from ganfit_core.export import export_all, export_glb, export_obj, eye_meshes, split_seams
from ganfit_core.fitting.config import FitConfig
from ganfit_core.fitting.types import FitResult, FittedCamera, FittedFace, PoseParameters, StepRecord
from ganfit_core.model.eyes import EyeBasis, load_eye_basis


@pytest.fixture(scope="module")
def eyes(ict_model_path: Path) -> EyeBasis:
    return load_eye_basis(ict_model_path)


def _face(identity: list[float], expression: list[float]) -> FittedFace:
    return FittedFace(identity=np.asarray(identity, np.float32),
                      expression=np.asarray(expression, np.float32),
                      expression_names=tuple(f"e{i}" for i in range(len(expression))),
                      texture_latent=np.zeros(4, np.float32), detail=None,
                      sh=np.full((9, 3), 0.5, np.float32))


def _result(vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, uv_faces: np.ndarray, *,
            region: str = "full", face: FittedFace | None = None) -> FitResult:
    texture = np.zeros((16, 16, 3), np.uint8)
    texture[:, :, 0] = np.arange(16, dtype=np.uint8)[None] * 16
    camera = FittedCamera(rotation=np.diag([1.0, -1.0, -1.0]).astype(np.float32),
                          translation=np.array([1.0, 2.0, 500.0], np.float32), focal=300.0,
                          principal=np.array([4.0, 4.0], np.float32), image_size=(8, 8))
    pose = PoseParameters(rotation=np.zeros(3, np.float32), translation_xy=np.array([1.0, 2.0], np.float32),
                          log_depth=0.25, log_focal=-0.125)
    return FitResult(
        vertices=vertices.astype(np.float32), faces=faces, uvs=uvs.astype(np.float32), uv_faces=uv_faces,
        texture=texture, face=face or _face([0.1, 0.2], [0.5]), camera=camera, pose=pose, region=region,
        losses={"total": 0.5, "landmark": 0.25}, stage_seconds={"rigid": 0.1}, warnings=("w",),
        render=np.zeros((8, 8, 3), np.uint8), config=FitConfig(seed=3),
        history=(StepRecord(1, "rigid", {"landmark": 0.5, "total": 0.5}),),
        crop_to_photo=np.eye(3), photo_size=(8, 8), target_landmarks=np.zeros((68, 2), np.float32),
    )


def _quad_with_seam() -> FitResult:
    """Two triangles sharing an edge whose vertex 0 has two UVs (a seam): 5 glTF vertices."""
    vertices = np.array([[0, 0, 0], [100, 0, 0], [100, 100, 0], [0, 100, 0]], np.float64)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    uvs = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.0]])
    uv_faces = np.array([[0, 1, 2], [4, 2, 3]])
    return _result(vertices, faces, uvs, uv_faces)


def test_split_seams_one_vertex_per_pair() -> None:
    vidx, tidx, faces = split_seams(np.array([[0, 1, 2], [0, 2, 3]]), np.array([[0, 1, 2], [4, 2, 3]]))
    assert len(vidx) == 5
    pairs = {(int(v), int(t)) for v, t in zip(vidx, tidx, strict=True)}
    assert pairs == {(0, 0), (1, 1), (2, 2), (0, 4), (3, 3)}
    assert vidx[faces].tolist() == [[0, 1, 2], [0, 2, 3]]


def test_glb_round_trip_metres_and_texture(tmp_path: Path) -> None:
    result = _quad_with_seam()
    path = export_glb(result, tmp_path / "mesh.glb", expressions=False)
    scene = trimesh.load(path)
    mesh = next(iter(scene.geometry.values())) if isinstance(scene, trimesh.Scene) else scene
    assert len(mesh.vertices) == 5  # the seam vertex is split
    assert len(mesh.faces) == 2
    assert np.isclose(mesh.vertices[:, 0].max(), 0.1)  # 100 mm -> 0.1 m
    image = mesh.visual.material.baseColorTexture
    assert image is not None and image.size == (16, 16)
    assert mesh.visual.uv.shape == (5, 2)


def test_export_all_writes_complete_set(tmp_path: Path) -> None:
    paths = export_all(_quad_with_seam(), tmp_path / "out", expressions=False)
    assert set(paths) == {"glb", "glb_unlit", "obj", "mtl", "texture", "params", "losses"}
    assert b"KHR_materials_unlit" in paths["glb_unlit"].read_bytes()
    assert b"KHR_materials_unlit" not in paths["glb"].read_bytes()
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    obj = paths["obj"].read_text()
    assert "mtllib mesh.mtl" in obj and "usemtl face" in obj
    assert obj.count("\nv ") == 4 and obj.count("\nvt ") == 5 and obj.count("\nf ") == 2
    assert "f 1/5 3/3 4/4" in obj  # 1-based v/vt
    assert "map_Kd texture.png" in paths["mtl"].read_text()
    mesh = trimesh.load(paths["obj"], force="mesh")
    assert np.isclose(mesh.vertices[:, 0].max(), 100.0)  # millimetres
    params = json.loads(paths["params"].read_text())
    fitted = params["params"]
    assert np.allclose(fitted["identity"], [0.1, 0.2]) and fitted["expression"] == [0.5] and "units" in params
    assert fitted["expression_names"] == ["e0"] and np.asarray(fitted["sh"]).shape == (9, 3)
    assert fitted["rotation_matrix"] == [[1, 0, 0], [0, -1, 0], [0, 0, -1]]
    assert fitted["translation_mm"] == [1.0, 2.0, 500.0] and fitted["focal_px"] == [300.0]
    assert fitted["principal_px"] == [4.0, 4.0] and fitted["translation_xy"] == [1.0, 2.0]
    assert fitted["log_depth"] == [0.25] and fitted["log_focal"] == [-0.125]
    assert params["config"] == FitConfig(seed=3).to_dict() and FitConfig.from_dict(params["config"]).seed == 3
    assert params["region"] == "full" and params["has_detail"] is False and params["crop_size"] == [8, 8]
    losses = json.loads(paths["losses"].read_text())
    assert losses["final"]["total"] == 0.5 and losses["warnings"] == ["w"]
    assert losses["history"] == [{"step": 1, "stage": "rigid", "landmark": 0.5, "total": 0.5}]


def test_ict_mesh_glb_vertex_count(ict_model_path: Path, eyes: EyeBasis, tmp_path: Path) -> None:
    from ganfit_core.model.morphable import load_morphable_model

    model = load_morphable_model("face", path=ict_model_path)
    result = _result(model.mean.numpy(), model.faces.numpy(), model.uvs.numpy(), model.uv_faces.numpy(),
                     region="face")
    vidx, _, _ = split_seams(result.faces, result.uv_faces)
    path = export_glb(result, tmp_path / "face.glb", eyes=eyes, expressions=False)
    scene = trimesh.load(path)
    assert list(scene.geometry) == ["face", "sclera", "iris", "pupil"]
    mesh = scene.geometry["face"]  # the eyes do not change the face mesh
    assert len(mesh.vertices) == len(vidx) >= model.num_vertices
    assert len(mesh.faces) == len(result.faces)
    # Facing +z (towards a default glTF viewer): the nose tip is the front-most point, near x = 0.
    tip = mesh.vertices[np.argmax(mesh.vertices[:, 2])]
    assert abs(tip[0]) < 0.01
    assert mesh.visual.material.baseColorTexture is not None
    assert pytest.approx(float(np.ptp(mesh.vertices[:, 1])), rel=0.3) == 0.288  # ~28.8 cm tall, in metres


def test_full_region_gets_no_extra_eyes(tmp_path: Path) -> None:
    result = _quad_with_seam()  # region "full": its mesh holds its own eyes
    assert eye_meshes(result) is None
    assert list(trimesh.load(export_glb(result, tmp_path / "q.glb", expressions=False)).geometry) == ["face"]


def _fitted_ict_result(model_path: Path) -> tuple[FitResult, np.ndarray]:
    """An ICT face with identity and expression coefficients, and its (68, 3) landmark vertices (mm)."""
    import torch

    from ganfit_core.model.morphable import load_morphable_model

    model = load_morphable_model("face", path=model_path)
    identity = torch.linspace(-1.5, 1.5, 100)[None]
    expression = torch.zeros(1, model.num_expression)
    expression[0, model.expression_names.index("jawOpen")] = 0.5
    vertices = model(identity, expression)[0].numpy()
    face = _face(identity[0].tolist(), expression[0].tolist())
    result = _result(vertices, model.faces.numpy(), model.uvs.numpy(), model.uv_faces.numpy(), region="face",
                     face=face)
    return result, vertices[model.landmark_indices.numpy()]


def test_glb_eyes_sit_in_the_eye_sockets(ict_model_path: Path, eyes: EyeBasis, tmp_path: Path) -> None:
    from ganfit_core.export.animated_glb import srgb_to_linear
    from ganfit_core.model.morphable import load_morphable_model

    result, landmarks = _fitted_ict_result(ict_model_path)
    shapes = load_morphable_model("face", path=ict_model_path).expression_basis.numpy()
    scene = trimesh.load(export_glb(result, tmp_path / "face.glb", eyes=eyes, expressions=shapes))
    face = scene.geometry["face"]
    assert len(face.vertices) == len(split_seams(result.faces, result.uv_faces)[0])
    for name, rgb in (("sclera", (0.92, 0.90, 0.88)), ("iris", (0.25, 0.16, 0.10))):
        # glTF's baseColorFactor is linear: the sRGB colour is converted (trimesh reads it as uint8)
        factor = np.asarray(scene.geometry[name].visual.material.baseColorFactor, np.float64)
        assert np.allclose(factor[:3] / 255.0, srgb_to_linear(rgb), atol=0.01), (name, factor)
    iris = scene.geometry["iris"].vertices * 1000.0  # back to mm
    for side, eye in (("right", landmarks[36:42]), ("left", landmarks[42:48])):  # subject's right: -x
        part = iris[np.sign(iris[:, 0]) == np.sign(eye[:, 0].mean())]
        centre = part.mean(axis=0)
        # the iris sits between the eye corners and lids, behind the eyelid rim, facing +z
        assert eye[:, 0].min() < centre[0] < eye[:, 0].max(), side
        assert eye[:, 1].min() - 2.0 < centre[1] < eye[:, 1].max() + 2.0, side
        assert eye[:, 2].max() - 8.0 < part[:, 2].max() < eye[:, 2].max(), side
    # the whole eyeballs stay inside the face's extent (same units and axes as the face)
    lo, hi = face.bounds
    for name in ("sclera", "iris", "pupil"):
        bounds = scene.geometry[name].bounds
        assert np.all(bounds[0] > lo) and np.all(bounds[1] < hi), name


def test_eyes_follow_the_fitted_coefficients(ict_model_path: Path, eyes: EyeBasis) -> None:
    result, _ = _fitted_ict_result(ict_model_path)
    neutral = dataclasses.replace(result, face=_face([], []))
    moved = eye_meshes(result, eyes).vertices
    rest = eye_meshes(neutral, eyes).vertices
    assert np.abs(moved - rest).max() > 0.5  # mm: identity changes the eyeballs too


def test_obj_has_eye_objects_after_the_face(ict_model_path: Path, eyes: EyeBasis, tmp_path: Path) -> None:
    result, _ = _fitted_ict_result(ict_model_path)
    paths = export_obj(result, tmp_path, eyes=eyes)
    mtl = paths["mtl"].read_text()
    assert "newmtl sclera" in mtl and "Kd 0.25 0.16 0.1" in mtl and "map_Kd texture.png" in mtl
    lines = paths["obj"].read_text().splitlines()
    assert [line for line in lines if line.startswith("usemtl")] == [
        "usemtl face", "usemtl sclera", "usemtl iris", "usemtl pupil"]
    face_lines = lines[:lines.index("o sclera")]
    assert sum(line.startswith("f ") for line in face_lines) == len(result.faces)
    scene = trimesh.load(paths["obj"])
    assert sum(len(g.vertices) for g in scene.geometry.values()) > len(result.vertices)
    no_eyes = export_obj(result, tmp_path / "plain", eyes=False)
    assert "sclera" not in no_eyes["obj"].read_text()


def test_eye_basis_needs_the_full_region(ict_model_path: Path) -> None:
    from ganfit_core.model.eyes import eye_basis
    from ganfit_core.model.morphable import load_morphable_model

    with pytest.raises(ValueError, match="full"):
        eye_basis(load_morphable_model("face", path=ict_model_path))


def test_export_all_writes_an_animatable_arkit_glb(ict_model_path: Path, eyes: EyeBasis,
                                                   tmp_path: Path) -> None:
    import torch

    from ganfit_core.export.animated_glb import read_glb_json
    from ganfit_core.model.arkit import ARKIT_NAMES
    from ganfit_core.model.morphable import load_morphable_model

    model = load_morphable_model("face", path=ict_model_path)
    expression = torch.zeros(1, model.num_expression)
    expression[0, model.expression_names.index("mouthSmile_L")] = 0.75
    identity = torch.linspace(-1.0, 1.0, 30)[None]
    face = dataclasses.replace(_face(identity[0].tolist(), expression[0].tolist()),
                               expression_names=tuple(model.expression_names))
    result = _result(model(identity, expression)[0].numpy(), model.faces.numpy(), model.uvs.numpy(),
                     model.uv_faces.numpy(), region="face", face=face)
    paths = export_all(result, tmp_path, eyes=eyes, expressions=model.expression_basis.numpy())
    for key, unlit in (("glb", False), ("glb_unlit", True)):
        doc = read_glb_json(paths[key].read_bytes())
        mesh = doc["meshes"][0]
        names = mesh["extras"]["targetNames"]
        assert mesh["name"] == "face" and sum(n in ARKIT_NAMES for n in names) >= 50
        assert len(mesh["primitives"][0]["targets"]) == len(names) == len(mesh["weights"])
        assert mesh["weights"][names.index("mouthSmileLeft")] == 0.75
        assert sum(mesh["weights"]) == 0.75
        assert ("KHR_materials_unlit" in doc.get("extensionsUsed", [])) == unlit
        assert [m["name"] for m in doc["meshes"]] == ["face", "sclera", "iris", "pupil"]
    with pytest.raises(ValueError, match="expression shapes"):
        export_glb(result, tmp_path / "bad.glb", eyes=False, expressions=np.zeros((53, 10, 3)))


def test_glb_iris_takes_the_fitted_iris_colour(ict_model_path: Path, eyes: EyeBasis, tmp_path: Path) -> None:
    from ganfit_core.export import params_document
    from ganfit_core.export.animated_glb import srgb_to_linear

    result, _ = _fitted_ict_result(ict_model_path)
    blue = (0.30, 0.45, 0.65)
    result = dataclasses.replace(result, face=dataclasses.replace(result.face, iris_rgb=blue))
    scene = trimesh.load(export_glb(result, tmp_path / "face.glb", eyes=eyes))
    factor = np.asarray(scene.geometry["iris"].visual.material.baseColorFactor, np.float64)
    assert np.allclose(factor[:3] / 255.0, srgb_to_linear(blue), atol=0.01), factor
    assert params_document(result)["params"]["iris_rgb"] == list(blue)
