"""Renderer factory: pick a rasteriser backend behind the one :class:`Renderer` interface."""

from __future__ import annotations

import importlib.util

import torch

from ganfit_core.render.base import Renderer, RenderSettings

BACKENDS = ("auto", "torch", "nvdiffrast")


def nvdiffrast_available() -> bool:
    """True when CUDA is usable and the ``nvdiffrast`` module is installed (nothing is imported)."""
    return torch.cuda.is_available() and importlib.util.find_spec("nvdiffrast") is not None


def make_renderer(
    backend: str = "auto",
    device: torch.device | str | None = None,
    *,
    settings: RenderSettings | None = None,
) -> Renderer:
    """Create a renderer.

    Args:
        backend: ``"torch"`` (pure PyTorch, CPU or CUDA), ``"nvdiffrast"`` (CUDA only) or ``"auto"``
            (nvdiffrast when CUDA and the ``nvdiffrast`` module are available, else torch).
        device: device of the renderer's state; default ``cuda`` for nvdiffrast, ``cpu`` for torch.
        settings: near/far planes and antialiasing (:class:`RenderSettings`).

    Raises:
        ValueError: unknown backend name.
        RuntimeError: nvdiffrast requested but CUDA or the module is missing.

    Example:
        >>> make_renderer("torch").backend
        'torch'
    """
    if backend not in BACKENDS:
        raise ValueError(f"make_renderer: unknown backend {backend!r}; expected one of {BACKENDS}")
    if backend == "auto":
        backend = "nvdiffrast" if nvdiffrast_available() else "torch"
    if backend == "torch":
        from ganfit_core.render.torch_raster import TorchRenderer

        return TorchRenderer(device=device, settings=settings)
    if not torch.cuda.is_available():
        raise RuntimeError("make_renderer: backend 'nvdiffrast' needs a CUDA device, and none is available")
    if importlib.util.find_spec("nvdiffrast") is None:
        raise RuntimeError(
            "make_renderer: backend 'nvdiffrast' needs the nvdiffrast module: pip install diffrp-nvdiffrast "
            "(or use backend='torch')"
        )
    from ganfit_core.render.nvdiffrast_raster import NvdiffrastRenderer

    return NvdiffrastRenderer(device=device, settings=settings)
