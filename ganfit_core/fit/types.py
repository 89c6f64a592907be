"""Typed inputs and outputs of a fit: :class:`FitTarget`, :class:`FitEvent`, :class:`FitResult`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["FitTarget", "FitEvent", "FitResult", "FitCancelled", "FitError", "landmark_hull_mask",
           "face_skin_mask", "forehead_points"]


class FitError(RuntimeError):
    """A fit could not run (bad target, unusable configuration)."""


class FitCancelled(Exception):  # noqa: N818  (the name reads as the event it is)
    """Raised by :func:`ganfit_core.fit.engine.fit` when its ``cancel`` is set (checked between steps)."""


def landmark_hull_mask(landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Face-skin mask: pixels whose centre lies inside the convex hull of ``landmarks``.

    Args:
        landmarks: (K, 2) px (x, y).
        size: (height, width) of the mask.

    Returns: (H, W) bool.

    Example:
        >>> m = landmark_hull_mask(np.array([[1.0, 1.0], [5.0, 1.0], [5.0, 5.0], [1.0, 5.0]]), (8, 8))
        >>> int(m.sum())
        16
    """
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3:
        raise ValueError(f"landmarks: expected (K >= 3, 2), got {pts.shape}")
    hull = _convex_hull(pts)
    height, width = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    inside = np.ones((height, width), dtype=bool)
    for a, b in zip(hull, np.roll(hull, -1, axis=0), strict=True):
        cross = (b[0] - a[0]) * (ys - a[1]) - (b[1] - a[1]) * (xs - a[0])
        inside &= cross >= 0
    return inside


def forehead_points(landmarks: np.ndarray, *, height: float = 0.6) -> np.ndarray:
    """Points (10, 2) above the eyebrows: the brow landmarks 17-26 moved up the face.

    "Up" is the direction from the chin (8) to the nose bridge (27); the distance is ``height``
    times the brow-centre-to-nose-bottom (33) distance (a forehead is about as tall as a nose).
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    up = lm[27] - lm[8]
    up /= max(float(np.linalg.norm(up)), 1e-6)
    brows = lm[17:27]
    length = float(np.linalg.norm(brows.mean(0) - lm[33]))
    return brows + height * length * up


def face_skin_mask(landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: convex hull of the 68 landmarks plus :func:`forehead_points` (the fit's skin mask)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return landmark_hull_mask(np.concatenate([lm, forehead_points(lm)]), size)


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Monotone chain; vertices in order with non-negative cross products (y-down 'clockwise')."""
    pts = sorted(map(tuple, points))

    def cross(o: tuple, a: tuple, b: tuple) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


@dataclass(frozen=True)
class FitTarget:
    """What a fit tries to reproduce: one square face crop and its landmarks.

    Attributes:
        image: (S, S, 3) uint8 RGB crop.
        landmarks: (68, 2) float32 landmarks in crop pixels.
        crop_to_photo: (3, 3) float64 matrix mapping crop px (x, y, 1) to photo px.
        photo_size: (width, height) of the original photo, px.
        face_mask: (S, S) bool face-skin mask (:func:`face_skin_mask`: landmarks + forehead).
        focal_hint: focal length in crop px if known (synthetic data), else None (guessed from FOV).
        num_faces: how many faces the detector found in the photo (1 for a crop given directly).
    """

    image: np.ndarray
    landmarks: np.ndarray
    crop_to_photo: np.ndarray
    photo_size: tuple[int, int]
    face_mask: np.ndarray
    focal_hint: float | None = None
    num_faces: int = 1

    def __post_init__(self) -> None:
        img = self.image
        if img.ndim != 3 or img.shape[0] != img.shape[1] or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"FitTarget.image: expected (S, S, 3) uint8, got {img.shape} {img.dtype}")
        if self.landmarks.shape != (68, 2):
            raise ValueError(f"FitTarget.landmarks: expected (68, 2), got {self.landmarks.shape}")
        if self.crop_to_photo.shape != (3, 3):
            raise ValueError(f"FitTarget.crop_to_photo: expected (3, 3), got {self.crop_to_photo.shape}")
        if self.face_mask.shape != img.shape[:2]:
            raise ValueError(f"FitTarget.face_mask: expected {img.shape[:2]}, got {self.face_mask.shape}")

    @property
    def size(self) -> int:
        """S, the side of the crop in px."""
        return int(self.image.shape[0])

    @classmethod
    def from_crop(
        cls,
        image: np.ndarray,
        landmarks: np.ndarray,
        *,
        crop_to_photo: np.ndarray | None = None,
        photo_size: tuple[int, int] | None = None,
        focal_hint: float | None = None,
        num_faces: int = 1,
    ) -> FitTarget:
        """Build a target from a crop and its landmarks; the crop is the photo unless told otherwise."""
        image = np.ascontiguousarray(image, dtype=np.uint8)
        lms = np.asarray(landmarks, dtype=np.float32)
        size = image.shape[0]
        return cls(
            image=image,
            landmarks=lms,
            crop_to_photo=np.eye(3) if crop_to_photo is None else np.asarray(crop_to_photo, dtype=np.float64),
            photo_size=(size, size) if photo_size is None else (int(photo_size[0]), int(photo_size[1])),
            face_mask=face_skin_mask(lms, image.shape[:2]),
            focal_hint=focal_hint,
            num_faces=int(num_faces),
        )


