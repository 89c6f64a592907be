"""Exceptions of the face-analysis stage, each with a message a user can act on.

Both roots are :class:`ganfit_core.errors.UserInputError` (hence ``ValueError``) subclasses.
"""

from __future__ import annotations

from ganfit_core.errors import UserInputError

__all__ = [
    "CorruptImageError",
    "DecompressionBombError",
    "EmptyImageError",
    "FaceError",
    "FaceIndexError",
    "FaceTooSmallError",
    "ImageLoadError",
    "NoFaceError",
    "NotAnImageError",
    "UnsupportedImageError",
]


class ImageLoadError(UserInputError):
    """The input could not be turned into an RGB photo."""


class NotAnImageError(ImageLoadError):
    """The file or bytes are not in any image format we can read."""


class CorruptImageError(ImageLoadError):
    """The image is truncated or its data are damaged."""


class EmptyImageError(ImageLoadError):
    """The input is empty (no bytes) or has zero width or height."""


class DecompressionBombError(ImageLoadError):
    """The image declares more pixels than the safety limit allows."""


class UnsupportedImageError(ImageLoadError):
    """The input type, array shape or pixel type is not supported."""


class FaceError(UserInputError):
    """No usable face in the photo."""


class NoFaceError(FaceError):
    """The detector found no face."""


class FaceTooSmallError(FaceError):
    """The chosen face is too small to fit."""


class FaceIndexError(FaceError):
    """The requested face index does not exist."""
