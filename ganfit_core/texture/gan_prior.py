"""The ``"gan"`` texture prior: a PCA texture plus a GAN-drawn residual outside the PCA subspace.

With about 170 training maps a GAN alone cannot beat a linear model on faces it never saw, so the
GAN does not replace the PCA; it adds to it::

    texture = clamp(mean + z @ basis + P_perp(s * up(G(w_avg + w_std * v) - G(w_avg))), 0, 1)

- ``z`` (K,): the PCA coefficients (the same mean, basis and standard deviations as a
  :class:`~ganfit_core.texture.pca.PCAModel` fitted on the same training split), z ~ N(0, 1);
- ``v`` (W,): the GAN's W latent, standardised per dimension (``w = w_avg + w_std * v``), v ~ N(0, 1);
- ``G`` (the generator's synthesis network) draws a normalised residual (3, r, r) (``r`` = 64 in
  the full config), taken relative to the average W's so that ``v = 0`` adds nothing; ``s`` is the
  RMS of the training residuals, ``up`` is bilinear upsampling to the PCA's resolution R;
- ``P_perp`` removes the residual's components in the PCA span, so the projection of every texture
  on that span is exactly the PCA's: the GAN can only add what the PCA cannot express (the
  training maps' residuals after their PCA projection: skin detail, asymmetries, blemishes).

The fitting latent is ``concat(z, v)`` (K + W floats); :meth:`GANTexturePrior.initial_latent` is
zeros (exactly the PCA mean: the fit starts where the PCA's does) and the regulariser is ``|z|^2 + |v|^2``.

File (``texture_gan.safetensors``): ``g.*`` generator weights, ``pca_mean`` (R, R, 3), ``pca_basis``
(K, R, R, 3), ``pca_std`` (K,), ``uv_mask`` (R, R) uint8, ``w_avg`` (W,), ``w_std`` (W,),
``residual_scale`` (); metadata ``ganfit`` (JSON): ``config`` (:class:`~.gan.GANConfig`),
``format`` (2), training step, training config and data attribution.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganfit_core.texture.base import TexturePrior
from ganfit_core.texture.gan import GANConfig, Generator, w_statistics
from ganfit_core.texture.pca import PCAModel

__all__ = ["GANTexturePrior", "pca_residuals", "save_gan_prior", "load_gan_file", "load_gan_prior",
           "FORMAT"]

FORMAT = 2
_META_KEY = "ganfit"


def pca_residuals(textures: torch.Tensor, mean: torch.Tensor, basis: torch.Tensor,
                  std: torch.Tensor) -> torch.Tensor:
    """What the PCA span leaves of textures (N, R, R, 3): ``x - mean - P(x - mean)``, same shape.

    ``basis`` (K, R*R*3) holds components scaled by ``std`` (K,) (orthogonal rows of norm ``std``).
    """
    n = textures.shape[0]
    centred = (textures - mean).reshape(n, -1)
    return _remove_span(centred, basis, std).reshape(textures.shape)


def _remove_span(flat: torch.Tensor, basis: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(B, D) minus its orthogonal projection on the rows of ``basis`` (K, D) of norms ``std`` (K,)."""
    return flat - ((flat @ basis.T) / std.pow(2)) @ basis