@dataclass(frozen=True)
class FitResult:
    """A finished reconstruction.

    Attributes:
        vertices: (V, 3) float32 mm, model space (with expression, without pose).
        faces: (F, 3) int64 triangles.
        uvs: (T, 2) float32 texture coordinates, v up.
        uv_faces: (F, 3) int64 indices into ``uvs``.
        texture: (Ht, Wt, 3) uint8 UV albedo, row 0 at v = 1.
        params: every fitted parameter by name (see ``fit_params``), as nested lists, plus camera
            values (``rotation_matrix``, ``translation_mm``, ``focal_px``, ``principal_px``) and
            ``expression_names``.
        losses: the last value of every loss term (a term the last stage does not use keeps its
            value from the stage before); ``"total"`` is the last stage's total.
        stage_seconds: wall time of each stage, s.
        warnings: human-readable problems met (divergence, clamped values...).
        render: (S, S, 3) uint8 final rendering composited over the crop.
        config: the FitConfig as a dict.
        history: one dict per step: ``step``, ``stage`` and each loss term.
        crop_to_photo: (3, 3) crop px -> photo px.
        photo_size: (width, height) px.
        target_landmarks: (68, 2) crop px.
    """

    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    uv_faces: np.ndarray
    texture: np.ndarray
    params: dict[str, list]
    losses: dict[str, float]
    stage_seconds: dict[str, float]
    warnings: list[str]
    render: np.ndarray
    config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    crop_to_photo: np.ndarray = field(default_factory=lambda: np.eye(3))
    photo_size: tuple[int, int] = (0, 0)
    target_landmarks: np.ndarray | None = None


@dataclass(frozen=True)
class FitEvent:
    """One progress report of :func:`ganfit_core.fit.engine.fit` (emitted after every step).

    Attributes:
        stage: stage name (``rigid``, ``shape``, ``full``, ``detail``) or ``done`` for the last event.
        stage_index: 0-based index of the stage among those that run (``num_stages`` when done).
        num_stages: how many stages run.
        step: global step count (1-based, across stages).
        stage_step: step within the stage (1-based).
        losses: each weighted loss term of this step, always with ``"total"``.
        elapsed_s: seconds since the fit started.
        preview: (S, S, 3) uint8 rendering over the crop, every ``preview_every`` steps, else None.
        message: short human-readable status.
        result: the :class:`FitResult`, only on the last event (``stage == "done"``).
    """

    stage: str
    stage_index: int
    num_stages: int
    step: int
    stage_step: int
    losses: dict[str, float]
    elapsed_s: float
    preview: np.ndarray | None = None
    message: str = ""
    result: FitResult | None = None
