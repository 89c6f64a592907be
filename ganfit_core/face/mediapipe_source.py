"""MediaPipe's TFLite face models as upstream sources for the asset builders.

The files are those of the PyPI wheel ``mediapipe==0.10.21`` (Apache-2.0), kept unchanged under
``<source root>/mediapipe/``. :func:`build_mediapipe_asset` checks a file's sha256 against
:data:`TFLITE_SHA256` and converts it with :func:`ganfit_core.face.tflite_graph.save_tflite_asset`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ganfit_core.face.tflite_graph import save_tflite_asset

__all__ = ["TFLITE_SHA256", "build_mediapipe_asset"]

#: sha256 of each upstream file (``mediapipe==0.10.21`` wheel, ``mediapipe/modules/...``).
TFLITE_SHA256 = {
    "face_landmark.tflite": "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
    "selfie_segmentation.tflite": "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
}
SOURCE = "mediapipe==0.10.21 (Apache-2.0)"


def build_mediapipe_asset(source_dir: Path, out_path: Path, filename: str) -> None:
    """Convert ``source_dir/filename`` (a MediaPipe TFLite model) into safetensors ``out_path``.

    Raises:
        FileNotFoundError: the file is not in ``source_dir``.
        ValueError: its sha256 is not the expected upstream file's.
    """
    path = Path(source_dir) / filename
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: copy {filename} from the mediapipe==0.10.21 wheel there")
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != TFLITE_SHA256[filename]:
        raise ValueError(f"{path}: sha256 {actual}, expected {TFLITE_SHA256[filename]} (mediapipe==0.10.21)")
    save_tflite_asset(path, out_path, source=f"{SOURCE} {filename} sha256 {actual}")
