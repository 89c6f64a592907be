"""Which photo pixels are skin: landmark regions and a robust skin-colour model (pure NumPy).

Used by the UV extraction (:mod:`ganfit_core.pipelines.uv_extract`) to take photo colour only
where a texel shows skin, not hair, background, eyes, the mouth interior or an occluder:

- :func:`landmark_regions` classifies points (pixels, or texel projections) against polygons built
  from the 68 iBUG landmarks (photo px): eyes (enlarged), inner lips, brows, a forehead bound
  (above it the hair line is too likely), and the cheek/nose *reference* region the colour model is
  fitted on.
- :class:`SkinColourModel` is a Gaussian in (normalised r, normalised g, log luminance), fitted
  robustly (iteratively trimmed) on reference pixels; :meth:`SkinColourModel.probability` gives a
  soft skin score from the Mahalanobis distance. It rejects grey studio background, dark or blond
  hair, glasses frames and the mouth interior when their colour differs from the person's skin.

A person/background segmentation (e.g. MediaPipe selfie segmentation) plugs in as an extra
photo-space mask: see ``skin_mask`` in :func:`ganfit_core.pipelines.uv_extract.unwrap_face`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

if TYPE_CHECKING:
    from ganfit_core.texture.unwrap import Unwrapped

__all__ = [
    "LandmarkRegions",
    "SkinColourModel",
    "points_in_polygon",
    "landmark_regions",
    "colour_features",
    "fit_skin_colour",
    "select_skin",
    "photo_detail_mask",
    "detail_mask_from_unwrapped",
    "hair_fade",
    "below_jaw",
    "SKIN_PIXEL_NOISE",
]

EYE_SCALE = 1.6  # eye polygons (36-41, 42-47) enlarged about their centre: lashes, lid margins
BROW_HALF_WIDTH = 0.10  # brow band half-width, in interocular distances (outer eye corners 36-45)
FOREHEAD_BOUND = 1.1  # texels above brows + this x (brow centre -> nose bottom) are never taken
INNER_MOUTH_SCALE = 1.15  # inner-lip polygon (60-67) enlarged about its centre
DETAIL_LIPS_MARGIN = 0.08  # fit's detail mask: the outer-lip polygon grown by this x interocular distance
# (the landmark outline runs inside the red of the lips, whose colour fails the skin test)
DETAIL_EYE_SCALE = 1.15  # eye polygons left out of the fit's photo detail (the eyelids are kept)
HAIR_DARKER = 0.25  # log luminance below the forehead skin's median taken as hair (~22 % darker)
HAIR_SHADOW_DARKER = 0.10  # ... and as the hair's shadow where connected to hair (~10 % darker)
#: The fit's skin test (detail mask, texture start): per-channel colour noise ([0, 1] units) added to
#: the chromaticity variance, ``(noise / (r + g + b))^2``. Without it the darker parts of dark skin
#: (stubble, the chin, the lips' surround) fail the test and are left to the prior (measured: on the
#: darkest held-out subject the whole lower face). Applied below the brows only (above them blond
#: and grey hair would pass). The UV-map builder keeps 0 (its asset unchanged).
SKIN_PIXEL_NOISE = 0.02
DETAIL_HAIRLINE = 12.0  # fit's detail mask: fade width (texels per 256) towards the hair above the brows


@dataclass(frozen=True)
class LandmarkRegions:
    """Per-point classes from the landmarks (each (N,) bool).

    Attributes:
        eyes: inside an enlarged eye polygon.
        brows: inside a brow band.
        inner_mouth: inside the (enlarged) inner-lip polygon: teeth, tongue, mouth cavity.
        lips: inside the outer lip polygon (48-59, grown by ``lips_margin``) but not the inner mouth.
        above_forehead: beyond the forehead bound (hair line region, scalp).
        reference: cheeks and nose, where skin colour is most reliable.
    """

    eyes: np.ndarray
    brows: np.ndarray
    inner_mouth: np.ndarray
    lips: np.ndarray
    above_forehead: np.ndarray
    reference: np.ndarray

    def excluded(self, *, include_brows: bool) -> np.ndarray:
        """(N,) bool: points never taken from the photo (eyes, mouth interior, beyond the forehead)."""
        out = self.eyes | self.inner_mouth | self.above_forehead
        return out if include_brows else out | self.brows

    def colour_exempt(self, *, include_brows: bool) -> np.ndarray:
        """(N,) bool: face features kept whatever the skin-colour model says (lips, optionally brows)."""
        return self.lips | self.brows if include_brows else self.lips


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd test of points (N, 2) against a closed polygon (K, 2) (same units) -> (N,) bool.

    Example:
        >>> square = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]])
        >>> points_in_polygon(np.array([[1.0, 1.0], [3.0, 1.0]]), square).tolist()
        [True, False]
    """
    pts = np.asarray(points, dtype=np.float64)
    poly = np.asarray(polygon, dtype=np.float64)
    x, y = pts[:, 0], pts[:, 1]
    inside = np.zeros(len(pts), dtype=bool)
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        crosses = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < x_at)
    return inside