class GANTexturePrior(TexturePrior):
    """PCA + orthogonal GAN residual (see the module docstring). Latent ``(B, K + W)``.

    Buffers: ``mean`` (R, R, 3), ``basis`` (K, R*R*3), ``std`` (K,), ``uv_mask`` (R, R) bool,
    ``w_avg`` (W,), ``w_std`` (W,), ``residual_scale`` () float, ``residual_zero`` (1, 3, r, r) the
    generator's output at the average W (subtracted, so that ``v = 0`` adds nothing).
    """

    mean: torch.Tensor
    basis: torch.Tensor
    std: torch.Tensor
    uv_mask: torch.Tensor
    w_avg: torch.Tensor
    w_std: torch.Tensor
    residual_scale: torch.Tensor
    residual_zero: torch.Tensor

    def __init__(self, generator: Generator, pca: PCAModel, w_avg: torch.Tensor, w_std: torch.Tensor,
                 residual_scale: float) -> None:
        super().__init__()
        self.generator = generator.eval().requires_grad_(False)
        k = int(pca.basis.shape[0])
        self.register_buffer("mean", torch.from_numpy(np.asarray(pca.mean, dtype=np.float32)).clone())
        basis = torch.from_numpy(np.asarray(pca.basis, dtype=np.float32)).reshape(k, -1)
        self.register_buffer("basis", basis.clone())
        self.register_buffer("std", torch.from_numpy(np.asarray(pca.std, dtype=np.float32)).clone())
        self.register_buffer("uv_mask", torch.from_numpy(np.asarray(pca.uv_mask, dtype=bool)).clone())
        self.register_buffer("w_avg", w_avg.float().clone())
        self.register_buffer("w_std", w_std.float().clamp_min(1e-3).clone())
        self.register_buffer("residual_scale", torch.tensor(float(residual_scale)))
        with torch.no_grad():
            self.register_buffer("residual_zero", self.generator.synthesis(self.w_avg[None]).clone())
        self.pca_size = k
        self.w_size = int(generator.config.w_dim)
        self.latent_size = k + self.w_size
        self.resolution = int(pca.mean.shape[0])

    def split(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent (B, K + W) -> PCA coefficients z (B, K) and standardised W latent v (B, W)."""
        return latent[:, : self.pca_size], latent[:, self.pca_size:]

    def residual(self, v: torch.Tensor) -> torch.Tensor:
        """Standardised W latent v (B, W) -> residual (B, R, R, 3), orthogonal to the PCA span."""
        r = (self.generator.synthesis(self.w_avg + self.w_std * v) - self.residual_zero) * self.residual_scale
        if r.shape[-1] != self.resolution:
            r = F.interpolate(r, size=(self.resolution, self.resolution), mode="bilinear",
                              align_corners=False)
        flat = r.permute(0, 2, 3, 1).reshape(v.shape[0], -1)
        return _remove_span(flat, self.basis, self.std).reshape(-1, self.resolution, self.resolution, 3)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent (B, K + W) -> (B, R, R, 3) in [0, 1], row 0 at v = 1."""
        if latent.ndim != 2 or latent.shape[1] != self.latent_size:
            raise ValueError(f"latent: expected shape (B, {self.latent_size}), got {tuple(latent.shape)}")
        z, v = self.split(latent.to(self.mean.dtype))
        pca = (z @ self.basis).reshape(-1, self.resolution, self.resolution, 3)
        return (self.mean + pca + self.residual(v)).clamp(0.0, 1.0)

    def regulariser(self, latent: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of ``|z|^2 + |v|^2`` (both standard normal under the prior)."""
        return latent.pow(2).sum(dim=1).mean()

    def initial_latent(self, batch: int) -> torch.Tensor:
        """Zeros (batch, K + W): exactly the PCA mean."""
        return torch.zeros(batch, self.latent_size, device=self.mean.device)

    @torch.no_grad()
    def sample_latent(self, batch: int, *, seed: int = 0, truncation: float = 1.0,
                      pca: bool = True) -> torch.Tensor:
        """Latents of random samples (seeded): z ~ N(0, 1) (zeros if not ``pca``) and v of a mapped z."""
        gen = torch.Generator().manual_seed(seed)
        zp = torch.randn(batch, self.pca_size, generator=gen) if pca else torch.zeros(batch, self.pca_size)
        w = self.generator.map(torch.randn(batch, self.generator.config.z_dim, generator=gen).to(self.w_avg))
        v = truncation * (w - self.w_avg) / self.w_std
        return torch.cat([truncation * zp.to(v), v], dim=1)


def save_gan_prior(path: Path, generator: Generator, pca: PCAModel, residual_scale: float, *,
                   info: dict | None = None) -> None:
    """Write the prior file (layout in the module docstring)."""
    from safetensors.torch import save_file

    w_avg, w_std = w_statistics(generator)
    tensors = {f"g.{k}": v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    tensors.update(
        pca_mean=torch.from_numpy(np.ascontiguousarray(pca.mean, dtype=np.float32)),
        pca_basis=torch.from_numpy(np.ascontiguousarray(pca.basis, dtype=np.float32)),
        pca_std=torch.from_numpy(np.ascontiguousarray(pca.std, dtype=np.float32)),
        uv_mask=torch.from_numpy(np.ascontiguousarray(pca.uv_mask, dtype=np.uint8)),
        w_avg=w_avg.cpu().contiguous(), w_std=w_std.cpu().contiguous(),
        residual_scale=torch.tensor(float(residual_scale)),
    )
    meta = {"config": generator.config.to_dict(), "format": FORMAT, **(info or {})}
    save_file(tensors, str(path), metadata={_META_KEY: json.dumps(meta, sort_keys=True)})


def load_gan_file(path: Path, *, device: torch.device | str | None = None) -> GANTexturePrior:
    """Read a prior file written by :func:`save_gan_prior`.

    Raises:
        ValueError: the file is of another format (e.g. format 1, the GAN-only prior of before).
    """
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = json.loads((f.metadata() or {}).get(_META_KEY, "{}"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{Path(path).name}: texture GAN file format {meta.get('format')!r}, expected "
                             f"{FORMAT} (retrain with `python -m ganfit_core.texture train`)")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    generator = Generator(GANConfig.from_dict(meta["config"]))
    generator.load_state_dict({k[2:]: v for k, v in tensors.items() if k.startswith("g.")})
    pca = PCAModel(mean=tensors["pca_mean"].numpy(), basis=tensors["pca_basis"].numpy(),
                   std=tensors["pca_std"].numpy(), explained=np.zeros(0, np.float32),
                   uv_mask=tensors["uv_mask"].numpy().astype(bool), info={})
    prior = GANTexturePrior(generator, pca, tensors["w_avg"], tensors["w_std"],
                            float(tensors["residual_scale"]))
    prior.info = meta  # type: ignore[attr-defined]
    return prior.to(device) if device is not None else prior


def load_gan_prior(*, device: torch.device | str | None = None, path: Path | None = None) -> GANTexturePrior:
    """The GAN texture prior from the ``texture_gan`` asset (or an explicit ``path``)."""
    if path is None:
        from ganfit_core.assets import resolve

        path = resolve("texture_gan")
    return load_gan_file(Path(path), device=device)
