"""Quarter-turn rotations of a photo and of pixel coordinates, in ``np.rot90``'s convention.

``k`` counts counter-clockwise quarter turns: ``rotate_image(photo, k) == np.rot90(photo, k)``.
Coordinates are continuous pixels, (0, 0) the top-left corner (docs/CONTRACTS.md), so a point and
the pixel it lies on stay together exactly (no half-pixel shifts).

Example:
    >>> import numpy as np
    >>> p = np.array([[10.0, 2.0]])                      # in a 40 × 30 (W × H) photo
    >>> q = points_to_rotated(p, (40, 30), 1)            # the photo turned 90° counter-clockwise
    >>> q.tolist(), points_from_rotated(q, (40, 30), 1).tolist()
    ([[2.0, 30.0]], [[10.0, 2.0]])
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "box_of_points",
    "points_from_rotated",
    "points_to_rotated",
    "rotate_image",
    "rotated_size",
    "view_to_photo_matrix",
]


def rotate_image(image: np.ndarray, k: int) -> np.ndarray:
    """(H, W, C) photo turned ``k`` quarter turns counter-clockwise, contiguous."""
    return np.ascontiguousarray(np.rot90(image, k % 4))


def rotated_size(size: tuple[int, int], k: int) -> tuple[int, int]:
    """(W, H) of a photo of ``size`` (W, H) after ``k`` quarter turns."""
    return (size[1], size[0]) if k % 2 else (size[0], size[1])


def points_to_rotated(points: np.ndarray, size: tuple[int, int], k: int) -> np.ndarray:
    """Points (..., 2) of a photo of ``size`` (W, H) → the same points in ``rotate_image(photo, k)``."""
    out = np.array(points, dtype=np.float64, copy=True)
    width, height = size
    for _ in range(k % 4):  # one counter-clockwise turn: (x, y) → (y, W - x), the size becomes (H, W)
        out = np.stack([out[..., 1], width - out[..., 0]], axis=-1)
        width, height = height, width
    return out


def points_from_rotated(points: np.ndarray, size: tuple[int, int], k: int) -> np.ndarray:
    """Inverse of :func:`points_to_rotated`: points of ``rotate_image(photo, k)`` → photo points;
    ``size`` is the original photo's (W, H)."""
    return points_to_rotated(points, rotated_size(size, k), (-k) % 4)


def box_of_points(points: np.ndarray) -> np.ndarray:
    """(4,) x0, y0, x1, y1 enclosing points (N, 2)."""
    return np.concatenate([points.min(axis=0), points.max(axis=0)])


def view_to_photo_matrix(size: tuple[int, int], k: int) -> np.ndarray:
    """(3, 3) affine matrix taking homogeneous points of ``rotate_image(photo, k)`` to the photo of
    ``size`` (W, H): :func:`points_from_rotated` as a matrix, to compose with crop transforms.

    Example:
        >>> m = view_to_photo_matrix((40, 30), 1)
        >>> (m @ [2.0, 30.0, 1.0]).tolist()
        [10.0, 2.0, 1.0]
    """
    origin, x_unit, y_unit = points_from_rotated(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), size, k)
    matrix = np.eye(3)
    matrix[:2, 0], matrix[:2, 1], matrix[:2, 2] = x_unit - origin, y_unit - origin, origin
    return matrix
