"""prepare_target: photo → face crop + landmarks, with the face count for the several-faces note."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ganfit_core.face import FaceIndexError
from ganfit_core.target import prepare_target

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "face-api" / "samples"


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/face-api/samples not present")
def test_group_photo_reports_face_count_and_fits_largest() -> None:
    largest = prepare_target(SAMPLES / "sample1.jpg", resolution=128)
    assert largest.num_faces == 3
    assert largest.image.shape == (128, 128, 3)
    second = prepare_target(SAMPLES / "sample1.jpg", face_index=1, resolution=128)
    assert second.num_faces == 3
    # a different face: its crop sits elsewhere in the photo
    assert not np.allclose(largest.crop_to_photo, second.crop_to_photo)
    with pytest.raises(FaceIndexError):
        prepare_target(SAMPLES / "sample1.jpg", face_index=7, resolution=128)
