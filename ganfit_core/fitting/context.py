"""The components a fit uses (model, prior, renderer, recogniser), built once per configuration."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ganfit_core.errors import DeviceUnavailableError, FitError
from ganfit_core.fitting.config import FitConfig
from ganfit_core.model.sparse import SparseLandmarkModel

__all__ = ["FitContext", "build_context", "resolve_device", "needs_identity", "needs_dense", "context_key"]


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available else CPU; ``"cuda"`` without CUDA raises DeviceUnavailableError.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailableError("device 'cuda' requested but CUDA is not available "
                                     "(use --device cpu or auto)")
    return torch.device(name)


def needs_identity(config: FitConfig) -> bool:
    """Whether the fit uses the face recogniser: an identity, content or free-view identity weight in a
    rendering stage.

    Example:
        >>> no_recogniser = FitConfig(identity_weight=0, content_weight=0, freeview_identity_weight=0)
        >>> needs_identity(FitConfig()), needs_identity(no_recogniser)
        (True, False)
    """
    weighted = config.identity_weight > 0 or config.content_weight > 0 or config.freeview_identity_weight > 0
    return weighted and (config.full_steps > 0 or config.detail_steps > 0)


def needs_dense(config: FitConfig) -> bool:
    """Whether the fit uses the dense (FaceMesh 468-point) landmark term.

    The correspondence lives on the ICT ``face`` region, so ``narrow_face`` fits go without it.

    Example:
        >>> needs_dense(FitConfig(dense_weight=0.0)), needs_dense(FitConfig(region="narrow_face"))
        (False, False)
    """
    return config.dense_weight > 0 and config.region != "narrow_face"


def needs_freeview(config: FitConfig) -> bool:
    """Whether the fit uses the free-view identity term (it needs the eyeballs of an eyeless region)."""
    from ganfit_core.model.layout import EYELESS_REGIONS

    return (config.freeview_identity_weight > 0 and config.region in EYELESS_REGIONS
            and (config.full_steps > 0 or config.detail_steps > 0))


def context_key(config: FitConfig) -> tuple[str, str, str, str]:
    """(region, texture prior, resolved device, renderer): what a :class:`FitContext` is built for."""
    return (config.region, config.texture_prior, str(resolve_device(config.device)), config.renderer)


@dataclass
class FitContext:
    """The components a fit uses (built once; reusable across fits with the same config)."""

    device: torch.device
    model: torch.nn.Module
    prior: torch.nn.Module
    renderer: object
    identity_net: torch.nn.Module | None
    sparse: SparseLandmarkModel
    key: tuple = ()
    #: The morphable model at MediaPipe FaceMesh's 468 points (None: no dense landmark term).
    dense: torch.nn.Module | None = None
    #: (468,) per-point weights of the dense term (the correspondence's reliability).
    dense_weights: torch.Tensor | None = None
    #: Eyeballs and combined mesh of the free-view identity term (None: the term is off).
    freeview: object | None = None

    def check(self, config: FitConfig) -> None:
        """Raise FitError unless this context was built for ``config``'s model, prior and devices."""
        wanted = context_key(config)
        needs_id = needs_identity(config)
        if needs_dense(config) and self.dense is None:
            raise FitError("the FitContext was built without the dense landmark model, but the config "
                           "weights it (dense_weight > 0): use build_context(config)")
        if needs_freeview(config) and self.freeview is None:
            raise FitError("the FitContext was built without the free-view rig, but the config weights "
                           "it (freeview_identity_weight > 0): use build_context(config)")
        if wanted != self.key or (needs_id and self.identity_net is None):
            has_id = "" if self.identity_net is not None else " without the identity network"
            raise FitError(f"the FitContext was built for (region, prior, device, renderer) = "
                           f"{self.key}{has_id}, "
                           f"but the config needs {wanted}{' with it' if needs_id else ''}: "
                           "use build_context(config)")


def build_context(config: FitConfig) -> FitContext:
    """Load the morphable model, texture prior, renderer and (if weighted) the identity network."""
    from ganfit_core.model.morphable import load_morphable_model
    from ganfit_core.render.renderer import make_renderer
    from ganfit_core.texture import load_texture_prior

    device = resolve_device(config.device)
    model = load_morphable_model(config.region, device=device)
    prior = load_texture_prior(config.texture_prior, device=device)
    renderer = make_renderer(config.renderer, device=device)
    identity_net = None
    if needs_identity(config):
        from ganfit_core.face.identity import load_identity_network

        identity_net = load_identity_network(device=device)
    dense = dense_weights = None
    if needs_dense(config):
        from ganfit_core.fitting.dense_term import DenseLandmarkModel, point_weights
        from ganfit_core.model.facemesh_correspondence import load_facemesh_correspondence

        corr = load_facemesh_correspondence()
        dense = DenseLandmarkModel(model, corr.triangles, corr.barycentric)
        weights = point_weights(corr.spread_mm, floor_mm=config.dense_spread_floor_mm)
        dense_weights = torch.as_tensor(weights, device=device)
    freeview = None
    if needs_freeview(config):
        from ganfit_core.fitting.freeview import build_freeview_rig

        freeview = build_freeview_rig(model, device)
    return FitContext(device, model, prior, renderer, identity_net, SparseLandmarkModel(model),
                      context_key(config), dense, dense_weights, freeview)
