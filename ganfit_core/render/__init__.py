"""Differentiable rendering: pinhole camera, SH lighting, rasteriser backends (PyTorch, nvdiffrast)."""

from __future__ import annotations

from ganfit_core.render.base import BUFFER_NAMES, Renderer, RenderOutput, RenderSettings
from ganfit_core.render.camera import (
    FRONTAL_ROTATION,
    PinholeCamera,
    axis_angle_to_matrix,
    clip_space,
    project,
)
from ganfit_core.render.lighting import ambient_sh, sh_basis, sh_shading
from ganfit_core.render.normals import vertex_normals
from ganfit_core.render.renderer import make_renderer, nvdiffrast_available

__all__ = [
    "BUFFER_NAMES",
    "FRONTAL_ROTATION",
    "PinholeCamera",
    "RenderOutput",
    "RenderSettings",
    "Renderer",
    "ambient_sh",
    "axis_angle_to_matrix",
    "clip_space",
    "make_renderer",
    "nvdiffrast_available",
    "project",
    "sh_basis",
    "sh_shading",
    "vertex_normals",
]
