"""One step's objective: which weighted loss terms each stage uses, on the current parameters.

Sliding jawline: see :func:`ganfit_core.fitting.losses.slide_contour` (each contour landmark picks the
nearest of its neighbouring ICT extended-jawline vertices at every step).
"""

from __future__ import annotations

import torch

from ganfit_core.fitting import losses as L
from ganfit_core.fitting.config import FitConfig
from ganfit_core.fitting.context import FitContext
from ganfit_core.fitting.params import FaceParameters
from ganfit_core.fitting.target import TargetTensors
from ganfit_core.model.layout import (
    CHIN_LANDMARK,
    INNER_LANDMARKS,
    JAW_CENTRES,
    JAW_LEFT_LANDMARKS,
    JAW_RIGHT_LANDMARKS,
    SPARSE_JAW_LEFT_ROWS,
    SPARSE_JAW_RIGHT_ROWS,
    SPARSE_LANDMARK_ROWS,
)

__all__ = ["step_losses", "projected_landmarks", "LANDMARK_SCALE"]

#: The landmark loss is multiplied by this so that a 1 % RMS error (of the face diagonal) is 0.1.
LANDMARK_SCALE = 1e3


def projected_landmarks(sparse_cam: torch.Tensor, camera: object, tgt: TargetTensors,
                        config: FitConfig) -> torch.Tensor:
    """Projected model landmarks (B, 68, 2) px, contour landmarks slid along the jawline.

    ``sparse_cam``: (B, 102, 3) camera-space vertices in the row order of
    :class:`~ganfit_core.model.sparse.SparseLandmarkModel`.
    """
    from ganfit_core.render.camera import project

    points = project(sparse_cam, camera, min_depth=1.0)  # (B, 102, 2)
    landmarks = points[:, SPARSE_LANDMARK_ROWS]
    chin, inner = landmarks[:, CHIN_LANDMARK:CHIN_LANDMARK + 1], landmarks[:, INNER_LANDMARKS]
    if config.sliding_window == 0:
        right = points[:, SPARSE_JAW_RIGHT_ROWS][:, list(JAW_CENTRES)]
        left = points[:, SPARSE_JAW_LEFT_ROWS][:, list(JAW_CENTRES)]
        return torch.cat([right, chin, left, inner], dim=1)
    pieces = []
    sides = ((SPARSE_JAW_RIGHT_ROWS, JAW_RIGHT_LANDMARKS), (SPARSE_JAW_LEFT_ROWS, JAW_LEFT_LANDMARKS))
    for rows, lm_slice in sides:
        cands = points[:, rows]
        choice = L.slide_contour(cands.detach(), tgt.landmarks[:, lm_slice], JAW_CENTRES,
                                 window=config.sliding_window)
        pieces.append(torch.gather(cands, 1, choice[..., None].expand(-1, -1, 2)))
    return torch.cat([pieces[0], chin, pieces[1], inner], dim=1)


