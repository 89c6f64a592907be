"""The camera's focal length from a photo's EXIF data, in pixels of the photo.

Two routes, in order of preference:

1. ``FocalLengthIn35mmFilm`` (tag 0xA405): the 35 mm-equivalent focal length. The equivalence is
   by the image diagonal (CIPA DC-008): ``f_px = f35 * diagonal_px / 43.27`` (43.27 mm is the
   diagonal of a 36 x 24 mm frame).
2. ``FocalLength`` (0x920A, mm) with ``FocalPlaneXResolution`` (0xA20E) and
   ``FocalPlaneResolutionUnit`` (0xA210): sensor pixels per unit length, so
   ``f_px = f_mm * xres / unit_mm``, referring to the image at ``PixelXDimension`` (0xA002) wide
   (the stored width when that tag is missing).

The focal length is returned for the image as :func:`ganfit_core.face.load_image` returns it
(upright, possibly downsized): pass its ``photo_size``. Values that give a field of view outside
:data:`FOV_RANGE_DEG` are treated as absent (broken EXIF), as are missing or zero tags.

Example:
    >>> round(fov_deg(focal_from_fov(40.0, 1000), 1000), 6)
    40.0
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

__all__ = ["ExifFocal", "FOV_RANGE_DEG", "read_exif_focal", "exif_focal_px", "fov_deg", "focal_from_fov"]

#: Fields of view (degrees, across the longer side) accepted as real; anything else is broken EXIF.
FOV_RANGE_DEG: tuple[float, float] = (2.0, 150.0)
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)

_EXIF_IFD = 0x8769
_ORIENTATION = 0x0112
_FOCAL_LENGTH = 0x920A
_FOCAL_35MM = 0xA405
_PLANE_X_RES = 0xA20E
_PLANE_UNIT = 0xA210
_PIXEL_X = 0xA002
#: FocalPlaneResolutionUnit value -> millimetres per unit (1: no unit; 2: inch is the default).
_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 1e-3}


@dataclass(frozen=True)
class ExifFocal:
    """A focal length read from EXIF.

    Attributes:
        focal_px: focal length in pixels of an image ``width`` x ``height`` px (upright).
        width, height: the pixel grid ``focal_px`` refers to (EXIF orientation applied).
        source: which tags gave it: ``"FocalLengthIn35mmFilm"`` or ``"FocalLength+FocalPlaneXResolution"``.
        focal_mm: the lens focal length (``FocalLength``) in mm if present, else None.
    """

    focal_px: float
    width: int
    height: int
    source: str
    focal_mm: float | None = None

    def scaled_to(self, width: int, height: int) -> float:
        """``focal_px`` for the photo resized to ``width`` x ``height`` px (scaled by the longer side)."""
        return self.focal_px * max(width, height) / max(self.width, self.height)

    @property
    def fov_deg(self) -> float:
        """Field of view across the longer side, degrees."""
        return fov_deg(self.focal_px, max(self.width, self.height))


def fov_deg(focal_px: float, side_px: float) -> float:
    """Field of view (degrees) across ``side_px`` pixels for a focal length of ``focal_px`` pixels."""
    return math.degrees(2.0 * math.atan(0.5 * side_px / focal_px))


def focal_from_fov(fov: float, side_px: float) -> float:
    """Focal length (px) giving a field of view of ``fov`` degrees across ``side_px`` pixels."""
    return 0.5 * side_px / math.tan(math.radians(fov) / 2.0)


def _rational(value: object) -> float | None:
    try:
        number = float(value)  # IFDRational, int, float, tuple-free
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _open(source: str | Path | bytes | bytearray | Image.Image) -> Image.Image | None:
    if isinstance(source, Image.Image):
        return source
    try:
        if isinstance(source, bytes | bytearray):
            return Image.open(io.BytesIO(bytes(source)))
        return Image.open(Path(source))
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def read_exif_focal(source: str | Path | bytes | bytearray | Image.Image) -> ExifFocal | None:
    """The focal length in the EXIF data of ``source`` (path, encoded bytes or PIL image), or None.

    None when the file is unreadable, has no EXIF, lacks the tags, or they give an implausible
    field of view (outside :data:`FOV_RANGE_DEG`). Only the header is read (no pixel decoding).
    """
    image = _open(source)
    if image is None:
        return None
    try:
        exif = image.getexif()
        sub = exif.get_ifd(_EXIF_IFD)
    except (OSError, ValueError, SyntaxError):
        return None
    width, height = image.size
    if exif.get(_ORIENTATION) in (5, 6, 7, 8):  # rotated by 90 degrees when made upright
        width, height = height, width
    focal_mm = _rational(sub.get(_FOCAL_LENGTH))
    found: ExifFocal | None = None
    f35 = _rational(sub.get(_FOCAL_35MM))
    if f35 is not None:
        focal = f35 * math.hypot(width, height) / FULL_FRAME_DIAGONAL_MM
        found = ExifFocal(focal, width, height, "FocalLengthIn35mmFilm", focal_mm)
    else:
        xres = _rational(sub.get(_PLANE_X_RES))
        unit_mm = _UNIT_MM.get(int(sub.get(_PLANE_UNIT, 2) or 2))
        if focal_mm is not None and xres is not None and unit_mm is not None:
            focal = focal_mm * xres / unit_mm  # px of the sensor grid the camera reports
            # The resolution is per sensor pixel of an image PixelXDimension wide (the stored,
            # not rotated, image); a resized file keeps the tag, so rescale to the stored width.
            exif_width = _rational(sub.get(_PIXEL_X))
            if exif_width is not None:
                focal *= image.size[0] / exif_width
            found = ExifFocal(focal, width, height, "FocalLength+FocalPlaneXResolution", focal_mm)
    if found is None:
        return None
    low, high = FOV_RANGE_DEG
    return found if low <= found.fov_deg <= high else None


def exif_focal_px(
    source: str | Path | bytes | bytearray | Image.Image,
    *,
    photo_size: tuple[int, int] | None = None,
) -> float | None:
    """Focal length in px of the photo as loaded (``photo_size`` = (width, height)), or None without EXIF.

    ``photo_size`` defaults to the file's own upright size; pass the size
    :func:`ganfit_core.face.load_image` returned when it downsized the photo.
    """
    found = read_exif_focal(source)
    if found is None:
        return None
    if photo_size is None:
        return found.focal_px
    return found.scaled_to(int(photo_size[0]), int(photo_size[1]))
