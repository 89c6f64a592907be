"""GANFIT fitting: optimise shape, expression, pose, camera, lighting and texture against a photo.

:func:`fit` runs up to four stages with Adam (see :class:`~ganfit_core.fit.config.FitConfig`):

1. ``rigid``  — rotation, translation and focal length from the landmarks.
2. ``shape``  — identity and expression from the landmarks (+ regularisers); pose keeps adapting.
3. ``full``   — everything: texture latent, SH lighting, shape and pose, with the masked pixel,
   identity (1 - cos of recogniser embeddings), content, landmark and regulariser losses.
4. ``detail`` — optional: a per-texel UV residual on top of the prior's texture (pixel loss +
   smoothness + left/right symmetry).

It is a generator of :class:`~ganfit_core.fit.types.FitEvent` (one per step; the last one has
``stage == "done"`` and the :class:`~ganfit_core.fit.types.FitResult`). Cancellation: when the
``cancel`` event is set, the next step raises :class:`~ganfit_core.fit.types.FitCancelled`.
Divergence (a non-finite loss or parameter): the stage's best parameters are restored, the stage
ends early and a warning is added to the result. Same seed and device give the same result.

Sliding jawline: see :func:`ganfit_core.fit.losses.slide_contour` (each contour landmark picks the
nearest of its neighbouring ICT extended-jawline vertices at every step).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ganfit_core.fit import losses as L
from ganfit_core.fit.config import FitConfig
from ganfit_core.fit.optim import Adam
from ganfit_core.fit.params import FaceParameters, matrix_to_axis_angle
from ganfit_core.fit.types import FitCancelled, FitError, FitEvent, FitResult, FitTarget, face_skin_mask
from ganfit_core.render.camera import FRONTAL_ROTATION

__all__ = ["fit", "resolve_device", "FitContext", "build_context", "JAW_CENTRES", "LANDMARK_SCALE"]

#: Default candidate (index into the 17 extended jawline vertices) of contour landmarks 0-7
#: (``jaw_right``) and 9-16 (``jaw_left``): ICT's README "jawline" substitutes.
JAW_CENTRES: tuple[int, ...] = (1, 3, 5, 7, 9, 11, 13, 15)
#: The landmark loss is multiplied by this so that a 1 % RMS error (of the face diagonal) is 0.1.
LANDMARK_SCALE = 1e3
_STAGE_GROUPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # stage: (groups at full learning rate, groups at refine_lr_scale)
    "rigid": (("rotation", "translation", "depth", "focal"), ()),
    "shape": (("identity", "expression"), ("rotation", "translation", "depth", "focal")),
    "full": (("texture", "light"), ("identity", "expression", "rotation", "translation", "depth", "focal")),
    "detail": (("detail",), ("light",)),
}


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available else CPU; ``"cuda"`` without CUDA raises FitError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FitError("device 'cuda' requested but CUDA is not available (use --device cpu or auto)")
    return torch.device(name)


@dataclass
class FitContext:
    """The components a fit uses (built once; reusable across fits with the same config)."""

    device: torch.device
    model: torch.nn.Module
    prior: torch.nn.Module
    renderer: object
    identity_net: torch.nn.Module | None
    sparse: _SparseModel
    key: tuple = ()

    def check(self, config: FitConfig) -> None:
        """Raise FitError unless this context was built for ``config``'s model, prior and devices."""
        wanted = _context_key(config)
        needs_id = (config.identity_weight > 0 or config.content_weight > 0) and (
            config.full_steps > 0 or config.detail_steps > 0)
        if wanted != self.key or (needs_id and self.identity_net is None):
            has_id = "" if self.identity_net is not None else " without the identity network"
            raise FitError(f"the FitContext was built for (region, prior, device, renderer) = "
                           f"{self.key}{has_id}, "
                           f"but the config needs {wanted}{' with it' if needs_id else ''}: "
                           "use build_context(config)")


def _context_key(config: FitConfig) -> tuple:
    return (config.region, config.texture_prior, str(resolve_device(config.device)), config.renderer)


