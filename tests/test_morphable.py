"""The ICT morphable model against the source OBJs (parsed here from the archive)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ganfit_core.model.ict_build import (
    CM_TO_MM,
    JAW_LEFT_EXTENDED,
    JAW_RIGHT_EXTENDED,
    iter_model_files,
    parse_obj_vertices,
)
from ganfit_core.model.morphable import REGIONS, MorphableModel, load_morphable_model

TRIANGLES = {"narrow_face": 13120, "face": 18460, "face_neck": 22288, "full": 52220}
VERTICES = {"narrow_face": 6706, "face": 9409, "face_neck": 11248, "full": 26719}
IDENTITY_MODES = (0, 1, 57, 99)
EXPRESSIONS = ("jawOpen", "eyeBlink_L", "mouthSmile_R")
SOURCE_FILES = {"generic_neutral_mesh.obj", "vertex_indices.json"} | {f"{n}.obj" for n in EXPRESSIONS} | {
    f"identity{k:03d}.obj" for k in IDENTITY_MODES
}


@pytest.fixture(scope="module")
def models(ict_model_path: Path) -> dict[str, MorphableModel]:
    return {region: load_morphable_model(region, path=ict_model_path) for region in REGIONS}


@pytest.fixture(scope="module")
def source(ict_archive: Path) -> dict[str, bytes]:
    """The few source files the tests compare against, read from the archive (in memory)."""
    return {name: data for name, data in iter_model_files(ict_archive) if name in SOURCE_FILES}


def _obj_mm(source: dict[str, bytes], filename: str, count: int) -> torch.Tensor:
    return torch.from_numpy(parse_obj_vertices(source[filename])[:count] * CM_TO_MM).float()


@pytest.mark.parametrize("region", REGIONS)
def test_region_sizes(models: dict[str, MorphableModel], region: str) -> None:
    model = models[region]
    assert model.num_vertices == VERTICES[region]
    assert model.faces.shape == (TRIANGLES[region], 3)
    assert model.uv_faces.shape == model.faces.shape
    assert model.faces.min() == 0 and model.faces.max() == model.num_vertices - 1
    assert model.uv_faces.min() == 0 and model.uv_faces.max() == model.uvs.shape[0] - 1
    assert (model.num_identity, model.num_expression) == (100, 53)
    assert model.identity_basis.shape == (100, VERTICES[region], 3)
    assert model.expression_basis.dtype == torch.float32 and model.faces.dtype == torch.int64


@pytest.mark.parametrize("region", ["narrow_face", "face"])
def test_face_uvs_in_unit_square(models: dict[str, MorphableModel], region: str) -> None:
    uvs = models[region].uvs
    assert uvs.min() >= 0 and uvs.max() <= 1


@pytest.mark.parametrize("region", ["face", "full"])
@pytest.mark.parametrize("k", IDENTITY_MODES)
def test_unit_identity_reproduces_obj(models, source: dict[str, bytes], region: str, k: int) -> None:
    model = models[region]
    identity = torch.zeros(1, 100)
    identity[0, k] = 1.0
    got = model(identity, torch.zeros(1, 53))[0]
    want = _obj_mm(source, f"identity{k:03d}.obj", model.num_vertices)
    torch.testing.assert_close(got, want, atol=2e-3, rtol=0)


@pytest.mark.parametrize("name", EXPRESSIONS)
def test_unit_expression_reproduces_obj(models, source: dict[str, bytes], name: str) -> None:
    model = models["face"]
    expression = torch.zeros(1, 53)
    expression[0, model.expression_names.index(name)] = 1.0
    got = model(torch.zeros(1, 100), expression)[0]
    want = _obj_mm(source, f"{name}.obj", model.num_vertices)
    torch.testing.assert_close(got, want, atol=2e-3, rtol=0)


def test_neutral_is_generic_mesh(models, source: dict[str, bytes]) -> None:
    model = models["face"]
    got = model(torch.zeros(2, 0))
    want = _obj_mm(source, "generic_neutral_mesh.obj", model.num_vertices)
    torch.testing.assert_close(got, want.expand(2, -1, -1), atol=1e-4, rtol=0)


def test_expression_names_match_source(models, source: dict[str, bytes]) -> None:
    source = json.loads(source["vertex_indices.json"])
    assert models["face"].expression_names == source["expressions"]


def test_landmarks_map_to_source_vertices(models, source: dict[str, bytes]) -> None:
    source = json.loads(source["vertex_indices.json"])["idx_to_landmark_verts"]
    for model in models.values():
        assert model.landmark_indices.shape == (68,)
        assert model.vertex_ids[model.landmark_indices].tolist() == source
        assert model.vertex_ids[model.jaw_right].tolist() == list(JAW_RIGHT_EXTENDED)
        assert model.vertex_ids[model.jaw_left].tolist() == list(JAW_LEFT_EXTENDED)
    mean = models["face"].mean
    marks = mean[models["face"].landmark_indices]
    # Contour point 0 is on the subject's right (-x), 16 on the left (+x); the face is symmetric.
    assert marks[0, 0] < -50 and marks[16, 0] > 50
    torch.testing.assert_close(marks[0, 1:], marks[16, 1:])
    # Nose tip (30) is the most forward landmark (+z out of the face).
    assert marks[:, 2].argmax() == 30
    assert (mean[models["face"].jaw_right, 0] < 0).all() and (mean[models["face"].jaw_left, 0] > 0).all()


def test_winding_points_out_of_the_face(models) -> None:
    model = models["face"]
    v = model.mean[model.faces]
    normals = torch.linalg.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    normals = normals / normals.norm(dim=1, keepdim=True)
    centres = v.mean(dim=1)
    nose_tip = model.mean[model.landmark_indices[30]]
    near_nose = (centres - nose_tip).norm(dim=1) < 8
    assert normals[near_nose].mean(0)[2] > 0.8
    front = (centres[:, 0].abs() < 30) & (centres[:, 1] > 40)  # forehead
    assert (normals[front, 2] > 0).float().mean() > 0.95


def test_identity_modes_scaled_by_standard_deviation(models) -> None:
    basis = models["face"].identity_basis
    rms = basis.pow(2).sum(-1).mean(-1).sqrt()
    assert 2.0 < rms[0] < 6.0  # mm per unit coefficient (one standard deviation)
    assert rms[0] > rms[10] > rms[50] > rms[99] > 0
    assert rms[99] < 0.2
    jaw_open = models["face"].expression_basis[models["face"].expression_names.index("jawOpen")]
    assert 20 < jaw_open.norm(dim=-1).max() < 60  # full-strength target at coefficient 1


def test_batched_partial_and_differentiable(models) -> None:
    model = models["face"]
    generator = torch.Generator().manual_seed(0)
    identity = torch.randn(3, 100, generator=generator, requires_grad=True)
    expression = torch.rand(3, 53, generator=generator)
    out = model(identity, expression)
    assert out.shape == (3, model.num_vertices, 3)
    single = model(identity[1:2].detach(), expression[1:2])
    torch.testing.assert_close(out[1:2], single, atol=1e-4, rtol=1e-5)
    partial = model(identity[:, :10].detach(), expression)
    padded = torch.cat([identity[:, :10].detach(), torch.zeros(3, 90)], dim=1)
    torch.testing.assert_close(partial, model(padded, expression), atol=1e-4, rtol=1e-5)
    out.sum().backward()
    expected = model.identity_basis.sum(dim=(1, 2)).expand(3, -1)
    torch.testing.assert_close(identity.grad, expected, atol=1e-2, rtol=1e-4)


def test_double_coefficients_accepted(models) -> None:
    double = torch.float64
    out = models["narrow_face"](torch.zeros(1, 100, dtype=double), torch.zeros(1, 53, dtype=double))
    assert out.dtype == torch.float32


@pytest.mark.parametrize(
    ("identity", "expression", "match"),
    [
        (torch.zeros(1, 101), torch.zeros(1, 53), "identity"),
        (torch.zeros(100), torch.zeros(1, 53), "identity"),
        (torch.zeros(1, 100), torch.zeros(1, 54), "expression"),
        (torch.zeros(2, 100), torch.zeros(1, 53), "batch"),
    ],
)
def test_bad_shapes_raise(models, identity, expression, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        models["face"](identity, expression)


def test_unknown_region_raises(ict_model_path: Path) -> None:
    with pytest.raises(ValueError, match="region"):
        load_morphable_model("ears", path=ict_model_path)


def test_device_argument(ict_model_path: Path) -> None:
    model = load_morphable_model("narrow_face", device="cpu", path=ict_model_path)
    assert model.mean.device.type == "cpu"
    assert isinstance(model, torch.nn.Module) and model.region == "narrow_face"
    assert np.isfinite(model.mean.numpy()).all()


def test_obj_parser_handles_scattered_vertex_lines() -> None:
    data = b"# header\nv 1 2 3\nvt 0.5 0.5\nv 4 5 6\nf 1/1 2/1 2/1\n"
    assert parse_obj_vertices(data).tolist() == [[1, 2, 3], [4, 5, 6]]
    with pytest.raises(ValueError, match="3 coordinates"):
        parse_obj_vertices(b"v 1 2\nv 3 4 5\n")
