"""The photo's skin in UV space, for the fit: the texture latent's start and the detail layer's mask.

Both unwrap the target crop with the geometry and camera fitted so far
(:func:`ganfit_core.texture.unwrap.unwrap_photo`) and keep only the skin texels
(:func:`ganfit_core.texture.skin.select_skin`: not hair, background, eyes, mouth interior or an
occluder):

- :func:`initial_texture_latent` (before the ``full`` stage): the shading-free albedo of the visible
  skin (SH shading at mean 1 divided out, as in the UV data set the priors were built on), mirrored
  where the other side is seen, projected onto a prior that can project (PCA: weighted least
  squares). The fit then starts from the prior fitted to the visible skin, at the subject's skin
  tone, instead of from the mean face.
- :func:`detail_skin_mask` (before the ``detail`` stage): the detail layer applies only on skin the
  photo shows (and its mirror where the photo shows neither side's counterpart), never where the
  prior's albedo must stay.
- :func:`initial_detail` (before the ``detail`` stage): the detail layer's start, the photo's colour
  with the *fitted* light divided out minus the prior's texture, so that the stage starts from the
  photo's own albedo (every pore, the lips' colour) instead of from zero and only refines it.
"""

from __future__ import annotations

import numpy as np
import torch

from ganfit_core.fitting.config import FitConfig
from ganfit_core.fitting.context import FitContext
from ganfit_core.fitting.params import FaceParameters
from ganfit_core.fitting.target import TargetTensors

__all__ = ["detail_skin_mask", "initial_detail", "initial_texture_latent", "unwrap_views"]


def _layout(ctx: FitContext, resolution: int):
    """The face mesh's UV layout at ``resolution`` texels."""
    from ganfit_core.texture.unwrap import uv_layout

    model = ctx.model
    return uv_layout(model.faces.cpu().numpy(), model.uvs.cpu().numpy(), model.uv_faces.cpu().numpy(),
                     resolution)


def _unwrap_view(params: FaceParameters, ctx: FitContext, tgt: TargetTensors, layout, view: int):
    """(sampled, landmarks) of target crop ``view`` unwrapped into ``layout``."""
    from ganfit_core.texture.unwrap import unwrap_photo

    model = ctx.model
    vertices = params.to_camera_space(model(params.identity_rows(), params.expression))[view]
    vertices = vertices.double().cpu().numpy()
    camera = params.camera(tgt.size, tgt.size, scale=tgt.scale)
    sampled = unwrap_photo(tgt.image[view].double().cpu().numpy(), vertices, layout,
                           float(camera.focal[view]), tuple(float(c) for c in camera.principal[view]))
    return sampled, tgt.landmarks[view].double().cpu().numpy()


def _unwrap_target(params: FaceParameters, ctx: FitContext, tgt: TargetTensors, resolution: int,
                   view: int = 0):
    """(sampled, layout, landmarks) of target crop ``view`` unwrapped at ``resolution`` texels."""
    layout = _layout(ctx, resolution)
    sampled, landmarks = _unwrap_view(params, ctx, tgt, layout, view)
    return sampled, layout, landmarks


def _person_at_texels(tgt: TargetTensors, sampled, view: int) -> np.ndarray | None:
    """The crop's person probability (``TargetTensors.person``) at the texels' projections, or None."""
    from ganfit_core.texture.unwrap import sample_mask

    if tgt.person is None:
        return None
    return sample_mask(tgt.person[view].double().cpu().numpy(), sampled.pixels)


@torch.no_grad()
def unwrap_views(params: FaceParameters, ctx: FitContext, tgt: TargetTensors, resolution: int) -> list[tuple]:
    """Every view's crop unwrapped once at ``resolution`` texels with the current fit, for
    :func:`detail_skin_mask` and :func:`initial_detail`: per view ``(sampled, landmarks, uv mask,
    person mask at the texels or None)``, the arguments of
    :func:`ganfit_core.texture.skin.detail_mask_from_unwrapped`.

    Raises:
        ValueError: the fitted face is not in front of the camera (``unwrap_photo``).
    """
    layout = _layout(ctx, resolution)
    views = []
    for view in range(tgt.image.shape[0]):
        sampled, landmarks = _unwrap_view(params, ctx, tgt, layout, view)
        views.append((sampled, landmarks, layout.mask, _person_at_texels(tgt, sampled, view)))
    return views


