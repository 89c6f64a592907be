"""Load a photo from a path, bytes, PIL image or array as 8-bit RGB, upright and not too large.

Handles EXIF orientation, every common PIL mode (1, L, P, LA, RGBA, PA, CMYK, YCbCr, I;16, I,
F, …) and rejects empty, truncated, corrupt, non-image and decompression-bomb inputs with
:class:`~ganfit_core.face.errors.ImageLoadError` subclasses.

Memory: nothing larger than the decoded file in its own pixel format is ever held. JPEGs are
decoded at a reduced DCT scale (``Image.draft``); other formats are decoded once and then
reduced by an integer factor strip by strip (:data:`STRIP_PIXELS` at a time), converting colour
mode and bit depth only on each strip, after reduction for 16-bit and float data, so a 16384²
16-bit PNG peaks at its 512 MiB decode plus a few strips instead of a float64 copy.
"""

from __future__ import annotations

import io
import logging
import math
import struct
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ganfit_core.face.errors import (
    CorruptImageError,
    DecompressionBombError,
    EmptyImageError,
    ImageLoadError,
    NotAnImageError,
    UnsupportedImageError,
)

__all__ = ["BACKGROUND_GREY", "MAX_PIXELS", "load_image"]

_LOG = logging.getLogger(__name__)

#: Pixel budget: the largest image accepted, in pixels (16384 × 16384). The only limit applied:
#: PIL's own decompression-bomb check is switched off while we open a file, so every refusal
#: quotes this one number.
MAX_PIXELS = 268_435_456
#: Pixels converted at once while reducing a decoded image (a horizontal strip).
STRIP_PIXELS = 1 << 22
_HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
#: EXIF orientation tag value → the transpose that makes the image upright (as ImageOps.exif_transpose).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
#: Serialises the moments PIL's global ``MAX_IMAGE_PIXELS`` is switched off (Image.open only).
_OPEN_LOCK = threading.Lock()
#: Grey (0–255) that transparent areas are composited onto.
BACKGROUND_GREY = 128

ImageSource = str | Path | bytes | bytearray | Image.Image | np.ndarray


def load_image(source: ImageSource, *, max_side: int = 2048) -> np.ndarray:
    """Read ``source`` as an upright RGB photo.

    Args:
        source: file path, encoded bytes, PIL image, or array (H, W), (H, W, 1|3|4) of uint8,
            uint16 (full 16-bit range) or float (values in [0, 1]).
        max_side: the longer side is downsized to at most this many pixels (area filter).

    Returns:
        (H, W, 3) uint8 RGB array, EXIF orientation applied.

    Raises:
        NotAnImageError, CorruptImageError, EmptyImageError, DecompressionBombError,
        UnsupportedImageError (all :class:`ImageLoadError`, a ``ValueError``).

    Example:
        >>> load_image(np.zeros((4, 6), dtype=np.uint8)).shape
        (4, 6, 3)
    """
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    if isinstance(source, np.ndarray):
        image, what = _from_array(source), "the array"
    elif isinstance(source, Image.Image):
        image, what = _checked(source, "the PIL image"), "the PIL image"
    elif isinstance(source, bytes | bytearray):
        if not source:
            raise EmptyImageError("the image data are empty (0 bytes)")
        image, what = _open(io.BytesIO(bytes(source)), "the image data", max_side), "the image data"
    elif isinstance(source, str | Path):
        image, what = _open_path(Path(source), max_side), Path(source).name
    else:
        raise UnsupportedImageError(
            f"expected a path, bytes, PIL image or numpy array, got {type(source).__name__}"
        )
    return _to_rgb_array(image, max_side, what)


def _open_path(path: Path, max_side: int) -> Image.Image:
    if not path.exists():
        raise ImageLoadError(f"image file not found: {path.name}")
    if path.is_dir():
        raise NotAnImageError(f"{path.name} is a folder, not an image file")
    if path.stat().st_size == 0:
        raise EmptyImageError(f"the image file {path.name} is empty (0 bytes)")
    try:
        handle = io.BytesIO(path.read_bytes())
    except OSError as exc:
        raise ImageLoadError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    return _open(handle, path.name, max_side)


