"""prepare_target: photo → face crop + landmarks, with the face count for the several-faces note."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ganfit_core.face import FaceIndexError
from ganfit_core.fitting.target import prepare_target


def test_group_photo_reports_face_count_and_fits_largest(shared_dir: Path) -> None:
    samples = shared_dir / "face-api" / "samples"
    if not samples.is_dir():
        pytest.skip(f"face-api sample photos not found at {samples} (set GANFIT_SOURCE_DIR)")
    largest = prepare_target(samples / "sample1.jpg", resolution=128)
    assert largest.num_faces == 3
    assert largest.image.shape == (128, 128, 3)
    second = prepare_target(samples / "sample1.jpg", face_index=1, resolution=128)
    assert second.num_faces == 3
    # a different face: its crop sits elsewhere in the photo
    assert not np.allclose(largest.crop_to_photo, second.crop_to_photo)
    with pytest.raises(FaceIndexError):
        prepare_target(samples / "sample1.jpg", face_index=7, resolution=128)
