"""The ICT eyeballs (sclera, iris, pupil) as flat-coloured meshes shaped by a face's coefficients.

The ICT ``narrow_face``, ``face`` and ``face_neck`` regions stop before the eyeballs (full-mesh
vertices 21451-24590, ``ganfit_core.model.layout.EYE_VERTICES``): :func:`eye_basis` slices them out of
the ``full`` model once, :func:`shape_eyes` applies a face's identity and expression coefficients.
Their ICT UVs lie on other UV tiles, so the parts get flat colours instead of the face texture.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ganfit_core.model.layout import EYE_VERTICES, IRIS_VERTICES, SCLERA_VERTICES

if TYPE_CHECKING:
    from ganfit_core.model.morphable import MorphableModel

__all__ = ["EyeBasis", "EyeMeshes", "eye_basis", "load_eye_basis", "shape_eyes",
           "SCLERA_RGB", "IRIS_RGB", "PUPIL_RGB"]

SCLERA_RGB = (0.92, 0.90, 0.88)
IRIS_RGB = (0.25, 0.16, 0.10)
PUPIL_RGB = (0.03, 0.03, 0.03)
IRIS_HALF_ANGLE_DEG = 25.0  # the ICT iris disc and cornea bulge end ~24-26 degrees off the gaze axis
PUPIL_HALF_ANGLE_DEG = 7.5  # the concave pupil of the ICT inner ball


@dataclass(frozen=True)
class EyeBasis:
    """The eyeball part of the ICT model: ``mean`` (Ve, 3) mm, ``identity_basis`` (100, Ve, 3) mm,
    ``expression_basis`` (53, Ve, 3) mm, ``sclera``/``iris``/``pupil`` (F, 3) int64 triangles into Ve."""

    mean: np.ndarray
    identity_basis: np.ndarray
    expression_basis: np.ndarray
    sclera: np.ndarray
    iris: np.ndarray
    pupil: np.ndarray


@dataclass(frozen=True)
class EyeMeshes:
    """Eyeballs in model space: ``vertices`` (Ve, 3) float32 mm; ``sclera``, ``iris`` and ``pupil``
    (F, 3) int64 triangles into ``vertices``; ``iris_rgb`` the iris colour in [0, 1]."""

    vertices: np.ndarray
    sclera: np.ndarray
    iris: np.ndarray
    pupil: np.ndarray
    iris_rgb: tuple[float, float, float] = IRIS_RGB

    def parts(self) -> tuple[tuple[str, np.ndarray, tuple[float, float, float]], ...]:
        """``(name, faces, rgb)`` of each flat-coloured part."""
        return (("sclera", self.sclera, SCLERA_RGB), ("iris", self.iris, tuple(self.iris_rgb)),
                ("pupil", self.pupil, PUPIL_RGB))


def _in_ranges(ids: np.ndarray, ranges: tuple[tuple[int, int], ...]) -> np.ndarray:
    return np.logical_or.reduce([(ids >= a) & (ids < b) for a, b in ranges])


def _front_angles(mean: np.ndarray, faces: np.ndarray, sclera_ids: np.ndarray) -> np.ndarray:
    """Angle (degrees) off one eye's gaze axis of each triangle's centroid, as seen from the front.

    The centre and radius are those of the least-squares sphere through the sclera vertices
    ``mean[sclera_ids]`` (mm); the axis points to the cornea bulge (sclera vertices more than 0.4 mm
    outside that sphere). The angle is ``asin(distance from the axis / radius)`` in front of the
    centre and 180 degrees minus that behind it, so the pupil's inward funnel counts as the centre.
    """
    points = mean[sclera_ids]
    system = np.concatenate([2.0 * points, np.ones((len(points), 1))], axis=1)
    solution = np.linalg.lstsq(system, (points ** 2).sum(axis=1), rcond=None)[0]
    centre = solution[:3]
    radius = np.sqrt(solution[3] + centre @ centre)
    offsets = points - centre
    cornea = np.linalg.norm(offsets, axis=1) > radius + 0.4
    if not cornea.any():
        raise ValueError("ICT eyeball: found no cornea bulge on the sclera, cannot orient the eye")
    axis = offsets[cornea].mean(axis=0)
    axis /= np.linalg.norm(axis)
    rays = mean[faces].mean(axis=1) - centre
    axial = rays @ axis
    radial = np.linalg.norm(rays - axial[:, None] * axis, axis=1)
    angle = np.degrees(np.arcsin(np.clip(radial / radius, 0.0, 1.0)))
    return np.where(axial > 0, angle, 180.0 - angle)


def eye_basis(full: MorphableModel) -> EyeBasis:
    """Slice the eyeballs out of the ``full``-region ICT model (~5 MB of arrays).

    ICT eyes are two shells: the outer ``sclera`` (with the cornea bulge) and an inner ``iris`` ball
    whose front is the iris disc. Opaque flat colours need the cornea removed, so triangles within
    :data:`IRIS_HALF_ANGLE_DEG` of the gaze axis are: dropped from the sclera shell, coloured as the
    iris on the inner ball (its centre, within :data:`PUPIL_HALF_ANGLE_DEG`, as the pupil); the pupil
    is an opening, so the back of both balls behind it is coloured as the pupil too; the rest of the
    inner ball (hidden) is coloured as sclera.
    """
    if full.region != "full" or full.num_vertices <= EYE_VERTICES[1]:
        raise ValueError(f"eye_basis: expected the 'full' ICT region, got {full.region!r}")
    v0, v1 = EYE_VERTICES
    mean = full.mean.cpu().numpy()
    faces = full.faces.cpu().numpy()
    faces = faces[np.all((faces >= v0) & (faces < v1), axis=1)]
    sclera, iris, pupil = [], [], []
    for sclera_range, iris_range in zip(SCLERA_VERTICES, IRIS_VERTICES, strict=True):
        outer = faces[np.all(_in_ranges(faces, (sclera_range,)), axis=1)]
        inner = faces[np.all(_in_ranges(faces, (iris_range,)), axis=1)]
        sclera_ids = np.arange(*sclera_range)
        outer_angles = _front_angles(mean, outer, sclera_ids)
        inner_angles = _front_angles(mean, inner, sclera_ids)
        front_outer = outer_angles < IRIS_HALF_ANGLE_DEG
        front_inner = inner_angles < IRIS_HALF_ANGLE_DEG
        # the pupil is an opening: the inside of the ball seen through it must be dark too
        dark_outer = outer_angles > 180.0 - IRIS_HALF_ANGLE_DEG
        dark_inner = (inner_angles < PUPIL_HALF_ANGLE_DEG) | (inner_angles > 180.0 - IRIS_HALF_ANGLE_DEG)
        sclera += [outer[~front_outer & ~dark_outer], inner[~front_inner & ~dark_inner]]
        iris.append(inner[front_inner & ~dark_inner])
        pupil += [outer[dark_outer], inner[dark_inner]]
    return EyeBasis(mean=mean[v0:v1].copy(),
                     identity_basis=full.identity_basis[:, v0:v1].cpu().numpy().copy(),
                     expression_basis=full.expression_basis[:, v0:v1].cpu().numpy().copy(),
                     sclera=np.concatenate(sclera) - v0, iris=np.concatenate(iris) - v0,
                     pupil=np.concatenate(pupil) - v0)


def load_eye_basis(path: str | Path | None = None) -> EyeBasis:
    """Load the ``full`` ICT model (``path``, default the registry's ``ict_face_model``) and slice its eyes.

    Not cached: a caller exporting many results loads it once and passes it on.
    """
    from ganfit_core.model.morphable import load_morphable_model

    return eye_basis(load_morphable_model("full", path=Path(path) if path is not None else None))


def shape_eyes(basis: EyeBasis, identity: np.ndarray, expression: np.ndarray,
               iris_rgb: tuple[float, float, float] | None = None) -> EyeMeshes:
    """The eyeballs shaped by a face's coefficients, so that they sit in its fitted sockets.

    Args:
        basis: from :func:`eye_basis` / :func:`load_eye_basis`.
        identity: (K,) identity coefficients (K <= 100). expression: (M,) weights (M <= 53).
        iris_rgb: the iris colour in [0, 1] (e.g. ``FittedFace.iris_rgb``); None: :data:`IRIS_RGB`.
    """
    identity = np.asarray(identity, np.float32).reshape(-1)
    expression = np.asarray(expression, np.float32).reshape(-1)
    for name, values, basis_part in (("identity", identity, basis.identity_basis),
                                     ("expression", expression, basis.expression_basis)):
        if len(values) > len(basis_part):
            raise ValueError(f"{name}: expected at most {len(basis_part)} values, got {len(values)}")
    vertices = (basis.mean + np.tensordot(identity, basis.identity_basis[:len(identity)], axes=1)
                + np.tensordot(expression, basis.expression_basis[:len(expression)], axes=1))
    colour = IRIS_RGB if iris_rgb is None else tuple(float(np.clip(c, 0.0, 1.0)) for c in iris_rgb)
    return EyeMeshes(vertices=vertices.astype(np.float32), sclera=basis.sclera, iris=basis.iris,
                     pupil=basis.pupil, iris_rgb=colour)
