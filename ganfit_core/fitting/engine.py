"""GANFIT fitting: optimise shape, expression, pose, camera, lighting and texture against a photo.

:func:`fit` runs up to four stages with Adam (see :class:`~ganfit_core.fitting.config.FitConfig`):

1. ``rigid``  — rotation, translation and focal length from the landmarks.
2. ``shape``  — identity and expression from the landmarks (+ regularisers); pose keeps adapting.
3. ``full``   — everything: texture latent, SH lighting, shape and pose, with the masked pixel,
   identity (1 - cos of recogniser embeddings), content, landmark and regulariser losses.
4. ``detail`` — optional: a per-texel UV residual on top of the prior's texture (pixel loss +
   smoothness + left/right symmetry).

It is a generator of :class:`~ganfit_core.fitting.types.FitEvent` (one per step; the last one has
``stage == "done"`` and the :class:`~ganfit_core.fitting.types.FitResult`). Cancellation: when the
``cancel`` event is set, the next step raises :class:`~ganfit_core.fitting.types.FitCancelled`.
Divergence (a non-finite loss or parameter): the stage's best parameters are restored, the stage
ends early and a warning is added to the result.

Determinism: the fit draws no random numbers and never touches the global RNG (``torch.manual_seed``
is not called: a caller's generator state is left as it was); the same target, config and device give
the same result bytes. ``FitConfig.seed`` is kept for components that need randomness: they must draw
from ``torch.Generator().manual_seed(config.seed)``, never from the global generator.

:func:`run_to_end` drives the generator to its result (the API, CLI, app, dataset and benches use it).
The stage objective is in :mod:`ganfit_core.fitting.objective`, the start pose in
:mod:`ganfit_core.fitting.init`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from ganfit_core.errors import FitCancelled, FitError
from ganfit_core.fitting.config import FitConfig
from ganfit_core.fitting.context import FitContext, build_context, resolve_device
from ganfit_core.fitting.freeview import iris_albedo
from ganfit_core.fitting.init import StartInfo, initial_state
from ganfit_core.fitting.objective import LANDMARK_SCALE, projected_landmarks, step_losses
from ganfit_core.fitting.optim import stage_optimizer
from ganfit_core.fitting.params import FaceParameters
from ganfit_core.fitting.photo_texture import (
    detail_skin_mask,
    initial_detail,
    initial_texture_latent,
    unwrap_views,
)
from ganfit_core.fitting.quality import FitQuality, assess_fit
from ganfit_core.fitting.target import TargetTensors, stack_target_tensors, target_tensors
from ganfit_core.fitting.types import (
    FitEvent,
    FitResult,
    FitTarget,
    FittedCamera,
    FittedFace,
    PoseParameters,
    StepRecord,
)
from ganfit_core.model.layout import JAW_CENTRES

__all__ = ["fit", "run_to_end", "FitRun", "render_over_crop", "resolve_device", "FitContext", "build_context",
           "JAW_CENTRES", "LANDMARK_SCALE"]


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """(1, H, W, 3) [0, 1] -> (H, W, 3) uint8."""
    return (image[0].detach().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()


def fit(
    target: FitTarget | Sequence[FitTarget],
    config: FitConfig | None = None,
    *,
    cancel: threading.Event | None = None,
    context: FitContext | None = None,
) -> Iterator[FitEvent]:
    """Fit the morphable model and texture prior to ``target``; yields a FitEvent after every step.

    Args:
        target: the crop and landmarks (see :func:`ganfit_core.fitting.target.prepare_target`), or
            several photos of one person (all prepared at the same resolution): one identity and
            one albedo (texture latent and detail layer) are fitted to all of them, pose, camera,
            expression and light per photo; each loss term is the mean over the photos. The result
            is the first photo's, the others' in ``result.other_views``. One photo (or a list of
            one) runs exactly the single-photo fit.
        config: settings (default ``FitConfig()``).
        cancel: when set, the next step raises :class:`FitCancelled`.
        context: prebuilt components (:func:`build_context`) to skip loading them again; it must
            have been built for the same region, texture prior, device and renderer.

    Raises:
        FitCancelled: ``cancel`` was set.
        DeviceUnavailableError: the device is unavailable (a ConfigError).
        FitError: the context does not match the config.
    """
    config = config or FitConfig()
    start = time.perf_counter()
    ctx = context or build_context(config)
    ctx.check(config)
    views = _views(target)
    per_view = [target_tensors(v, config, ctx.device, ctx.identity_net) for v in views]
    tgt = stack_target_tensors(per_view) if len(views) > 1 else per_view[0]
    start_s = time.perf_counter()
    params, start_infos = initial_state(views, config, ctx)
    start_s = time.perf_counter() - start_s
    stages = config.stages
    warnings: list[str] = []
    history: list[StepRecord] = []
    stage_seconds: dict[str, float] = {"start": start_s}  # start pose + camera search
    step = 0
    last_losses: dict[str, float] = {}  # last value of every term seen (terms of earlier stages too)
    for stage_index, (stage, steps) in enumerate(stages):
        stage_start = time.perf_counter()
        if stage == "full" and config.texture_init_from_photo > 0:
            latent, warning = initial_texture_latent(params, ctx, tgt)
            if latent is not None:
                with torch.no_grad():
                    params.texture_latent.copy_(config.texture_init_from_photo * latent)
            if warning is not None:
                warnings.append(warning)
        if stage == "detail" and params.detail.shape[1] > 0:
            try:  # once, for the mask and the start
                unwrapped = unwrap_views(params, ctx, tgt, params.detail.shape[1])
            except ValueError as exc:
                unwrapped = None
                warnings.append(f"detail stage: the photo could not be unwrapped ({exc}); the detail layer "
                                "starts from zero and is not restricted to skin")
            if unwrapped is not None:
                mask, warning = detail_skin_mask(params, unwrapped, config)
                if mask is not None:
                    params.set_detail_mask(mask)
                if config.detail_init_from_photo > 0:
                    detail = initial_detail(params, ctx, unwrapped)
                    if detail is not None:
                        with torch.no_grad():
                            params.detail.copy_(config.detail_init_from_photo * detail)
                if warning is not None:
                    warnings.append(warning)
        # After a hypothesis search the rigid problem is solved already: the rigid stage only
        # refines it (and frees the focal length), at the refine rate, so Adam's first full-size
        # steps do not throw the pose off its optimum.
        searched = stage == "rigid" and any(info.hypotheses > 0 for info in start_infos)
        optimizer = stage_optimizer(stage, params, config,
                                    lr_scale=config.refine_lr_scale if searched else 1.0)
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
            terms, composite = step_losses(stage, params, ctx, tgt, config, want_preview, stage_step)
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
            history.append(StepRecord(step, stage, dict(values)))
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
        if stage in ("rigid", "shape") and best_total < last_losses.get("total", math.inf):
            params.restore(best)  # landmark stages end at their best step (Adam may wander off it)
        stage_seconds[stage] = time.perf_counter() - stage_start
    final = {k: v for k, v in last_losses.items() if k != "total"}
    final["total"] = last_losses.get("total", 0.0)
    quality = _assess(params, ctx, tgt, views[0], config, diverged=any("diverged" in w for w in warnings))
    if quality.status == "doubtful":
        warnings.append(quality.message)
    others = tuple(_result(view, config, ctx, params, final, stage_seconds, warnings, history, index=i,
                           start_info=start_infos[i], iris_rgb=per_view[i].iris_rgb)
                   for i, view in enumerate(views) if i > 0)
    result = _result(views[0], config, ctx, params, final, stage_seconds, warnings, history, quality=quality,
                     others=others, start_info=start_infos[0], iris_rgb=per_view[0].iris_rgb)
    message = "done" if quality.status != "failed" else quality.message
    yield FitEvent("done", len(stages), len(stages), step, 0, dict(final),
                   time.perf_counter() - start, result.render, message, result)


@torch.no_grad()
def _assess(params: FaceParameters, ctx: FitContext, tgt: TargetTensors, target: FitTarget,
            config: FitConfig, *, diverged: bool) -> FitQuality:
    """The fit-quality verdict from the final landmark residual and the detection's evidence."""
    camera = params.camera(tgt.size, tgt.size, scale=tgt.scale)
    sparse_cam = params.to_camera_space(ctx.sparse(params.identity_rows(), params.expression))
    fitted = projected_landmarks(sparse_cam, camera, tgt, config)[0].cpu().double().numpy()
    return assess_fit(fitted, tgt.landmarks[0].cpu().double().numpy(), diverged=diverged,
                      detection_score=target.detection_score,
                      landmark_consistency=target.landmark_consistency)


