"""Turn a photo into a :class:`~ganfit_core.fit.types.FitTarget`: load, detect, select, crop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ganfit_core.fit.types import FitTarget

__all__ = ["prepare_target"]


def prepare_target(
    image: str | Path | bytes | np.ndarray | Any,
    *,
    face_index: int | None = None,
    resolution: int = 224,
    detector_backend: str = "faceapi",
    min_face_px: float = 80,
) -> FitTarget:
    """Load ``image``, detect faces, pick one and crop it to ``resolution`` x ``resolution``.

    Args:
        image: path, bytes, PIL image or (H, W, 3) uint8 array (see ``ganfit_core.face.load_image``).
        face_index: which detection (largest first); None picks the largest face.
        resolution: crop side in px (use the fit's ``render_size`` to avoid resampling).
        detector_backend: ``"faceapi"`` (offline default) or ``"face_alignment"``.
        min_face_px: smallest accepted face, px across.

    Raises:
        ganfit_core.face.ImageLoadError: unreadable image.
        ganfit_core.face.FaceError: no face / face too small / bad index (all ValueError).
    """
    from ganfit_core.face import crop_face, detect_faces, load_image, select_face

    photo = load_image(image)
    detections = detect_faces(photo, backend=detector_backend)
    detection = select_face(detections, face_index, min_size_px=min_face_px)
    crop = crop_face(photo, detection, resolution)
    height, width = photo.shape[:2]
    return FitTarget.from_crop(crop.image, np.asarray(crop.landmarks, dtype=np.float32),
                               crop_to_photo=crop.crop_to_photo, photo_size=(width, height),
                               num_faces=len(detections))
