"""Optional backend: the ``face-alignment`` package (FAN landmarks, S3FD detector).

Not a dependency: imported lazily. Its weights are downloaded from its authors' server on
first use, so offline this backend fails within seconds with a :class:`FaceError`.
"""

from __future__ import annotations

import importlib.util
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from ganfit_core.face.detect import FaceDetection
from ganfit_core.face.errors import FaceError

__all__ = ["FaceAlignmentDetector"]

#: Host of face-alignment's weight files, probed before it tries a (possibly slow) download.
WEIGHTS_HOST = "https://www.adrianbulat.com"
PROBE_TIMEOUT_S = 3.0


def _weights_cached() -> bool:
    import torch.hub

    folder = Path(torch.hub.get_dir()) / "checkpoints"
    return any(folder.glob("2DFAN4*")) and any(folder.glob("s3fd*"))


def _probe_host() -> None:
    try:
        urllib.request.urlopen(urllib.request.Request(WEIGHTS_HOST, method="HEAD"), timeout=PROBE_TIMEOUT_S)
    except urllib.error.HTTPError:
        return  # the server answered
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise FaceError(
            f"backend 'face_alignment' needs to download its weights from {WEIGHTS_HOST}, which is not "
            f"reachable ({exc}); use the offline default backend 'faceapi'"
        ) from None


class FaceAlignmentDetector:
    """Wraps ``face_alignment.FaceAlignment`` (2D, 68 points) behind our detection type."""

    def __init__(self, model: object) -> None:
        self.model = model

    @classmethod
    def load(cls, *, device: str = "cpu") -> FaceAlignmentDetector:
        """Import and build the model; :class:`FaceError` if not installed or weights unavailable."""
        if importlib.util.find_spec("face_alignment") is None:
            raise FaceError(
                "backend 'face_alignment' needs the optional package: pip install face-alignment "
                "(or use the default backend 'faceapi')"
            )
        if not _weights_cached():
            _probe_host()
        import face_alignment

        try:
            model = face_alignment.FaceAlignment(
                face_alignment.LandmarksType.TWO_D, device=device, flip_input=False
            )
        except Exception as exc:  # noqa: BLE001 — network, zip and hub errors all mean "unavailable"
            raise FaceError(f"backend 'face_alignment' could not load its weights: {exc}") from None
        return cls(model)

    def __call__(self, image: np.ndarray) -> list[FaceDetection]:
        """Faces in ``image`` (H, W, 3) uint8 RGB, largest box first."""
        result = self.model.get_landmarks_from_image(image, return_bboxes=True)  # type: ignore[attr-defined]
        landmarks, _, boxes = result
        if not landmarks:
            return []
        faces = [
            FaceDetection(
                box=np.asarray(box[:4], dtype=np.float64),
                score=float(box[4]) if len(box) > 4 else 1.0,
                landmarks=np.asarray(points, dtype=np.float64)[:, :2] + 0.5,  # pixel centres → our convention
            )
            for points, box in zip(landmarks, boxes, strict=True)
        ]
        return sorted(faces, key=lambda f: -f.area)
