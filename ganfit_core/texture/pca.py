"""Linear (PCA) texture prior: ``texture = mean + sum_k z_k * std_k * component_k``, z ~ N(0, 1).

Fitted on the training split of the UV data set (:mod:`ganfit_core.texture.dataset`; built, with
the asset builder ``build_texture_pca``, by :mod:`ganfit_core.pipelines.uv_extract`) in float64 on
one thread through the N x N Gram matrix, so the asset bytes are reproducible. Asset
``texture_pca`` (file ``texture_pca.safetensors``): ``mean`` (R, R, 3) float32, ``basis``
(K, R, R, 3) float32 (unit components scaled by their standard deviation), ``std`` (K,),
``explained`` (K,) fraction of variance per component, ``uv_mask`` (R, R) uint8.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganfit_core.texture.base import TexturePrior
from ganfit_core.texture.dataset import UVDataset

__all__ = [
    "PCAModel",
    "PCATexturePrior",
    "fit_pca",
    "save_pca",
    "load_pca",
    "load_pca_prior",
    "pca_from_dataset",
    "NUM_COMPONENTS",
]

NUM_COMPONENTS = 64
_META_KEY = "ganfit"


@dataclass(frozen=True)
class PCAModel:
    """A fitted PCA texture model.

    Attributes:
        mean: (R, R, 3) float32 mean texture in [0, 1].
        basis: (K, R, R, 3) float32 components scaled by their standard deviation.
        std: (K,) float32 standard deviation of each component's coefficient (descending).
        explained: (K,) float32 fraction of the training variance each component explains.
        uv_mask: (R, R) bool texels on the UV charts.
        info: metadata (training stems, attribution...).
    """

    mean: np.ndarray
    basis: np.ndarray
    std: np.ndarray
    explained: np.ndarray
    uv_mask: np.ndarray
    info: dict


def fit_pca(textures: np.ndarray, num_components: int = NUM_COMPONENTS, *, uv_mask: np.ndarray | None = None,
            info: dict | None = None) -> PCAModel:
    """PCA of textures (N, R, R, 3) (uint8 or float in [0, 1]) keeping K = min(num_components, N - 1).

    Computed in float64 on one thread; each component's sign is fixed (its largest-magnitude entry
    is positive) so the result is deterministic.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> model = fit_pca(rng.random((10, 8, 8, 3)), 4)
        >>> model.basis.shape, bool(model.std[0] >= model.std[-1])
        ((4, 8, 8, 3), True)
    """
    x = np.asarray(textures)
    if x.ndim != 4 or x.shape[-1] != 3 or x.shape[1] != x.shape[2]:
        raise ValueError(f"textures: expected shape (N, R, R, 3), got {x.shape}")
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"textures: need at least 2 textures for PCA, got {n}")
    x = x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)
    k = min(num_components, n - 1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        flat = torch.from_numpy(x.reshape(n, -1))
        mean = flat.mean(0)
        centred = flat - mean
        gram = centred @ centred.T
        evals, evecs = torch.linalg.eigh(gram)  # ascending
        evals, evecs = evals.flip(0)[:k].clamp_min(1e-12), evecs.flip(1)[:, :k]
        comps = (centred.T @ evecs) / evals.sqrt()  # (D, K) unit columns
        pivot = comps.abs().argmax(0)
        signs = torch.sign(comps[pivot, torch.arange(k)])
        comps = comps * torch.where(signs == 0, 1.0, signs)
        total = float((centred * centred).sum())
        std = (evals / (n - 1)).sqrt()
        explained = evals / total
        basis = (comps * std).T
    finally:
        torch.set_num_threads(threads)
    r = x.shape[1]
    mask = np.ones((r, r), dtype=bool) if uv_mask is None else np.asarray(uv_mask, dtype=bool)
    return PCAModel(
        mean=mean.numpy().reshape(r, r, 3).astype(np.float32),
        basis=basis.numpy().reshape(k, r, r, 3).astype(np.float32),
        std=std.numpy().astype(np.float32),
        explained=explained.numpy().astype(np.float32),
        uv_mask=mask,
        info=dict(info or {}),
    )


def save_pca(model: PCAModel, path: Path) -> None:
    """Write ``model`` as safetensors (deterministic bytes)."""
    from safetensors.numpy import save_file

    save_file(
        {
            "mean": np.ascontiguousarray(model.mean),
            "basis": np.ascontiguousarray(model.basis),
            "std": np.ascontiguousarray(model.std),
            "explained": np.ascontiguousarray(model.explained),
            "uv_mask": np.ascontiguousarray(model.uv_mask, dtype=np.uint8),
        },
        str(path),
        metadata={_META_KEY: json.dumps(model.info, sort_keys=True)},
    )


def load_pca(path: Path) -> PCAModel:
    """Read a file written by :func:`save_pca`."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        info = json.loads((f.metadata() or {}).get(_META_KEY, "{}"))
        t = {k: f.get_tensor(k) for k in ("mean", "basis", "std", "explained", "uv_mask")}
    return PCAModel(t["mean"], t["basis"], t["std"], t["explained"], t["uv_mask"].astype(bool), info)


