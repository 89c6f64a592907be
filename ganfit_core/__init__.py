"""ganfit: GAN fitting for high-fidelity 3D face reconstruction (Gecer et al., CVPR 2019).

Importing ``ganfit_core`` is cheap: the public entry points below load lazily (PEP 562).

- :func:`reconstruct` (``ganfit_core.api``): photo -> :class:`FitResult` in one call.
- :func:`fit` (``ganfit_core.fitting.engine``): the staged fit, a generator of :class:`FitEvent`;
  :func:`run_to_end` drives it to its :class:`FitResult`.
- :class:`FitConfig` (``ganfit_core.fitting.config``),
  :func:`prepare_target` (``ganfit_core.fitting.target``).
- :func:`export_all` (``ganfit_core.export``): GLB, OBJ, texture, params.json, losses.json.
- Errors: ``ganfit_core.errors`` (``GanfitError`` root; ``UserInputError`` for the caller's mistakes).

Layout: ``fit/`` the fitting engine, ``model/`` the ICT morphable model, ``face/`` detection,
landmarks and recognition, ``render/`` the differentiable renderer, ``texture/`` the texture priors,
``cli/`` the commands; the Gradio app's helpers are the separate ``ganfit_app`` package.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "reconstruct": "ganfit_core.api",
    "fit": "ganfit_core.fitting.engine",
    "run_to_end": "ganfit_core.fitting.engine",
    "FitConfig": "ganfit_core.fitting.config",
    "prepare_target": "ganfit_core.fitting.target",
    "FitTarget": "ganfit_core.fitting.types",
    "FitEvent": "ganfit_core.fitting.types",
    "FitResult": "ganfit_core.fitting.types",
    "FitCancelled": "ganfit_core.errors",
    "GanfitError": "ganfit_core.errors",
    "UserInputError": "ganfit_core.errors",
    "export_all": "ganfit_core.export",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ganfit_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
