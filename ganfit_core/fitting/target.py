"""The fit's target: a photo turned into a :class:`~ganfit_core.fitting.types.FitTarget` (load,
detect, select, crop: :func:`prepare_target`) and that target as tensors at the render size
(:func:`target_tensors`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ganfit_core.fitting.config import FitConfig
from ganfit_core.fitting.masks import face_skin_mask
from ganfit_core.fitting.types import FitTarget
from ganfit_core.model.layout import CONTOUR_LANDMARKS, NUM_LANDMARKS

__all__ = ["PHOTO_MAX_SIDE", "prepare_target", "TargetTensors", "target_tensors", "stack_target_tensors"]


#: Long side (px) photos are loaded at for the fit: a 150 px face in a 6000 px photo keeps ~100 px
#: (at 2048 it would be 51 px, below the 80 px minimum); decoding stays within the pixel budget of
#: :func:`ganfit_core.face.load_image` and 4096² RGB is 48 MiB.
PHOTO_MAX_SIDE = 4096


def prepare_target(
    image: str | Path | bytes | np.ndarray | Any,
    *,
    face_index: int | None = None,
    resolution: int = 224,
    detector_backend: str = "faceapi",
    min_face_px: float = 80,
    dense: bool = True,
    segment: bool = True,
    use_exif: bool = True,
    max_side: int = PHOTO_MAX_SIDE,
) -> FitTarget:
    """Load ``image``, detect faces, pick one, turn it upright and crop it to ``resolution`` x ``resolution``.

    A face found turned by 90°, 180° or 270° is cropped from the photo turned upright; the target's
    ``crop_to_photo`` maps crop pixels back to the photo as given, and ``rotation`` says the turn.

    With ``dense`` the chosen face also gets MediaPipe FaceMesh's 468 points (about 0.1 s); with
    ``use_exif`` a focal length in the photo's EXIF (``ganfit_core.face.exif_camera``) becomes the
    target's ``focal_hint`` (``focal_hint_source == "exif"``).

    Args:
        image: path, bytes, PIL image or (H, W, 3) uint8 array (see ``ganfit_core.face.load_image``).
        face_index: which detection (a whole number >= 0, largest first); None picks the largest face.
        resolution: crop side in px (use the fit's ``render_size`` to avoid resampling).
        detector_backend: ``"faceapi"`` (offline default) or ``"face_alignment"``.
        min_face_px: smallest accepted face, px across (of the photo loaded at ``max_side``).
        max_side: photos are loaded with their long side at most this, px.
        dense: run FaceMesh on the chosen face (the fit's dense landmark term).
        segment: run MediaPipe's selfie segmentation on the crop (``person_mask``: no background
            colour in the texture; about 0.03 s).
        use_exif: read the focal length from the photo's EXIF (paths, bytes and PIL images).

    Raises:
        ganfit_core.face.ImageLoadError: unreadable image.
        ganfit_core.face.FaceError: no face / face too small / bad index (all ValueError).
    """
    from ganfit_core.face import crop_face, detect_faces, load_image, select_face
    from ganfit_core.face.detect import check_face_index, upright_view
    from ganfit_core.face.rotation import view_to_photo_matrix

    if face_index is not None:
        face_index = check_face_index(face_index)
    photo = load_image(image, max_side=max_side)
    detections = detect_faces(photo, backend=detector_backend)
    detection = select_face(detections, face_index, min_size_px=min_face_px)
    view, upright = upright_view(photo, detection)
    crop = crop_face(view, upright, resolution)
    height, width = photo.shape[:2]
    view_to_photo = view_to_photo_matrix((width, height), detection.rotation)
    crop_to_photo = view_to_photo @ crop.crop_to_photo
    consistency = None if np.isnan(detection.landmark_consistency) else float(detection.landmark_consistency)
    view_to_crop = np.linalg.inv(crop.crop_to_photo)  # the upright view's px -> crop px
    px_per_crop = float(np.sqrt(abs(np.linalg.det(crop.crop_to_photo[:2, :2])))) or 1.0
    dense_crop = None
    if dense:
        from ganfit_core.face.detect import with_dense_landmarks

        points = with_dense_landmarks(view, upright).dense_landmarks  # (468, 3) view px
        if points is not None:
            xy = points[:, :2] @ view_to_crop[:2, :2].T + view_to_crop[:2, 2]
            dense_crop = np.concatenate([xy, points[:, 2:3] / px_per_crop], axis=1).astype(np.float32)
    person = None
    if segment:
        from ganfit_core.face.segmentation import segment_person

        person = segment_person(crop.image)
    focal_crop = None
    if use_exif and not isinstance(image, np.ndarray):
        from ganfit_core.face.exif_camera import exif_focal_px

        focal_photo = exif_focal_px(image, photo_size=(width, height))
        focal_crop = None if focal_photo is None else focal_photo / px_per_crop
    return FitTarget.from_crop(crop.image, np.asarray(crop.landmarks, dtype=np.float32),
                               crop_to_photo=crop_to_photo, photo_size=(width, height),
                               num_faces=len(detections), detection_score=float(detection.score),
                               landmark_consistency=consistency, rotation=detection.rotation,
                               focal_hint=focal_crop, focal_hint_source="exif", dense_landmarks=dense_crop,
                               person_mask=person)


@dataclass
class TargetTensors:
    """Target tensors at the render resolution S (``config.render_size``)."""

    image: torch.Tensor  # (1, S, S, 3) [0, 1]
    image_chw: torch.Tensor  # (1, 3, S, S)
    landmarks: torch.Tensor  # (1, 68, 2) px at render size
    skin: torch.Tensor  # (1, S, S, 1) float, face_skin_mask (landmark hull + forehead)
    skin_soft: torch.Tensor  # (1, S, S, 1) float, the hull mask feathered over ~4 % of the size
    weights: torch.Tensor  # (68,) per-landmark weights (contour landmarks: config.contour_weight)
    size: int
    scale: float  # render px per crop px
    embedding: torch.Tensor | None  # (1, E) recogniser embedding of the photo, if the fit uses it
    features: tuple[torch.Tensor, ...] | None  # recogniser activations of the photo, if used
    dense: torch.Tensor | None = None  # (1, 468, 2) FaceMesh points, px at render size, if any
    iris_rgb: torch.Tensor | None = None  # (1, 3) the photo's iris colour in [0, 1] (None: not seen)
    person: torch.Tensor | None = None  # (1, S, S) person probability (FitTarget.person_mask), if any


def target_tensors(target: FitTarget, config: FitConfig, device: torch.device,
                   identity_net: torch.nn.Module | None) -> TargetTensors:
    """Resample ``target`` to the render size and precompute its masks and recogniser outputs."""
    size = config.render_size
    scale = size / target.size
    image = torch.tensor(target.image).to(device, torch.float32).div(255.0)[None]
    chw = image.permute(0, 3, 1, 2)
    if size != target.size:
        chw = F.interpolate(chw, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        chw = chw.clamp(0.0, 1.0)
    landmarks_np = target.landmarks.astype(np.float32) * scale
    skin = torch.from_numpy(face_skin_mask(landmarks_np, (size, size))).to(device, torch.float32)
    weights = torch.ones(NUM_LANDMARKS, device=device)
    weights[CONTOUR_LANDMARKS] = config.contour_weight
    landmarks = torch.from_numpy(landmarks_np).to(device)[None]
    embedding = features = None
    if identity_net is not None:
        with torch.no_grad():
            out = identity_net.analyse(chw, landmarks)
        embedding, features = out.embedding, tuple(out.features)
    dense = None
    if target.dense_landmarks is not None:
        dense = torch.from_numpy(target.dense_landmarks[:, :2] * scale).to(device, torch.float32)[None]
    radius = max(1, round(0.02 * size))
    soft = F.avg_pool2d(skin[None, None], 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)
    from ganfit_core.face.iris import estimate_iris_rgb

    iris = estimate_iris_rgb(target.image, target.landmarks)
    iris_rgb = None if iris is None else torch.tensor([iris], device=device, dtype=torch.float32)
    person = None
    if target.person_mask is not None:
        person = torch.from_numpy(target.person_mask).to(device, torch.float32)[None, None]
        if size != target.size:
            person = F.interpolate(person, size=(size, size), mode="bilinear", align_corners=False)
        person = person[:, 0]
    return TargetTensors(chw.permute(0, 2, 3, 1).contiguous(), chw.contiguous(), landmarks,
                         skin[None, :, :, None], soft.permute(0, 2, 3, 1).contiguous(),
                         weights, size, scale, embedding, features, dense, iris_rgb, person)


def stack_target_tensors(views: list[TargetTensors]) -> TargetTensors:
    """Several photos' tensors (all at the same render size) as one batch of B = len(views).

    ``scale`` may differ per photo only through the crop size; the landmark and pixel terms use the
    render-size pixels, so each view keeps its own ``landmarks`` and images; ``scale`` must agree.
    """
    if not views:
        raise ValueError("expected at least one target")
    first = views[0]
    for view in views[1:]:
        if view.size != first.size or abs(view.scale - first.scale) > 1e-9:
            raise ValueError(f"targets: expected the same render size and crop scale, got {view.size} px "
                             f"x {view.scale} and {first.size} px x {first.scale}")
    cat = lambda name: torch.cat([getattr(v, name) for v in views])  # noqa: E731
    embedding = features = None
    if first.embedding is not None:
        embedding = cat("embedding")
        features = tuple(torch.cat(parts) for parts in zip(*(v.features for v in views), strict=True))
    dense = cat("dense") if all(v.dense is not None for v in views) else None
    iris = cat("iris_rgb") if all(v.iris_rgb is not None for v in views) else None
    person = cat("person") if all(v.person is not None for v in views) else None
    return TargetTensors(cat("image"), cat("image_chw"), cat("landmarks"), cat("skin"), cat("skin_soft"),
                         first.weights, first.size, first.scale, embedding, features, dense, iris, person)