def _png_declared_size(data: bytes) -> tuple[int, int] | None:
    """Width, height from a PNG's IHDR chunk (PIL refuses to identify a 0-pixel PNG at all)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    return None


def _open(handle: io.BytesIO, what: str, max_side: int) -> Image.Image:
    """Open and decode an image, mapping PIL's failures to our exceptions.

    The size is checked against :data:`MAX_PIXELS` from the header, before any pixel is decoded.
    JPEGs are decoded at the smallest DCT scale that still gives at least ``max_side`` px.
    """
    declared = _png_declared_size(handle.getbuffer()[:24].tobytes())
    if declared is not None:
        _check_size(declared, what)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with _OPEN_LOCK:
                previous = Image.MAX_IMAGE_PIXELS
                Image.MAX_IMAGE_PIXELS = None  # our own budget below is the only limit
                try:
                    image = Image.open(handle)
                finally:
                    Image.MAX_IMAGE_PIXELS = previous
            _check_size(image.size, what)
            if image.format == "JPEG" and max(image.size) >= 2 * max_side:
                shrink = max_side / max(image.size)
                image.draft(image.mode, (math.ceil(image.width * shrink), math.ceil(image.height * shrink)))
            image.load()
        _log_warnings(caught, what)
    except UnidentifiedImageError:
        raise NotAnImageError(f"{what} is not an image file PIL can read (JPEG, PNG, WebP, …)") from None
    except (OSError, SyntaxError, ValueError, struct.error) as exc:
        if isinstance(exc, ImageLoadError):
            raise
        raise CorruptImageError(f"{what} is truncated or corrupt: {exc}") from None
    return image


def _log_warnings(caught: list[warnings.WarningMessage], what: str) -> None:
    """PIL's decoding warnings (e.g. "Corrupt EXIF data") go to the log, not raw to stderr."""
    for warning in caught:
        _LOG.warning("%s: %s", what, warning.message)


def _check_size(size: tuple[int, int], what: str) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise EmptyImageError(f"{what} is empty: it has zero size ({width}×{height} px)")
    if width * height > MAX_PIXELS:
        raise DecompressionBombError(
            f"{what} is too large: {width}×{height} = {width * height:,} pixels, "
            f"over the limit of {MAX_PIXELS:,} pixels (16384×16384)"
        )


def _checked(image: Image.Image, what: str) -> Image.Image:
    _check_size(image.size, what)
    return image


def _from_array(array: np.ndarray) -> Image.Image:
    """(H, W) or (H, W, C) array → PIL image of an 8-bit mode."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise UnsupportedImageError(
            f"expected an array of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise EmptyImageError(f"the array is empty: it has zero size ({array.shape})")
    _check_size((array.shape[1], array.shape[0]), "the array")
    if array.dtype == np.uint8:
        data = array
    elif array.dtype == np.uint16:
        data = (array.astype(np.uint32) * 255 + 32767) // 65535
    elif array.dtype == np.bool_:
        data = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise UnsupportedImageError("the float array contains NaN or infinite values")
        data = np.round(np.clip(array, 0.0, 1.0) * 255.0)
    else:
        raise UnsupportedImageError(
            f"unsupported array dtype {array.dtype}; use uint8, uint16 or float in [0, 1]"
        )
    data = np.ascontiguousarray(data.astype(np.uint8))
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[data.shape[2] if data.ndim == 3 else 2]
    return Image.fromarray(data, mode=mode)


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """Reduced I (from I;16*/I) or F image → 8-bit L, scaled by the value range of the source mode."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        finite = values[np.isfinite(values)]
        top = (
            1.0
            if finite.size == 0 or finite.max() <= 1.0
            else 255.0
            if finite.max() <= 255.0
            else finite.max()
        )
        values = np.nan_to_num(values, nan=0.0, posinf=top, neginf=0.0) / top
    else:
        sixteen_bit = image.info.get("ganfit_source_mode", "").startswith("I;16")
        top = 65535.0 if sixteen_bit or values.max(initial=0) > 255 else 255.0
        values = values / top
    return Image.fromarray(np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8), mode="L")