class FitRun:
    """A fit's progress events, then its result: ``for event in run: ...`` then ``run.result``.

    Iterating yields every event before the last; the last one's :class:`FitResult` becomes
    ``run.result``. Events that end without a result raise FitError at the end of the iteration.
    (FitCancelled and the fit's own errors propagate.) Front ends that stream progress (the app) use
    this; the others use :func:`run_to_end`.
    """

    def __init__(self, events: Iterable[FitEvent]) -> None:
        self._events = events
        self.result: FitResult | None = None

    def __iter__(self) -> Iterator[FitEvent]:
        for event in self._events:
            if event.result is not None:
                self.result = event.result
                return
            yield event
        raise FitError("the fit ended without a result")


def run_to_end(events: Iterable[FitEvent], on_event: Callable[[FitEvent], None] | None = None) -> FitResult:
    """Drive a :func:`fit` generator to its end and return its :class:`FitResult`.

    Args:
        events: the generator (or any iterable of FitEvent).
        on_event: called with every event before the last (progress bars, timings).

    Raises:
        FitError: the events ended without a result. (FitCancelled and the fit's own errors propagate.)
    """
    run = FitRun(events)
    for event in run:
        if on_event is not None:
            on_event(event)
    assert run.result is not None  # FitRun raised otherwise
    return run.result


