"""Re-rendering a fitted face with new expression weights and a new light (no refit)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ganfit_core.export.rerender import FaceRerenderer, FaceScene, directional_sh, light_direction
from ganfit_core.render.lighting import ambient_sh, sh_shading

SIZE = 64


def _shading(sh: np.ndarray, normal: list[float]) -> float:
    n = torch.tensor(normal, dtype=torch.float64)
    return float(sh_shading((n / n.norm())[None, None], torch.from_numpy(sh)[None])[0, 0, 0])


@pytest.mark.parametrize(("azimuth", "elevation"), [(0.0, 0.0), (60.0, 20.0), (-45.0, -30.0)])
def test_directional_sh_lights_the_side_facing_the_light(azimuth: float, elevation: float) -> None:
    level, ambient = np.array([1.2, 1.0, 0.8]), 0.3
    sh = directional_sh(level, azimuth, elevation, ambient=ambient)
    d = light_direction(azimuth, elevation)
    assert np.isclose(np.linalg.norm(d), 1.0)
    facing, away = _shading(sh, d.tolist()), _shading(sh, (-d).tolist())
    assert facing == pytest.approx(level[0], rel=0.08)  # SH bands 0-2 round a clamped cosine's peak
    assert away == pytest.approx(ambient * level[0], abs=0.08)
    ratios = sh[:, 1] / sh[:, 0]
    assert np.allclose(ratios, level[1] / level[0])  # the colour is the level's


def test_light_direction_axes() -> None:
    assert light_direction(90.0, 0.0) == pytest.approx([1.0, 0.0, 0.0], abs=1e-9)  # viewer's right: +x
    assert light_direction(0.0, 90.0) == pytest.approx([0.0, -1.0, 0.0], abs=1e-9)  # above: -y (y down)
    with pytest.raises(ValueError, match="ambient"):
        directional_sh([1, 1, 1], 0, 0, ambient=1.5)


@pytest.fixture(scope="module")
def rerenderer(ict_model_path: Path) -> FaceRerenderer:
    """The ICT mean face, frontal, 1 m away, grey albedo, ambient light of 1."""
    from ganfit_core.model.morphable import load_morphable_model
    from ganfit_core.render.camera import FRONTAL_ROTATION
    from ganfit_core.render.renderer import make_renderer

    model = load_morphable_model("face", path=ict_model_path)
    texture = np.full((32, 32, 3), 160, np.uint8)
    scene = FaceScene(vertices=model.mean.numpy(), faces=model.faces.numpy(), uvs=model.uvs.numpy(),
                      uv_faces=model.uv_faces.numpy(), texture=texture, expression=np.zeros(53, np.float32),
                      expression_basis=model.expression_basis.numpy(),
                      expression_names=tuple(model.expression_names), rotation=FRONTAL_ROTATION.numpy(),
                      translation=np.array([0.0, -20.0, 1000.0]), focal_px=2.0 * 1000.0 * 128 / 380.0,
                      principal_px=np.array([64.0, 64.0]), size=128, sh=ambient_sh(1, 1.0)[0].numpy())
    return FaceRerenderer(scene, make_renderer("torch"), size=SIZE)


def test_fitted_frame_is_the_scene(rerenderer: FaceRerenderer) -> None:
    frame = rerenderer.render()
    assert frame.shape == (SIZE, SIZE, 3) and frame.dtype == np.uint8
    face = np.abs(frame.astype(int) - 128).max(axis=-1) > 2
    assert 0.1 < face.mean() < 0.9
    assert np.median(frame[face], axis=0).tolist() == [160, 160, 160]  # grey albedo under ambient 1
    np.testing.assert_array_equal(frame, rerenderer.render())


def test_expression_override_moves_the_mouth(rerenderer: FaceRerenderer) -> None:
    neutral = rerenderer.render().astype(int)
    jaw = rerenderer.render({"jawOpen": 1.0}).astype(int)
    changed = np.abs(jaw - neutral).max(axis=-1) > 8
    assert changed.sum() > 20
    assert np.median(np.nonzero(changed)[0]) > SIZE * 0.5  # below the image centre: mouth and chin
    assert rerenderer.expression({"jawOpen": 2.0})[rerenderer.scene.expression_names.index("jawOpen")] == 1.0
    with pytest.raises(ValueError, match="unknown expression"):
        rerenderer.render({"smile": 1.0})


def test_light_from_the_right_brightens_the_right(rerenderer: FaceRerenderer) -> None:
    def halves(frame: np.ndarray) -> tuple[float, float]:
        grey = frame.astype(float).mean(axis=-1)
        face = np.abs(grey - 128) > 2
        left, right = face.copy(), face.copy()
        left[:, SIZE // 2:], right[:, :SIZE // 2] = False, False
        return float(grey[left].mean()), float(grey[right].mean())

    left, right = halves(rerenderer.render(light=(60.0, 0.0)))
    assert right > left + 15
    left, right = halves(rerenderer.render(light=(-60.0, 0.0)))
    assert left > right + 15
    with pytest.raises(ValueError, match="background"):
        rerenderer.render(background=np.zeros((8, 8, 3), np.uint8))


def test_app_pose_panel_renders_a_fit_result(rerenderer: FaceRerenderer) -> None:
    """``ganfit_app.pose`` on a FitResult-shaped value: fitted slider values, then a changed frame."""
    from types import SimpleNamespace

    from ganfit_app.pose import POSE_SIZE, POSE_SLIDERS, fitted_values, make_posable, render_pose

    scene = rerenderer.scene
    expression = np.zeros(53, np.float32)
    expression[scene.expression_names.index("mouthSmile_L")] = 0.4
    vertices = scene.vertices + np.tensordot(expression, scene.expression_basis, axes=1)
    result = SimpleNamespace(
        vertices=vertices, faces=scene.faces, uvs=scene.uvs, uv_faces=scene.uv_faces, texture=scene.texture,
        face=SimpleNamespace(expression=expression, expression_names=scene.expression_names, sh=scene.sh),
        camera=SimpleNamespace(rotation=scene.rotation, translation=scene.translation, focal=scene.focal_px,
                               principal=scene.principal_px, image_size=(scene.size, scene.size)),
        render=np.full((scene.size, scene.size, 3), 90, np.uint8))
    posable = make_posable(result, scene.expression_basis, rerenderer.renderer)
    values = fitted_values(posable)
    assert values == [0.0, 0.4, 0.0, 0.0, 0.0]  # jaw, smile left, smile right, brows, blink
    fitted = render_pose(posable, values, False, 0.0, 0.0)
    assert fitted.shape == (POSE_SIZE, POSE_SIZE, 3)
    assert (fitted[0, 0] == 90).all()  # the fit's render is the background
    smiling = render_pose(posable, [0.0, 1.0, 1.0, 0.0, 0.0], False, 0.0, 0.0)
    relit = render_pose(posable, values, True, 60.0, 10.0)
    assert np.abs(smiling.astype(int) - fitted).max() > 20 and np.abs(relit.astype(int) - fitted).max() > 20
    with pytest.raises(ValueError, match="slider values"):
        render_pose(posable, [0.0] * (len(POSE_SLIDERS) + 1), False, 0.0, 0.0)