@torch.no_grad()
def initial_texture_latent(params: FaceParameters, ctx: FitContext,
                           tgt: TargetTensors) -> tuple[torch.Tensor | None, str | None]:
    """The prior's latent (1, L) of the visible skin's albedo, or ``(None, reason)`` when not available.

    Needs a prior with ``project(textures, weights)`` (the PCA prior); others keep their start
    (``(None, None)``).
    """
    from ganfit_core.texture.skin import SKIN_PIXEL_NOISE, select_skin
    from ganfit_core.texture.unwrap import mirror_fill, remove_shading

    prior = ctx.prior
    if not hasattr(prior, "project"):
        return None, None
    try:
        sampled, layout, landmarks = _unwrap_target(params, ctx, tgt, int(prior.resolution))
        skin = select_skin(sampled, landmarks, layout.mask, skin_mask=_person_at_texels(tgt, sampled, 0),
                           pixel_noise=SKIN_PIXEL_NOISE)
        albedo, _ = remove_shading(sampled, skin=skin)
    except ValueError as exc:
        return None, f"texture start: the prior's mean (the photo's skin could not be unwrapped: {exc})"
    weight = sampled.weight * np.clip(skin, 0.0, 1.0)
    albedo, weight = mirror_fill(np.where(weight[..., None] > 0, albedo, 0.0), weight)
    textures = torch.from_numpy(albedo).to(params.texture_latent)[None]
    weights = torch.from_numpy(weight).to(params.texture_latent)[None]
    return prior.project(textures, weights), None


@torch.no_grad()
def detail_skin_mask(params: FaceParameters, views: list[tuple],
                     config: FitConfig) -> tuple[torch.Tensor | None, str | None]:
    """The detail layer's mask (1, D, D) in [0, 1] for the current fit (``views``: :func:`unwrap_views`
    at the detail resolution), and a warning if it fell back.

    ``config.detail_skin_mask`` s blends it with 1: ``1 - s (1 - skin)``. Returns ``(None, None)``
    when there is no detail layer or ``s`` is 0; ``(None, warning)`` when the photo shows too little
    skin to model its colour (the detail layer then applies everywhere, as with ``s = 0``).
    """
    from ganfit_core.texture.skin import detail_mask_from_unwrapped

    resolution = params.detail.shape[1]
    strength = float(config.detail_skin_mask)
    if resolution == 0 or strength == 0.0:
        return None, None
    try:  # a detail layer shared by several photos applies where any of them shows skin
        skin = np.max([detail_mask_from_unwrapped(*view) for view in views], axis=0)
    except ValueError as exc:
        return None, f"detail stage: photo detail not restricted to skin ({exc})"
    mask = 1.0 - strength * (1.0 - np.clip(skin, 0.0, 1.0))
    return torch.from_numpy(mask).to(params.detail)[None], None


#: Shading below this is not divided out (deep shadow: the colour there says little about the albedo).
_MIN_SHADING = 0.1


@torch.no_grad()
def initial_detail(params: FaceParameters, ctx: FitContext, views: list[tuple]) -> torch.Tensor | None:
    """The detail layer's start (rows, D, D, 3): photo albedo minus the prior's texture, 0 where unseen.

    Per view, the crop unwrapped at the detail resolution with the fitted geometry and camera
    (``views``: :func:`unwrap_views`) is divided by the fitted SH shading of each texel's normal (the
    renderer's own light model), so that ``prior + detail`` rendered under the fitted light
    reproduces the photo. Views are averaged by
    their viewing-angle confidence; texels no view shows take their mirror's value (the UV charts
    are left/right symmetric), the rest stay 0. The detail mask (:func:`detail_skin_mask`) then
    decides where it applies. None without a detail layer.
    """
    from ganfit_core.render.lighting import sh_shading
    from ganfit_core.texture.unwrap import mirror_fill

    size = params.detail.shape[1]
    if size == 0:
        return None
    base = ctx.prior.decode(params.texture_latent)  # (rows, R, R, 3)
    if base.shape[1] != size:
        base = torch.nn.functional.interpolate(base.permute(0, 3, 1, 2), size=(size, size), mode="bilinear",
                                               align_corners=False).permute(0, 2, 3, 1)
    total = np.zeros((size, size, 3))
    weight = np.zeros((size, size))
    for view, (sampled, *_) in enumerate(views):
        normals = torch.from_numpy(sampled.normals).to(params.sh)
        shading = sh_shading(normals.reshape(1, -1, 3), params.sh[view:view + 1]).reshape(size, size, 3)
        shading = shading.double().cpu().numpy()
        seen = sampled.weight * (shading.min(-1) > _MIN_SHADING)
        albedo = sampled.colour / np.maximum(shading, _MIN_SHADING)
        total += seen[..., None] * albedo
        weight += seen
    albedo = np.where(weight[..., None] > 0, total / np.maximum(weight[..., None], 1e-12), 0.0)
    albedo, weight = mirror_fill(albedo, weight)
    rows = params.detail.shape[0]
    albedo = torch.from_numpy(np.clip(albedo, 0.0, 1.0)).to(params.detail)[None]
    seen = torch.from_numpy(weight > 0).to(albedo.device)[None, ..., None]
    return torch.where(seen, albedo - base[:rows].to(albedo), torch.zeros_like(albedo))
