"""Training loop of the texture GAN prior (:mod:`ganfit_core.texture.gan_prior`).

``python -m ganfit_core.texture train --data DIR --out DIR --config tiny|full [--steps N] [--resume]``

- PCA: fitted (float64, deterministic) on the training split of the UV data set
  (:mod:`ganfit_core.texture.dataset`) with ``pca_components`` components: with the same data and
  64 components it is the ``texture_pca`` asset's model.
- Data: each training map's **residual** after its projection on the PCA span (what the PCA cannot
  express), area-downsampled to the generator's resolution and divided by its RMS; real residuals go
  through :func:`~ganfit_core.texture.augment.augment_residual` (mirror, small shifts).
- Loss: non-saturating logistic GAN loss, lazy R1 penalty on real data every ``r1_every`` steps,
  DiffAugment (colour, translation, cutout) on everything the discriminator sees; Adam
  (beta1 = 0, beta2 = 0.99); an exponential moving average of the generator is what gets published.
- Output folder: ``config.json`` (the :class:`TrainConfig`), ``checkpoint.safetensors`` (generator,
  EMA generator, discriminator, both optimisers' state, the step; for ``--resume``),
  ``texture_gan.safetensors`` (the prior file that ``load_gan_prior`` reads), and
  ``samples-NNNNNN.png`` sample grids per checkpoint (fixed seeds, EMA generator; top half: the PCA
  mean plus residuals, bottom half: the residuals alone, x4 around grey).
- Seeded (``seed``) and resumable; the same command on the same machine gives the same file.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganfit_core.texture.augment import augment_residual, diff_augment
from ganfit_core.texture.dataset import UVDataset, load_uv_dataset
from ganfit_core.texture.gan import Discriminator, GANConfig, Generator, w_statistics
from ganfit_core.texture.gan_prior import GANTexturePrior, pca_residuals, save_gan_prior
from ganfit_core.texture.pca import PCAModel, pca_from_dataset

__all__ = ["TrainConfig", "CONFIGS", "TrainProgress", "train_gan"]

CHECKPOINT = "checkpoint.safetensors"
PRIOR_FILE = "texture_gan.safetensors"


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (saved as ``config.json``)."""

    gan: GANConfig
    steps: int = 2000
    batch: int = 16
    lr: float = 0.002
    r1_gamma: float = 0.05  # StyleGAN2's heuristic: about 0.0002 * resolution^2 / batch
    r1_every: int = 4
    ema_half_life_steps: float = 100.0
    checkpoint_every: int = 250
    pca_components: int = 64
    seed: int = 0
    threads: int = 2

    def to_dict(self) -> dict:
        data = asdict(self)
        data["gan"] = self.gan.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        data = dict(data)
        gan = GANConfig.from_dict(data.pop("gan"))
        known = set(cls.__dataclass_fields__)
        return cls(gan=gan, **{k: v for k, v in data.items() if k in known})


#: ``tiny``: seconds on a CPU (the CI smoke test). ``full``: the published prior (64 PCA components,
#: a 64x64 residual generator; about 0.4 s/step on one free CPU core: 6000 steps in about 40 minutes).
CONFIGS: dict[str, TrainConfig] = {
    "tiny": TrainConfig(gan=GANConfig(resolution=16, z_dim=16, w_dim=16, mapping_layers=2, channel_base=128,
                                      channel_max=16),
                        steps=40, batch=8, r1_gamma=0.01, checkpoint_every=20, ema_half_life_steps=5.0,
                        pca_components=8, threads=1),
    "full": TrainConfig(gan=GANConfig(resolution=64, z_dim=64, w_dim=64, mapping_layers=4,
                                      channel_base=512, channel_max=32),
                        steps=6000, batch=8, r1_gamma=0.05, checkpoint_every=250, ema_half_life_steps=50.0,
                        threads=1),
}


@dataclass(frozen=True)
class TrainProgress:
    """One progress report: step, losses, seconds since the run (re)started."""

    step: int
    losses: dict[str, float]
    elapsed_s: float


def _real_residuals(data: UVDataset, pca: PCAModel, resolution: int) -> tuple[torch.Tensor, float]:
    """Training residuals at the generator resolution (N, 3, r, r), divided by their RMS, and that RMS."""
    train, _ = data.split()
    if len(train) < 2:
        raise ValueError(f"need at least 2 training textures, got {len(train)}")
    full = data.subset(train).float_textures()  # (N, R, R, 3)
    k = pca.basis.shape[0]
    basis = torch.from_numpy(pca.basis).reshape(k, -1)
    residual = pca_residuals(full, torch.from_numpy(pca.mean), basis, torch.from_numpy(pca.std))
    x = residual.permute(0, 3, 1, 2)
    if x.shape[-1] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="area")
    scale = float(x.pow(2).mean().sqrt().clamp_min(1e-6))
    return (x / scale).contiguous(), scale


def _optimizer_state(opt: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for i, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            out[f"{prefix}.{i}.{key}"] = torch.as_tensor(value).clone().contiguous()
    return out


def _load_optimizer_state(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], prefix: str) -> None:
    state_dict = opt.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    state_dict["state"] = state
    opt.load_state_dict(state_dict)


def _sample_grid(prior: GANTexturePrior, seeds: int = 8) -> np.ndarray:
    """Samples of fixed seeds (PCA mean + residual; residual x4 around grey) as one uint8 grid image."""
    from ganfit_core.texture.dataset import contact_sheet

    with torch.no_grad():
        latent = prior.sample_latent(seeds, seed=1234, pca=False)
        tex = prior.decode(latent)
        res = (0.5 + 4.0 * prior.residual(prior.split(latent)[1])).clamp(0, 1)
    images = torch.cat([tex, res]).numpy()
    return contact_sheet(np.round(images * 255).astype(np.uint8), columns=seeds, size=128)