class PCATexturePrior(TexturePrior):
    """Linear texture prior. Latent z (B, K) ~ N(0, 1); ``decode(z) = clamp(mean + z @ basis, 0, 1)``.

    Buffers: ``mean`` (R, R, 3), ``basis`` (K, R*R*3), ``uv_mask`` (R, R) bool.
    """

    mean: torch.Tensor
    basis: torch.Tensor
    uv_mask: torch.Tensor

    def __init__(self, model: PCAModel) -> None:
        super().__init__()
        self.register_buffer("mean", torch.from_numpy(np.asarray(model.mean, dtype=np.float32)).clone())
        k = model.basis.shape[0]
        basis = torch.from_numpy(np.asarray(model.basis, dtype=np.float32)).reshape(k, -1)
        self.register_buffer("basis", basis.clone())
        self.register_buffer("uv_mask", torch.from_numpy(np.asarray(model.uv_mask, dtype=bool)).clone())
        self.latent_size = int(k)
        self.resolution = int(model.mean.shape[0])
        self.explained = tuple(float(e) for e in model.explained)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent (B, K) -> (B, R, R, 3) in [0, 1]."""
        if latent.ndim != 2 or latent.shape[1] != self.latent_size:
            raise ValueError(f"latent: expected shape (B, {self.latent_size}), got {tuple(latent.shape)}")
        flat = latent.to(self.basis.dtype) @ self.basis
        out = self.mean.unsqueeze(0) + flat.reshape(-1, self.resolution, self.resolution, 3)
        return out.clamp(0.0, 1.0)

    def regulariser(self, latent: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of ``|z|^2`` (the Gaussian prior's negative log-likelihood, x2)."""
        return latent.pow(2).sum(dim=1).mean()

    def initial_latent(self, batch: int) -> torch.Tensor:
        """Zeros (the mean texture)."""
        return torch.zeros(batch, self.latent_size, device=self.mean.device)

    @torch.no_grad()
    def project(
        self, textures: torch.Tensor, weights: torch.Tensor | None = None, *, ridge: float = 1e-3
    ) -> torch.Tensor:
        """Least-squares latent of textures (B, R, R, 3) over texels with weight (B, R, R) -> (B, K).

        Minimises ``sum w |mean + z @ basis - texture|^2 + ridge |z|^2`` (no clamping).
        """
        b = textures.shape[0]
        target = (textures.to(self.mean) - self.mean).reshape(b, -1)
        if weights is None:
            weights = torch.ones(textures.shape[:3], dtype=self.mean.dtype, device=self.mean.device)
        w = weights.to(self.mean).unsqueeze(-1).expand(-1, -1, -1, 3).reshape(b, -1)
        out = []
        basis = self.basis.double()
        for i in range(b):
            bw = basis * w[i].double()
            lhs = bw @ basis.T + ridge * torch.eye(self.latent_size, dtype=torch.float64, device=basis.device)
            out.append(torch.linalg.solve(lhs, bw @ target[i].double()))
        return torch.stack(out).to(self.mean.dtype)


def load_pca_prior(*, device: torch.device | str | None = None, path: Path | None = None) -> PCATexturePrior:
    """The PCA texture prior from the ``texture_pca`` asset (or an explicit ``path``)."""
    if path is None:
        from ganfit_core.assets import resolve

        path = resolve("texture_pca")
    prior = PCATexturePrior(load_pca(Path(path)))
    return prior.to(device) if device is not None else prior


def pca_from_dataset(data: UVDataset, num_components: int = NUM_COMPONENTS) -> PCAModel:
    """PCA of the training split of a UV data set (the held-out identities are left out)."""
    train, _ = data.split()
    info = {
        "attribution": data.info.get("attribution", ""),
        "train_stems": [data.stems[i] for i in train],
        "resolution": data.resolution,
        "format": 1,
    }
    return fit_pca(data.textures[train], num_components, uv_mask=data.uv_mask, info=info)
