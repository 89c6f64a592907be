"""Export: GLB (metres, embedded texture, split UV seams), OBJ + MTL + PNG (mm), JSON files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from ganfit_core.export import export_all, export_glb, split_seams
from ganfit_core.fit_types import FitResult


def _result(vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, uv_faces: np.ndarray) -> FitResult:
    texture = np.zeros((16, 16, 3), np.uint8)
    texture[:, :, 0] = np.arange(16, dtype=np.uint8)[None] * 16
    return FitResult(
        vertices=vertices.astype(np.float32), faces=faces, uvs=uvs.astype(np.float32), uv_faces=uv_faces,
        texture=texture, params={"identity": [0.1, 0.2], "expression_names": ["a"]},
        losses={"total": 0.5, "landmark": 0.25}, stage_seconds={"rigid": 0.1}, warnings=["w"],
        render=np.zeros((8, 8, 3), np.uint8), config={"seed": 0},
        history=[{"step": 1, "stage": "rigid", "total": 0.5}],
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
    path = export_glb(result, tmp_path / "mesh.glb")
    scene = trimesh.load(path)
    mesh = next(iter(scene.geometry.values())) if isinstance(scene, trimesh.Scene) else scene
    assert len(mesh.vertices) == 5  # the seam vertex is split
    assert len(mesh.faces) == 2
    assert np.isclose(mesh.vertices[:, 0].max(), 0.1)  # 100 mm -> 0.1 m
    image = mesh.visual.material.baseColorTexture
    assert image is not None and image.size == (16, 16)
    assert mesh.visual.uv.shape == (5, 2)


def test_export_all_writes_complete_set(tmp_path: Path) -> None:
    paths = export_all(_quad_with_seam(), tmp_path / "out")
    assert set(paths) == {"glb", "obj", "mtl", "texture", "params", "losses"}
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    obj = paths["obj"].read_text()
    assert "mtllib mesh.mtl" in obj and "usemtl face" in obj
    assert obj.count("\nv ") == 4 and obj.count("\nvt ") == 5 and obj.count("\nf ") == 2
    assert "f 1/5 3/3 4/4" in obj  # 1-based v/vt
    assert "map_Kd texture.png" in paths["mtl"].read_text()
    mesh = trimesh.load(paths["obj"], force="mesh")
    assert np.isclose(mesh.vertices[:, 0].max(), 100.0)  # millimetres
    params = json.loads(paths["params"].read_text())
    assert params["params"]["identity"] == [0.1, 0.2] and "units" in params
    assert params["config"] == {"seed": 0}
    losses = json.loads(paths["losses"].read_text())
    assert losses["final"]["total"] == 0.5 and losses["warnings"] == ["w"] and len(losses["history"]) == 1


def test_ict_mesh_glb_vertex_count(ict_model_path: Path, tmp_path: Path) -> None:
    from ganfit_core.morphable import load_morphable_model

    model = load_morphable_model("face", path=ict_model_path)
    result = _result(model.mean.numpy(), model.faces.numpy(), model.uvs.numpy(), model.uv_faces.numpy())
    vidx, _, _ = split_seams(result.faces, result.uv_faces)
    path = export_glb(result, tmp_path / "face.glb")
    scene = trimesh.load(path)
    mesh = next(iter(scene.geometry.values()))
    assert len(mesh.vertices) == len(vidx) >= model.num_vertices
    assert len(mesh.faces) == len(result.faces)
    # Facing +z (towards a default glTF viewer): the nose tip is the front-most point, near x = 0.
    tip = mesh.vertices[np.argmax(mesh.vertices[:, 2])]
    assert abs(tip[0]) < 0.01
    assert mesh.visual.material.baseColorTexture is not None
    assert pytest.approx(float(np.ptp(mesh.vertices[:, 1])), rel=0.3) == 0.288  # ~28.8 cm tall, in metres
