"""Texture priors: ``latent -> UV albedo`` behind one interface (:class:`TexturePrior`).

Load one by name with :func:`load_texture_prior` (``"simple"``, ``"pca"``, ``"gan"``).
"""

from __future__ import annotations

from ganfit_core.texture.base import TexturePrior, TexturePriorError, available_priors, load_texture_prior

__all__ = ["TexturePrior", "TexturePriorError", "available_priors", "load_texture_prior"]
