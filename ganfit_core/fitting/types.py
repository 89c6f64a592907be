"""Typed inputs and outputs of a fit.

- :class:`FitTarget`: what a fit reproduces (a square crop and its landmarks).
- :class:`FitEvent`: one progress report of the loop.
- :class:`FitResult`: a finished reconstruction, made of typed parts: :class:`FittedFace` (the
  model's coefficients, texture latent, detail layer and lighting), :class:`FittedCamera` (the camera
  in crop pixels), :class:`PoseParameters` (the optimiser's own pose/camera variables) and one
  :class:`StepRecord` per step. No part is a string-keyed dict of lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ganfit_core.errors import FitCancelled, FitError
from ganfit_core.fitting.config import FitConfig
from ganfit_core.fitting.masks import face_skin_mask
from ganfit_core.fitting.quality import FitQuality

__all__ = ["FitTarget", "FitEvent", "FitResult", "FittedFace", "FittedCamera", "PoseParameters",
           "StepRecord", "FitCancelled", "FitError"]


@dataclass(frozen=True)
class FitTarget:
    """What a fit tries to reproduce: one square face crop and its landmarks.

    Attributes:
        image: (S, S, 3) uint8 RGB crop.
        landmarks: (68, 2) float32 landmarks in crop pixels.
        crop_to_photo: (3, 3) float64 matrix mapping crop px (x, y, 1) to photo px.
        photo_size: (width, height) of the original photo, px.
        face_mask: (S, S) bool face-skin mask (:func:`face_skin_mask`: landmarks + forehead).
        focal_hint: focal length in crop px if known (from the photo's EXIF, or synthetic data), else
            None (the fit searches or assumes one: ``FitConfig.focal_hypotheses``).
        num_faces: how many faces the detector found in the photo (1 for a crop given directly).
        focal_hint_source: where ``focal_hint`` came from: ``"exif"`` or ``"given"``.
        dense_landmarks: (468, 3) float32 MediaPipe FaceMesh points in crop px (x, y; z relative
            depth in the same px scale), or None (no dense landmark term).
        detection_score: detector confidence of this face in [0, 1] (None for a crop given directly).
        landmark_consistency: mirror inconsistency of the detected landmarks
            (:attr:`ganfit_core.face.FaceDetection.landmark_consistency`; None when not measured).
        rotation: counter-clockwise quarter turns of the photo that made the face upright for the
            crop (``crop_to_photo`` already maps back to the photo as given).
        person_mask: (S, S) float32 person probability of the crop in [0, 1] (MediaPipe selfie
            segmentation: face, hair and body vs background), or None. The fit's photo colour in the
            texture is weighted by it (no background at the face's edges).
    """

    image: np.ndarray
    landmarks: np.ndarray
    crop_to_photo: np.ndarray
    photo_size: tuple[int, int]
    face_mask: np.ndarray
    focal_hint: float | None = None
    num_faces: int = 1
    focal_hint_source: str = "given"
    dense_landmarks: np.ndarray | None = None
    detection_score: float | None = None
    landmark_consistency: float | None = None
    rotation: int = 0
    person_mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        img = self.image
        if self.dense_landmarks is not None and (
                self.dense_landmarks.ndim != 2 or self.dense_landmarks.shape[1] != 3):
            raise ValueError(f"FitTarget.dense_landmarks: expected (N, 3), got {self.dense_landmarks.shape}")
        if img.ndim != 3 or img.shape[0] != img.shape[1] or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"FitTarget.image: expected (S, S, 3) uint8, got {img.shape} {img.dtype}")
        if self.landmarks.shape != (68, 2):
            raise ValueError(f"FitTarget.landmarks: expected (68, 2), got {self.landmarks.shape}")
        if self.crop_to_photo.shape != (3, 3):
            raise ValueError(f"FitTarget.crop_to_photo: expected (3, 3), got {self.crop_to_photo.shape}")
        if self.face_mask.shape != img.shape[:2]:
            raise ValueError(f"FitTarget.face_mask: expected {img.shape[:2]}, got {self.face_mask.shape}")
        if self.person_mask is not None and self.person_mask.shape != img.shape[:2]:
            raise ValueError(f"FitTarget.person_mask: expected {img.shape[:2]}, got {self.person_mask.shape}")

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
        focal_hint_source: str = "given",
        dense_landmarks: np.ndarray | None = None,
        detection_score: float | None = None,
        landmark_consistency: float | None = None,
        rotation: int = 0,
        person_mask: np.ndarray | None = None,
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
            focal_hint_source=focal_hint_source,
            dense_landmarks=(None if dense_landmarks is None
                             else np.asarray(dense_landmarks, dtype=np.float32)),
            detection_score=detection_score,
            landmark_consistency=landmark_consistency,
            rotation=int(rotation) % 4,
            person_mask=None if person_mask is None else np.asarray(person_mask, dtype=np.float32),
        )


@dataclass(frozen=True)
class FittedFace:
    """The fitted face, independent of the camera.

    Attributes:
        identity: (K,) float32 identity coefficients, standard deviations of the ICT modes (first K of 100).
        expression: (M,) float32 expression blendshape weights in [0, 1] (M = 53 for ICT).
        expression_names: (M,) names of the expression blendshapes, ICT order.
        texture_latent: (L,) float32 latent of the texture prior (``FitResult.config.texture_prior``).
        detail: (D, D, 3) float32 per-texel residual added to the prior's UV albedo ([0, 1] units, row 0
            at v = 1), or None when the detail stage did not run.
        sh: (9, 3) float32 spherical-harmonics lighting (bands 0-2 x RGB) on camera-space normals.
        iris_rgb: the iris albedo in [0, 1] (the photo's iris colour over the fitted ambient shading),
            or None when the photo's eyes show too little (the eyeballs then get a default brown).
    """

    identity: np.ndarray
    expression: np.ndarray
    expression_names: tuple[str, ...]
    texture_latent: np.ndarray
    detail: np.ndarray | None
    sh: np.ndarray
    iris_rgb: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class FittedCamera:
    """The fitted pinhole camera of the crop (OpenCV axes: +x right, +y down, +z forward).

    ``v_cam = v_model @ rotation.T + translation``; pixel centres at +0.5 (docs/CONTRACTS.md).

    Attributes:
        rotation: (3, 3) float32 model -> camera rotation.
        translation: (3,) float32 model origin in camera space, mm.
        focal: focal length, crop px.
        principal: (2,) float32 principal point (x, y), crop px.
        image_size: (width, height) of the crop, px.
        focal_source: how the focal length was started: ``"exif"`` (the photo's EXIF), ``"given"``
            (``FitTarget.focal_hint``), ``"search"`` (best of ``FitConfig.focal_hypotheses``) or
            ``"assumed"`` (``FitConfig.initial_fov_deg``); the stages refine it from there.
        fov_deg: the fitted field of view across the photo's longer side, degrees.
    """

    rotation: np.ndarray
    translation: np.ndarray
    focal: float
    principal: np.ndarray
    image_size: tuple[int, int]
    focal_source: str = "assumed"
    fov_deg: float | None = None


@dataclass(frozen=True)
class PoseParameters:
    """The optimiser's pose and camera variables (see ``ganfit_core.fitting.params``), kept for params.json.

    Attributes:
        rotation: (3,) float32 axis-angle, rad, relative to the frontal rotation diag(1, -1, -1).
        translation_xy: (2,) float32 image-plane offset of the model origin from the principal point, px.
        log_depth: log of the model origin's depth / initial depth.
        log_focal: log of the focal length / initial focal length.
    """

    rotation: np.ndarray
    translation_xy: np.ndarray
    log_depth: float
    log_focal: float


@dataclass(frozen=True)
class StepRecord:
    """One step of the loop: global ``step`` (1-based), ``stage`` name, and each weighted loss term
    (``losses``, always with ``"total"``)."""

    step: int
    stage: str
    losses: Mapping[str, float]


@dataclass(frozen=True)
class FitResult:
    """A finished reconstruction.

    Attributes:
        vertices: (V, 3) float32 mm, model space (with expression, without pose).
        faces: (F, 3) int64 triangles.
        uvs: (T, 2) float32 texture coordinates, v up.
        uv_faces: (F, 3) int64 indices into ``uvs``.
        texture: (Ht, Wt, 3) uint8 UV albedo (prior + detail), row 0 at v = 1.
        face: the fitted coefficients, texture latent, detail layer and lighting.
        camera: the fitted camera of the crop.
        pose: the optimiser's raw pose variables.
        region: the morphable-model region fitted (``config.region``).
        losses: the last value of every loss term (a term the last stage does not use keeps its
            value from the stage before); ``"total"`` is the last stage's total.
        stage_seconds: wall time of each stage, s.
        warnings: human-readable problems met (divergence, clamped values...).
        render: (S, S, 3) uint8 final rendering composited over the crop.
        config: the settings of the fit.
        history: one record per step.
        crop_to_photo: (3, 3) crop px -> photo px.
        photo_size: (width, height) px.
        target_landmarks: (68, 2) float32 detected landmarks, crop px.
        quality: the fit-quality verdict (good / doubtful / failed, see
            :mod:`ganfit_core.fitting.quality`); a doubtful verdict's reasons are also in ``warnings``.
        other_views: a fit of several photos of one person (``fit([a, b, ...])``): this result is the
            first photo's, and these are the others' (the same identity, ``texture`` and texture
            latent; their own expression, camera, pose, light, render and crop). Empty for one photo.
    """

    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    uv_faces: np.ndarray
    texture: np.ndarray
    face: FittedFace
    camera: FittedCamera
    pose: PoseParameters
    region: str
    losses: dict[str, float]
    stage_seconds: dict[str, float]
    warnings: tuple[str, ...]
    render: np.ndarray
    config: FitConfig
    history: tuple[StepRecord, ...]
    crop_to_photo: np.ndarray
    photo_size: tuple[int, int]
    target_landmarks: np.ndarray
    quality: FitQuality | None = None
    other_views: tuple[FitResult, ...] = ()


@dataclass(frozen=True)
class FitEvent:
    """One progress report of :func:`ganfit_core.fitting.engine.fit` (emitted after every step).

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
