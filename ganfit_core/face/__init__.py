"""Face analysis: image loading, detection + 68 landmarks, face crops, identity network.

Example:
    >>> from ganfit_core.face import load_image, detect_faces, select_face, crop_face
    >>> callable(detect_faces) and callable(crop_face)
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ganfit_core.face.align import FaceCrop, crop_face
from ganfit_core.face.detect import FaceDetection, detect_faces, select_face
from ganfit_core.face.errors import (
    CorruptImageError,
    DecompressionBombError,
    EmptyImageError,
    FaceError,
    FaceIndexError,
    FaceTooSmallError,
    ImageLoadError,
    NoFaceError,
    NotAnImageError,
    UnsupportedImageError,
)
from ganfit_core.face.image_io import load_image

if TYPE_CHECKING:
    from ganfit_core.face.identity import IdentityNetwork, load_identity_network

__all__ = [
    "CorruptImageError",
    "DecompressionBombError",
    "EmptyImageError",
    "FaceCrop",
    "FaceDetection",
    "FaceError",
    "FaceIndexError",
    "FaceTooSmallError",
    "IdentityNetwork",
    "ImageLoadError",
    "NoFaceError",
    "NotAnImageError",
    "UnsupportedImageError",
    "crop_face",
    "detect_faces",
    "load_identity_network",
    "load_image",
    "select_face",
]

_LAZY = {"IdentityNetwork", "load_identity_network"}


def __getattr__(name: str) -> object:
    """Identity-network names are imported on first use (they pull in more modules)."""
    if name in _LAZY:
        from ganfit_core.face import identity

        return getattr(identity, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