def build_context(config: FitConfig) -> FitContext:
    """Load the morphable model, texture prior, renderer and (if weighted) the identity network."""
    from ganfit_core.model.morphable import load_morphable_model
    from ganfit_core.render.renderer import make_renderer
    from ganfit_core.texture import load_texture_prior

    device = resolve_device(config.device)
    model = load_morphable_model(config.region, device=device)
    prior = load_texture_prior(config.texture_prior, device=device)
    renderer = make_renderer(config.renderer, device=device)
    needs_id = (config.identity_weight > 0 or config.content_weight > 0) and (
        config.full_steps > 0 or config.detail_steps > 0)
    identity_net = None
    if needs_id:
        from ganfit_core.face.identity import load_identity_network

        identity_net = load_identity_network(device=device)
    return FitContext(device, model, prior, renderer, identity_net, _SparseModel(model), _context_key(config))


# ---------------------------------------------------------------------------------------------
# Target preparation


@dataclass
class _Target:
    """Target tensors at the render resolution."""

    image: torch.Tensor  # (1, S, S, 3) [0, 1]
    image_chw: torch.Tensor  # (1, 3, S, S)
    landmarks: torch.Tensor  # (1, 68, 2) px at render size
    skin: torch.Tensor  # (1, S, S, 1) float, face_skin_mask (landmark hull + forehead)
    skin_soft: torch.Tensor  # (1, S, S, 1) float, the hull mask feathered over ~4 % of the size
    weights: torch.Tensor  # (68,)
    size: int
    scale: float  # render px per crop px
    embedding: torch.Tensor | None
    features: tuple[torch.Tensor, ...] | None


def _prepare(target: FitTarget, config: FitConfig, ctx: FitContext) -> _Target:
    size = config.render_size
    scale = size / target.size
    image = torch.tensor(target.image).to(ctx.device, torch.float32).div(255.0)[None]
    chw = image.permute(0, 3, 1, 2)
    if size != target.size:
        chw = F.interpolate(chw, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        chw = chw.clamp(0.0, 1.0)
    landmarks_np = target.landmarks.astype(np.float32) * scale
    skin = torch.from_numpy(face_skin_mask(landmarks_np, (size, size))).to(ctx.device, torch.float32)
    weights = torch.ones(68, device=ctx.device)
    weights[:17] = config.contour_weight
    landmarks = torch.from_numpy(landmarks_np).to(ctx.device)[None]
    embedding = features = None
    if ctx.identity_net is not None:
        with torch.no_grad():
            out = ctx.identity_net.analyse(chw, landmarks)
        embedding, features = out.embedding, tuple(out.features)
    radius = max(1, round(0.02 * size))
    soft = F.avg_pool2d(skin[None, None], 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)
    return _Target(chw.permute(0, 2, 3, 1).contiguous(), chw.contiguous(), landmarks, skin[None, :, :, None],
                   soft.permute(0, 2, 3, 1).contiguous(),
                   weights, size, scale, embedding, features)


def _initial_parameters(target: FitTarget, config: FitConfig, ctx: FitContext) -> FaceParameters:
    """Camera guess from the photo's assumed field of view; depth and offset from the landmarks."""
    device = ctx.device
    linear = target.crop_to_photo[:2, :2]
    px_per_crop = math.sqrt(abs(float(np.linalg.det(linear)))) or 1.0
    if target.focal_hint is not None:
        focal0 = float(target.focal_hint)
        principal = np.array([target.size / 2.0, target.size / 2.0])
    else:
        photo_w, photo_h = target.photo_size
        focal_photo = 0.5 * max(photo_w, photo_h) / math.tan(math.radians(config.initial_fov_deg) / 2.0)
        focal0 = focal_photo / px_per_crop
        centre = np.array([photo_w / 2.0, photo_h / 2.0, 1.0])
        principal = (np.linalg.inv(target.crop_to_photo) @ centre)[:2]
    rotation, translation0, depth0 = _pose_from_landmarks(ctx, target, focal0, principal)
    latent = ctx.prior.initial_latent(1).to(device)
    detail = config.detail_resolution if config.detail_steps > 0 else 0
    as_t = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32, device=device)  # noqa: E731
    return FaceParameters(
        batch=1, num_identity=config.num_identity, num_expression=ctx.model.num_expression,
        texture_latent=latent,
        focal0=as_t([focal0]), depth0=as_t([depth0]), principal=as_t(principal[None]),
        translation0=as_t(translation0[None]), detail_resolution=detail, rotation0=as_t(rotation[None]),
    )


