"""Synthetic ground-truth faces: ICT faces with known parameters rendered into an image.

Each face has random identity, expression, head pose, SH lighting and a texture from the
``simple`` prior with a random latent, rendered over a plain background with the torch
renderer. Landmarks are the exact projections of the model's landmark vertices, with the 17
contour landmarks on ICT's jawline vertices (the ones the fit's sliding jawline starts from).
Used by the tests and ``bench/fit.py``; not by the app.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ganfit_core.fitting.types import FitTarget
from ganfit_core.metrics import procrustes_error_mm, psnr

__all__ = ["SyntheticFace", "make_synthetic_face", "procrustes_error_mm", "psnr"]


@dataclass(frozen=True)
class SyntheticFace:
    """A rendered face and the parameters that made it.

    Attributes:
        target: the FitTarget (crop = whole image, exact landmarks).
        vertices: (V, 3) float32 mm, model space (identity + expression).
        identity: (K,), expression: (53,), rotation: (3,) axis-angle rad (relative to frontal),
        translation: (3,) mm, focal: px, sh: (9, 3), texture_latent: (L,).
        texture: (R, R, 3) float32 UV albedo in [0, 1].
        mask: (S, S) float32 rendered coverage.
    """

    target: FitTarget
    vertices: np.ndarray
    identity: np.ndarray
    expression: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    focal: float
    sh: np.ndarray
    texture_latent: np.ndarray
    texture: np.ndarray
    mask: np.ndarray


@torch.no_grad()
def make_synthetic_face(
    seed: int,
    *,
    size: int = 128,
    num_identity: int = 100,
    identity_scale: float = 1.0,
    expression_scale: float = 0.25,
    max_yaw_deg: float = 20.0,
    max_pitch_deg: float = 10.0,
    fov_deg: float = 30.0,
    texture_scale: float = 0.6,
    background: tuple[float, float, float] = (0.35, 0.4, 0.45),
    model: torch.nn.Module | None = None,
    renderer: object | None = None,
) -> SyntheticFace:
    """Render one random face (deterministic in ``seed``) at ``size`` x ``size`` pixels.

    The face fills about 60 % of the image width. Expression weights: a few random blendshapes
    at up to ``expression_scale``. Lighting: ambient 0.9 plus a random directional part.
    """
    from ganfit_core.model.morphable import load_morphable_model
    from ganfit_core.render.camera import FRONTAL_ROTATION, PinholeCamera, axis_angle_to_matrix, project
    from ganfit_core.render.renderer import make_renderer
    from ganfit_core.texture.simple import SimpleTexturePrior

    gen = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.rand(*shape, generator=gen)  # noqa: E731
    model = model if model is not None else load_morphable_model("face")
    model = model.cpu()
    renderer = renderer if renderer is not None else make_renderer("torch", device="cpu")
    identity = torch.zeros(1, model.num_identity)
    identity[:, :num_identity] = torch.randn(1, num_identity, generator=gen) * identity_scale
    expression = torch.zeros(1, model.num_expression)
    active = torch.randperm(model.num_expression, generator=gen)[:6]
    expression[0, active] = rand(6) * expression_scale
    yaw, pitch, roll = ((rand(3) * 2 - 1) * torch.tensor([max_yaw_deg, max_pitch_deg, 5.0])).tolist()
    rotation = torch.tensor([[math.radians(pitch), math.radians(yaw), math.radians(roll)]])
    focal = 0.5 * size / math.tan(math.radians(fov_deg) / 2)
    vertices = model(identity, expression)
    width_mm = float(vertices[0, :, 0].max() - vertices[0, :, 0].min())
    depth = focal * width_mm / (0.6 * size)
    offset = (rand(2) * 2 - 1) * 0.04 * size
    translation = torch.tensor([[float(offset[0]) * depth / focal, float(offset[1]) * depth / focal, depth]])
    R = FRONTAL_ROTATION @ axis_angle_to_matrix(rotation)
    cam_vertices = vertices @ R.transpose(1, 2) + translation[:, None]
    camera = PinholeCamera(torch.tensor([focal]), torch.tensor([[size / 2, size / 2]]), size, size)
    prior = SimpleTexturePrior()
    # Mostly brightness variation (shared by R, G, B) plus a little colour variation.
    cells = prior.latent_size // 3
    shared = torch.randn(1, 1, cells, generator=gen).expand(1, 3, cells)
    colour = torch.randn(1, 3, cells, generator=gen) * 0.3
    latent = ((shared + colour) * texture_scale).reshape(1, -1)
    texture = prior.decode(latent)
    sh = torch.zeros(1, 9, 3)
    from ganfit_core.render.lighting import ambient_sh

    sh += ambient_sh(1, 0.9)
    sh[:, 1:4, :] += ((rand(3) * 2 - 1) * 0.25)[None, :, None]
    sh[:, 0, :] *= 1 + (rand(3) * 2 - 1) * 0.1
    out = renderer.render(cam_vertices, model.faces, model.uvs, model.uv_faces, texture, camera, sh)
    back = torch.tensor(background).view(1, 1, 1, 3)
    image = out.image + (1 - out.mask) * back
    landmarks = project(cam_vertices[:, model.default_landmark_vertices()], camera)[0]
    image_u8 = (image[0].clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    target = FitTarget.from_crop(image_u8, landmarks.numpy())
    return SyntheticFace(
        target=target,
        vertices=vertices[0].numpy(),
        identity=identity[0].numpy(),
        expression=expression[0].numpy(),
        rotation=rotation[0].numpy(),
        translation=translation[0].numpy(),
        focal=float(focal),
        sh=sh[0].numpy(),
        texture_latent=latent[0].numpy(),
        texture=texture[0].numpy(),
        mask=out.mask[0, :, :, 0].numpy(),
    )
