"""The texture GAN prior: networks, augmentations, the PCA + orthogonal residual prior, tiny training,
checkpoint and resume, prior loading."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from ganfit_core.texture.augment import augment_real, augment_residual, diff_augment
from ganfit_core.texture.dataset import synthetic_uv_dataset
from ganfit_core.texture.gan import Discriminator, GANConfig, Generator, w_statistics
from ganfit_core.texture.gan_prior import GANTexturePrior, load_gan_file, load_gan_prior, pca_residuals
from ganfit_core.texture.pca import PCATexturePrior, fit_pca
from ganfit_core.texture.train import CONFIGS, train_gan


def test_generator_and_discriminator_shapes() -> None:
    cfg = GANConfig(resolution=16, z_dim=8, w_dim=8, mapping_layers=2, channel_base=64, channel_max=8)
    g, d = Generator(cfg), Discriminator(cfg)
    x = g(torch.randn(3, 8))
    assert x.shape == (3, 3, 16, 16)
    assert d(x).shape == (3,)


def test_augmentations_keep_shape_range_and_gradients() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 16, 16)
    y = augment_real(x, gen)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    r = augment_residual(x - 0.5, gen)
    assert r.shape == x.shape and r.min() < 0
    x.requires_grad_(True)
    z = diff_augment(x, gen)
    z.sum().backward()
    assert z.shape == x.shape and x.grad is not None and x.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def small_prior() -> tuple[GANTexturePrior, np.ndarray]:
    rng = np.random.default_rng(0)
    textures = rng.random((12, 16, 16, 3))
    pca = fit_pca(textures, 5)
    cfg = GANConfig(resolution=8, z_dim=8, w_dim=8, mapping_layers=2, channel_base=64, channel_max=8)
    torch.manual_seed(0)
    g = Generator(cfg)
    w_avg, w_std = w_statistics(g, samples=256)
    return GANTexturePrior(g, pca, w_avg, w_std, residual_scale=0.2), textures


def test_residual_is_orthogonal_to_the_pca_span(small_prior) -> None:
    prior, _ = small_prior
    v = torch.randn(3, prior.w_size)
    res = prior.residual(v).reshape(3, -1)
    assert float(res.abs().max()) > 1e-3  # the GAN adds something...
    coeff = res @ prior.basis.T  # ...but nothing the PCA could express
    assert float(coeff.abs().max()) < 1e-4 * float(prior.basis.norm(dim=1).max() * res.norm(dim=1).max())


def test_pca_part_of_the_decoded_texture_equals_the_pca_prior(small_prior) -> None:
    """Never worse than the PCA in its subspace: projecting a GAN texture on the span gives the PCA's."""
    prior, _ = small_prior
    pca = PCATexturePrior(fit_pca(small_prior[1], 5))
    z = 0.3 * torch.randn(2, prior.pca_size)
    latent = torch.cat([z, torch.randn(2, prior.w_size)], 1)
    flat = prior.decode(latent).reshape(2, -1) - prior.mean.reshape(1, -1)
    flat_pca = pca.decode(z).reshape(2, -1) - pca.mean.reshape(1, -1)
    coeff = (flat @ prior.basis.T) / prior.std.pow(2)
    coeff_pca = (flat_pca @ pca.basis.T) / prior.std.pow(2)
    torch.testing.assert_close(coeff, coeff_pca, atol=2e-3, rtol=0)
    # The fit starts exactly where the PCA's does: the initial latent decodes to the PCA mean.
    start = prior.decode(prior.initial_latent(1))[0]
    torch.testing.assert_close(start, pca.mean.clamp(0, 1), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="expected shape"):
        prior.decode(torch.zeros(1, prior.latent_size + 1))


def test_pca_residuals_vanish_on_the_span_only() -> None:
    rng = np.random.default_rng(1)
    train = rng.random((6, 8, 8, 3))
    model = fit_pca(train, 5)  # 5 = N - 1 components: the span holds every centred training map
    basis = torch.from_numpy(model.basis).reshape(5, -1)
    args = (torch.from_numpy(model.mean), basis, torch.from_numpy(model.std))
    inside = pca_residuals(torch.from_numpy(train).float(), *args)
    outside = pca_residuals(torch.from_numpy(rng.random((2, 8, 8, 3))).float(), *args)
    assert inside.shape == (6, 8, 8, 3) and float(inside.abs().max()) < 1e-4
    assert float(outside.abs().max()) > 0.1  # a new map is not in the span


def test_tiny_training_end_to_end_and_resume(tmp_path) -> None:
    data = synthetic_uv_dataset(12, 32)
    config = replace(CONFIGS["tiny"], steps=4, checkpoint_every=2)
    path = train_gan(data, tmp_path, config)
    assert path.name == "texture_gan.safetensors" and path.is_file()
    assert (tmp_path / "samples-000002.png").is_file() and (tmp_path / "samples-000004.png").is_file()
    assert json.loads((tmp_path / "config.json").read_text())["steps"] == 4

    prior = load_gan_prior(path=path)
    k = min(config.pca_components, len(data.split()[0]) - 1)
    assert prior.resolution == 32 and prior.latent_size == k + config.gan.w_dim
    assert prior.info["step"] == 4 and prior.info["format"] == 2
    latent = prior.initial_latent(2).requires_grad_(True)
    tex = prior.decode(latent + 0.01 * torch.randn(2, prior.latent_size))
    assert tex.shape == (2, 32, 32, 3) and tex.min() >= 0 and tex.max() <= 1
    (tex * torch.rand_like(tex)).sum().backward()
    assert latent.grad is not None and latent.grad[:, k:].abs().sum() > 0  # the GAN latent is fitted too
    assert float(prior.regulariser(prior.initial_latent(1))) == 0.0

    train_gan(data, tmp_path, replace(config, steps=6), resume=True)
    assert load_gan_prior(path=path).info["step"] == 6
    assert (tmp_path / "samples-000006.png").is_file()


def test_training_is_seeded(tmp_path) -> None:
    data = synthetic_uv_dataset(12, 32)
    config = replace(CONFIGS["tiny"], steps=3, checkpoint_every=3)
    a = train_gan(data, tmp_path / "a", config).read_bytes()
    assert a == train_gan(data, tmp_path / "b", config).read_bytes()
    assert a != train_gan(data, tmp_path / "c", replace(config, seed=1)).read_bytes()


def test_an_old_format_file_is_refused(tmp_path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "old.safetensors"
    save_file({"mean": torch.zeros(4, 4, 3)}, str(path), metadata={"ganfit": json.dumps({"format": 1})})
    with pytest.raises(ValueError, match="format 1"):
        load_gan_file(path)
