"""The fitting engine: config, target tensors, parameters, losses, optimiser, the staged loop.

============== ================================================================================
module         job
============== ================================================================================
config         :class:`FitConfig` (every setting, its range or choices)
types          :class:`FitTarget`, :class:`FitEvent`, :class:`FitResult` and its typed parts
masks          face-skin masks from the 68 landmarks
target         :func:`prepare_target` (photo -> FitTarget) and the target tensors
params         :class:`FaceParameters` (the optimised variables -> mesh, camera, texture)
init           the closed-form start pose and camera
context        :class:`FitContext` (model, prior, renderer, recogniser), :func:`resolve_device`
losses         the loss terms (pure functions); objective: which terms each stage uses
optim          Adam and each stage's parameter groups
engine         :func:`fit` (the loop, a generator of FitEvent) and :func:`run_to_end`
============== ================================================================================

The package is ``fitting`` (not ``fit``) so that ``from ganfit_core import fit`` stays the function.
This ``__init__`` re-exports the names the old ``ganfit_core.fitting`` module had.
"""

from ganfit_core.fitting.context import FitContext, build_context, resolve_device
from ganfit_core.fitting.engine import (
    JAW_CENTRES,
    LANDMARK_SCALE,
    FitRun,
    fit,
    render_over_crop,
    run_to_end,
)

__all__ = ["fit", "run_to_end", "FitRun", "render_over_crop", "resolve_device", "FitContext", "build_context",
           "JAW_CENTRES", "LANDMARK_SCALE"]
