"""Face-skin masks from the 68 landmarks: convex hull plus a forehead band (the fit's pixel mask)."""

from __future__ import annotations

import numpy as np

__all__ = ["landmark_hull_mask", "face_skin_mask", "forehead_points"]


def landmark_hull_mask(landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Face-skin mask: pixels whose centre lies inside the convex hull of ``landmarks``.

    Args:
        landmarks: (K, 2) px (x, y).
        size: (height, width) of the mask.

    Returns: (H, W) bool.

    Example:
        >>> m = landmark_hull_mask(np.array([[1.0, 1.0], [5.0, 1.0], [5.0, 5.0], [1.0, 5.0]]), (8, 8))
        >>> int(m.sum())
        16
    """
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3:
        raise ValueError(f"landmarks: expected (K >= 3, 2), got {pts.shape}")
    hull = _convex_hull(pts)
    height, width = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    inside = np.ones((height, width), dtype=bool)
    for a, b in zip(hull, np.roll(hull, -1, axis=0), strict=True):
        cross = (b[0] - a[0]) * (ys - a[1]) - (b[1] - a[1]) * (xs - a[0])
        inside &= cross >= 0
    return inside


def forehead_points(landmarks: np.ndarray, *, height: float = 0.6) -> np.ndarray:
    """Points (10, 2) above the eyebrows: the brow landmarks 17-26 moved up the face.

    "Up" is the direction from the chin (8) to the nose bridge (27); the distance is ``height``
    times the brow-centre-to-nose-bottom (33) distance (a forehead is about as tall as a nose).
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    up = lm[27] - lm[8]
    up /= max(float(np.linalg.norm(up)), 1e-6)
    brows = lm[17:27]
    length = float(np.linalg.norm(brows.mean(0) - lm[33]))
    return brows + height * length * up


def face_skin_mask(landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: convex hull of the 68 landmarks plus :func:`forehead_points` (the fit's skin mask)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return landmark_hull_mask(np.concatenate([lm, forehead_points(lm)]), size)


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Monotone chain; vertices in order with non-negative cross products (y-down 'clockwise')."""
    pts = sorted(map(tuple, points))

    def cross(o: tuple, a: tuple, b: tuple) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])
