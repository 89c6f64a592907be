"""Training loop of the texture GAN (:mod:`ganfit_core.texture.gan`).

``python -m ganfit_core.texture train --data DIR --out DIR --config tiny|full [--steps N] [--resume]``

- Data: the training split of a UV data set (:mod:`ganfit_core.texture.dataset`), area-downsampled
  to the generator's resolution; real maps go through :func:`~ganfit_core.texture.augment.augment_real`.
- Loss: non-saturating logistic GAN loss, lazy R1 penalty on real data every ``r1_every`` steps,
  DiffAugment (colour, translation, cutout) on everything the discriminator sees; Adam
  (beta1 = 0, beta2 = 0.99); an exponential moving average of the generator is what gets published.
- Output folder: ``config.json`` (the :class:`TrainConfig`), ``checkpoint.safetensors`` (generator,
  EMA generator, discriminator, both optimisers' state, the step; for ``--resume``),
  ``texture_gan.safetensors`` (the prior file that ``load_gan_prior`` reads), and
  ``samples-NNNNNN.png`` sample grids (fixed seeds, EMA generator) per checkpoint.
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

from ganfit_core.texture.augment import augment_real, diff_augment
from ganfit_core.texture.dataset import UVDataset, load_uv_dataset
from ganfit_core.texture.gan import Discriminator, GANConfig, Generator, save_generator

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


#: ``tiny``: seconds on a CPU (the CI smoke test). ``full``: a real run (about 2 s/step on 2 CPU cores).
CONFIGS: dict[str, TrainConfig] = {
    "tiny": TrainConfig(gan=GANConfig(resolution=16, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256,
                                      channel_max=32),
                        steps=40, batch=8, r1_gamma=0.01, checkpoint_every=20, ema_half_life_steps=5.0,
                        threads=1),
    "full": TrainConfig(gan=GANConfig(resolution=64, z_dim=128, w_dim=128, mapping_layers=4,
                                      channel_base=1024, channel_max=64),
                        steps=3000, batch=16, r1_gamma=0.05, checkpoint_every=100, ema_half_life_steps=50.0),
}


@dataclass(frozen=True)
class TrainProgress:
    """One progress report: step, losses, seconds since the run (re)started."""

    step: int
    losses: dict[str, float]
    elapsed_s: float


def _real_batches(data: UVDataset, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Training maps at the generator resolution (N, 3, r, r) and the mean texture at full resolution."""
    train, _ = data.split()
    if len(train) < 2:
        raise ValueError(f"need at least 2 training textures, got {len(train)}")
    full = data.subset(train).float_textures()  # (N, R, R, 3)
    mean_full = full.mean(0)
    x = full.permute(0, 3, 1, 2)
    if x.shape[-1] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="area")
    return x.contiguous(), mean_full


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


def _sample_grid(generator: Generator, mean_r: torch.Tensor, seeds: int = 16) -> np.ndarray:
    """Sample textures of fixed seeds as one uint8 grid image (4 rows)."""
    from ganfit_core.texture.dataset import contact_sheet

    gen = torch.Generator().manual_seed(1234)
    z = torch.randn(seeds, generator.config.z_dim, generator=gen)
    with torch.no_grad():
        tex = (mean_r + generator(z)).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    size = max(64, generator.config.resolution)
    return contact_sheet(np.round(tex * 255).astype(np.uint8), columns=seeds // 4, size=size)


def train_gan(
    data: UVDataset | Path,
    out_dir: Path,
    config: TrainConfig,
    *,
    resume: bool = False,
    progress: Callable[[TrainProgress], None] | None = None,
) -> Path:
    """Train (or resume) the texture GAN; returns the path of the prior file ``texture_gan.safetensors``."""
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
        reals, mean_full = _real_batches(dataset, cfg.resolution)
        mean_r = reals.mean(0, keepdim=True)
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
            return mean_r + g(z)

        def real_batch() -> torch.Tensor:
            idx = torch.randint(0, n, (config.batch,), generator=gen)
            return augment_real(reals[idx], gen)

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
                                 "attribution": dataset.info.get("attribution", "")}}
                save_generator(out_dir / PRIOR_FILE, g_ema, mean_full, info=info)
                Image.fromarray(_sample_grid(g_ema, mean_r)).save(out_dir / f"samples-{step:06d}.png")
    finally:
        torch.set_num_threads(threads)
    return out_dir / PRIOR_FILE