def _orientation(image: Image.Image, what: str) -> int:
    """EXIF orientation tag (1–8; 1 when absent or unreadable); a damaged EXIF block is logged."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = image.getexif().get(0x0112, 1)
        _log_warnings(caught, what)
        return int(value) if int(value) in _ORIENTATION else 1
    except Exception as exc:  # noqa: BLE001 — a damaged EXIF block must not lose the photo
        _LOG.warning("%s: unreadable EXIF (%s); orientation left as stored", what, exc)
        return 1


def _strip_to_working_mode(strip: Image.Image) -> Image.Image:
    """A strip of the decoded image → the mode it is averaged in: RGB (alpha composited onto
    :data:`BACKGROUND_GREY`), L, or I / F for high-bit-depth data (converted to 8 bits only after
    reduction)."""
    mode = strip.mode
    if mode in _HIGH_DEPTH_MODES:
        return strip if mode == "I" else strip.convert("I")
    if mode in ("F", "L", "RGB"):
        return strip
    if mode == "P":
        strip = strip.convert("RGBA")
    elif mode in _ALPHA_MODES:
        strip = strip.convert("RGBA")
    if strip.mode == "RGBA":
        background = Image.new("RGB", strip.size, (BACKGROUND_GREY,) * 3)
        background.paste(strip, mask=strip.getchannel("A"))
        return background
    try:
        return strip.convert("RGB")
    except (ValueError, OSError) as exc:
        raise UnsupportedImageError(f"cannot convert an image of mode {mode!r} to RGB: {exc}") from None


def _reduce_in_strips(image: Image.Image, factor: int) -> Image.Image:
    """``image`` converted to its working mode and shrunk by the integer ``factor`` (box average),
    one horizontal strip at a time so no full-size converted copy exists.

    Returns an image of size (ceil(W / factor), ceil(H / factor)) in mode RGB, L, I or F.
    """
    width, height = image.size
    rows = max(factor, (STRIP_PIXELS // max(width, 1)) // factor * factor)
    out: Image.Image | None = None
    for top in range(0, height, rows):
        strip = _strip_to_working_mode(image.crop((0, top, width, min(top + rows, height))))
        if factor > 1:
            strip = strip.reduce(factor)
        if out is None:
            out = Image.new(strip.mode, (math.ceil(width / factor), math.ceil(height / factor)))
        out.paste(strip, (0, top // factor))
    assert out is not None  # height >= 1 was checked
    out.info["ganfit_source_mode"] = image.mode
    return out


def _to_rgb_array(image: Image.Image, max_side: int, what: str = "the image") -> np.ndarray:
    """Decoded image → upright (H, W, 3) uint8 RGB, long side at most ``max_side``.

    An integer reduction (strip by strip) first, then one area resize whose source box is the
    original extent in reduced pixels (as PIL's ``reducing_gap``), then the EXIF transpose.
    """
    orientation = _orientation(image, what)
    width, height = image.size
    scale = min(1.0, max_side / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    factor = max(1, max(width, height) // max_side)
    small = _reduce_in_strips(image, factor)
    if small.mode in ("I", "F"):
        small = _high_depth_to_l(small)
    if small.mode != "RGB":
        small = small.convert("RGB")
    if small.size != size:
        resample = Image.Resampling.BOX if scale * factor < 0.5 else Image.Resampling.BILINEAR
        small = small.resize(size, resample, box=(0, 0, width / factor, height / factor))
    if orientation != 1:
        small = small.transpose(_ORIENTATION[orientation])
    return np.asarray(small, dtype=np.uint8).copy()
