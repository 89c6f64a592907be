"""ganfit: GAN fitting for high-fidelity 3D face reconstruction (Gecer et al., CVPR 2019).

Importing ``ganfit_core`` is cheap: the public entry points below load lazily (PEP 562).

- :func:`reconstruct` (``ganfit_core.api``): photo -> :class:`FitResult` in one call.
- :func:`fit` (``ganfit_core.fit.engine``): the staged fit, a generator of :class:`FitEvent`.
- :class:`FitConfig` (``ganfit_core.fit.config``), :func:`prepare_target` (``ganfit_core.fit.target``).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "reconstruct": "ganfit_core.api",
    "fit": "ganfit_core.fit.engine",
    "FitConfig": "ganfit_core.fit.config",
    "prepare_target": "ganfit_core.fit.target",
    "FitTarget": "ganfit_core.fit.types",
    "FitEvent": "ganfit_core.fit.types",
    "FitResult": "ganfit_core.fit.types",
    "FitCancelled": "ganfit_core.fit.types",
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
