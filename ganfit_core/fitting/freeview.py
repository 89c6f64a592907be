"""Free-view identity: the fitted face, seen from other angles under neutral light, must still be the
person.

The photo's own view is not enough: there the rendering is composited over the photo, and the detail
stage can copy the photo, so in-view identity says little about how the face looks once turned. This
term renders the current face (albedo texture, the eyeballs as the exported GLB shows them, ambient
light at the fitted exposure) from a virtual frontal camera with the head turned ``yaw`` about its
centre, and asks the recogniser for the photo's embedding there: ``1 - cos``. One view per step,
cycling frontal, +yaw, -yaw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ganfit_core.fitting.losses import identity_loss, lowpass_gradient

__all__ = ["FreeViewRig", "build_freeview_rig", "freeview_identity_loss", "iris_albedo", "eye_triangles",
           "texture_with_eye_colours", "VIEW_DISTANCE_MM"]

VIEW_DISTANCE_MM = 1500.0  # virtual camera distance; the face (~260 mm tall) fills 80 % of the view
_FACE_HEIGHT_MM = 260.0
_BACKGROUND = 0.5  # mid grey behind the face
_EYE_BAND = 8  # texels of the eye parts' flat colours appended to the texture's right


@dataclass(frozen=True)
class FreeViewRig:
    """What the free views need besides the parameters (built once per context).

    Attributes:
        eye_mean: (Ve, 3) mm; eye_identity: (K, Ve, 3) mm; eye_expression: (M, Ve, 3) mm.
        faces: (F + Fe, 3) int64 face then eye triangles (eyes index after the face's vertices).
        uv_faces: (F + Fe, 3) int64 into the combined UVs (face UVs, then one UV per eye part).
        part_rgb: (P, 3) flat colours of the eye parts (``EyeMeshes.parts()`` order), [0, 1].
        iris_part: index of the iris among the parts.
        landmarks: (68,) int64 landmark vertices of the face mesh.
    """

    eye_mean: torch.Tensor
    eye_identity: torch.Tensor
    eye_expression: torch.Tensor
    faces: torch.Tensor
    uv_faces: torch.Tensor
    part_rgb: torch.Tensor
    iris_part: int
    landmarks: torch.Tensor


def eye_triangles(faces: torch.Tensor, uv_faces: torch.Tensor, num_vertices: int, num_uvs: int,
                  parts: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """A face's triangles (F, 3) and UV triangles (F, 3) followed by the eye parts' (each (Fp, 3),
    indexing the eye vertices placed after the face's ``num_vertices``), every part's UV triangles
    pointing at one extra UV, ``num_uvs + part index`` (see :func:`texture_with_eye_colours`)."""
    all_faces, all_uv_faces = [faces], [uv_faces]
    for i, part in enumerate(parts):
        part = torch.as_tensor(part, dtype=torch.int64, device=faces.device)
        all_faces.append(part + num_vertices)
        all_uv_faces.append(torch.full_like(part, num_uvs + i))
    return torch.cat(all_faces), torch.cat(all_uv_faces)


def texture_with_eye_colours(texture: torch.Tensor, uvs: torch.Tensor, part_rgb: torch.Tensor
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Texture (B, H, W + band, 3) with the eye parts' flat colours in a band on its right, and the
    UVs (T + P, 2) to match: the face's squeezed into the original columns, then one per part.

    ``part_rgb``: (P, 3) or (B, P, 3) colours in [0, 1], in the order of :func:`eye_triangles`' parts.
    """
    b, h, w, _ = texture.shape
    colours = part_rgb.to(texture).expand(b, -1, 3) if part_rgb.dim() == 3 else \
        part_rgb.to(texture)[None].expand(b, -1, 3)
    parts = colours.shape[1]
    rows = torch.arange(h, device=texture.device) * parts // h  # part index per texel row
    band = colours[:, rows][:, :, None, :].expand(b, h, _EYE_BAND, 3)
    tex = torch.cat([texture, band], dim=2)
    face_uvs = uvs * torch.tensor([w / (w + _EYE_BAND), 1.0], device=uvs.device, dtype=uvs.dtype)
    centre_u = (w + _EYE_BAND / 2) / (w + _EYE_BAND)
    v = 1.0 - (torch.arange(parts, device=uvs.device, dtype=uvs.dtype) + 0.5) / parts  # row 0 is v = 1
    eye_uvs = torch.stack([torch.full_like(v, centre_u), v], dim=1)
    return tex, torch.cat([face_uvs, eye_uvs])


def iris_albedo(iris_rgb: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """The photo's iris colour (B, 3) over the ambient shading (band 0) of the light ``sh`` (B, 9, 3):
    the albedo (B, 3) in [0, 1] that renders as that colour under that light."""
    from ganfit_core.render.lighting import SH_BAND0

    return (iris_rgb / (sh[:, 0] * SH_BAND0).clamp(min=0.05)).clamp(0.0, 1.0)


def build_freeview_rig(model: torch.nn.Module, device: torch.device) -> FreeViewRig:
    """The rig for ``model`` (an eyeless ICT region): its eyeballs from the ``full`` model."""
    from ganfit_core.model.eyes import load_eye_basis, shape_eyes

    basis = load_eye_basis()
    parts = shape_eyes(basis, np.zeros(0), np.zeros(0)).parts()  # (name, triangles, rgb) each
    faces, uv_faces = eye_triangles(model.faces.cpu(), model.uv_faces.cpu(), int(model.mean.shape[0]),
                                    int(model.uvs.shape[0]), [triangles for _, triangles, _ in parts])
    return FreeViewRig(
        eye_mean=torch.as_tensor(basis.mean, device=device),
        eye_identity=torch.as_tensor(basis.identity_basis, device=device),
        eye_expression=torch.as_tensor(basis.expression_basis, device=device),
        faces=faces.to(device), uv_faces=uv_faces.to(device),
        part_rgb=torch.tensor([rgb for _, _, rgb in parts], device=device),
        iris_part=[name for name, _, _ in parts].index("iris"),
        landmarks=model.landmark_indices.to(device))


def freeview_identity_loss(rig: FreeViewRig, vertices: torch.Tensor, identity: torch.Tensor,
                           expression: torch.Tensor, texture: torch.Tensor, uvs: torch.Tensor,
                           sh: torch.Tensor, renderer, identity_net, embedding: torch.Tensor,
                           yaw_deg: float, size: int, iris_rgb: torch.Tensor | None = None, *,
                           gradient_blur_px: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``1 - cos`` (scalar) of the free view's embedding vs ``embedding``, and the view (B, S, S, 3).

    Args:
        vertices: (B, V, 3) model-space face vertices (mm, with expression, without pose).
        identity: (B, K) and expression: (B, M): the coefficients (shape the eyeballs).
        texture: (B, H, W, 3) albedo; uvs: (T, 2) the face's UVs.
        sh: (B, 9, 3) fitted light: only its ambient level (band 0) is used, without gradient.
        embedding: (B, E) the photo's recogniser embedding.
        yaw_deg: head turn about the vertical axis (degrees, > 0: the face turns to its left).
        size: side of the rendered view, px.
        iris_rgb: (B, 3) the photo's iris colour (shown as such: divided by the ambient shading).
        gradient_blur_px: the recogniser's gradient on the view is blurred by a Gaussian of this sigma
            (px of the view; :func:`ganfit_core.fitting.losses.lowpass_gradient`).
    """
    from ganfit_core.render import FRONTAL_ROTATION, PinholeCamera, axis_angle_to_matrix
    from ganfit_core.render.camera import project

    b = vertices.shape[0]
    k, m = identity.shape[1], expression.shape[1]
    eyes = (rig.eye_mean + torch.einsum("bk,kvc->bvc", identity, rig.eye_identity[:k])
            + torch.einsum("bm,mvc->bvc", expression, rig.eye_expression[:m]))
    points = torch.cat([vertices, eyes.to(vertices)], dim=1)
    centre = vertices.mean(dim=1, keepdim=True).detach()
    angle = torch.tensor([[0.0, math.radians(yaw_deg), 0.0]], device=vertices.device, dtype=vertices.dtype)
    rot = axis_angle_to_matrix(angle) @ FRONTAL_ROTATION.to(vertices)
    cam = (points - centre) @ rot.transpose(1, 2) + torch.tensor(
        [0.0, 0.0, VIEW_DISTANCE_MM], device=vertices.device, dtype=vertices.dtype)
    focal = 0.8 * size * VIEW_DISTANCE_MM / _FACE_HEIGHT_MM
    camera = PinholeCamera(torch.full((b,), focal, device=vertices.device),
                           torch.full((b, 2), size / 2, device=vertices.device), size, size)
    ambient = torch.zeros_like(sh)
    ambient[:, 0] = sh[:, 0].detach()
    colours = rig.part_rgb[None].expand(b, -1, 3)
    if iris_rgb is not None:
        colours = colours.clone()
        colours[:, rig.iris_part] = iris_albedo(iris_rgb.to(colours), ambient)
    tex, all_uvs = texture_with_eye_colours(texture, uvs, colours)
    out = renderer.render(cam, rig.faces, all_uvs, rig.uv_faces, tex, camera, ambient)
    view = out.image + (1.0 - out.mask) * _BACKGROUND
    landmarks = project(cam[:, rig.landmarks], camera, min_depth=1.0)
    result = identity_net.analyse(lowpass_gradient(view, gradient_blur_px).permute(0, 3, 1, 2), landmarks)
    return identity_loss(result.embedding, embedding), view
