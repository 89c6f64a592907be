"""The texture GAN: networks, augmentations, tiny end-to-end training, checkpoint, prior loading."""

from __future__ import annotations

import json
from dataclasses import replace

import torch

from ganfit_core.texture.augment import augment_real, diff_augment
from ganfit_core.texture.dataset import synthetic_uv_dataset
from ganfit_core.texture.gan import Discriminator, GANConfig, Generator, load_gan_prior
from ganfit_core.texture.train import CONFIGS, train_gan


def test_generator_and_discriminator_shapes() -> None:
    cfg = GANConfig(resolution=16, z_dim=8, w_dim=8, mapping_layers=2, channel_base=64, channel_max=8)
    g, d = Generator(cfg), Discriminator(cfg)
    x = g(torch.randn(3, 8))
    assert x.shape == (3, 3, 16, 16)
    assert d(x.clamp(0, 1)).shape == (3,)


def test_augmentations_keep_shape_range_and_gradients() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 16, 16)
    y = augment_real(x, gen)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    x.requires_grad_(True)
    z = diff_augment(x, gen)
    z.sum().backward()
    assert z.shape == x.shape and x.grad is not None and x.grad.abs().sum() > 0


def test_tiny_training_end_to_end_and_resume(tmp_path) -> None:
    data = synthetic_uv_dataset(12, 32)
    config = replace(CONFIGS["tiny"], steps=4, checkpoint_every=2)
    path = train_gan(data, tmp_path, config)
    assert path.name == "texture_gan.safetensors" and path.is_file()
    assert (tmp_path / "samples-000002.png").is_file() and (tmp_path / "samples-000004.png").is_file()
    assert json.loads((tmp_path / "config.json").read_text())["steps"] == 4

    prior = load_gan_prior(path=path)
    assert prior.resolution == 32 and prior.latent_size == config.gan.w_dim
    assert prior.info["step"] == 4
    latent = prior.initial_latent(2).requires_grad_(True)
    tex = prior.decode(latent + 0.01 * torch.randn(2, prior.latent_size))
    assert tex.shape == (2, 32, 32, 3) and tex.min() >= 0 and tex.max() <= 1
    (tex * torch.rand_like(tex)).sum().backward()
    assert latent.grad is not None and latent.grad.abs().sum() > 0
    assert float(prior.regulariser(prior.initial_latent(1))) == 0.0

    train_gan(data, tmp_path, replace(config, steps=6), resume=True)
    assert load_gan_prior(path=path).info["step"] == 6
    assert (tmp_path / "samples-000006.png").is_file()