def step_losses(stage: str, params: FaceParameters, ctx: FitContext, tgt: TargetTensors, config: FitConfig,
                want_render: bool, step: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Weighted loss terms of one step (with ``"total"``) and, if rendered, the composite (B, S, S, 3)
    (B views: each term is the mean over the views). ``step`` (within the stage) picks the free view."""
    model = ctx.model
    terms: dict[str, torch.Tensor] = {}
    render = stage in ("full", "detail") or want_render
    camera = params.camera(tgt.size, tgt.size, scale=tgt.scale)
    if render:
        model_vertices = model(params.identity_rows(), params.expression)
        cam_vertices = params.to_camera_space(model_vertices)
        sparse_cam = cam_vertices[:, ctx.sparse.index]
    else:
        sparse_cam = params.to_camera_space(ctx.sparse(params.identity_rows(), params.expression))
    if stage != "detail" and config.landmark_weight > 0:
        predicted = projected_landmarks(sparse_cam, camera, tgt, config)
        terms["landmark"] = config.landmark_weight * LANDMARK_SCALE * L.landmark_loss(
            predicted, tgt.landmarks, weights=tgt.weights, robust_scale=config.landmark_robust_scale)
    if stage != "detail" and ctx.dense is not None and tgt.dense is not None and config.dense_weight > 0:
        from ganfit_core.fitting.dense_term import dense_landmark_loss
        from ganfit_core.render.camera import project

        points = params.to_camera_space(ctx.dense(params.identity_rows(), params.expression))
        predicted = project(points, camera, min_depth=1.0)
        terms["dense_landmark"] = config.dense_weight * LANDMARK_SCALE * dense_landmark_loss(
            predicted, tgt.dense, ctx.dense_weights, robust_scale=config.landmark_robust_scale).mean()
    if stage != "rigid" and stage != "detail":
        terms["identity_reg"] = config.identity_reg_weight * L.coefficient_regulariser(params.identity)
        terms["expression_reg"] = config.expression_reg_weight * L.coefficient_regulariser(params.expression)
        prior = params.expression_prior
        if prior is not None and config.expression_l1_weight > 0:
            terms["expression_l1"] = config.expression_l1_weight * prior.l1(params.expression).mean()
        if prior is not None and config.expression_symmetry_weight > 0:
            terms["expression_symmetry"] = (config.expression_symmetry_weight
                                            * prior.asymmetry(params.expression).mean())
    if stage != "detail" and config.focal_reg_weight > 0:
        terms["focal_reg"] = config.focal_reg_weight * params.log_focal.pow(2).sum(-1).mean()
    composite = None
    if render:
        texture = params.texture(ctx.prior.decode(params.texture_latent))
        out = ctx.renderer.render(cam_vertices, model.faces, model.uvs, model.uv_faces, texture, camera,
                                  params.sh)
        composite = out.image + (1.0 - out.mask) * tgt.image
        if stage in ("full", "detail"):
            terms.update(_photometric_terms(stage, params, ctx, tgt, config, composite))
            if (ctx.freeview is not None and config.freeview_identity_weight > 0 and tgt.embedding is not None
                    and step % config.freeview_every == 0):
                from ganfit_core.fitting.freeview import freeview_identity_loss

                turn = step // config.freeview_every
                yaw = (0.0, config.freeview_yaw_deg, -config.freeview_yaw_deg)[turn % 3]
                blur = config.identity_gradient_blur_px * config.freeview_size / config.render_size
                loss, _ = freeview_identity_loss(
                    ctx.freeview, model_vertices, params.identity_rows(), params.expression, texture,
                    model.uvs, params.sh, ctx.renderer, ctx.identity_net, tgt.embedding, yaw,
                    config.freeview_size, tgt.iris_rgb, gradient_blur_px=blur)
                terms["freeview_identity"] = config.freeview_identity_weight * loss
            if config.light_reg_weight > 0:
                # Exposure prior: the mean shading over the visible face near the level (1) the
                # texture priors' albedos were normalised to (the UV data set divides each photo's
                # shading out at mean 1), so skin tone and colour cast go to the albedo, not the light.
                terms["light_reg"] = config.light_reg_weight * L.exposure_prior(
                    cam_vertices.detach(), model.faces, params.sh)
    total = torch.stack(list(terms.values())).sum() if terms else torch.zeros((), device=ctx.device)
    terms["total"] = total
    return terms, composite


def _photometric_terms(stage: str, params: FaceParameters, ctx: FitContext, tgt: TargetTensors,
                       config: FitConfig, composite: torch.Tensor) -> dict[str, torch.Tensor]:
    terms: dict[str, torch.Tensor] = {}
    if config.pixel_weight > 0:
        terms["pixel"] = config.pixel_weight * L.masked_pixel_loss(composite, tgt.image, tgt.skin)
    if ctx.identity_net is not None and (config.identity_weight > 0 or config.content_weight > 0):
        # The recogniser sees the rendering only inside the (feathered) face-skin mask: outside it
        # (forehead, ears, neck) nothing constrains the texture, and letting the identity loss paint
        # there produces adversarial colour patterns.
        face_only = tgt.image + tgt.skin_soft * (composite - tgt.image)
        if stage == "detail":  # per texel, the recogniser's raw gradient paints speckles
            face_only = L.lowpass_gradient(face_only, config.identity_gradient_blur_px)
        out = ctx.identity_net.analyse(face_only.permute(0, 3, 1, 2), tgt.landmarks)
        if config.identity_weight > 0:
            terms["identity"] = config.identity_weight * L.identity_loss(out.embedding, tgt.embedding)
        if config.content_weight > 0:
            terms["content"] = config.content_weight * L.content_loss(out.features, tgt.features)
    if stage == "full":
        terms["texture_reg"] = config.texture_reg_weight * ctx.prior.regulariser(params.texture_latent)
    if stage == "detail":
        terms["detail_smooth"] = config.detail_smooth_weight * L.texture_smoothness(params.detail)
        terms["detail_symmetry"] = config.detail_symmetry_weight * L.texture_symmetry(params.detail)
    return terms
