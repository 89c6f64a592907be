"""Square crops around a face, keeping the exact crop ↔ photo pixel transform.

A crop of side ``side`` photo pixels whose top-left corner is photo point ``(x0, y0)``,
resampled to ``size`` pixels, maps crop pixel coordinates ``p`` to photo coordinates
``x0 + p * side / size`` (continuous pixel coordinates, (0, 0) = top-left corner).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from ganfit_core.face.detect import FaceDetection

__all__ = ["CROP_SCALE", "CROP_SHIFT_UP", "FaceCrop", "crop_face", "crop_square", "face_square"]

#: Crop side as a multiple of the landmarks' larger extent (brows to chin, jaw to jaw):
#: leaves room for the forehead and a little background all round.
CROP_SCALE = 1.6
#: Crop centre moved up by this fraction of the landmarks' height (the forehead has no landmarks).
CROP_SHIFT_UP = 0.12


@dataclass(frozen=True)
class FaceCrop:
    """A square face crop for fitting.

    Attributes:
        image: (S, S, 3) uint8 RGB.
        landmarks: (68, 2) float, crop pixels.
        crop_to_photo: (3, 3) float64, maps homogeneous crop pixels to photo pixels.
        box: (4,) float64 x0, y0, x1, y1 of the crop square in photo pixels (may leave the photo).
    """

    image: np.ndarray
    landmarks: np.ndarray
    crop_to_photo: np.ndarray
    box: np.ndarray

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        """Crop pixels (..., 2) → photo pixels (..., 2)."""
        return points @ self.crop_to_photo[:2, :2].T + self.crop_to_photo[:2, 2]


def crop_square(
    image: np.ndarray, x0: float, y0: float, side: float, size: int, *, pad: str = "edge"
) -> tuple[np.ndarray, np.ndarray]:
    """Resample the photo square ``[x0, x0+side) × [y0, y0+side)`` to ``size × size``.

    Args:
        image: (H, W, 3) uint8.
        x0, y0, side: the square in photo pixels; it may leave the photo.
        size: output side in pixels.
        pad: what fills areas outside the photo: ``"edge"`` (replicate border pixels),
            ``"zeros"`` (black) or ``"grey"`` (128).

    Returns:
        crop (size, size, 3) uint8 and crop_to_photo (3, 3) float64.

    Example:
        >>> crop, m = crop_square(np.zeros((10, 10, 3), np.uint8), -5, -5, 20, 4)
        >>> crop.shape, float(m[0, 0]), float(m[0, 2])
        ((4, 4, 3), 5.0, -5.0)
    """
    if side <= 0 or size < 1:
        raise ValueError(f"crop side and size must be positive, got side={side}, size={size}")
    height, width = image.shape[:2]
    # integer window covering the square, padded where it leaves the photo
    ix0, iy0 = int(np.floor(x0)), int(np.floor(y0))
    ix1, iy1 = int(np.ceil(x0 + side)), int(np.ceil(y0 + side))
    before = (max(0, -iy0), max(0, -ix0))
    after = (max(0, iy1 - height), max(0, ix1 - width))
    window = image[max(iy0, 0) : min(iy1, height), max(ix0, 0) : min(ix1, width)]
    if window.size == 0:
        window = np.zeros((1, 1, 3), np.uint8) if pad != "grey" else np.full((1, 1, 3), 128, np.uint8)
        before, after = (0, 0), (iy1 - iy0 - 1, ix1 - ix0 - 1)
    if any(before) or any(after):
        widths = ((before[0], after[0]), (before[1], after[1]), (0, 0))
        if pad == "edge":
            window = np.pad(window, widths, mode="edge")
        elif pad in ("zeros", "grey"):
            window = np.pad(window, widths, mode="constant", constant_values=0 if pad == "zeros" else 128)
        else:
            raise ValueError(f"pad must be 'edge', 'zeros' or 'grey', got {pad!r}")
    # sub-pixel box inside the window, resampled with PIL's antialiasing filter
    box = (x0 - ix0, y0 - iy0, x0 - ix0 + side, y0 - iy0 + side)
    crop = Image.fromarray(np.ascontiguousarray(window)).resize(
        (size, size), Image.Resampling.BILINEAR, box=box
    )
    scale = side / size
    crop_to_photo = np.array([[scale, 0.0, x0], [0.0, scale, y0], [0.0, 0.0, 1.0]])
    return np.array(crop), crop_to_photo


def face_square(
    landmarks: np.ndarray, *, scale: float = CROP_SCALE, shift_up: float = CROP_SHIFT_UP
) -> np.ndarray:
    """Fitting crop square (4,) x0, y0, x1, y1 in photo px from 68 landmarks (68, 2) px."""
    lo, hi = landmarks.min(axis=0), landmarks.max(axis=0)
    extent = hi - lo
    centre = (lo + hi) / 2.0 - np.array([0.0, shift_up * extent[1]])
    half = scale * float(extent.max()) / 2.0
    return np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half])


def crop_face(image: np.ndarray, detection: FaceDetection, size: int, *, pad: str = "edge") -> FaceCrop:
    """Square crop around ``detection`` for fitting: whole face with forehead and chin.

    Args:
        image: the photo (H, W, 3) uint8 the detection came from.
        detection: a face from :func:`ganfit_core.face.detect_faces`.
        size: crop side in pixels (the fitting resolution).
        pad: fill outside the photo (see :func:`crop_square`).

    Returns:
        :class:`FaceCrop`; ``crop.to_photo(crop.landmarks)`` equals ``detection.landmarks``.
    """
    box = face_square(np.asarray(detection.landmarks, dtype=np.float64))
    crop, crop_to_photo = crop_square(image, box[0], box[1], box[2] - box[0], size, pad=pad)
    photo_to_crop = np.linalg.inv(crop_to_photo)
    landmarks = detection.landmarks @ photo_to_crop[:2, :2].T + photo_to_crop[:2, 2]
    return FaceCrop(image=crop, landmarks=landmarks, crop_to_photo=crop_to_photo, box=box)