def _pose_from_landmarks(ctx: FitContext, target: FitTarget, focal: float,
                         principal: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Closed-form start pose: a weak-perspective (scaled orthographic) fit of the mean face's landmarks.

    Solves ``landmarks ~ P @ (X, Y, Z, 1)`` (least squares, P 2x4), orthonormalises P's rows into a
    rotation (SVD), and reads the depth from the scale. Returns (axis-angle relative to
    FRONTAL_ROTATION (3,), image-plane offset px (2,), depth mm).
    """
    model = ctx.model
    idx = model.landmark_indices.clone()
    idx[0:8] = model.jaw_right[list(JAW_CENTRES)]
    idx[9:17] = model.jaw_left[list(JAW_CENTRES)]
    points = model.mean[idx].detach().cpu().double().numpy()  # (68, 3) mm
    lm = target.landmarks.astype(np.float64)
    design = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    proj, *_ = np.linalg.lstsq(design, lm, rcond=None)  # (4, 2)
    rows = proj[:3].T  # (2, 3)
    scale = float(np.linalg.norm(rows, axis=1).mean())
    u, _, vt = np.linalg.svd(rows, full_matrices=False)
    r12 = u @ vt  # closest matrix with orthonormal rows
    cam_rotation = np.stack([r12[0], r12[1], np.cross(r12[0], r12[1])])
    relative = FRONTAL_ROTATION.double().numpy().T @ cam_rotation
    rotvec = matrix_to_axis_angle(relative)
    if np.linalg.norm(rotvec) > math.radians(80):  # implausible (e.g. degenerate landmarks): start frontal
        rotvec = np.zeros(3)
    depth = focal / max(scale, 1e-6)
    return rotvec, proj[3] - principal, depth


# ---------------------------------------------------------------------------------------------
# One step's losses


class _SparseModel(torch.nn.Module):
    """The morphable model restricted to the landmark and jawline vertices (fast landmark stages).

    Row layout of ``index`` (102,): the 68 landmark vertices, then the 17 ``jaw_right`` and the
    17 ``jaw_left`` extended jawline candidates.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        index = torch.cat([model.landmark_indices, model.jaw_right, model.jaw_left])
        self.register_buffer("index", index)
        self.register_buffer("mean", model.mean[index].clone())
        num_id = model.identity_basis.shape[0]
        self.register_buffer("identity_basis", model.identity_basis[:, index].reshape(num_id, -1))
        num_exp = model.expression_basis.shape[0]
        self.register_buffer("expression_basis", model.expression_basis[:, index].reshape(num_exp, -1))

    def forward(self, identity: torch.Tensor, expression: torch.Tensor) -> torch.Tensor:
        """(B, 102, 3) model-space vertices, mm."""
        k = identity.shape[1]
        flat = self.mean.reshape(1, -1) + identity @ self.identity_basis[:k]
        flat = flat + expression @ self.expression_basis
        return flat.reshape(identity.shape[0], -1, 3)


def _landmarks_2d(sparse_cam: torch.Tensor, camera: object, tgt: _Target, config: FitConfig) -> torch.Tensor:
    """Projected model landmarks (B, 68, 2) px, contour landmarks slid along the jawline.

    ``sparse_cam``: (B, 102, 3) camera-space vertices in :class:`_SparseModel` order.
    """
    from ganfit_core.render.camera import project

    points = project(sparse_cam, camera, min_depth=1.0)  # (B, 102, 2)
    landmarks = points[:, :68]
    if config.sliding_window == 0:
        right, left = points[:, 68:85][:, list(JAW_CENTRES)], points[:, 85:102][:, list(JAW_CENTRES)]
        return torch.cat([right, landmarks[:, 8:9], left, landmarks[:, 17:]], dim=1)
    pieces = []
    for offset, lm_slice in ((68, slice(0, 8)), (85, slice(9, 17))):
        cands = points[:, offset:offset + 17]
        choice = L.slide_contour(cands.detach(), tgt.landmarks[:, lm_slice], JAW_CENTRES,
                                 window=config.sliding_window)
        pieces.append(torch.gather(cands, 1, choice[..., None].expand(-1, -1, 2)))
    return torch.cat([pieces[0], landmarks[:, 8:9], pieces[1], landmarks[:, 17:]], dim=1)


def _step_losses(stage: str, params: FaceParameters, ctx: FitContext, tgt: _Target, config: FitConfig,
                 want_render: bool) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Weighted loss terms of one step and (if rendered) the composite image (1, S, S, 3)."""
    model = ctx.model
    terms: dict[str, torch.Tensor] = {}
    render = stage in ("full", "detail") or want_render
    camera = params.camera(tgt.size, tgt.size, scale=tgt.scale)
    if render:
        cam_vertices = params.to_camera_space(model(params.identity, params.expression))
        sparse_cam = cam_vertices[:, ctx.sparse.index]
    else:
        sparse_cam = params.to_camera_space(ctx.sparse(params.identity, params.expression))
    if stage != "detail" and config.landmark_weight > 0:
        predicted = _landmarks_2d(sparse_cam, camera, tgt, config)
        terms["landmark"] = config.landmark_weight * LANDMARK_SCALE * L.landmark_loss(
            predicted, tgt.landmarks, weights=tgt.weights)
    if stage != "rigid" and stage != "detail":
        terms["identity_reg"] = config.identity_reg_weight * L.coefficient_regulariser(params.identity)
        terms["expression_reg"] = config.expression_reg_weight * L.coefficient_regulariser(params.expression)
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
    total = torch.stack(list(terms.values())).sum() if terms else torch.zeros((), device=ctx.device)
    terms["total"] = total
    return terms, composite


def _photometric_terms(stage: str, params: FaceParameters, ctx: FitContext, tgt: _Target, config: FitConfig,
                       composite: torch.Tensor) -> dict[str, torch.Tensor]:
    terms: dict[str, torch.Tensor] = {}
    if config.pixel_weight > 0:
        terms["pixel"] = config.pixel_weight * L.masked_pixel_loss(composite, tgt.image, tgt.skin)
    if ctx.identity_net is not None and (config.identity_weight > 0 or config.content_weight > 0):
        # The recogniser sees the rendering only inside the (feathered) face-skin mask: outside it
        # (forehead, ears, neck) nothing constrains the texture, and letting the identity loss paint
        # there produces adversarial colour patterns.
        face_only = tgt.image + tgt.skin_soft * (composite - tgt.image)
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


# ---------------------------------------------------------------------------------------------
# The loop


def _optimizer(stage: str, params: FaceParameters, config: FitConfig) -> Adam:
    full, refined = _STAGE_GROUPS[stage]
    groups = []
    for name in full + refined:
        lr = getattr(config, f"lr_{name}") * (config.refine_lr_scale if name in refined else 1.0)
        if lr > 0:
            groups.append({"params": params.group(name), "lr": lr})
    return Adam(groups)


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """(1, H, W, 3) [0, 1] -> (H, W, 3) uint8."""
    return (image[0].detach().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()


def fit(
    target: FitTarget,
    config: FitConfig | None = None,
    *,
    cancel: threading.Event | None = None,
    context: FitContext | None = None,
) -> Iterator[FitEvent]:
    """Fit the morphable model and texture prior to ``target``; yields a FitEvent after every step.

    Args:
        target: the crop and landmarks (see :func:`ganfit_core.fit.target.prepare_target`).
        config: settings (default ``FitConfig()``).
        cancel: when set, the next step raises :class:`FitCancelled`.
        context: prebuilt components (:func:`build_context`) to skip loading them again; it must
            have been built for the same region, texture prior, device and renderer.

    Raises:
        FitCancelled: ``cancel`` was set.
        FitError: the device is unavailable, or nothing can be fitted.
    """
    config = config or FitConfig()
    start = time.perf_counter()
    ctx = context or build_context(config)
    ctx.check(config)
    torch.manual_seed(config.seed)
    tgt = _prepare(target, config, ctx)
    params = _initial_parameters(target, config, ctx)
    stages = config.stages
    warnings: list[str] = []
    history: list[dict] = []
    stage_seconds: dict[str, float] = {}
    step = 0
    last_losses: dict[str, float] = {}  # last value of every term seen (terms of earlier stages too)
    for stage_index, (stage, steps) in enumerate(stages):
        stage_start = time.perf_counter()
        optimizer = _optimizer(stage, params, config)
        best_total, best = math.inf, params.snapshot()
        for stage_step in range(1, steps + 1):
            if cancel is not None and cancel.is_set():
                raise FitCancelled(f"fit cancelled at step {step} ({stage})")
            step += 1
            # Previews: at every stage end, and every `preview_every` steps in the stages that render
            # anyway (a preview in a landmark-only stage costs a whole extra render).
            every = config.preview_every
            renders = stage in ("full", "detail")
            want_preview = stage_step == steps or (renders and every > 0 and step % every == 0)
            optimizer.zero_grad()
            terms, composite = _step_losses(stage, params, ctx, tgt, config, want_preview)
            total = terms["total"]
            values = {k: float(v.detach()) for k, v in terms.items()}
            diverged = not math.isfinite(values["total"])
            if not diverged:
                if values["total"] < best_total:
                    best_total, best = values["total"], params.snapshot()
                total.backward()
                optimizer.step()
                params.project_constraints()
                diverged = not params.all_finite()
            history.append({"step": step, "stage": stage, **values})
            last_losses.update(values)
            preview = _to_uint8(composite) if want_preview and composite is not None else None
            message = f"{stage} {stage_step}/{steps}"
            if diverged:
                params.restore(best)
                warnings.append(f"stage {stage!r} diverged at step {stage_step} (non-finite loss or "
                                f"parameters); kept its best parameters (total {best_total:.4g}) and ended "
                                "the stage")
                message += " diverged: restored best parameters"
            yield FitEvent(stage, stage_index, len(stages), step, stage_step, values,
                           time.perf_counter() - start, preview, message)
            if diverged:
                break
        stage_seconds[stage] = time.perf_counter() - stage_start
    final = {k: v for k, v in last_losses.items() if k != "total"}
    final["total"] = last_losses.get("total", 0.0)
    result = _result(target, config, ctx, params, final, stage_seconds, warnings, history)
    yield FitEvent("done", len(stages), len(stages), step, 0, dict(final),
                   time.perf_counter() - start, result.render, "done", result)


@torch.no_grad()
def render_over_crop(params: FaceParameters, ctx: FitContext, target: FitTarget) -> np.ndarray:
    """The fitted face rendered at the crop's resolution, composited over it: (S, S, 3) uint8."""
    model = ctx.model
    vertices = params.to_camera_space(model(params.identity, params.expression))
    texture = params.texture(ctx.prior.decode(params.texture_latent))
    camera = params.camera(target.size, target.size)
    out = ctx.renderer.render(vertices, model.faces, model.uvs, model.uv_faces, texture, camera, params.sh)
    image = torch.tensor(target.image).to(ctx.device, torch.float32).div(255.0)[None]
    return _to_uint8(out.image + (1.0 - out.mask) * image)


@torch.no_grad()
def _result(target: FitTarget, config: FitConfig, ctx: FitContext, params: FaceParameters,
            losses: dict[str, float], stage_seconds: dict[str, float], warnings: list[str],
            history: list[dict]) -> FitResult:
    model = ctx.model
    vertices = model(params.identity, params.expression)[0]
    texture = params.texture(ctx.prior.decode(params.texture_latent))
    values = {name: p.detach().cpu()[0].tolist() for name, p in params.named_parameters()}
    values.pop("detail", None)  # a texture, saved as texture.png
    values.update(
        rotation_matrix=params.rotation_matrix()[0].cpu().tolist(),
        translation_mm=params.translation()[0].cpu().tolist(),
        focal_px=[float(params.focal()[0])],
        principal_px=params.principal[0].cpu().tolist(),
        expression_names=list(model.expression_names),
    )
    return FitResult(
        vertices=vertices.cpu().numpy().astype(np.float32),
        faces=model.faces.cpu().numpy(),
        uvs=model.uvs.cpu().numpy().astype(np.float32),
        uv_faces=model.uv_faces.cpu().numpy(),
        texture=_to_uint8(texture),
        params=values,
        losses=dict(losses),
        stage_seconds=dict(stage_seconds),
        warnings=list(warnings),
        render=render_over_crop(params, ctx, target),
        config=config.to_dict(),
        history=history,
        crop_to_photo=np.asarray(target.crop_to_photo),
        photo_size=target.photo_size,
        target_landmarks=np.asarray(target.landmarks),
    )
