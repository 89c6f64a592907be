"""The texture-prior interface and the registry that loads priors by name.

A texture prior maps a latent vector to a UV albedo texture. Every prior (the
hand-made ``"simple"`` grid, the linear ``"pca"`` model, the ``"gan"``
generator) implements :class:`TexturePrior`, so the fitting code never needs
to know which one it drives.

UV convention (see docs/CONTRACTS.md): textures are channels-last
``(B, R, R, 3)`` float in [0, 1]; row 0 is the top of the UV square (v = 1).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod

import torch
from torch import nn

__all__ = ["TexturePrior", "TexturePriorError", "PRIORS", "available_priors", "load_texture_prior"]


class TexturePriorError(ValueError):
    """Raised for an unknown prior name or a prior whose module is not available."""


class TexturePrior(nn.Module, ABC):
    """A differentiable map ``latent (B, L) -> UV texture (B, R, R, 3)``.

    Attributes:
        latent_size: L, the number of floats in one latent vector.
        resolution: R, the side of the square UV texture that ``decode`` returns, in texels.
    """

    latent_size: int
    resolution: int

    @abstractmethod
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent ``(B, L)`` -> UV texture ``(B, R, R, 3)`` float in [0, 1], row 0 at v = 1."""

    @abstractmethod
    def regulariser(self, latent: torch.Tensor) -> torch.Tensor:
        """A scalar (0-dim tensor) that is small for plausible latents ``(B, L)``; mean over the batch."""

    @abstractmethod
    def initial_latent(self, batch: int) -> torch.Tensor:
        """The latent ``(batch, L)`` a fit starts from (deterministic, on the prior's device)."""

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`decode`."""
        return self.decode(latent)


# name -> "module:function"; the function is called as fn(device=...) and returns a TexturePrior.
PRIORS: dict[str, str] = {
    "simple": "ganfit_core.texture.simple:load_simple_prior",
    "pca": "ganfit_core.texture.pca:load_pca_prior",
    "gan": "ganfit_core.texture.gan_prior:load_gan_prior",
}


def available_priors() -> list[str]:
    """The registered prior names (whether or not their module is installed yet)."""
    return list(PRIORS)


def load_texture_prior(name: str, *, device: torch.device | str | None = None) -> TexturePrior:
    """Load the texture prior registered as ``name`` (``"simple"``, ``"pca"``, ``"gan"``).

    The prior's module is imported only when asked for. Assets a prior needs are
    resolved by the prior's own loader (``ganfit_core.assets.resolve``), which
    raises ``AssetError`` if they are missing.

    Raises:
        TexturePriorError: unknown name, or the prior's module/loader does not exist.

    Example:
        >>> prior = load_texture_prior("simple")
        >>> prior.decode(prior.initial_latent(1)).shape[-1]
        3
    """
    key = name.strip().lower()
    if key not in PRIORS:
        raise TexturePriorError(f"unknown texture prior {name!r}; expected one of {sorted(PRIORS)}")
    module_name, func_name = PRIORS[key].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise TexturePriorError(
            f"texture prior {key!r} is not available: module {module_name} is missing in this installation"
        ) from exc
    loader = getattr(module, func_name, None)
    if loader is None:
        raise TexturePriorError(f"texture prior {key!r}: {module_name} has no function {func_name}")
    prior = loader(device=device)
    if not isinstance(prior, TexturePrior):
        raise TexturePriorError(f"texture prior {key!r}: {PRIORS[key]} returned {type(prior).__name__}")
    return prior
