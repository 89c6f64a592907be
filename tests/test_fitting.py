"""The fit on synthetic faces with known ground truth: accuracy, events, cancel, divergence, determinism.

CPU, 128 x 128 renders, few iterations (a couple of minutes in all on 2 cores).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from ganfit_core.errors import ConfigError, DeviceUnavailableError, FitCancelled, FitError
from ganfit_core.fitting.config import FitConfig
from ganfit_core.fitting.context import needs_identity, resolve_device
from ganfit_core.fitting.engine import FitContext, FitRun, build_context, fit, run_to_end
from ganfit_core.fitting.types import FitEvent, FitResult
from ganfit_core.synthetic import make_synthetic_face, procrustes_error_mm, psnr

SIZE = 128
NARROW_FACE = 6706  # ICT's front-of-face vertices (the part photos and landmarks constrain)
# The synthetic faces are textured by the "simple" prior, so the ground-truth tests fit with it too
# (the default prior, PCA, is exercised by tests/test_texture_pca.py and the app tests).
PRIOR = "simple"
QUICK = FitConfig(render_size=SIZE, device="cpu", renderer="torch", texture_prior=PRIOR,
                  rigid_steps=15, shape_steps=15,
                  full_steps=3, detail_steps=0, identity_weight=0.0, content_weight=0.0, preview_every=2)


@pytest.fixture(scope="module")
def context(ict_model_path: Path, need_asset) -> FitContext:
    """Model, simple prior, torch renderer and the identity network (fails in CI if an asset is missing)."""
    need_asset("faceapi_recognition")
    torch.set_num_threads(2)
    return build_context(FitConfig(render_size=SIZE, device="cpu", renderer="torch", texture_prior=PRIOR))


@pytest.fixture(scope="module")
def face(context: FitContext):  # noqa: ANN201
    return make_synthetic_face(2, size=SIZE, model=context.model, renderer=context.renderer,
                               identity_scale=1.5)


@pytest.fixture(scope="module")
def events(context: FitContext, face) -> list[FitEvent]:  # noqa: ANN001
    # In-model face, exact landmarks: a weak identity prior is right here (the default's stronger
    # one is chosen for real detector landmarks by bench/shape.py).
    config = FitConfig(render_size=SIZE, device="cpu", renderer="torch", texture_prior=PRIOR,
                       rigid_steps=30, shape_steps=60, identity_reg_weight=0.003,
                       full_steps=20, detail_steps=4, preview_every=5)
    return list(fit(face.target, config, context=context))


def test_event_stream(events: list[FitEvent]) -> None:
    stages = [e.stage for e in events]
    order = list(dict.fromkeys(stages))
    assert order == ["rigid", "shape", "full", "detail", "done"]
    assert [e.step for e in events[:-1]] == list(range(1, len(events)))
    assert all(e.num_stages == 4 for e in events)
    assert [e.stage_index for e in events] == sorted(e.stage_index for e in events)
    for e in events:
        assert "total" in e.losses and all(math.isfinite(v) for v in e.losses.values())
    for e in events[:-1]:
        terms = sum(v for k, v in e.losses.items() if k != "total")
        assert math.isclose(terms, e.losses["total"], rel_tol=1e-4)
    assert all(b.elapsed_s >= a.elapsed_s for a, b in zip(events, events[1:], strict=False))
    previews = [e.preview for e in events if e.preview is not None]
    assert len(previews) >= 4
    assert all(p.shape == (SIZE, SIZE, 3) and p.dtype == np.uint8 for p in previews)
    assert events[-1].result is not None and all(e.result is None for e in events[:-1])
    assert "pixel" in events[-2].losses and "identity" in events[-2].losses


def test_losses_decrease(events: list[FitEvent]) -> None:
    # The default start is the best of the camera hypotheses (landmark fit already solved), so
    # the landmark stages only refine it (Adam's first steps may leave that optimum a little; the
    # landmark stages end at their best step); the full stage still has its photometric work to do,
    # though its texture now starts from the prior fitted to the photo's visible skin, so it starts
    # lower than from the prior's mean (its pixel and identity terms are checked below).
    for stage, factor in (("rigid", 1.15), ("shape", 1.0), ("full", 0.8)):
        totals = [e.losses["total"] for e in events if e.stage == stage]
        assert totals[-1] < factor * totals[0], (stage, totals[0], totals[-1])
    full = [e.losses for e in events if e.stage == "full"]
    assert full[-1]["pixel"] < 0.6 * full[0]["pixel"]
    assert full[-1]["identity"] < 0.5 * full[0]["identity"]
    # the photometric stages keep the landmark fit the search and the landmark stages found
    rigid_first = next(e for e in events if e.stage == "rigid").losses["landmark"]
    assert next(e for e in reversed(events) if e.stage == "full").losses["landmark"] < 1.5 * rigid_first


def test_searched_start_beats_the_closed_form_start(context: FitContext, face, events) -> None:  # noqa: ANN001
    """The hypothesis search starts the fit below where the old closed-form start ends its rigid stage."""
    closed = FitConfig(render_size=SIZE, device="cpu", renderer="torch", texture_prior=PRIOR, rigid_steps=30,
                       shape_steps=0, full_steps=0, detail_steps=0, focal_hypotheses=0)
    old = [e.losses["landmark"] for e in fit(face.target, closed, context=context) if e.stage == "rigid"]
    assert old[-1] < 0.2 * old[0]  # the old rigid stage does converge from its start...
    searched = next(e for e in events if e.stage == "rigid").losses["landmark"]
    assert searched < old[-1]  # ...but the searched start is better still
    assert events[-1].result.camera.focal_source == "search"



def test_shape_recovered_better_than_mean_face(events: list[FitEvent], face, context: FitContext) -> None:  # noqa: ANN001
    result = events[-1].result
    assert result.vertices.shape == face.vertices.shape
    error = procrustes_error_mm(result.vertices[:NARROW_FACE], face.vertices[:NARROW_FACE])
    mean_error = procrustes_error_mm(context.model.mean.numpy()[:NARROW_FACE], face.vertices[:NARROW_FACE])
    assert error < 3.0, f"vertex error {error:.2f} mm"
    assert error < 0.8 * mean_error, f"fit {error:.2f} mm vs mean face {mean_error:.2f} mm"


def test_rendering_matches_target(events: list[FitEvent], face) -> None:  # noqa: ANN001
    result = events[-1].result
    assert result.render.shape == face.target.image.shape
    value = psnr(result.render, face.target.image, face.target.face_mask)
    assert value > 28.0, f"PSNR {value:.1f} dB inside the face mask"
    assert result.texture.dtype == np.uint8 and result.texture.shape[2] == 3
    assert set(result.stage_seconds) == {"start", "rigid", "shape", "full", "detail"}
    assert not result.warnings
    assert np.abs(result.pose.rotation - face.rotation).max() < math.radians(5)


def test_result_parts_are_typed(events: list[FitEvent], context: FitContext) -> None:
    result = events[-1].result
    k, m = result.config.num_identity, context.model.num_expression
    assert isinstance(result.config, FitConfig) and result.region == "face"
    assert result.face.identity.shape == (k,) and result.face.expression.shape == (m,)
    assert len(result.face.expression_names) == m and result.face.sh.shape == (9, 3)
    detail_side = result.config.detail_resolution
    assert result.face.detail is not None and result.face.detail.shape == (detail_side, detail_side, 3)
    assert ((result.face.expression >= 0) & (result.face.expression <= 1)).all()
    cam = result.camera
    assert cam.rotation.shape == (3, 3) and np.allclose(cam.rotation @ cam.rotation.T, np.eye(3), atol=1e-5)
    assert cam.translation.shape == (3,) and cam.translation[2] > 100  # mm in front of the camera
    assert cam.principal.shape == (2,) and cam.focal > 0 and cam.image_size == (SIZE, SIZE)
    assert [r.step for r in result.history] == [e.step for e in events[:-1]]
    assert all(r.losses == e.losses and r.stage == e.stage
               for r, e in zip(result.history, events, strict=False))


def test_cancel_raises(context: FitContext, face) -> None:  # noqa: ANN001
    cancel = threading.Event()
    seen = []
    with pytest.raises(FitCancelled):
        for event in fit(face.target, QUICK, cancel=cancel, context=context):
            seen.append(event.step)
            if event.step == 3:
                cancel.set()
    assert seen == [1, 2, 3]


def test_divergence_keeps_best_parameters(context: FitContext, face, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    import ganfit_core.fitting.objective as objective

    calls = {"n": 0}
    original = objective.L.landmark_loss

    def flaky(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        value = original(*args, **kwargs)
        return value * float("nan") if calls["n"] == 8 else value

    monkeypatch.setattr(objective.L, "landmark_loss", flaky)
    events = list(fit(face.target, QUICK, context=context))
    result = events[-1].result
    assert any("diverged" in w and "rigid" in w for w in result.warnings)
    rigid = [e for e in events if e.stage == "rigid"]
    assert len(rigid) == 8 and "diverged" in rigid[-1].message  # the stage ended early
    assert [e.stage for e in events[-1:]] == ["done"] and "shape" in {e.stage for e in events}
    assert np.isfinite(result.vertices).all()
    parts = (result.face.identity, result.face.expression, result.face.sh, result.face.texture_latent,
             result.camera.rotation, result.camera.translation, result.pose.rotation)
    assert all(np.isfinite(p).all() for p in parts)


def test_absurd_learning_rate_is_refused() -> None:
    with pytest.raises(ConfigError, match="lr_depth"):
        QUICK.replace(lr_depth=1e6)


def test_largest_accepted_learning_rates_are_survived(context: FitContext, face) -> None:  # noqa: ANN001
    config = QUICK.replace(lr_depth=1.0, lr_rotation=1.0, lr_translation=10.0, lr_focal=1.0, full_steps=0)
    result = run_to_end(fit(face.target, config, context=context))
    assert np.isfinite(result.vertices).all()
    assert np.isfinite(result.camera.translation).all()


def _result_bytes(result: FitResult) -> list[bytes]:
    arrays = (result.vertices, result.texture, result.render, result.face.identity, result.face.expression,
              result.face.sh, result.face.texture_latent, result.camera.rotation, result.camera.translation,
              result.camera.principal, result.pose.rotation, result.pose.translation_xy)
    return [a.tobytes() for a in arrays]


def test_same_seed_same_result(context: FitContext, face) -> None:  # noqa: ANN001
    config = QUICK.replace(render_size=64, full_steps=2)
    a = run_to_end(fit(face.target, config, context=context))
    torch.rand(5)  # the caller's use of the global generator in between changes nothing
    b = run_to_end(fit(face.target, config, context=context))
    assert _result_bytes(a) == _result_bytes(b)
    assert (a.camera.focal, a.pose.log_depth, a.pose.log_focal) == (b.camera.focal, b.pose.log_depth,
                                                                    b.pose.log_focal)
    assert a.losses == b.losses and [r.losses for r in a.history] == [r.losses for r in b.history]


def test_fit_leaves_the_global_generator_alone(context: FitContext, face) -> None:  # noqa: ANN001
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    run_to_end(fit(face.target, QUICK.replace(render_size=64, full_steps=1, seed=7), context=context))
    assert torch.equal(torch.get_rng_state(), before)  # fit() neither reseeds nor draws from it


def test_run_to_end_and_fit_run() -> None:
    with pytest.raises(FitError, match="without a result"):
        run_to_end(iter(()))
    progress = FitEvent("rigid", 0, 1, 1, 1, {"total": 1.0}, 0.0)
    seen: list[int] = []
    with pytest.raises(FitError):
        run_to_end([progress, progress], lambda e: seen.append(e.step))
    assert seen == [1, 1]
    run = FitRun([progress])
    with pytest.raises(FitError):
        list(run)
    assert run.result is None


def test_context_check_refuses_another_config(context: FitContext) -> None:
    base = FitConfig(render_size=SIZE, device="cpu", renderer="torch", texture_prior=PRIOR)
    context.check(base)  # what it was built for
    context.check(base.replace(full_steps=3, render_size=64))  # steps and sizes do not matter
    with pytest.raises(FitError, match="build_context"):
        context.check(base.replace(texture_prior="pca"))
    with pytest.raises(FitError, match="build_context"):
        context.check(base.replace(region="narrow_face"))
    no_id = FitContext(context.device, context.model, context.prior, context.renderer, None, context.sparse,
                       context.key, context.dense, context.dense_weights, context.freeview)
    no_id.check(base.replace(identity_weight=0.0, content_weight=0.0, freeview_identity_weight=0.0))
    no_dense = FitContext(context.device, context.model, context.prior, context.renderer,
                          context.identity_net, context.sparse, context.key, freeview=context.freeview)
    no_dense.check(base.replace(dense_weight=0.0))
    with pytest.raises(FitError, match="dense landmark model"):
        no_dense.check(base)
    assert needs_identity(base) and not needs_identity(base.replace(full_steps=0, detail_steps=0))
    with pytest.raises(FitError, match="without the identity network"):
        no_id.check(base)


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
    else:
        with pytest.raises(DeviceUnavailableError, match="CUDA is not available"):
            resolve_device("cuda")
        with pytest.raises(ConfigError):  # a user's setting, so a user-facing error
            resolve_device("cuda:0")
