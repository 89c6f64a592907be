"""The iris colour of a photographed face, for the eyeballs of the exported and re-rendered face.

Inside each eye outline (iBUG landmarks 36-41 and 42-47) the iris is the mid-dark part: brighter than
the pupil and the lash line, darker than the sclera. :func:`estimate_iris_rgb` keeps the pixels of both
eyes darker than midway between the eyes' dark and bright ends (5th and 95th luminance percentiles),
drops the darkest quarter of those (pupil, lashes) and returns the median colour of the rest.
"""

from __future__ import annotations

import numpy as np

from ganfit_core.texture.skin import points_in_polygon

__all__ = ["estimate_iris_rgb", "MIN_EYE_PIXELS"]

MIN_EYE_PIXELS = 12  # fewer pixels inside both eye outlines (closed or tiny eyes): no estimate
_DROP_DARKEST = 0.25  # fraction of the dark pixels left out as pupil and lashes


def estimate_iris_rgb(image: np.ndarray, landmarks: np.ndarray) -> tuple[float, float, float] | None:
    """Median RGB in [0, 1] of the iris pixels, or None when the eyes show too few pixels.

    Args:
        image: (H, W, 3) uint8 RGB (or float in [0, 1]).
        landmarks: (68, 2) iBUG landmarks, px of ``image``.

    Example:
        >>> img = np.full((40, 40, 3), 230, np.uint8); img[15:25, 5:35] = (60, 90, 140)
        >>> lm = np.zeros((68, 2)); lm[36:42] = [[4, 20], [10, 14], [16, 14], [20, 20], [16, 26], [10, 26]]
        >>> lm[42:48] = lm[36:42] + [16, 0]
        >>> [round(c, 2) for c in estimate_iris_rgb(img, lm)]
        [0.24, 0.35, 0.55]
    """
    img = np.asarray(image)
    rgb = img.astype(np.float64) / (255.0 if img.dtype == np.uint8 else 1.0)
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"landmarks: expected shape (68, 2), got {lm.shape}")
    pixels = []
    for outline in (lm[36:42], lm[42:48]):
        x0, y0 = np.floor(outline.min(axis=0)).astype(int)
        x1, y1 = np.ceil(outline.max(axis=0)).astype(int)
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, rgb.shape[1]), min(y1, rgb.shape[0])
        if x1 <= x0 or y1 <= y0:
            continue
        ys, xs = np.mgrid[y0:y1, x0:x1]
        centres = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], axis=1)
        inside = points_in_polygon(centres, outline)
        pixels.append(rgb[ys.ravel()[inside], xs.ravel()[inside], :3])
    if not pixels or sum(len(p) for p in pixels) < MIN_EYE_PIXELS:
        return None
    eye = np.concatenate(pixels)
    luminance = eye @ np.array([0.299, 0.587, 0.114])
    dark_end, bright_end = np.quantile(luminance, [0.05, 0.95])
    dark = luminance < 0.5 * (dark_end + bright_end)
    if dark.sum() < 4:
        return None
    floor = np.quantile(luminance[dark], _DROP_DARKEST)
    iris = eye[dark & (luminance >= floor)]
    r, g, b = np.median(iris, axis=0)
    return float(r), float(g), float(b)