def _scaled(polygon: np.ndarray, scale: float) -> np.ndarray:
    centre = polygon.mean(axis=0)
    return centre + scale * (polygon - centre)


def _grown(polygon: np.ndarray, margin: float) -> np.ndarray:
    """``polygon`` (N, 2) with every vertex moved ``margin`` px away from the centroid."""
    centre = polygon.mean(axis=0)
    out = polygon - centre
    return centre + out * (1.0 + margin / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9))


def _band(polyline: np.ndarray, half_width: float, up: np.ndarray) -> np.ndarray:
    """Polygon around a polyline (K, 2): the line moved ``half_width`` along ``up`` and back against it."""
    return np.concatenate([polyline + half_width * up, (polyline - half_width * up)[::-1]])


def _face_axes(lm: np.ndarray) -> tuple[np.ndarray, float]:
    """The face's unit 'up' (chin 8 -> nose bridge 27) and the outer eye-corner distance (36-45), px."""
    up = lm[27] - lm[8]
    up /= max(float(np.linalg.norm(up)), 1e-6)
    return up, float(np.linalg.norm(lm[45] - lm[36]))


def landmark_regions(landmarks: np.ndarray, points: np.ndarray, *, eye_scale: float = EYE_SCALE,
                     lips_margin: float = 0.0) -> LandmarkRegions:
    """Classify points (N, 2) px against regions built from 68 iBUG landmarks (68, 2) in the same px.

    ``eye_scale``: the eye polygons are enlarged by this about their centre (1: the lid margins).
    ``lips_margin``: the outer-lip polygon is grown by this x the interocular distance.

    Example:
        >>> import numpy as np
        >>> lm = np.zeros((68, 2)); lm[:, 0] = np.arange(68); lm[8] = (30, 100); lm[27] = (30, 0)
        >>> landmark_regions(lm, np.array([[30.0, 50.0]])).eyes.shape
        (1,)
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"landmarks: expected shape (68, 2), got {lm.shape}")
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    up, interocular = _face_axes(lm)
    eyes = points_in_polygon(pts, _scaled(lm[36:42], eye_scale)) | points_in_polygon(
        pts, _scaled(lm[42:48], eye_scale))
    half = BROW_HALF_WIDTH * interocular
    brows = (points_in_polygon(pts, _band(lm[17:22], half, up))
             | points_in_polygon(pts, _band(lm[22:27], half, up)))
    inner_mouth = points_in_polygon(pts, _scaled(lm[60:68], INNER_MOUTH_SCALE))
    outer_lips = _grown(lm[48:60], lips_margin * interocular) if lips_margin > 0 else lm[48:60]
    lips = points_in_polygon(pts, outer_lips) & ~inner_mouth
    brow_centre = lm[17:27].mean(axis=0)
    bound = float((brow_centre - lm[33]) @ up) * FOREHEAD_BOUND + float(brow_centre @ up)
    above_forehead = pts @ up > bound
    # Reference skin: the cheeks (between the jaw, the lower eyelid and the nose/mouth) and the nose.
    right_cheek = np.stack([lm[1], lm[41] + 0.35 * (lm[1] - lm[41]), lm[39] + 0.4 * (lm[31] - lm[39]),
                            lm[31] + 0.3 * (lm[3] - lm[31]), lm[3]])
    left_cheek = np.stack([lm[15], lm[46] + 0.35 * (lm[15] - lm[46]), lm[42] + 0.4 * (lm[35] - lm[42]),
                           lm[35] + 0.3 * (lm[13] - lm[35]), lm[13]])
    nose = np.stack([lm[28], lm[31] + 0.5 * (lm[30] - lm[31]), lm[30], lm[35] + 0.5 * (lm[30] - lm[35])])
    reference = (points_in_polygon(pts, right_cheek) | points_in_polygon(pts, left_cheek)
                 | points_in_polygon(pts, nose))
    reference &= ~(eyes | brows | inner_mouth | lips)
    return LandmarkRegions(eyes, brows, inner_mouth, lips, above_forehead, reference)


def below_jaw(landmarks: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N,) bool: points (N, 2) px under the jaw line (iBUG 0-16) or beside it below its ends: the
    neck, where the chin casts its shadow (the SH light has no shadows: the albedo would be dark)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    up, interocular = _face_axes(lm)
    far = 10.0 * interocular * up
    face = np.concatenate([lm[0:17], [lm[16] + far, lm[0] + far]])
    ends = max(float(lm[0] @ up), float(lm[16] @ up))
    return ~points_in_polygon(pts, face) & (pts @ up < ends)


def colour_features(colour: np.ndarray) -> np.ndarray:
    """RGB (..., 3) in [0, 1] -> (..., 3): normalised r and g (chromaticity) and log luminance."""
    c = np.asarray(colour, dtype=np.float64)
    total = np.maximum(c.sum(axis=-1, keepdims=True), 1e-3)
    luminance = 0.299 * c[..., 0] + 0.587 * c[..., 1] + 0.114 * c[..., 2]
    return np.concatenate([c[..., :2] / total, np.log(np.maximum(luminance, 1e-3))[..., None]], axis=-1)


@dataclass(frozen=True)
class SkinColourModel:
    """A Gaussian over :func:`colour_features` of one person's skin.

    Attributes:
        mean: (3,) feature mean; covariance: (3, 3) (luminance variance floored, see ``fit``).
        count: reference pixels kept by the last trimming pass.
        soft: (d0, d1) Mahalanobis distances where the skin probability falls from 1 to 0.
        pixel_noise: per-channel colour noise ([0, 1] units) allowed for in the chromaticity (see
            :meth:`distance`); 0: none.
    """

    mean: np.ndarray
    covariance: np.ndarray
    count: int
    soft: tuple[float, float] = (3.5, 5.0)
    pixel_noise: float = 0.0

    def distance(self, colour: np.ndarray) -> np.ndarray:
        """Mahalanobis distance (...) of colours (..., 3) in [0, 1].

        With ``pixel_noise`` > 0, each colour's chromaticity variance is widened by
        ``(pixel_noise / (r + g + b))^2``: the chromaticity of a dark pixel is noisier than that of a
        bright one (see :data:`SKIN_PIXEL_NOISE`).
        """
        c = np.asarray(colour, dtype=np.float64)
        d = colour_features(c) - self.mean
        if self.pixel_noise == 0:  # one covariance for all: a single inverse
            inv = np.linalg.inv(self.covariance)
            return np.sqrt(np.maximum(np.einsum("...i,ij,...j->...", d, inv, d), 0.0))
        total = np.maximum(c.sum(axis=-1), 1e-3)
        noise = (self.pixel_noise / total) ** 2
        cov = np.broadcast_to(self.covariance, d.shape[:-1] + (3, 3)).copy()
        cov[..., 0, 0] += noise
        cov[..., 1, 1] += noise
        solved = np.linalg.solve(cov, d[..., None])[..., 0]
        return np.sqrt(np.maximum((d * solved).sum(-1), 0.0))

    def teeth_like(self, colour: np.ndarray) -> np.ndarray:
        """(...) bool: less red than the skin by a chroma standard deviation, or far brighter than it.

        Lips are redder than the skin around them, teeth and the tongue's highlights are greyer and
        brighter: used to keep lips (exempt from the colour test) without the teeth between them.
        """
        d = colour_features(colour) - self.mean
        std = np.sqrt(np.diag(self.covariance))
        return (d[..., 0] < -std[0]) | (d[..., 2] > 2.0 * std[2])

    def probability(self, colour: np.ndarray) -> np.ndarray:
        """Soft skin score (...) in [0, 1]: 1 within ``soft[0]`` standard distances, 0 beyond ``soft[1]``."""
        d0, d1 = self.soft
        return np.clip((d1 - self.distance(colour)) / (d1 - d0), 0.0, 1.0)


def fit_skin_colour(colour: np.ndarray, weight: np.ndarray | None = None, *, iterations: int = 4,
                    keep: float = 2.5, min_chroma_std: float = 0.012, min_log_luminance_std: float = 0.15,
                    luminance_slack: float = 1.5, pixel_noise: float = 0.0) -> SkinColourModel:
    """Robust (iteratively trimmed) Gaussian fit of skin colours (N, 3) in [0, 1].

    Starts from the median, then re-estimates mean and covariance ``iterations`` times from the
    pixels within ``keep`` Mahalanobis distances (specular highlights, stray hair and shadowed
    nostrils drop out). The chroma standard deviations are floored at ``min_chroma_std``, the log
    luminance's at ``min_log_luminance_std`` and then widened by ``luminance_slack`` (shading makes
    skin brightness vary more than its chroma). ``pixel_noise``: see :meth:`SkinColourModel.distance`.

    Raises:
        ValueError: fewer than 20 reference pixels.
    """
    x = colour_features(np.asarray(colour, dtype=np.float64).reshape(-1, 3))
    w = np.ones(len(x)) if weight is None else np.asarray(weight, dtype=np.float64).reshape(-1)
    valid = w > 0
    if valid.sum() < 20:
        raise ValueError(f"fit_skin_colour: need at least 20 reference pixels, got {int(valid.sum())}")
    x, w = x[valid], w[valid]
    mean = np.median(x, axis=0)
    mad = np.median(np.abs(x - mean), axis=0) * 1.4826
    cov = np.diag(np.maximum(mad, 1e-3) ** 2)
    kept = np.ones(len(x), dtype=bool)
    for _ in range(iterations):
        d = x - mean
        dist = np.sqrt(np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d))
        kept = dist <= keep
        if kept.sum() < 20:
            break
        wk = w[kept] / w[kept].sum()
        mean = (x[kept] * wk[:, None]).sum(0)
        dk = x[kept] - mean
        # The trimmed sample's variance underestimates the full one (truncated at `keep` sigmas).
        cov = (dk * wk[:, None]).T @ dk * 1.15
    std = np.sqrt(np.diag(cov))
    floor = np.array([min_chroma_std, min_chroma_std, min_log_luminance_std])
    scale = np.maximum(std, floor) / np.maximum(std, 1e-9)
    scale[2] *= luminance_slack
    cov = cov * np.outer(scale, scale)
    return SkinColourModel(mean=mean, covariance=cov, count=int(kept.sum()), pixel_noise=pixel_noise)


def select_skin(sampled: Unwrapped, landmarks: np.ndarray, chart_mask: np.ndarray, *,
                skin_mask: np.ndarray | None = None, include_brows: bool = True,
                eye_scale: float = EYE_SCALE, lips_margin: float = 0.0, pixel_noise: float = 0.0
                ) -> np.ndarray:
    """Per-texel skin score (R, R) in [0, 1] of a photo unwrapped into UV space.

    A texel scores 1 when it is skin by colour (:func:`fit_skin_colour` on the cheek/nose texels
    seen well) or a kept face feature (lips that are not teeth, brows when ``include_brows``), and
    0 in the eyes, the mouth interior and beyond the forehead bound (:func:`landmark_regions`).
    The score is multiplied by ``skin_mask`` (R, R) (a segmentation sampled at the texels) when
    given, shrunk by one texel and softened (colour at a hair/skin border mixes both). Visibility
    and viewing angle are *not* in it: multiply by ``sampled.weight`` for the photo's confidence.

    Args:
        sampled: :func:`ganfit_core.texture.unwrap.unwrap_photo` output (pixels in the same px as
            ``landmarks``).
        landmarks: (68, 2) iBUG landmarks, px of the unwrapped image.
        chart_mask: (R, R) bool texels on the UV charts.
        pixel_noise: chromaticity noise of the colour test below the brows
            (:meth:`SkinColourModel.distance`; the fit uses :data:`SKIN_PIXEL_NOISE`, the UV-map
            builder 0).

    Raises:
        ValueError: fewer than 20 cheek/nose texels seen well (no colour model).
    """
    res = chart_mask.shape[0]
    pixels = sampled.pixels.reshape(-1, 2)
    regions = landmark_regions(landmarks, pixels, eye_scale=eye_scale, lips_margin=lips_margin)
    seen = sampled.weight.reshape(-1)
    colour = sampled.colour.reshape(-1, 3)
    reference = regions.reference & (seen > 0.5)
    if reference.sum() < 20:
        raise ValueError(f"only {int(reference.sum())} cheek/nose texels seen well: "
                         "cannot model the skin colour")
    model = fit_skin_colour(colour[reference], seen[reference])
    if pixel_noise > 0:  # below the brows only: above them, blond and grey hair would pass as skin
        above = _above_brows(landmarks, pixels)
        score = np.empty(len(colour))
        score[above] = model.probability(colour[above])
        score[~above] = replace(model, pixel_noise=pixel_noise).probability(colour[~above])
    else:
        score = model.probability(colour)
    exempt = regions.colour_exempt(include_brows=include_brows) & ~(regions.lips & model.teeth_like(colour))
    score = np.maximum(score, exempt.astype(np.float64))
    score *= ~regions.excluded(include_brows=include_brows)
    score = score.reshape(res, res)
    if skin_mask is not None:
        score = score * np.asarray(skin_mask, dtype=np.float64)
    score = ndimage.grey_erosion(score, size=3) * chart_mask
    return ndimage.uniform_filter(score, size=3) * (score > 0)  # may exceed 1 by rounding (~1e-16)


def photo_detail_mask(image: np.ndarray, vertices_cam: np.ndarray, layout, focal: float,
                      principal: tuple[float, float], landmarks: np.ndarray) -> np.ndarray:
    """Where a fit may copy photo detail into the UV texture: (R, R) float in [0, 1].

    Skin texels the photo shows (:func:`select_skin` x visibility/viewing-angle confidence), plus
    their mirror images on texels the photo does not show (the mirror of seen skin). Zero on hair,
    background, eyes, mouth interior and occluders, where the prior's texture must stay.

    Args:
        image: (H, W, 3) uint8 or float [0, 1] photo (or crop); vertices_cam: (V, 3) mm, OpenCV
            camera space; layout: :func:`ganfit_core.texture.unwrap.uv_layout` of the mesh;
            focal, principal: the camera in ``image`` px; landmarks: (68, 2) px of ``image``.

    Raises:
        ValueError: too little of the face seen to model its skin colour.
    """
    from ganfit_core.texture.unwrap import unwrap_photo

    sampled = unwrap_photo(image, vertices_cam, layout, focal, principal)
    return detail_mask_from_unwrapped(sampled, landmarks, layout.mask)


def _above_brows(landmarks: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """(N,) bool: ``pixels`` (N, 2) above the brows' top (the brow band included), along the face's up."""
    lm = np.asarray(landmarks, dtype=np.float64)
    up, interocular = _face_axes(lm)
    brow_top = float((lm[17:27] @ up).max()) + BROW_HALF_WIDTH * interocular
    return np.asarray(pixels, dtype=np.float64).reshape(-1, 2) @ up > brow_top


def hair_fade(sampled: Unwrapped, landmarks: np.ndarray, skin: np.ndarray, chart_mask: np.ndarray,
              width: float) -> np.ndarray:
    """(R, R) float in [0, 1]: 0 on and next to hair above the brows (seen non-skin, or texels darker
    than the forehead's skin by :data:`HAIR_DARKER` in log luminance, and the hair's shadow: texels
    darker by :data:`HAIR_SHADOW_DARKER` connected to that hair), rising linearly to 1 at ``width``
    texels from it; 1 elsewhere. A darker spot away from the hair (a mole, freckles) is not hair.

    Colour at a hair/skin border mixes both, so texels next to the hair pass the skin test with the
    hair's darkness in them (a dark jagged fringe), and the photo's forehead colour meets the prior's
    scalp colour in a hard edge. Fading the photo detail out towards the hair hides both. Only the
    region above the brows is concerned: the eyes, lips and brows keep their own borders.
    """
    above = _above_brows(landmarks, sampled.pixels).reshape(skin.shape)
    seen = (sampled.weight > 0.05) & chart_mask
    hair = above & (skin < 0.5) & seen
    forehead = above & (skin >= 0.5) & seen
    if forehead.sum() >= 20:  # texels much darker than the forehead's skin: hair passing the skin test
        luminance = np.log(np.maximum(sampled.colour @ np.array([0.299, 0.587, 0.114]), 1e-3))
        median = np.median(luminance[forehead])
        hair |= forehead & (luminance < median - HAIR_DARKER)
        # The hair's shadow and its mixed border: darker texels connected to the hair.
        shade = forehead & (luminance < median - HAIR_SHADOW_DARKER)
        hair = ndimage.binary_propagation(hair, mask=hair | shade)
    if not hair.any():
        return np.ones_like(skin)
    distance = ndimage.distance_transform_edt(~hair)
    return np.clip((distance - 1.0) / max(width, 1e-6), 0.0, 1.0)


def detail_mask_from_unwrapped(sampled: Unwrapped, landmarks: np.ndarray, chart_mask: np.ndarray,
                               skin_mask: np.ndarray | None = None, *, eye_scale: float = DETAIL_EYE_SCALE,
                               hairline_texels: float = DETAIL_HAIRLINE) -> np.ndarray:
    """:func:`photo_detail_mask` of an already unwrapped photo (``landmarks`` in its px).

    ``eye_scale``: eye polygons left out (:func:`landmark_regions`; 1 keeps the eyelids); the lips
    are taken with their outline grown by :data:`DETAIL_LIPS_MARGIN`, the neck (:func:`below_jaw`)
    is not; the colour test allows for :data:`SKIN_PIXEL_NOISE`. ``skin_mask``: (R, R) a person
    segmentation at the texels (see :func:`select_skin`), or None.
    ``hairline_texels``: width of the fade towards the hair (:func:`hair_fade`), per 256 texels of
    the mask's side; 0: no fade.
    """
    skin = select_skin(sampled, landmarks, chart_mask, skin_mask=skin_mask, eye_scale=eye_scale,
                       lips_margin=DETAIL_LIPS_MARGIN, pixel_noise=SKIN_PIXEL_NOISE)
    skin = skin * ~below_jaw(landmarks, sampled.pixels).reshape(skin.shape)
    confidence = np.clip(sampled.weight / 0.5, 0.0, 1.0)
    own = skin * confidence
    if hairline_texels > 0:
        own = own * hair_fade(sampled, landmarks, skin, chart_mask, hairline_texels * skin.shape[0] / 256)
    seen = sampled.weight > 0.05
    return np.clip(np.maximum(own, own[:, ::-1] * ~seen), 0.0, 1.0) * chart_mask