def _views(target: FitTarget | Sequence[FitTarget]) -> list[FitTarget]:
    views = [target] if isinstance(target, FitTarget) else list(target)
    if not views or not all(isinstance(v, FitTarget) for v in views):
        raise FitError("fit: expected a FitTarget or a non-empty sequence of them (prepare_target)")
    sizes = {v.size for v in views}
    if len(sizes) > 1:
        raise FitError(f"fit: the photos' crops differ in size ({sorted(sizes)} px): prepare them with the "
                       "same resolution")
    return views


@torch.no_grad()
def render_over_crop(params: FaceParameters, ctx: FitContext, target: FitTarget, *,
                     index: int = 0) -> np.ndarray:
    """The fitted face (view ``index``) rendered at the crop's resolution, composited over it:
    (S, S, 3) uint8."""
    model = ctx.model
    vertices = params.to_camera_space(model(params.identity_rows(), params.expression))
    texture = params.texture(ctx.prior.decode(params.texture_latent))
    camera = params.camera(target.size, target.size)
    out = ctx.renderer.render(vertices, model.faces, model.uvs, model.uv_faces, texture, camera, params.sh)
    image = torch.tensor(target.image).to(ctx.device, torch.float32).div(255.0)[None]
    return _to_uint8((out.image + (1.0 - out.mask) * image)[index:index + 1])


def _photo_fov_deg(focal_crop_px: float, target: FitTarget) -> float:
    """Field of view (degrees) across the photo's longer side for a focal length in crop px."""
    px_per_crop = math.sqrt(abs(float(np.linalg.det(np.asarray(target.crop_to_photo)[:2, :2])))) or 1.0
    side = max(target.photo_size) / px_per_crop
    return math.degrees(2.0 * math.atan(0.5 * side / max(focal_crop_px, 1e-6)))


def _row(tensor: torch.Tensor, index: int = 0) -> np.ndarray:
    """Batch row ``index`` (row 0 of a shared, one-row tensor) as float32 NumPy."""
    tensor = tensor.detach()
    return tensor[index if tensor.shape[0] > 1 else 0].cpu().numpy().astype(np.float32)


@torch.no_grad()
def _result(target: FitTarget, config: FitConfig, ctx: FitContext, params: FaceParameters,
            losses: dict[str, float], stage_seconds: dict[str, float], warnings: list[str],
            history: list[StepRecord], *, index: int = 0, others: tuple[FitResult, ...] = (),
            quality: FitQuality | None = None, start_info: StartInfo | None = None,
            iris_rgb: torch.Tensor | None = None) -> FitResult:
    """The result of view ``index`` (``target`` is that view's photo, ``iris_rgb`` (1, 3) its iris
    colour, ``TargetTensors.iris_rgb``); the quality verdict is the first photo's (None on the others)."""
    model = ctx.model
    i = index
    vertices = model(params.identity_rows(), params.expression)[i]
    texture = params.texture(ctx.prior.decode(params.texture_latent))[i:i + 1]
    detail = params.detail if params.detail.shape[1] > 0 else None
    sh = params.sh[i:i + 1] if params.sh.shape[0] > 1 else params.sh[:1]
    iris = None if iris_rgb is None else tuple(float(c) for c in iris_albedo(iris_rgb, sh)[0])
    face = FittedFace(
        identity=_row(params.identity, i), expression=_row(params.expression, i),
        expression_names=tuple(model.expression_names), texture_latent=_row(params.texture_latent, i),
        detail=None if detail is None else _row(detail, i), sh=_row(params.sh, i),
        iris_rgb=iris)
    camera = FittedCamera(
        rotation=_row(params.rotation_matrix(), i), translation=_row(params.translation(), i),
        focal=float(params.focal()[i]), principal=_row(params.principal, i),
        image_size=(target.size, target.size),
        focal_source=start_info.focal_source if start_info is not None else "assumed",
        fov_deg=_photo_fov_deg(float(params.focal()[i]), target))
    pose = PoseParameters(rotation=_row(params.rotation, i), translation_xy=_row(params.translation_xy, i),
                          log_depth=float(params.log_depth[i, 0]), log_focal=float(params.log_focal[i, 0]))
    return FitResult(
        vertices=vertices.cpu().numpy().astype(np.float32),
        faces=model.faces.cpu().numpy(),
        uvs=model.uvs.cpu().numpy().astype(np.float32),
        uv_faces=model.uv_faces.cpu().numpy(),
        texture=_to_uint8(texture),
        face=face,
        camera=camera,
        pose=pose,
        region=config.region,
        losses=dict(losses),
        stage_seconds=dict(stage_seconds),
        warnings=tuple(warnings),
        render=render_over_crop(params, ctx, target, index=i),
        config=config,
        history=tuple(history),
        crop_to_photo=np.asarray(target.crop_to_photo),
        photo_size=target.photo_size,
        target_landmarks=np.asarray(target.landmarks),
        other_views=others,
        quality=quality,
    )
