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

from ganfit_core.fit_config import FitConfig
from ganfit_core.fit_types import FitCancelled, FitEvent
from ganfit_core.fitting import FitContext, build_context, fit
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
    config = FitConfig(render_size=SIZE, device="cpu", renderer="torch", texture_prior=PRIOR,
                       rigid_steps=30, shape_steps=60,
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
    for stage, factor in (("rigid", 0.2), ("shape", 0.2), ("full", 0.7)):
        totals = [e.losses["total"] for e in events if e.stage == stage]
        assert totals[-1] < factor * totals[0], (stage, totals[0], totals[-1])
    full = [e.losses for e in events if e.stage == "full"]
    assert full[-1]["pixel"] < 0.6 * full[0]["pixel"]
    assert full[-1]["identity"] < 0.5 * full[0]["identity"]
    rigid_first = next(e for e in events if e.stage == "rigid").losses["landmark"]
    assert events[-1].losses["total"] < events[0].losses["total"]
    assert next(e for e in reversed(events) if e.stage == "full").losses["landmark"] < 0.1 * rigid_first


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
    assert set(result.stage_seconds) == {"rigid", "shape", "full", "detail"}
    assert not result.warnings
    rotation = np.asarray(result.params["rotation"])
    assert np.abs(rotation - face.rotation).max() < math.radians(5)


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
    import ganfit_core.fitting as fitting

    calls = {"n": 0}
    original = fitting.L.landmark_loss

    def flaky(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        value = original(*args, **kwargs)
        return value * float("nan") if calls["n"] == 8 else value

    monkeypatch.setattr(fitting.L, "landmark_loss", flaky)
    events = list(fit(face.target, QUICK, context=context))
    result = events[-1].result
    assert any("diverged" in w and "rigid" in w for w in result.warnings)
    rigid = [e for e in events if e.stage == "rigid"]
    assert len(rigid) == 8 and "diverged" in rigid[-1].message  # the stage ended early
    assert [e.stage for e in events[-1:]] == ["done"] and "shape" in {e.stage for e in events}
    assert np.isfinite(result.vertices).all()
    assert all(np.isfinite(np.asarray(v, dtype=float)).all() for k, v in result.params.items()
               if k != "expression_names")


def test_absurd_learning_rate_is_survived(context: FitContext, face) -> None:  # noqa: ANN001
    config = QUICK.replace(lr_depth=1e6, lr_rotation=1e6, full_steps=0)
    result = list(fit(face.target, config, context=context))[-1].result
    assert np.isfinite(result.vertices).all()
    assert np.isfinite(result.params["translation_mm"]).all()


def test_same_seed_same_result(context: FitContext, face) -> None:  # noqa: ANN001
    config = QUICK.replace(render_size=64, full_steps=2)
    a = list(fit(face.target, config, context=context))[-1].result
    b = list(fit(face.target, config, context=context))[-1].result
    assert np.array_equal(a.vertices, b.vertices)
    assert np.array_equal(a.texture, b.texture)
    assert a.losses == b.losses
