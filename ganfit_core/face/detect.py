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
import math
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from ganfit_core.face.align import crop_square
from ganfit_core.face.errors import FaceError, FaceIndexError, FaceTooSmallError, NoFaceError
from ganfit_core.face.rotation import box_of_points, points_from_rotated, points_to_rotated, rotate_image

if TYPE_CHECKING:
    from ganfit_core.face.faceapi_detector import BoxCandidate, TinyFaceDetector
    from ganfit_core.face.faceapi_landmarks import LandmarkNet

__all__ = [
    "BACKENDS",
    "CONSISTENCY_LIMIT",
    "ROTATED_MIN_FACE_PX",
    "MIRROR_68",
    "FaceApiDetector",
    "FaceDetection",
    "FaceError",
    "check_face_index",
    "detect_faces",
    "select_face",
    "upright_view",
    "with_dense_landmarks",
]

BACKENDS = ("faceapi", "face_alignment")
#: Landmark crop: square of side ``LANDMARK_SCALE × max(box w, h)`` around the box centre, as
#: face-api. Measured against dlib on 30 London portraits (mean error / inter-ocular distance):
#: 0.9 → 0.060, 1.0 → 0.057, 1.1 → 0.056, 1.2 → 0.059; a second pass on a square re-centred on
#: the first landmarks changed it by < 0.001, so there is none.
LANDMARK_SCALE = 1.0
#: iBUG 68 index of each point's mirror image (jaw, brows, nose wings, eyes and mouth swap sides).
MIRROR_68 = (
    *range(16, -1, -1),
    *range(26, 16, -1),
    27, 28, 29, 30, 35, 34, 33, 32, 31,
    45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,
    54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,
    64, 63, 62, 61, 60, 67, 66, 65,
)  # fmt: skip
#: Landmark sanity: largest accepted mirror inconsistency (see :attr:`FaceDetection.landmark_consistency`).
#: Measured on 6 London portraits at 600 px: upright faces 0.013–0.027; the same faces turned by 90°
#: or 180° and still boxed by the detector (it boxes most upside-down faces with scores 0.54–0.91,
#: while the landmark net draws an upright face into the box): 0.050–0.168.
CONSISTENCY_LIMIT = 0.04
#: Smallest face (px across) looked for in the photo turned by 90°, 180° and 270°: a coarser search
#: than upright (which goes down to 40 px), since three turned pyramids are what a photo without
#: any face costs.
ROTATED_MIN_FACE_PX = 120.0


@dataclass(frozen=True)
class FaceDetection:
    """One face in a photo.

    Attributes:
        box: (4,) float64 x0, y0, x1, y1, photo pixels.
        score: detector confidence in [0, 1].
        landmarks: (68, 2) float64 photo pixels, iBUG 300-W order (jaw 0–16, brows 17–26,
            nose 27–35, eyes 36–47, mouth 48–67); the subject's right eye is 36–41.
        rotation: counter-clockwise quarter turns that make the face upright:
            ``np.rot90(photo, rotation)`` (see :func:`upright_view`); 0 for an upright face.
        landmark_consistency: mirror inconsistency of the landmarks, a sanity measure available
            before any fit: mean distance between the landmarks and those found on the mirrored
            face crop (mirrored back), as a fraction of the crop side. Upright faces score about
            0.01–0.03; above :data:`CONSISTENCY_LIMIT` the landmarks are suspect (e.g. a sideways
            face with eyes drawn side by side). NaN when the backend does not measure it.
        dense_landmarks: None unless asked for (``detect_faces(..., dense=True)``); else
            (468, 3) float64 MediaPipe FaceMesh points in MediaPipe's index order: x, y photo
            pixels, z relative depth in the same pixel scale (smaller = nearer the camera,
            about 0 at the face's centre).
        dense_presence: FaceMesh's face-presence probability in [0, 1], or None.
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    rotation: int = 0
    landmark_consistency: float = math.nan
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

    @property
    def landmarks_plausible(self) -> bool:
        """False when :attr:`landmark_consistency` exceeds :data:`CONSISTENCY_LIMIT` (True if unmeasured)."""
        return not self.landmark_consistency > CONSISTENCY_LIMIT

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict: box, score, landmarks (lists of floats, photo px), rotation,
        landmark_consistency (None when unmeasured), and when present ``dense_landmarks``
        ([[x, y, z] × 468]) and ``dense_presence``."""
        consistency = None if math.isnan(self.landmark_consistency) else round(self.landmark_consistency, 4)
        out: dict[str, object] = {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(self.score, 4),
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
            "rotation": self.rotation,
            "landmark_consistency": consistency,
        }
        if self.dense_landmarks is not None:
            out["dense_landmarks"] = [[round(float(v), 2) for v in p] for p in self.dense_landmarks]
            out["dense_presence"] = None if self.dense_presence is None else round(self.dense_presence, 4)
        return out


