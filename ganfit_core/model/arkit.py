"""Apple ARKit blendshape names for ICT-FaceKit's 53 expression shapes.

ICT names its shapes after ARKit's ``ARFaceAnchor.BlendShapeLocation`` but writes the side as a
``_L``/``_R`` suffix (``eyeBlink_L``) where ARKit writes ``Left``/``Right`` (``eyeBlinkLeft``).
Sides are the subject's own, in both. Two ARKit shapes are split in ICT: ``browInnerUp`` into
``browInnerUp_L`` + ``browInnerUp_R`` and ``cheekPuff`` into ``cheekPuff_L`` + ``cheekPuff_R``;
those halves keep a clear non-ARKit name (``browInnerUpLeft``...) and :data:`ARKIT_COMBINED` says
which halves sum to the ARKit shape. ARKit's ``tongueOut`` has no ICT shape (ICT Light has no
tongue). So ICT gives 51 of ARKit's 52 shapes: 49 one-to-one and 2 as the sum of two halves.

Example:
    >>> arkit_name("eyeBlink_L"), arkit_name("jawOpen"), arkit_name("cheekPuff_R")
    ('eyeBlinkLeft', 'jawOpen', 'cheekPuffRight')
"""

from __future__ import annotations

__all__ = ["ARKIT_NAMES", "ARKIT_COMBINED", "ARKIT_MISSING", "arkit_name", "arkit_names"]

#: Apple's 52 ARKit blendshape names, in Apple's documentation order.
ARKIT_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawLeft", "jawRight", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)

#: ARKit shapes that ICT splits into a left and a right half: ARKit name -> (left, right) ICT names.
ARKIT_COMBINED: dict[str, tuple[str, str]] = {
    "browInnerUp": ("browInnerUp_L", "browInnerUp_R"),
    "cheekPuff": ("cheekPuff_L", "cheekPuff_R"),
}

#: ARKit shapes with no ICT-FaceKit Light counterpart.
ARKIT_MISSING: tuple[str, ...] = ("tongueOut",)

_SIDES = {"_L": "Left", "_R": "Right"}


def arkit_name(ict_name: str) -> str:
    """The ARKit-style name of one ICT expression shape: the ``_L``/``_R`` suffix becomes
    ``Left``/``Right``; names without a side are already ARKit's."""
    if not ict_name or not ict_name[0].isalpha():
        raise ValueError(f"expected an ICT expression name like 'eyeBlink_L', got {ict_name!r}")
    suffix = ict_name[-2:]
    stem, side = (ict_name[:-2], _SIDES[suffix]) if suffix in _SIDES else (ict_name, "")
    if "_" in stem or not stem:
        raise ValueError(f"ICT expression name {ict_name!r}: expected no '_' except a final _L or _R")
    return stem + side


def arkit_names(ict_names: list[str] | tuple[str, ...]) -> list[str]:
    """ARKit-style names of ICT expression shapes, in the same order; raises if two collide."""
    names = [arkit_name(n) for n in ict_names]
    if len(set(names)) != len(names):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"ICT expression names map to duplicate ARKit names: {duplicates}")
    return names
