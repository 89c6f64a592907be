"""Re-render a fitted face with new expression weights and a new light, without refitting.

The fit leaves everything a render needs: the fitted mesh (with its expression), the ICT expression
shapes, the camera in the crop, the albedo texture and the SH lighting. :class:`FaceRerenderer`
keeps those as tensors and renders one frame per call with our renderer (~20 ms at 256 px on CPU).

Light: :func:`directional_sh` builds SH coefficients (camera space, see
:mod:`ganfit_core.render.lighting`) for an ambient term plus one distant light from a direction
given by azimuth and elevation (degrees; azimuth > 0 lights from the viewer's right, elevation > 0
from above), keeping the fitted light's colour and level (its shading of a surface facing the camera).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ganfit_core.render.camera import PinholeCamera
from ganfit_core.render.lighting import sh_basis, sh_shading

__all__ = ["FaceScene", "FaceRerenderer", "scene_from_result", "directional_sh", "light_direction"]



def _sphere_normals(count: int = 2000) -> torch.Tensor:
    """(count, 3) unit vectors spread evenly over the sphere (Fibonacci lattice)."""
    i = torch.arange(count, dtype=torch.float64) + 0.5
    z = 1.0 - 2.0 * i / count
    phi = math.pi * (3.0 - math.sqrt(5.0)) * i
    r = torch.sqrt(1.0 - z * z)
    return torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], dim=1)


_NORMALS = _sphere_normals()
_PROJECTION = torch.linalg.pinv(sh_basis(_NORMALS))  # (9, N): least squares onto the SH basis


def light_direction(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Unit vector (3,) from the face towards the light, OpenCV camera axes (+x right, +y down,
    +z away from the camera); (0, 0) is a light at the camera.

    Example:
        >>> light_direction(0.0, 0.0).round(6).tolist()
        [0.0, -0.0, -1.0]
    """
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    return np.array([math.sin(az) * math.cos(el), -math.sin(el), -math.cos(az) * math.cos(el)])


def directional_sh(level: Sequence[float] | np.ndarray, azimuth_deg: float, elevation_deg: float, *,
                   ambient: float = 0.35) -> np.ndarray:
    """SH coefficients (9, 3) whose shading approximates
    ``level * (ambient + (1 - ambient) * max(0, n . d))``, d = :func:`light_direction`: the
    least-squares projection over the sphere onto the SH basis up to band 2 (bands 0-2 hold a
    clamped cosine to within a few percent, Ramamoorthi & Hanrahan 2001).

    Args:
        level: (3,) RGB shading of a surface facing the light (e.g. the fitted band-0 shading).
        ambient: fraction of ``level`` that lights every normal.

    Example:
        >>> from ganfit_core.render.lighting import sh_shading
        >>> sh = torch.from_numpy(directional_sh([1.0, 1.0, 1.0], 0.0, 0.0))[None].float()
        >>> facing = sh_shading(torch.tensor([[[0.0, 0.0, -1.0]]]), sh)  # normal towards the light
        >>> away = sh_shading(torch.tensor([[[0.0, 0.0, 1.0]]]), sh)
        >>> round(float(facing[0, 0, 0]), 2), round(float(away[0, 0, 0]), 2)
        (1.04, 0.39)
    """
    if not 0.0 <= ambient <= 1.0:
        raise ValueError(f"ambient: expected a fraction in [0, 1], got {ambient}")
    level = np.asarray(level, np.float64).reshape(3)
    d = torch.from_numpy(light_direction(azimuth_deg, elevation_deg))
    shading = ambient + (1.0 - ambient) * (_NORMALS @ d).clamp(min=0.0)  # (N,)
    return ((_PROJECTION @ shading).numpy()[:, None] * level[None, :]).astype(np.float64)


@dataclass(frozen=True)
class FaceScene:
    """A fitted face, ready to re-render.

    Attributes:
        vertices: (V, 3) mm model space, the fitted face including ``expression``.
        faces: (F, 3) int. uvs: (T, 2) in [0, 1], v up. uv_faces: (F, 3) int.
        texture: (Ht, Wt, 3) uint8 albedo.
        expression: (E,) fitted expression weights. expression_basis: (E, V, 3) mm.
        expression_names: (E,) ICT names.
        rotation: (3, 3) model -> camera (OpenCV), ``v_cam = v @ R.T + t``. translation: (3,) mm.
        focal_px: focal length in pixels of the crop. principal_px: (2,) pixels of the crop.
        size: the crop's side in pixels.
        sh: (9, 3) fitted SH lighting (camera space).
    """

    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    uv_faces: np.ndarray
    texture: np.ndarray
    expression: np.ndarray
    expression_basis: np.ndarray
    expression_names: tuple[str, ...]
    rotation: np.ndarray
    translation: np.ndarray
    focal_px: float
    principal_px: np.ndarray
    size: int
    sh: np.ndarray