class FaceApiDetector:
    """face-api detector + landmark net; built once, then called on many photos.

    Search order: the upright photo over the detector's coarse-to-fine pyramid; a face whose
    landmarks fail the mirror check is re-examined turned by 90°, 180° and 270° (the turn with the
    most consistent landmarks wins); when nothing is found upright, the photo turned by 90°, 270°
    and 180° (faces from :data:`ROTATED_MIN_FACE_PX`). Detections are always returned in the
    original photo's pixels, with the turn that makes them upright.
    """

    def __init__(
        self,
        detector: TinyFaceDetector,
        landmark_net: LandmarkNet,
        *,
        landmark_scale: float = LANDMARK_SCALE,
        rotated_min_face_px: float = ROTATED_MIN_FACE_PX,
    ) -> None:
        from ganfit_core.face.faceapi_detector import TinyFaceDetector

        self.detector = detector
        self.landmark_net = landmark_net
        self.landmark_scale = landmark_scale
        self.rotated_detector = TinyFaceDetector(
            detector.net,
            input_sizes=detector.input_sizes,
            score_threshold=detector.score_threshold,
            iou_threshold=detector.iou_threshold,
            min_face_px=max(rotated_min_face_px, detector.min_face_px),
            max_upscale=detector.max_upscale,
            max_level_pixels=detector.max_level_pixels,
        )

    @classmethod
    def load(cls, *, device: torch.device | str | None = None, **options: object) -> FaceApiDetector:
        """Load both networks through the asset registry."""
        from ganfit_core.face.faceapi_detector import TinyFaceDetector, load_tiny_detector
        from ganfit_core.face.faceapi_landmarks import load_landmark_net

        return cls(
            TinyFaceDetector(load_tiny_detector(device=device)), load_landmark_net(device=device), **options
        )

    @torch.no_grad()
    def landmarks_and_consistency(
        self, image: np.ndarray, squares: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """68 landmarks (N, 68, 2) photo px and their mirror inconsistency (N,) for face squares
        (N, 3) = centre x, centre y, side (one batch: each crop and its mirror image)."""
        from ganfit_core.face.faceapi_landmarks import INPUT_SIZE

        crops, origins = [], []
        for cx, cy, side in squares:
            crop, _ = crop_square(image, cx - side / 2, cy - side / 2, side, INPUT_SIZE, pad="zeros")
            crops.append(crop)
            origins.append((cx - side / 2, cy - side / 2))
        crops += [crop[:, ::-1] for crop in crops]
        device = next(self.landmark_net.parameters()).device
        batch = torch.from_numpy(np.stack(crops).copy()).permute(0, 3, 1, 2).float().div(255.0).to(device)
        relative = self.landmark_net(batch).cpu().double().numpy()
        plain, mirrored = relative[: len(squares)], relative[len(squares) :]
        mirrored = np.stack([1.0 - mirrored[..., 0], mirrored[..., 1]], axis=-1)[:, list(MIRROR_68)]
        consistency = np.linalg.norm(plain - mirrored, axis=-1).mean(axis=-1)
        return plain * squares[:, None, 2:3] + np.asarray(origins)[:, None, :], consistency

    def landmarks(self, image: np.ndarray, squares: np.ndarray) -> np.ndarray:
        """68 landmarks (N, 68, 2) photo px for face squares (N, 3) = centre x, centre y, side."""
        return self.landmarks_and_consistency(image, squares)[0]

    def _analyse(self, image: np.ndarray, candidates: list[BoxCandidate]) -> list[FaceDetection]:
        """Boxes → detections with landmarks and their consistency, in ``image``'s pixels."""
        if not candidates:
            return []
        boxes = np.stack([c.box for c in candidates])
        sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) * self.landmark_scale
        squares = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2, sides], axis=1)
        points, consistency = self.landmarks_and_consistency(image, squares)
        return [
            FaceDetection(box=c.box, score=c.score, landmarks=p, landmark_consistency=float(m))
            for c, p, m in zip(candidates, points, consistency, strict=True)
        ]

    @staticmethod
    def _to_photo(face: FaceDetection, size: tuple[int, int], k: int) -> FaceDetection:
        """A detection in ``rotate_image(photo, k)`` → the same face in the photo of ``size`` (W, H)."""
        corners = points_from_rotated(face.box.reshape(2, 2), size, k)
        return replace(
            face,
            box=box_of_points(corners),
            landmarks=points_from_rotated(face.landmarks, size, k),
            rotation=k % 4,
        )

    def _reexamine(self, image: np.ndarray, face: FaceDetection) -> FaceDetection:
        """``face`` (upright, suspect landmarks) looked at turned by 90°, 180° and 270°: the region
        around it (twice its box) is searched again in each turn (a box found on a wrongly turned
        face is offset), and the turn whose landmarks are most consistent wins if it passes the
        check; else ``face`` is returned unchanged."""
        height, width = image.shape[:2]
        best = face
        for k in (1, 3, 2):
            view = rotate_image(image, k)
            box = box_of_points(points_to_rotated(face.box.reshape(2, 2), (width, height), k))
            candidates = self._search_region(view, box)
            found = self._analyse(view, candidates[:1])
            if found and found[0].landmark_consistency < best.landmark_consistency:
                best = self._to_photo(found[0], (width, height), k)
        return best if best.landmarks_plausible else face

    def _search_region(self, image: np.ndarray, box: np.ndarray) -> list[BoxCandidate]:
        """Detector boxes (photo px) in the square twice the size of ``box`` around its centre, the
        one nearest that centre first."""
        from ganfit_core.face.faceapi_detector import BoxCandidate

        side = 2.0 * max(box[2] - box[0], box[3] - box[1])
        centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        x0, y0 = centre - side / 2
        size = int(min(max(round(side), 32), max(self.detector.input_sizes) * 2))
        region, _ = crop_square(image, x0, y0, side, size, pad="zeros")
        scale = side / size
        candidates = [
            BoxCandidate(box=c.box * scale + np.array([x0, y0, x0, y0]), score=c.score)
            for c in self.detector(region, coarse_only=True)
        ]
        return sorted(
            candidates,
            key=lambda c: float(np.linalg.norm((c.box[:2] + c.box[2:]) / 2 - centre)),
        )

    def __call__(self, image: np.ndarray) -> list[FaceDetection]:
        """Faces in ``image`` (H, W, 3) uint8, largest box first, in ``image``'s pixels."""
        faces = self._analyse(image, self.detector(image))
        if faces:
            faces = [face if face.landmarks_plausible else self._reexamine(image, face) for face in faces]
        else:
            height, width = image.shape[:2]
            best: list[FaceDetection] = []
            for k in (1, 3, 2):
                found = self._analyse(rotate_image(image, k), self.rotated_detector(rotate_image(image, k)))
                found = [self._to_photo(face, (width, height), k) for face in found]
                if found and (not best or _quality(found) > _quality(best)):
                    best = found
            faces = best
        return sorted(faces, key=lambda f: -f.area)


