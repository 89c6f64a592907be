"""The free-view identity term: its rig (face + eyeballs), loss, gradients and wiring in the fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ganfit_core.errors import FitError
from ganfit_core.fitting.config import FitConfig
from ganfit_core.fitting.context import needs_freeview, needs_identity
from ganfit_core.fitting.engine import build_context, fit, run_to_end
from ganfit_core.fitting.freeview import freeview_identity_loss, texture_with_eye_colours
from ganfit_core.synthetic import make_synthetic_face

SIZE = 128
QUICK = dict(render_size=SIZE, device="cpu", renderer="torch", texture_prior="simple", rigid_steps=5,
             shape_steps=5, full_steps=3, detail_steps=0, preview_every=100)


@pytest.fixture(scope="module")
def context(ict_model_path: Path, need_asset):  # noqa: ANN001, ANN201
    need_asset("faceapi_recognition")
    torch.set_num_threads(2)
    return build_context(FitConfig(**QUICK, freeview_identity_weight=0.3))


def test_needs_freeview_follows_weight_region_and_stages() -> None:
    assert needs_freeview(FitConfig())  # on by default
    assert not needs_freeview(FitConfig(freeview_identity_weight=0.0))
    assert needs_identity(FitConfig(identity_weight=0, content_weight=0, freeview_identity_weight=0.3))
    assert not needs_freeview(FitConfig(freeview_identity_weight=0.3, region="full"))  # has its own eyes
    assert not needs_freeview(FitConfig(freeview_identity_weight=0.3, full_steps=0, detail_steps=0))


def test_rig_appends_eye_triangles_after_the_face(context) -> None:  # noqa: ANN001
    rig, model = context.freeview, context.model
    assert rig is not None
    nf, nv = model.faces.shape[0], model.mean.shape[0]
    assert torch.equal(rig.faces[:nf], model.faces)
    eyes = rig.faces[nf:]
    assert eyes.numel() > 0 and int(eyes.min()) >= nv and int(eyes.max()) < nv + rig.eye_mean.shape[0]
    assert int(rig.uv_faces[nf:].min()) == model.uvs.shape[0]  # one UV per eye part, after the face's


def test_combined_texture_keeps_the_face_and_paints_the_eye_colours(context) -> None:  # noqa: ANN001
    rig = context.freeview
    texture = torch.rand(1, 32, 48, 3)
    uvs = torch.rand(10, 2)
    tex, all_uvs = texture_with_eye_colours(texture, uvs, rig.part_rgb)
    assert torch.equal(tex[:, :, :48], texture)
    # each eye part's UV samples its own colour in the band
    for i, rgb in enumerate(rig.part_rgb):
        u, v = all_uvs[10 + i]
        col = int(u * tex.shape[2])
        row = int((1 - v) * tex.shape[1])
        assert torch.allclose(tex[0, row, col], rgb)
    # the face UVs are squeezed into the original texture's columns
    assert torch.allclose(all_uvs[:10, 0] * tex.shape[2], uvs[:, 0] * 48, atol=1e-4)


def test_loss_is_finite_and_reaches_texture_and_shape(context) -> None:  # noqa: ANN001
    model, rig, net = context.model, context.freeview, context.identity_net
    identity = torch.zeros(1, 10, requires_grad=True)
    expression = torch.zeros(1, model.expression_basis.shape[0])
    texture = torch.full((1, 64, 64, 3), 0.6, requires_grad=True)
    sh = torch.zeros(1, 9, 3)
    sh[:, 0] = 3.0
    vertices = model(identity, expression)
    gen = torch.Generator().manual_seed(0)
    other = torch.nn.functional.normalize(torch.randn(1, 128, generator=gen), dim=-1)
    loss, view = freeview_identity_loss(rig, vertices, identity, expression, texture, model.uvs, sh,
                                        context.renderer, net, other, 30.0, 96)
    assert view.shape == (1, 96, 96, 3) and torch.isfinite(loss) and 0.0 <= float(loss.detach()) <= 2.0
    loss.backward()
    assert texture.grad is not None and float(texture.grad.abs().sum()) > 0
    assert identity.grad is not None and float(identity.grad.abs().sum()) > 0


def test_frontal_view_shows_the_eyeballs(context) -> None:  # noqa: ANN001
    """Without the eyeballs the sockets would show the grey background; with them, the iris is dark."""
    model, rig = context.model, context.freeview
    identity = torch.zeros(1, 10)
    expression = torch.zeros(1, model.expression_basis.shape[0])
    texture = torch.full((1, 64, 64, 3), 0.7)
    sh = torch.zeros(1, 9, 3)
    sh[:, 0] = 1.0 / 0.886227  # ambient shading 1
    _, view = freeview_identity_loss(rig, model(identity, expression), identity, expression, texture,
                                     model.uvs, sh, context.renderer, context.identity_net,
                                     torch.ones(1, 128), 0.0, 128)
    image = view[0].numpy()
    darkest = image.reshape(-1, 3).mean(1).min()
    assert darkest < 0.2  # pupils and irises; the face itself is 0.7 and the background 0.5


def test_fit_reports_the_term_only_when_weighted(context) -> None:  # noqa: ANN001
    face = make_synthetic_face(1, size=SIZE, model=context.model, renderer=context.renderer)
    on = run_to_end(fit(face.target, FitConfig(**QUICK, freeview_identity_weight=0.3), context=context))
    off = run_to_end(fit(face.target, FitConfig(**QUICK, freeview_identity_weight=0.0), context=context))
    full_on = [r.losses for r in on.history if r.stage == "full"]
    full_off = [r.losses for r in off.history if r.stage == "full"]
    assert full_on and all(np.isfinite(losses["freeview_identity"]) for losses in full_on)
    assert all("freeview_identity" not in losses for losses in full_off)


def test_context_without_rig_is_refused(ict_model_path: Path) -> None:
    plain = build_context(FitConfig(**QUICK, freeview_identity_weight=0.0))
    with pytest.raises(FitError, match="free-view"):
        plain.check(FitConfig(**QUICK, freeview_identity_weight=0.3))
