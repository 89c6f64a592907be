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


def _with_exif(path: Path, f35: int) -> bytes:
    """The photo re-encoded as JPEG with ``FocalLengthIn35mmFilm`` in its EXIF."""
    import io

    from PIL import Image

    image = Image.open(path).convert("RGB")
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = f35
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=92, exif=exif.tobytes())
    return out.getvalue()


def test_exif_focal_and_dense_points(shared_dir: Path) -> None:
    """A portrait with EXIF: the focal length becomes the target's hint, FaceMesh's points come along."""
    from ganfit_core.face.exif_camera import FULL_FRAME_DIAGONAL_MM

    photo = shared_dir / "london-faces" / "neutral_front" / "001_03.jpg"
    if not photo.is_file():
        pytest.skip(f"london-faces photo not found at {photo} (set GANFIT_SOURCE_DIR)")
    data = _with_exif(photo, 85)
    target = prepare_target(data, resolution=128)
    assert target.focal_hint_source == "exif"
    width, height = target.photo_size
    px_per_crop = float(np.sqrt(abs(np.linalg.det(target.crop_to_photo[:2, :2]))))
    focal_photo = 85 * np.hypot(width, height) / FULL_FRAME_DIAGONAL_MM
    assert target.focal_hint == pytest.approx(focal_photo / px_per_crop, rel=1e-6)
    dense = target.dense_landmarks
    assert dense is not None and dense.shape == (468, 3) and dense.dtype == np.float32
    # FaceMesh's points lie on the face: inside the crop, around the 68 points
    assert (dense[:, :2] > 0).all() and (dense[:, :2] < 128).all()
    lm = target.landmarks
    assert np.linalg.norm(dense[:, :2].mean(0) - lm[17:].mean(0)) < 0.1 * 128
    # the person segmentation: the face is person, the crop's top corners (grey background) are not
    person = target.person_mask
    assert person is not None and person.shape == (128, 128) and person.dtype == np.float32
    assert person[target.face_mask].mean() > 0.95 and person[:10, :10].mean() < 0.1
    plain = prepare_target(data, resolution=128, dense=False, segment=False, use_exif=False)
    assert plain.focal_hint is None and plain.dense_landmarks is None and plain.person_mask is None
    np.testing.assert_allclose(plain.landmarks, target.landmarks)
