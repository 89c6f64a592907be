"""The named index layout of the ICT face model: regions, the 68 landmarks, the sliding jawline, the eyes.

Pure constants (no torch), so that configs and front ends can import them cheaply.

Landmarks follow the 68-point Multi-PIE scheme: 0-7 the subject's right jaw contour, 8 the chin,
9-16 the left jaw contour, 17-67 brows, nose, eyes and mouth. The contour landmarks 0-7 and 9-16
have no fixed vertex on a 3D face; each picks one of 17 *extended jawline* candidate vertices
(``jaw_right`` / ``jaw_left`` of the model), starting from :data:`JAW_CENTRES`.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "Region", "REGIONS", "EYELESS_REGIONS", "NUM_LANDMARKS", "NUM_JAW_CANDIDATES", "JAW_CENTRES",
    "JAW_RIGHT_LANDMARKS", "CHIN_LANDMARK", "CONTOUR_LANDMARKS", "JAW_LEFT_LANDMARKS", "INNER_LANDMARKS",
    "SPARSE_LANDMARK_ROWS", "SPARSE_JAW_RIGHT_ROWS", "SPARSE_JAW_LEFT_ROWS", "NUM_SPARSE_ROWS",
    "EYE_VERTICES", "SCLERA_VERTICES", "IRIS_VERTICES",
]

#: Morphable-model regions, each a prefix of the full ICT mesh (see ``ganfit_core.model.morphable``).
Region = Literal["narrow_face", "face", "face_neck", "full"]
REGIONS: tuple[str, ...] = get_args(Region)
#: Regions whose mesh stops before the eyeballs (their eyes are added by ``ganfit_core.model.eyes``).
EYELESS_REGIONS: tuple[str, ...] = ("narrow_face", "face", "face_neck")

NUM_LANDMARKS = 68
#: Extended jawline candidates per side.
NUM_JAW_CANDIDATES = 17
#: Default candidate (index into the 17 candidates of a side) of contour landmarks 0-7 (``jaw_right``)
#: and 9-16 (``jaw_left``): ICT's README "jawline" substitutes.
JAW_CENTRES: tuple[int, ...] = (1, 3, 5, 7, 9, 11, 13, 15)

#: Landmark index ranges.
JAW_RIGHT_LANDMARKS = slice(0, 8)
CHIN_LANDMARK = 8
JAW_LEFT_LANDMARKS = slice(9, 17)
INNER_LANDMARKS = slice(17, NUM_LANDMARKS)
#: The 17 jaw contour landmarks (0-16, chin included): weighted by ``FitConfig.contour_weight``.
CONTOUR_LANDMARKS = slice(0, 17)

#: Rows of the sparse landmark model (``ganfit_core.model.sparse.SparseLandmarkModel``): the 68
#: landmark vertices, then the 17 ``jaw_right`` and the 17 ``jaw_left`` candidates.
SPARSE_LANDMARK_ROWS = slice(0, NUM_LANDMARKS)
SPARSE_JAW_RIGHT_ROWS = slice(NUM_LANDMARKS, NUM_LANDMARKS + NUM_JAW_CANDIDATES)
SPARSE_JAW_LEFT_ROWS = slice(NUM_LANDMARKS + NUM_JAW_CANDIDATES, NUM_LANDMARKS + 2 * NUM_JAW_CANDIDATES)
NUM_SPARSE_ROWS = NUM_LANDMARKS + 2 * NUM_JAW_CANDIDATES

#: ICT full-mesh vertex ranges (start inclusive, end exclusive) of the eyeballs and their parts.
EYE_VERTICES = (21451, 24591)
SCLERA_VERTICES = ((21451, 22221), (23021, 23791))
IRIS_VERTICES = ((22221, 23021), (23791, 24591))
