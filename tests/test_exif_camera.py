"""EXIF focal length: generated JPEGs carrying the tags (PIL writes them)."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from ganfit_core.face.exif_camera import (
    FULL_FRAME_DIAGONAL_MM,
    exif_focal_px,
    focal_from_fov,
    fov_deg,
    read_exif_focal,
)


def _jpeg(size: tuple[int, int], tags: dict[int, object], *, orientation: int | None = None) -> bytes:
    """A small JPEG of ``size`` (width, height) with ``tags`` in its Exif IFD."""
    image = Image.fromarray(np.full((size[1], size[0], 3), 120, dtype=np.uint8))
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    sub = exif.get_ifd(0x8769)
    sub.update(tags)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def test_35mm_equivalent_uses_the_diagonal(tmp_path):
    data = _jpeg((400, 300), {0xA405: 28, 0x920A: 4.2})
    path = tmp_path / "phone.jpg"
    path.write_bytes(data)
    found = read_exif_focal(path)
    assert found is not None and found.source == "FocalLengthIn35mmFilm"
    expected = 28 * 500.0 / FULL_FRAME_DIAGONAL_MM
    assert found.focal_px == pytest.approx(expected)
    assert found.focal_mm == pytest.approx(4.2)
    assert (found.width, found.height) == (400, 300)
    # A 28 mm-equivalent lens is a wide phone camera: about 65 degrees across the longer side.
    assert 60.0 < found.fov_deg < 70.0
    assert exif_focal_px(data) == pytest.approx(expected)  # bytes work too


def test_photo_size_rescales_the_focal():
    data = _jpeg((400, 300), {0xA405: 85})
    full = exif_focal_px(data)
    half = exif_focal_px(data, photo_size=(200, 150))
    assert half == pytest.approx(full / 2)


def test_focal_plane_resolution_route():
    # 50 mm lens, 4000 px per inch on the sensor plane (unit 2 = inch), image stored at the
    # PixelXDimension the camera reports.
    tags = {0x920A: IFDRational(50, 1), 0xA20E: IFDRational(4000, 1), 0xA210: 2, 0xA002: 320, 0xA003: 240}
    found = read_exif_focal(_jpeg((320, 240), tags))
    assert found is not None and found.source == "FocalLength+FocalPlaneXResolution"
    assert found.focal_px == pytest.approx(50 * 4000 / 25.4)


def test_focal_plane_resolution_follows_a_resized_file():
    # The camera wrote 640 px wide; the file was resized to 320 px but kept the tags.
    tags = {0x920A: 50.0, 0xA20E: 200.0, 0xA210: 4, 0xA002: 640}  # unit 4 = mm
    found = read_exif_focal(_jpeg((320, 240), tags))
    assert found is not None
    assert found.focal_px == pytest.approx(50 * 200 / 2)


def test_35mm_tag_wins_over_focal_plane():
    tags = {0xA405: 50, 0x920A: 50.0, 0xA20E: 10.0, 0xA210: 4}
    found = read_exif_focal(_jpeg((300, 200), tags))
    assert found is not None and found.source == "FocalLengthIn35mmFilm"


def test_rotated_orientation_swaps_the_size():
    found = read_exif_focal(_jpeg((400, 300), {0xA405: 50}, orientation=6))
    assert found is not None and (found.width, found.height) == (300, 400)
    assert found.focal_px == pytest.approx(50 * 500 / FULL_FRAME_DIAGONAL_MM)


@pytest.mark.parametrize("tags", [
    {},  # no focal tags at all
    {0x920A: 4.2},  # lens focal length without sensor size: unusable
    {0xA405: 0},  # zero means unknown in EXIF
    {0xA405: 2},  # 2 mm-equivalent: ~170 degrees, broken EXIF
    {0x920A: 50.0, 0xA20E: 10.0, 0xA210: 1},  # unit 1 = no absolute unit
])
def test_missing_or_implausible_tags_give_none(tags):
    assert read_exif_focal(_jpeg((300, 200), tags)) is None


def test_no_exif_and_unreadable_inputs_give_none(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buffer, format="PNG")
    assert exif_focal_px(buffer.getvalue()) is None
    assert exif_focal_px(b"not an image") is None
    assert exif_focal_px(tmp_path / "missing.jpg") is None


def test_fov_round_trip():
    for fov in (10.0, 40.0, 75.0):
        assert fov_deg(focal_from_fov(fov, 640), 640) == pytest.approx(fov)
    assert focal_from_fov(90.0, 100) == pytest.approx(50.0)
    assert math.isclose(fov_deg(50.0, 100), 90.0)