def train_gan(
    data: UVDataset | Path,
    out_dir: Path,
    config: TrainConfig,
    *,
    resume: bool = False,
    progress: Callable[[TrainProgress], None] | None = None,
) -> Path:
    """Train (or resume) the texture GAN prior; returns the path of ``texture_gan.safetensors``.

    ``data``: a UV data set or the folder of its ``uv_textures.safetensors``; its training split
    (held-out identities excluded) is used, for the PCA as for the GAN.
    """
    from PIL import Image
    from safetensors.torch import load_file, save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset = data if isinstance(data, UVDataset) else load_uv_dataset(Path(data))
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        torch.manual_seed(config.seed)
        cfg = config.gan
        pca = pca_from_dataset(dataset, config.pca_components)
        reals, residual_scale = _real_residuals(dataset, pca, cfg.resolution)
        g = Generator(cfg)
        d = Discriminator(cfg)
        g_ema = copy.deepcopy(g).eval().requires_grad_(False)
        betas = (0.0, 0.99)
        r1_ratio = config.r1_every / (config.r1_every + 1)
        opt_g = torch.optim.Adam(g.parameters(), lr=config.lr, betas=betas)
        opt_d = torch.optim.Adam(d.parameters(), lr=config.lr * r1_ratio, betas=(0.0, 0.99**r1_ratio))
        step = 0
        ckpt = out_dir / CHECKPOINT
        if resume and ckpt.is_file():
            tensors = load_file(str(ckpt))
            g.load_state_dict({k[2:]: v for k, v in tensors.items() if k.startswith("g.")})
            g_ema.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("g_ema.")})
            d.load_state_dict({k[2:]: v for k, v in tensors.items() if k.startswith("d.")})
            _load_optimizer_state(opt_g, tensors, "opt_g")
            _load_optimizer_state(opt_d, tensors, "opt_d")
            step = int(tensors["step"].item())
        (out_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")

        gen = torch.Generator().manual_seed(config.seed * 1000003 + step)
        ema_beta = 0.5 ** (1.0 / max(config.ema_half_life_steps, 1e-8))
        start = time.perf_counter()
        n = reals.shape[0]

        def fake_batch() -> torch.Tensor:
            z = torch.randn(config.batch, cfg.z_dim, generator=gen)
            return g(z)

        def real_batch() -> torch.Tensor:
            idx = torch.randint(0, n, (config.batch,), generator=gen)
            return augment_residual(reals[idx], gen)

        while step < config.steps:
            # Discriminator step.
            g.requires_grad_(False)
            d.requires_grad_(True)
            real = real_batch()
            with torch.no_grad():
                fake = fake_batch()
            loss_d = (F.softplus(d(diff_augment(fake, gen))).mean()
                      + F.softplus(-d(diff_augment(real, gen))).mean())
            losses = {"d": float(loss_d.detach())}
            if step % config.r1_every == 0:
                real_r1 = real.detach().requires_grad_(True)
                logits = d(diff_augment(real_r1, gen))
                (grad,) = torch.autograd.grad(logits.sum(), real_r1, create_graph=True)
                r1 = grad.pow(2).sum(dim=(1, 2, 3)).mean()
                loss_d = loss_d + 0.5 * config.r1_gamma * config.r1_every * r1
                losses["r1"] = float(r1.detach())
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()

            # Generator step.
            g.requires_grad_(True)
            d.requires_grad_(False)
            loss_g = F.softplus(-d(diff_augment(fake_batch(), gen))).mean()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            losses["g"] = float(loss_g.detach())
            with torch.no_grad():
                for p_ema, p in zip(g_ema.parameters(), g.parameters(), strict=True):
                    p_ema.lerp_(p, 1.0 - ema_beta)
            step += 1
            if progress is not None:
                progress(TrainProgress(step, losses, time.perf_counter() - start))

            if step % config.checkpoint_every == 0 or step == config.steps:
                tensors = {f"g.{k}": v.contiguous() for k, v in g.state_dict().items()}
                tensors.update({f"g_ema.{k}": v.contiguous() for k, v in g_ema.state_dict().items()})
                tensors.update({f"d.{k}": v.contiguous() for k, v in d.state_dict().items()})
                tensors.update(_optimizer_state(opt_g, "opt_g"))
                tensors.update(_optimizer_state(opt_d, "opt_d"))
                tensors["step"] = torch.tensor(step)
                save_file(tensors, str(out_dir / (CHECKPOINT + ".tmp")))
                (out_dir / (CHECKPOINT + ".tmp")).replace(ckpt)
                info = {"step": step, "train": replace(config).to_dict(),
                        "data": {"source": dataset.info.get("source"), "count": n,
                                 "format": dataset.info.get("format"),
                                 "attribution": dataset.info.get("attribution", "")}}
                save_gan_prior(out_dir / (PRIOR_FILE + ".tmp"), g_ema, pca, residual_scale, info=info)
                (out_dir / (PRIOR_FILE + ".tmp")).replace(out_dir / PRIOR_FILE)
                w_avg, w_std = w_statistics(g_ema)
                prior = GANTexturePrior(g_ema, pca, w_avg, w_std, residual_scale)
                Image.fromarray(_sample_grid(prior)).save(out_dir / f"samples-{step:06d}.png")
    finally:
        torch.set_num_threads(threads)
    return out_dir / PRIOR_FILE
