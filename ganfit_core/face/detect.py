"""Face detection and 68 landmarks (iBUG 300-W layout), and choosing the face to fit.

Backends:

* ``"faceapi"`` (default, offline): face-api's Tiny Face Detector and 68-point landmark
  net, converted to PyTorch by our own builders (assets ``faceapi_tiny_detector`` and
  ``faceapi_landmark68``).
* ``"face_alignment"``: the optional ``face-alignment`` package (downloads its weights on
  first use; fails fast offline).

With ``dense=True`` each face also gets MediaPipe FaceMesh's 468 points (asset
``mediapipe_face_landmark``), cropped from its 68 landmarks (:mod:`ganfit_core.face.facemesh`).

All coordinates are photo pixels, continuous, (0, 0) the top-left corner.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ganfit_core.face.align import crop_square
from ganfit_core.face.errors import FaceError, FaceIndexError, FaceTooSmallError, NoFaceError

if TYPE_CHECKING:
    from ganfit_core.face.faceapi_detector import TinyFaceDetector
    from ganfit_core.face.faceapi_landmarks import LandmarkNet

__all__ = ["BACKENDS", "FaceApiDetector", "FaceDetection", "FaceError", "detect_faces", "select_face",
           "with_dense_landmarks"]

BACKENDS = ("faceapi", "face_alignment")
#: Landmark crop: square of side ``LANDMARK_SCALE × max(box w, h)`` around the box centre, as
#: face-api. Measured against dlib on 30 London portraits (mean error / inter-ocular distance):
#: 0.9 → 0.060, 1.0 → 0.057, 1.1 → 0.056, 1.2 → 0.059; a second pass on a square re-centred on
#: the first landmarks changed it by < 0.001, so there is none.
LANDMARK_SCALE = 1.0


@dataclass(frozen=True)
class FaceDetection:
    """One face in a photo.

    Attributes:
        box: (4,) float64 x0, y0, x1, y1, photo pixels.
        score: detector confidence in [0, 1].
        landmarks: (68, 2) float64 photo pixels, iBUG 300-W order (jaw 0–16, brows 17–26,
            nose 27–35, eyes 36–47, mouth 48–67); the subject's right eye is 36–41.
        dense_landmarks: None unless asked for (``detect_faces(..., dense=True)``); else
            (468, 3) float64 MediaPipe FaceMesh points in MediaPipe's index order: x, y photo
            pixels, z relative depth in the same pixel scale (smaller = nearer the camera,
            about 0 at the face's centre).
        dense_presence: FaceMesh's face-presence probability in [0, 1], or None.
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    dense_landmarks: np.ndarray | None = None
    dense_presence: float | None = None

    @property
    def size(self) -> float:
        """Face size in pixels: the geometric mean of the box width and height."""
        width, height = self.box[2] - self.box[0], self.box[3] - self.box[1]
        return float(np.sqrt(max(width, 0.0) * max(height, 0.0)))

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        return self.size**2

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict: box, score, landmarks (lists of floats, photo px), and when present
        ``dense_landmarks`` ([[x, y, z] × 468]) and ``dense_presence``."""
        out: dict[str, object] = {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(self.score, 4),
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
        }
        if self.dense_landmarks is not None:
            out["dense_landmarks"] = [[round(float(v), 2) for v in p] for p in self.dense_landmarks]
            out["dense_presence"] = None if self.dense_presence is None else round(self.dense_presence, 4)
        return out


class FaceApiDetector:
    """face-api detector + landmark net; built once, then called on many photos."""

    def __init__(
        self,
        detector: TinyFaceDetector,
        landmark_net: LandmarkNet,
        *,
        landmark_scale: float = LANDMARK_SCALE,
    ) -> None:
        self.detector = detector
        self.landmark_net = landmark_net
        self.landmark_scale = landmark_scale

    @classmethod
    def load(cls, *, device: torch.device | str | None = None, **options: object) -> FaceApiDetector:
        """Load both networks through the asset registry."""
        from ganfit_core.face.faceapi_detector import TinyFaceDetector, load_tiny_detector
        from ganfit_core.face.faceapi_landmarks import load_landmark_net

        return cls(
            TinyFaceDetector(load_tiny_detector(device=device)), load_landmark_net(device=device), **options
        )

    @torch.no_grad()
    def landmarks(self, image: np.ndarray, squares: np.ndarray) -> np.ndarray:
        """68 landmarks (N, 68, 2) photo px for face squares (N, 3) = centre x, centre y, side."""
        from ganfit_core.face.faceapi_landmarks import INPUT_SIZE

        crops, origins = [], []
        for cx, cy, side in squares:
            crop, _ = crop_square(image, cx - side / 2, cy - side / 2, side, INPUT_SIZE, pad="zeros")
            crops.append(crop)
            origins.append((cx - side / 2, cy - side / 2))
        device = next(self.landmark_net.parameters()).device
        batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div(255.0).to(device)
        relative = self.landmark_net(batch).cpu().double().numpy()
        return relative * squares[:, None, 2:3] + np.asarray(origins)[:, None, :]

    def __call__(self, image: np.ndarray) -> list[FaceDetection]:
        """Faces in ``image`` (H, W, 3) uint8, largest box first."""
        candidates = self.detector(image)
        if not candidates:
            return []
        boxes = np.stack([c.box for c in candidates])
        sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) * self.landmark_scale
        squares = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2, sides], axis=1)
        points = self.landmarks(image, squares)
        faces = [
            FaceDetection(box=c.box, score=c.score, landmarks=p)
            for c, p in zip(candidates, points, strict=True)
        ]
        return sorted(faces, key=lambda f: -f.area)


_CACHE: dict[str, object] = {}
_CACHE_LOCK = threading.Lock()


def _backend(name: str) -> object:
    """The loaded backend ``name`` (loaded once per process)."""
    with _CACHE_LOCK:
        if name not in _CACHE:
            if name == "faceapi":
                _CACHE[name] = FaceApiDetector.load()
            else:
                from ganfit_core.face.face_alignment_backend import FaceAlignmentDetector

                _CACHE[name] = FaceAlignmentDetector.load()
        return _CACHE[name]


def with_dense_landmarks(image: np.ndarray, face: FaceDetection) -> FaceDetection:
    """``face`` with :attr:`FaceDetection.dense_landmarks` from FaceMesh on ``image`` (H, W, 3) uint8."""
    from ganfit_core.face.facemesh import dense_landmarks

    dense = dense_landmarks(image, face.landmarks)
    return dataclasses.replace(face, dense_landmarks=dense.points, dense_presence=dense.presence)


def detect_faces(image: np.ndarray, *, backend: str = "faceapi", dense: bool = False) -> list[FaceDetection]:
    """Detect faces and their 68 landmarks (and, with ``dense``, FaceMesh's 468 points).

    Args:
        image: (H, W, 3) uint8 RGB photo (see :func:`ganfit_core.face.load_image`).
        backend: ``"faceapi"`` (offline default) or ``"face_alignment"``.
        dense: also run MediaPipe FaceMesh on each face (about 50 ms a face on a CPU).

    Returns:
        Detections sorted by box area, largest first (empty if there is no face).

    Raises:
        ValueError: unknown backend or wrong image array.
        FaceError: the backend cannot be used (e.g. ``face_alignment`` not installed/offline).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown face backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array (use load_image), got {got}")
    faces = _backend(backend)(image)  # type: ignore[operator]
    return [with_dense_landmarks(image, face) for face in faces] if dense else faces


def select_face(
    detections: list[FaceDetection], index: int | None = None, *, min_size_px: float = 80
) -> FaceDetection:
    """The face to fit: ``detections[index]``, or the largest when ``index`` is None.

    Raises:
        NoFaceError: no detections.
        FaceIndexError: ``index`` out of range.
        FaceTooSmallError: the chosen face's :attr:`FaceDetection.size` is below ``min_size_px``.

    Example:
        >>> select_face([])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ganfit_core.face.errors.NoFaceError: No face found in the photo: ...
    """
    if not detections:
        raise NoFaceError(
            "No face found in the photo: use a photo where the face is clearly visible, frontal and well lit."
        )
    if index is None:
        face = max(detections, key=lambda f: f.area)
    elif not -len(detections) <= index < len(detections):
        raise FaceIndexError(
            f"face index {index} does not exist: the photo has {len(detections)} face(s), "
            f"indices 0..{len(detections) - 1} (largest first)"
        )
    else:
        face = detections[index]
    if face.size < min_size_px:
        raise FaceTooSmallError(
            f"the face is too small ({face.size:.0f} px across, at least {min_size_px:.0f} px needed): "
            "use a closer or higher-resolution photo"
        )
    return face
