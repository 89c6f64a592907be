"""The photo's iris colour (ganfit_core.face.iris) on drawn eyes, and its use in the fit's result."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from ganfit_core.face.iris import estimate_iris_rgb


def _eye_landmarks(centre: tuple[float, float], width: float) -> np.ndarray:
    """Six iBUG points of an almond eye outline (corner, two upper, corner, two lower)."""
    cx, cy = centre
    w, h = width / 2, width / 5
    return np.array([[cx - w, cy], [cx - w / 3, cy - h], [cx + w / 3, cy - h], [cx + w, cy],
                     [cx + w / 3, cy + h], [cx - w / 3, cy + h]])


def _face_with_eyes(iris: tuple[int, int, int], width: float = 40.0) -> tuple[np.ndarray, np.ndarray]:
    """A skin-coloured image with two eyes: white sclera, a coloured iris disc, a black pupil."""
    img = Image.new("RGB", (200, 120), (200, 160, 140))
    draw = ImageDraw.Draw(img)
    lm = np.zeros((68, 2))
    for first, cx in ((36, 60.0), (42, 140.0)):
        outline = _eye_landmarks((cx, 60.0), width)
        lm[first:first + 6] = outline
        draw.polygon([tuple(p) for p in outline], fill=(240, 238, 235))
        r = width / 5
        draw.ellipse([cx - r, 60 - r, cx + r, 60 + r], fill=iris)
        draw.ellipse([cx - r / 3, 60 - r / 3, cx + r / 3, 60 + r / 3], fill=(5, 5, 5))
    return np.asarray(img), lm


def test_blue_and_brown_irises_are_told_apart() -> None:
    blue_img, lm = _face_with_eyes((70, 110, 170))
    brown_img, _ = _face_with_eyes((95, 60, 30))
    blue = np.asarray(estimate_iris_rgb(blue_img, lm)) * 255
    brown = np.asarray(estimate_iris_rgb(brown_img, lm)) * 255
    assert np.abs(blue - (70, 110, 170)).max() < 25, blue
    assert np.abs(brown - (95, 60, 30)).max() < 25, brown


def test_closed_or_tiny_eyes_give_none() -> None:
    img, lm = _face_with_eyes((70, 110, 170), width=4.0)
    assert estimate_iris_rgb(img, lm) is None
    flat = lm.copy()
    flat[36:48, 1] = 60.0  # closed: the outlines have no area
    assert estimate_iris_rgb(img, flat) is None


def test_eyes_outside_the_image_give_none() -> None:
    img, lm = _face_with_eyes((70, 110, 170))
    assert estimate_iris_rgb(img, lm + 1000.0) is None
