"""The fit-quality verdict: is a finished fit a reconstruction of the face, or garbage?

Two kinds of evidence, both cheap and both available without ground truth:

* before the fit, from the detection: the detector's confidence and the landmarks' mirror
  consistency (:attr:`ganfit_core.face.FaceDetection.landmark_consistency`);
* after the fit: the final landmark residual, the mean distance between the fitted model's projected
  landmarks and the detected ones, as a fraction of the inter-ocular distance (eye centres), and
  whether any stage diverged.

Verdict: ``failed`` when the residual is non-finite or above :data:`FAILED_RESIDUAL`; ``doubtful``
when a stage diverged (its best step was kept), the residual is above :data:`DOUBTFUL_RESIDUAL`, the
detector was unsure (score below :data:`DOUBTFUL_SCORE`) or the landmarks failed the mirror check;
else ``good``. A doubtful fit carries a warning for the user; a failed one is an error
(:class:`FitQualityError`) in the CLI, the API (``reconstruct(..., accept_failed=False)``) and the app.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ganfit_core.errors import FitError

__all__ = ["DOUBTFUL_RESIDUAL", "DOUBTFUL_SCORE", "FAILED_RESIDUAL", "FitQuality", "FitQualityError",
           "assess_fit", "inter_ocular"]

#: Landmark residual (fraction of the inter-ocular distance) above which a fit is doubtful. On the
#: face-api landmarks' own accuracy (5.5 % of the box, about 0.12 inter-ocular, DESIGN.md §6) a good
#: fit sits near or below it.
DOUBTFUL_RESIDUAL = 0.15
#: Residual above which the model could not follow the landmarks at all (a fit of the wrong thing).
FAILED_RESIDUAL = 0.40
#: Detector confidence below which a face is doubtful (upright portraits score 0.93–1.0).
DOUBTFUL_SCORE = 0.6

FitStatus = Literal["good", "doubtful", "failed"]


class FitQualityError(FitError):
    """A fit ran but its result is not a reconstruction of the face (``FitQuality.status == "failed"``)."""


@dataclass(frozen=True)
class FitQuality:
    """The verdict on one fit.

    Attributes:
        status: ``good``, ``doubtful`` or ``failed``.
        landmark_residual: mean landmark distance after the fit / inter-ocular distance (NaN if the
            fit produced non-finite landmarks).
        detection_score: detector confidence of the fitted face in [0, 1] (None: not from a detector).
        landmark_consistency: mirror inconsistency of the detected landmarks (None: not measured).
        reasons: one sentence per finding behind a non-good status, for the user.
    """

    status: FitStatus
    landmark_residual: float
    detection_score: float | None
    landmark_consistency: float | None
    reasons: tuple[str, ...]

    @property
    def message(self) -> str:
        """One line for the user: the status and its reasons."""
        if self.status == "good":
            return "fit quality: good"
        return f"fit quality: {self.status}: " + "; ".join(self.reasons)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (NaN residual as None)."""
        residual = None if math.isnan(self.landmark_residual) else round(self.landmark_residual, 4)
        return {"status": self.status, "landmark_residual": residual, "detection_score": self.detection_score,
                "landmark_consistency": self.landmark_consistency, "reasons": list(self.reasons)}


def inter_ocular(landmarks: np.ndarray) -> float:
    """Distance between the eye centres of iBUG-68 ``landmarks`` (68, 2), px.

    Example:
        >>> points = np.zeros((68, 2)); points[42:48, 0] = 10.0
        >>> inter_ocular(points)
        10.0
    """
    return float(np.linalg.norm(landmarks[36:42].mean(axis=0) - landmarks[42:48].mean(axis=0)))


def assess_fit(
    fitted_landmarks: np.ndarray,
    target_landmarks: np.ndarray,
    *,
    diverged: bool = False,
    detection_score: float | None = None,
    landmark_consistency: float | None = None,
    consistency_limit: float | None = None,
) -> FitQuality:
    """Verdict from the fitted model's projected landmarks and the detected ones, both (68, 2) crop px.

    Example:
        >>> target = np.random.default_rng(0).uniform(0, 200, (68, 2))
        >>> assess_fit(target + 0.5, target, detection_score=0.99).status
        'good'
        >>> assess_fit(target, target, diverged=True).status
        'doubtful'
        >>> assess_fit(target + np.nan, target).status
        'failed'
    """
    from ganfit_core.face.detect import CONSISTENCY_LIMIT

    limit = CONSISTENCY_LIMIT if consistency_limit is None else consistency_limit
    distance = np.linalg.norm(np.asarray(fitted_landmarks, np.float64) - target_landmarks, axis=1).mean()
    residual = float(distance / max(inter_ocular(np.asarray(target_landmarks, np.float64)), 1e-6))
    failed, doubtful = [], []
    if diverged:
        doubtful.append("a stage diverged and was stopped at its best step")
    if not math.isfinite(residual):
        failed.append("the fitted landmarks are not finite")
        residual = math.nan
    elif residual > FAILED_RESIDUAL:
        failed.append(f"the fitted face does not follow the detected landmarks (mean error {residual:.2f} "
                      "of the eye distance)")
    elif residual > DOUBTFUL_RESIDUAL:
        doubtful.append(f"the fitted landmarks are off by {residual:.2f} of the eye distance")
    if detection_score is not None and detection_score < DOUBTFUL_SCORE:
        doubtful.append(f"the face detector was unsure (confidence {detection_score:.2f})")
    if landmark_consistency is not None and landmark_consistency > limit:
        doubtful.append("the detected landmarks look implausible (the face may be turned, covered or "
                        "not a face)")
    status: FitStatus = "failed" if failed else "doubtful" if doubtful else "good"
    return FitQuality(status, residual, detection_score, landmark_consistency, tuple(failed + doubtful))
