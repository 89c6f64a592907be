"""One-call reconstruction: ``reconstruct(photo) -> FitResult``."""

from __future__ import annotations

import threading
from typing import Any

from ganfit_core.fitting.config import FitConfig
from ganfit_core.fitting.types import FitResult

__all__ = ["reconstruct"]


def reconstruct(
    image: Any,
    *,
    config: FitConfig | None = None,
    face_index: int | None = None,
    detector_backend: str = "faceapi",
    cancel: threading.Event | None = None,
    **options: Any,
) -> FitResult:
    """Reconstruct a textured 3D face from a photo (path, bytes, PIL image or uint8 array).

    Args:
        image: the photo.
        config: fit settings; ``options`` (FitConfig field names) override single fields.
        face_index: which face (largest first); None picks the largest.
        detector_backend: face detector (``"faceapi"`` offline default).
        cancel: set it to stop the fit (raises ``FitCancelled``).

    Raises:
        ganfit_core.errors.UserInputError (ValueError): bad photo, no usable face
            (FaceError / ImageLoadError) or a setting out of range (ConfigError).
        FitCancelled: cancelled.

    Usage (a fit takes ~20 s on a 2-core CPU, so this is not a doctest)::

        result = reconstruct("examples/astronaut.jpg", full_steps=40)
        result.vertices.shape  # (9409, 3), millimetres
    """
    from ganfit_core.fitting.engine import fit, run_to_end
    from ganfit_core.fitting.target import prepare_target

    config = (config or FitConfig()).replace(**options) if options else (config or FitConfig())
    target = prepare_target(image, face_index=face_index, resolution=config.render_size,
                            detector_backend=detector_backend)
    return run_to_end(fit(target, config, cancel=cancel))
