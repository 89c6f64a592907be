"""Load a photo from a path, bytes, PIL image or array as 8-bit RGB, upright and not too large.

Handles EXIF orientation, every common PIL mode (1, L, P, LA, RGBA, PA, CMYK, YCbCr, I;16, I,
F, …), downsizing before anything heavy, and rejects empty, truncated, corrupt, non-image and
decompression-bomb inputs with :class:`~ganfit_core.face.errors.ImageLoadError` subclasses.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ganfit_core.face.errors import (
    CorruptImageError,
    DecompressionBombError,
    EmptyImageError,
    ImageLoadError,
    NotAnImageError,
    UnsupportedImageError,
)

__all__ = ["BACKGROUND_GREY", "MAX_PIXELS", "load_image"]

#: Largest image accepted, in pixels (about 16k × 16k); PIL's own bomb check uses the same.
MAX_PIXELS = 268_435_456
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
        image = _from_array(source)
    elif isinstance(source, Image.Image):
        image = _checked(source, "the PIL image")
    elif isinstance(source, bytes | bytearray):
        if not source:
            raise EmptyImageError("the image data are empty (0 bytes)")
        image = _open(io.BytesIO(bytes(source)), "the image bytes", max_side)
    elif isinstance(source, str | Path):
        image = _open_path(Path(source), max_side)
    else:
        raise UnsupportedImageError(
            f"expected a path, bytes, PIL image or numpy array, got {type(source).__name__}"
        )
    return _to_rgb_array(image, max_side)


def _open_path(path: Path, max_side: int) -> Image.Image:
    if not path.exists():
        raise ImageLoadError(f"image file not found: {path}")
    if path.is_dir():
        raise NotAnImageError(f"{path} is a folder, not an image file")
    if path.stat().st_size == 0:
        raise EmptyImageError(f"the image file {path} is empty (0 bytes)")
    try:
        handle = io.BytesIO(path.read_bytes())
    except OSError as exc:
        raise ImageLoadError(f"cannot read {path}: {exc}") from exc
    return _open(handle, str(path), max_side)


def _open(handle: io.BytesIO, what: str, max_side: int) -> Image.Image:
    """Open and fully decode an image, mapping PIL's failures to our exceptions.

    JPEGs much larger than ``max_side`` are decoded at a reduced scale (DCT scaling), which is
    several times faster than decoding at full size and then downsizing.
    """
    previous = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(handle)
            _check_size(image.size, what)
            if image.format == "JPEG" and max(image.size) >= 2 * max_side:
                shrink = max_side / max(image.size)
                image.draft(image.mode, (math.ceil(image.width * shrink), math.ceil(image.height * shrink)))
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecompressionBombError(
            f"{what} is too large to be a photo ({exc}); the limit is {MAX_PIXELS:,} pixels"
        ) from None
    except UnidentifiedImageError:
        raise NotAnImageError(f"{what} is not an image file PIL can read (JPEG, PNG, WebP, …)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, ImageLoadError):
            raise
        raise CorruptImageError(f"{what} is truncated or corrupt: {exc}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = previous
    return image


def _check_size(size: tuple[int, int], what: str) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise EmptyImageError(f"{what} has zero size ({width}×{height} px)")
    if width * height > MAX_PIXELS:
        raise DecompressionBombError(
            f"{what} is {width}×{height} = {width * height:,} pixels, over the {MAX_PIXELS:,} pixel limit"
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
        raise EmptyImageError(f"the array has zero size ({array.shape})")
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
    """I;16*, I and F modes → 8-bit L, scaled by the value range of the mode."""
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
        top = 65535.0 if values.max(initial=0) > 255 or image.mode.startswith("I;16") else 255.0
        values = values / top
    return Image.fromarray(np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8), mode="L")


def _to_rgb_array(image: Image.Image, max_side: int) -> np.ndarray:
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 — a damaged EXIF block must not lose the photo
        pass
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        image = _high_depth_to_l(image)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("LA", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (BACKGROUND_GREY,) * 3)
        background.paste(image, mask=image.getchannel("A"))
        image = background
    elif image.mode != "RGB":
        try:
            image = image.convert("RGB")
        except (ValueError, OSError) as exc:
            raise UnsupportedImageError(
                f"cannot convert an image of mode {image.mode!r} to RGB: {exc}"
            ) from None
    if max(image.size) > max_side:
        scale = max_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BOX if scale < 0.5 else Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8).copy()
