"""Widget-free logic of the app's "animate and relight" panel: a few expression sliders and a light
direction re-render the fitted face with :class:`ganfit_core.export.rerender.FaceRerenderer` (no refit)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ganfit_core.export.rerender import FaceRerenderer, scene_from_result

__all__ = ["Posable", "PoseSlider", "POSE_SLIDERS", "LIGHT_LIMITS_DEG", "POSE_SIZE", "make_posable",
           "fitted_values", "render_pose"]

#: Side of the re-rendered image, px.
POSE_SIZE = 256
#: (azimuth, elevation) slider ranges, degrees.
LIGHT_LIMITS_DEG = (90.0, 60.0)


@dataclass(frozen=True)
class PoseSlider:
    """One expression slider: ``label`` and the ICT shapes (``names``) it sets to its value."""

    key: str
    label: str
    names: tuple[str, ...]


POSE_SLIDERS: tuple[PoseSlider, ...] = (
    PoseSlider("jaw", "jawOpen", ("jawOpen",)),
    PoseSlider("smile_left", "mouthSmileLeft", ("mouthSmile_L",)),
    PoseSlider("smile_right", "mouthSmileRight", ("mouthSmile_R",)),
    PoseSlider("brows", "browInnerUp (both sides)", ("browInnerUp_L", "browInnerUp_R")),
    PoseSlider("blink", "eyeBlink (both sides)", ("eyeBlink_L", "eyeBlink_R")),
)


@dataclass(frozen=True)
class Posable:
    """A fitted face ready to re-render: its ``rerenderer`` and the ``background`` (POSE_SIZE,
    POSE_SIZE, 3) uint8 it is drawn over."""

    rerenderer: FaceRerenderer
    background: np.ndarray


def make_posable(result: object, expression_basis: np.ndarray, renderer: object) -> Posable:
    """``result`` (a FitResult) ready to re-render; the background is the fit's own render over the
    crop, so that the photo's eyes and mouth show through the mesh's holes."""
    rerenderer = FaceRerenderer(scene_from_result(result, expression_basis), renderer, size=POSE_SIZE)
    background = Image.fromarray(result.render).resize((POSE_SIZE, POSE_SIZE), Image.BILINEAR)
    return Posable(rerenderer, np.asarray(background))


def fitted_values(posable: Posable) -> list[float]:
    """The fitted weight of each :data:`POSE_SLIDERS` entry (the mean over its shapes), rounded."""
    weights = posable.rerenderer.expression()
    names = posable.rerenderer.scene.expression_names
    return [round(float(np.mean([weights[names.index(n)] for n in s.names])), 2) for s in POSE_SLIDERS]


def render_pose(posable: Posable, values: Sequence[float], directional: bool, azimuth_deg: float,
                elevation_deg: float) -> np.ndarray:
    """The fitted face with the slider ``values`` (one per :data:`POSE_SLIDERS` entry) and, if
    ``directional``, a light from (azimuth, elevation) degrees; (POSE_SIZE, POSE_SIZE, 3) uint8."""
    if len(values) != len(POSE_SLIDERS):
        raise ValueError(f"expected {len(POSE_SLIDERS)} slider values, got {len(values)}")
    overrides = {name: float(value) for slider, value in zip(POSE_SLIDERS, values, strict=True)
                 for name in slider.names}
    az_limit, el_limit = LIGHT_LIMITS_DEG
    light = None
    if directional:
        light = (float(np.clip(azimuth_deg, -az_limit, az_limit)),
                 float(np.clip(elevation_deg, -el_limit, el_limit)))
    return posable.rerenderer.render(overrides, light, background=posable.background)