def _quality(faces: list[FaceDetection]) -> tuple[bool, float]:
    """Rank of a rotation's detections: any plausible landmarks first, then the best score."""
    return any(f.landmarks_plausible for f in faces), max(f.score for f in faces)


def upright_view(image: np.ndarray, face: FaceDetection) -> tuple[np.ndarray, FaceDetection]:
    """The photo turned so ``face`` is upright, and ``face`` in that view's pixels (rotation 0).

    Map results back with :func:`ganfit_core.face.rotation.points_from_rotated` and
    ``face.rotation``.
    """
    if face.rotation == 0:
        return image, face
    size = (image.shape[1], image.shape[0])
    corners = points_to_rotated(face.box.reshape(2, 2), size, face.rotation)
    dense = face.dense_landmarks
    if dense is not None:
        dense = np.concatenate([points_to_rotated(dense[:, :2], size, face.rotation), dense[:, 2:]], axis=1)
    moved = replace(
        face,
        box=box_of_points(corners),
        landmarks=points_to_rotated(face.landmarks, size, face.rotation),
        rotation=0,
        dense_landmarks=dense,
    )
    return rotate_image(image, face.rotation), moved


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
    """The face to fit: ``detections[index]`` (0 = largest), or the largest when ``index`` is None.

    Raises:
        NoFaceError: no detections.
        FaceIndexError: ``index`` is not a whole number >= 0, or is out of range.
        FaceTooSmallError: the chosen face's :attr:`FaceDetection.size` is below ``min_size_px``.

    Example:
        >>> select_face([])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ganfit_core.face.errors.NoFaceError: No face found in the photo: ...
    """
    if index is not None:
        index = check_face_index(index)
    if not detections:
        raise NoFaceError(
            "No face found in the photo: faces from about 40 px across are looked for, upright or turned "
            "by 90° or 180°; use a photo where the face is clearly visible and not covered."
        )
    if index is None:
        face = max(detections, key=lambda f: f.area)
    elif index >= len(detections):
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


def check_face_index(index: object) -> int:
    """``index`` as a face index (a whole number >= 0, 0 = largest face); :class:`FaceIndexError` if not.

    Example:
        >>> check_face_index(2), check_face_index(2.0)
        (2, 2)
    """
    whole = isinstance(index, int | float) and not isinstance(index, bool) and float(index).is_integer()
    if not whole or index < 0:  # type: ignore[operator]
        raise FaceIndexError(f"face index must be a whole number >= 0 (0 = the largest face), got {index!r}")
    return int(index)  # type: ignore[arg-type]
