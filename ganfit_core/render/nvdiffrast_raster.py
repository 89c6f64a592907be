"""nvdiffrast backend (CUDA): rasterize -> interpolate -> texture -> SH shading -> antialias.

Same interface and conventions as the PyTorch backend (:mod:`ganfit_core.render.torch_raster`), which
is its reference:

- Clip space comes from :func:`ganfit_core.render.camera.clip_space`, which maps pixel row 0 (top) to
  NDC y = -1; nvdiffrast writes NDC y = -1 to its output row 0, so rows need no flip.
- nvdiffrast does not cull. Back faces (and triangles behind the near plane) are culled here by
  rasterizing an unindexed copy of the triangles in which culled triangles are moved beyond the far
  plane; triangle ids stay face indices, so ``antialias`` works on the original indexed mesh (whose
  topology tells silhouette edges: edges between a front- and a back-facing triangle, or open edges).
- Shading is computed per vertex and interpolated (as in the torch backend); textures are sampled
  bilinearly without mipmaps, clamped at the border; nvdiffrast's texture v runs down the rows, so
  ``1 - v`` is passed.
- Triangles crossing the near plane are clipped by nvdiffrast; the torch backend drops them.

``nvdiffrast`` is imported when a renderer is constructed, never at module import.
"""

from __future__ import annotations

import torch

from ganfit_core.render.base import Renderer, RenderOutput, RenderSettings
from ganfit_core.render.camera import clip_space
from ganfit_core.render.lighting import sh_basis
from ganfit_core.render.normals import vertex_normals


class NvdiffrastRenderer(Renderer):
    """Renderer on nvdiffrast's CUDA rasterizer. The ``RasterizeCudaContext`` is made once, here."""

    backend = "nvdiffrast"

    def __init__(self, device: torch.device | str | None = None, settings: RenderSettings | None = None):
        import nvdiffrast.torch as dr

        self._dr = dr
        self.device = torch.device(device) if device is not None else torch.device("cuda")
        if self.device.type != "cuda":
            raise RuntimeError(f"NvdiffrastRenderer: needs a CUDA device, got {self.device}")
        self.settings = settings or RenderSettings()
        self._context = dr.RasterizeCudaContext(device=self.device)

    def _render(self, vertices_cam, faces, uvs, uv_faces, texture, camera, sh, buffers) -> RenderOutput:
        dr = self._dr
        settings = self.settings
        batch_size, num_verts, _ = vertices_cam.shape
        height, width = camera.height, camera.width
        device = vertices_cam.device
        if device.type != "cuda":
            raise RuntimeError(f"NvdiffrastRenderer: vertices must be on a CUDA device, got {device}")
        faces = faces.to(device=device, dtype=torch.long)
        uv_faces = uv_faces.to(device=device, dtype=torch.long)
        num_faces = faces.shape[0]
        vertices = vertices_cam.float()

        clip = clip_space(vertices, camera, near=settings.near, far=settings.far).contiguous()  # (B, V, 4)
        corner_index = faces.reshape(-1)
        corners = vertices[:, corner_index].view(batch_size, num_faces, 3, 3)
        face_normal = torch.linalg.cross(
            corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0]
        )
        front = ((face_normal * corners[:, :, 0]).sum(-1) < 0) & (corners[..., 2].amin(-1) > settings.near)
        hidden = torch.tensor([0.0, 0.0, 2.0, 1.0], device=device)  # beyond the far plane: clipped away
        clip_corners = clip[:, corner_index].view(batch_size, num_faces, 3, 4)
        clip_corners = torch.where(front[..., None, None], clip_corners, hidden)
        unindexed = torch.arange(3 * num_faces, device=device, dtype=torch.int32).view(num_faces, 3)
        rast, _ = dr.rasterize(
            self._context,
            clip_corners.reshape(batch_size, 3 * num_faces, 4).contiguous(),
            unindexed,
            resolution=[height, width],
        )
        covered = (rast[..., 3:4] > 0).float()

        normals_v = vertex_normals(vertices, faces)
        shading_v = torch.bmm(sh_basis(normals_v), sh.float())
        attributes = [shading_v, vertices[..., 2:3]]
        if "normals" in buffers:
            attributes.append(normals_v)
        attr = torch.cat(attributes, dim=-1)[:, corner_index].contiguous()  # (B, 3F, C)
        interpolated, _ = dr.interpolate(attr, rast, unindexed)
        uv_corners = uvs.to(device=device, dtype=torch.float32)[uv_faces.reshape(-1)][
            None
        ].contiguous()  # (1, 3F, 2)
        uv, _ = dr.interpolate(uv_corners, rast, unindexed)
        tex_uv = torch.stack([uv[..., 0], 1.0 - uv[..., 1]], dim=-1).contiguous()
        albedo = dr.texture(texture.float().contiguous(), tex_uv, filter_mode="linear", boundary_mode="clamp")
        albedo = albedo * covered
        shading = interpolated[..., 0:3]
        image_mask = torch.cat([albedo * shading, covered], dim=-1)
        if settings.antialias:
            image_mask = dr.antialias(image_mask.contiguous(), rast, clip, faces.to(torch.int32).contiguous())

        outputs: dict[str, torch.Tensor] = {}
        if "normals" in buffers:
            normals = interpolated[..., 4:7]
            outputs["normals"] = normals * torch.rsqrt(
                (normals * normals).sum(-1, keepdim=True).clamp(min=1e-20)
            )
        if "depth" in buffers:
            outputs["depth"] = interpolated[..., 3:4]
        if "triangle_id" in buffers:
            outputs["triangle_id"] = rast[..., 3].long() - 1
        if "uv" in buffers:
            outputs["uv"] = uv * covered
        if "shading" in buffers:
            outputs["shading"] = shading
        if "albedo" in buffers:
            outputs["albedo"] = albedo
        return RenderOutput(image=image_mask[..., :3], mask=image_mask[..., 3:].clamp(0.0, 1.0), **outputs)
