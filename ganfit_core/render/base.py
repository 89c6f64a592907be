"""Render results and the renderer interface shared by all backends."""

from __future__ import annotations

import abc
from dataclasses import dataclass

import torch

from ganfit_core.errors import check_shape
from ganfit_core.render.camera import PinholeCamera

#: Optional buffers a caller may ask for in ``render(..., buffers=...)``.
BUFFER_NAMES = frozenset({"normals", "depth", "triangle_id", "uv", "shading", "albedo"})


@dataclass(frozen=True)
class RenderOutput:
    """Buffers of one render call, channels-last; empty pixels hold the fill value given below.

    Attributes:
        image: (B, H, W, 3) float, ``albedo * shading``, background 0; silhouettes antialiased
            (blended towards the black background), which is what carries silhouette gradients.
        mask: (B, H, W, 1) float coverage in [0, 1] (1 inside, 0 outside, fractional on silhouettes).
        normals: (B, H, W, 3) unit camera-space normals, 0 where empty. Only if asked.
        depth: (B, H, W, 1) camera-space z in mm, 0 where empty. Only if asked.
        triangle_id: (B, H, W) long index into ``faces``, -1 where empty. Only if asked.
        uv: (B, H, W, 2) texture coordinates (v up), 0 where empty. Only if asked.
        shading: (B, H, W, 3) SH shading, 0 where empty. Only if asked.
        albedo: (B, H, W, 3) texture colour, 0 where empty. Only if asked.
    """

    image: torch.Tensor
    mask: torch.Tensor
    normals: torch.Tensor | None = None
    depth: torch.Tensor | None = None
    triangle_id: torch.Tensor | None = None
    uv: torch.Tensor | None = None
    shading: torch.Tensor | None = None
    albedo: torch.Tensor | None = None


@dataclass(frozen=True)
class RenderSettings:
    """Renderer options.

    Attributes:
        near: near clipping distance in mm; triangles with a vertex nearer than this are dropped by the
            torch backend and clipped by nvdiffrast.
        far: far clipping distance in mm (nvdiffrast's depth range).
        antialias: blend silhouette pixels (gives the image and mask gradients w.r.t. silhouette
            vertex positions). Without it the mask is a hard 0/1 coverage with no gradient.
    """

    near: float = 10.0
    far: float = 10_000.0
    antialias: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.near < self.far:
            raise ValueError(f"RenderSettings: expected 0 < near < far, got near={self.near}, far={self.far}")


class Renderer(abc.ABC):
    """Draws a textured, SH-lit triangle mesh seen through a pinhole camera.

    Back faces are culled: a triangle is front-facing when its vertices appear counter-clockwise
    seen from outside in model space, i.e. its normal ``(v1 - v0) x (v2 - v0)`` points towards the
    camera (``dot(normal, v0) < 0`` in camera space). On screen (pixels, y down) front-facing
    triangles have a negative signed area.
    """

    backend: str
    device: torch.device
    settings: RenderSettings

    def render(
        self,
        vertices_cam: torch.Tensor,
        faces: torch.Tensor,
        uvs: torch.Tensor,
        uv_faces: torch.Tensor,
        texture: torch.Tensor,
        camera: PinholeCamera,
        sh: torch.Tensor,
        *,
        buffers: frozenset[str] = frozenset(),
    ) -> RenderOutput:
        """Render a batch.

        Args:
            vertices_cam: (B, V, 3) camera-space (OpenCV) vertex positions, mm.
            faces: (F, 3) long vertex indices, counter-clockwise seen from outside.
            uvs: (T, 2) texture coordinates in [0, 1], v up.
            uv_faces: (F, 3) long indices into ``uvs``.
            texture: (B, Ht, Wt, 3) float in [0, 1], row 0 is v = 1.
            camera: cameras of batch B; the image is camera.height x camera.width.
            sh: (B, 9, 3) SH lighting coefficients (camera-space normals).
            buffers: optional buffer names to return (see :data:`BUFFER_NAMES`).
        """
        unknown = set(buffers) - BUFFER_NAMES
        if unknown:
            raise ValueError(
                f"render: unknown buffers {sorted(unknown)}; expected a subset of {sorted(BUFFER_NAMES)}"
            )
        check_shape(vertices_cam, (camera.batch_size, "V", 3), "vertices_cam")
        batch = vertices_cam.shape[0]
        check_shape(faces, ("F", 3), "faces")
        check_shape(uv_faces, (faces.shape[0], 3), "uv_faces")
        check_shape(uvs, ("T", 2), "uvs")
        check_shape(texture, (batch, "Ht", "Wt", 3), "texture")
        check_shape(sh, (batch, 9, 3), "sh")
        if faces.dtype not in (torch.int32, torch.int64) or uv_faces.dtype not in (torch.int32, torch.int64):
            raise TypeError(f"faces/uv_faces: expected integer tensors, got {faces.dtype}/{uv_faces.dtype}")
        return self._render(vertices_cam, faces, uvs, uv_faces, texture, camera, sh, frozenset(buffers))

    @abc.abstractmethod
    def _render(
        self,
        vertices_cam: torch.Tensor,
        faces: torch.Tensor,
        uvs: torch.Tensor,
        uv_faces: torch.Tensor,
        texture: torch.Tensor,
        camera: PinholeCamera,
        sh: torch.Tensor,
        buffers: frozenset[str],
    ) -> RenderOutput: ...
