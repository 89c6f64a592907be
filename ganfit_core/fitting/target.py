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

__all__ = ["prepare_target", "TargetTensors", "target_tensors"]


def prepare_target(
    image: str | Path | bytes | np.ndarray | Any,
    *,
    face_index: int | None = None,
    resolution: int = 224,
    detector_backend: str = "faceapi",
    min_face_px: float = 80,
) -> FitTarget:
    """Load ``image``, detect faces, pick one and crop it to ``resolution`` x ``resolution``.

    Args:
        image: path, bytes, PIL image or (H, W, 3) uint8 array (see ``ganfit_core.face.load_image``).
        face_index: which detection (largest first); None picks the largest face.
        resolution: crop side in px (use the fit's ``render_size`` to avoid resampling).
        detector_backend: ``"faceapi"`` (offline default) or ``"face_alignment"``.
        min_face_px: smallest accepted face, px across.

    Raises:
        ganfit_core.face.ImageLoadError: unreadable image.
        ganfit_core.face.FaceError: no face / face too small / bad index (all ValueError).
    """
    from ganfit_core.face import crop_face, detect_faces, load_image, select_face

    photo = load_image(image)
    detections = detect_faces(photo, backend=detector_backend)
    detection = select_face(detections, face_index, min_size_px=min_face_px)
    crop = crop_face(photo, detection, resolution)
    height, width = photo.shape[:2]
    return FitTarget.from_crop(crop.image, np.asarray(crop.landmarks, dtype=np.float32),
                               crop_to_photo=crop.crop_to_photo, photo_size=(width, height),
                               num_faces=len(detections))


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
    radius = max(1, round(0.02 * size))
    soft = F.avg_pool2d(skin[None, None], 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)
    return TargetTensors(chw.permute(0, 2, 3, 1).contiguous(), chw.contiguous(), landmarks,
                         skin[None, :, :, None], soft.permute(0, 2, 3, 1).contiguous(),
                         weights, size, scale, embedding, features)