class FaceRerenderer:
    """Renders a :class:`FaceScene` with changed expression weights and light; no gradients.

    Args:
        scene: the fitted face. renderer: a :class:`~ganfit_core.render.base.Renderer` (its device is
            used). size: output side in pixels (the crop is scaled to it).
    """

    def __init__(self, scene: FaceScene, renderer: object, *, size: int = 256) -> None:
        if size <= 0 or size > 2048:
            raise ValueError(f"size: expected 1..2048 pixels, got {size}")
        self.scene = scene
        self.renderer = renderer
        self.size = int(size)
        device = getattr(renderer, "device", torch.device("cpu"))
        as_t = lambda x, dtype=torch.float32: torch.as_tensor(np.asarray(x), dtype=dtype, device=device)  # noqa: E731
        self._vertices = as_t(scene.vertices)
        self._basis = as_t(scene.expression_basis)
        self._expression = as_t(scene.expression)
        if self._basis.shape != (len(scene.expression), *self._vertices.shape):
            raise ValueError(f"expression_basis: expected shape ({len(scene.expression)}, "
                             f"{tuple(self._vertices.shape)}), got {tuple(self._basis.shape)}")
        self._faces, self._uv_faces = as_t(scene.faces, torch.long), as_t(scene.uv_faces, torch.long)
        self._uvs = as_t(scene.uvs)
        self._texture = as_t(scene.texture).div(255.0)[None]
        self._rotation, self._translation = as_t(scene.rotation), as_t(scene.translation)
        scale = self.size / float(scene.size)
        self._camera = PinholeCamera(focal=as_t([scene.focal_px * scale]),
                                     principal=as_t(np.asarray(scene.principal_px, np.float64)[None] * scale),
                                     width=self.size, height=self.size)
        self._sh = as_t(scene.sh)
        self._names = {name: i for i, name in enumerate(scene.expression_names)}
        # the fitted shading (3,) of a surface facing the camera: a new light keeps that brightness
        frontal = torch.tensor([[[0.0, 0.0, -1.0]]], dtype=torch.float64)
        self.level = sh_shading(frontal, torch.as_tensor(np.asarray(scene.sh), dtype=torch.float64)[None])
        self.level = self.level.reshape(3).clamp(min=0.0).numpy()

    def expression(self, overrides: Mapping[str, float] | None = None) -> np.ndarray:
        """(E,) the fitted weights with ``overrides`` (ICT name -> weight in [0, 1]) applied."""
        weights = self._expression.cpu().numpy().copy()
        for name, value in (overrides or {}).items():
            if name not in self._names:
                raise ValueError(f"unknown expression {name!r}; expected one of {sorted(self._names)}")
            weights[self._names[name]] = float(np.clip(value, 0.0, 1.0))
        return weights

    @torch.no_grad()
    def render(self, expression: Mapping[str, float] | None = None, light: tuple[float, float] | None = None,
               *, ambient: float = 0.35, background: np.ndarray | None = None) -> np.ndarray:
        """One frame (size, size, 3) uint8.

        Args:
            expression: ICT name -> weight overrides (the rest keep their fitted values).
            light: (azimuth_deg, elevation_deg) of a directional light (:func:`directional_sh`) at the
                fitted light's level, or None for the fitted SH lighting.
            background: (size, size, 3) uint8 behind the face (e.g. the fit's render over the crop,
                whose eyes and mouth then show through the mesh's holes), or None (mid grey).
        """
        weights = torch.as_tensor(self.expression(expression), device=self._vertices.device)
        vertices = self._vertices + torch.tensordot(weights - self._expression, self._basis, dims=1)
        cam = vertices @ self._rotation.T + self._translation
        if light is None:
            sh = self._sh
        else:
            sh = torch.as_tensor(directional_sh(self.level, *light, ambient=ambient), dtype=torch.float32,
                                 device=cam.device)
        out = self.renderer.render(cam[None], self._faces, self._uvs, self._uv_faces, self._texture,
                                   self._camera, sh[None])
        if background is None:
            back = torch.full_like(out.image, 0.5)
        else:
            if np.shape(background) != (self.size, self.size, 3):
                raise ValueError(f"background: expected shape ({self.size}, {self.size}, 3), "
                                 f"got {np.shape(background)}")
            back = torch.as_tensor(np.array(background), device=cam.device).float().div(255.0)[None]
        image = out.image + (1.0 - out.mask) * back
        return (image[0].clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()


def scene_from_result(result: object, expression_basis: np.ndarray) -> FaceScene:
    """The :class:`FaceScene` of a :class:`~ganfit_core.fitting.types.FitResult`.

    Args:
        result: the fit (its mesh, texture, ``face`` coefficients and lighting, ``camera``).
        expression_basis: (E, V, 3) mm, the expression shapes of ``result.region``
            (:func:`ganfit_core.export.load_expression_shapes`).
    """
    camera = result.camera
    return FaceScene(vertices=result.vertices, faces=result.faces, uvs=result.uvs, uv_faces=result.uv_faces,
                     texture=result.texture, expression=result.face.expression,
                     expression_basis=expression_basis, expression_names=tuple(result.face.expression_names),
                     rotation=camera.rotation, translation=camera.translation, focal_px=float(camera.focal),
                     principal_px=camera.principal, size=int(camera.image_size[0]), sh=result.face.sh)
