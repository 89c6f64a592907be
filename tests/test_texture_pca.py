"""The PCA texture prior: fitting, round trip, ordering, determinism, the registered asset."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from ganfit_core.texture.pca import PCATexturePrior, fit_pca, load_pca, save_pca


def _low_rank_textures(n: int = 40, rank: int = 5, res: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mean = rng.uniform(0.3, 0.7, (res, res, 3))
    basis = rng.normal(0, 1, (rank, res, res, 3))
    basis /= np.linalg.norm(basis.reshape(rank, -1), axis=1)[:, None, None, None]
    scales = np.array([4.0, 2.0, 1.0, 0.5, 0.25])[:rank]
    coeffs = rng.normal(0, 1, (n, rank)) * scales * 0.5
    return mean + np.einsum("nk,krcd->nrcd", coeffs, basis)


def test_pca_round_trip_and_variance_ordering() -> None:
    x = _low_rank_textures()
    model = fit_pca(x, 8)
    assert model.basis.shape == (8, 16, 16, 3)
    assert (np.diff(model.std) <= 1e-6).all()
    assert model.explained[:5].sum() > 0.999  # five true components carry all the variance
    prior = PCATexturePrior(model)
    target = torch.from_numpy(x[:6]).float()
    z = prior.project(target, ridge=1e-8)
    np.testing.assert_allclose(prior.decode(z).numpy(), np.clip(x[:6], 0, 1), atol=2e-3)
    # Latents of the training data are standardised: about unit variance on the kept components.
    z_all = prior.project(torch.from_numpy(x).float(), ridge=1e-8)
    np.testing.assert_allclose(z_all[:, :5].std(0).numpy(), 1.0, atol=0.05)


def test_pca_prior_interface() -> None:
    prior = PCATexturePrior(fit_pca(_low_rank_textures(), 4))
    latent = prior.initial_latent(2).requires_grad_(True)
    tex = prior.decode(latent + 0.1)
    assert tex.shape == (2, 16, 16, 3) and tex.min() >= 0 and tex.max() <= 1
    tex.sum().backward()
    assert latent.grad is not None and latent.grad.abs().sum() > 0
    assert float(prior.regulariser(torch.ones(3, 4))) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="latent"):
        prior.decode(torch.zeros(1, 5))


def test_pca_file_is_deterministic(tmp_path) -> None:
    x = (_low_rank_textures() * 255).clip(0, 255).astype(np.uint8)
    digests = []
    for i in range(2):
        path = tmp_path / f"pca{i}.safetensors"
        save_pca(fit_pca(x, 6, info={"k": 1}), path)
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    loaded = load_pca(tmp_path / "pca0.safetensors")
    assert loaded.info == {"k": 1} and loaded.basis.shape[0] == 6


def test_load_texture_prior_pca_from_the_asset(need_asset) -> None:
    from ganfit_core.assets import ASSETS
    from ganfit_core.texture import load_texture_prior

    if "texture_pca" not in ASSETS:
        pytest.fail("texture_pca is not registered in ganfit_core.assets.ASSETS")
    need_asset("texture_pca")
    prior = load_texture_prior("pca")
    tex = prior.decode(prior.initial_latent(1))
    assert tex.shape == (1, prior.resolution, prior.resolution, 3)
    assert 0.2 < float(tex.mean()) < 0.9  # a skin-coloured mean texture, not black or white
