"""Variational autoencoders: the KL term is applied, scores are deterministic, sampling works."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import bar_images as _bars
from hourglass import Autoencoder
from hourglass.exceptions import InvalidInputError, InvalidParameterError
from hourglass.nn.variational import gaussian_kl


def _posterior(model: Autoencoder, X: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return model.module_.posterior(torch.from_numpy(X.astype(np.float32) / 255))


@pytest.fixture(scope="module")
def vae() -> Autoencoder:
    return Autoencoder(arch="vae", latent_dim=4, epochs=15, verbose=0, random_state=0).fit(
        _bars(800, seed=0)
    )


def test_gaussian_kl_is_zero_for_the_prior_and_positive_otherwise() -> None:
    zeros = torch.zeros(3, 4)
    assert torch.equal(gaussian_kl(zeros, zeros), torch.zeros(3))
    assert (gaussian_kl(torch.ones(3, 4), zeros) == 2.0).all()  # 0.5 * 4 * 1^2
    assert (gaussian_kl(zeros, torch.full((3, 4), -2.0)) > 0).all()


def test_the_kl_term_pulls_the_posterior_towards_the_prior(vae: Autoencoder) -> None:
    X = _bars(800, seed=0)
    without_kl = Autoencoder(
        arch="vae", latent_dim=4, epochs=15, beta=0.0, verbose=0, random_state=0
    )
    without_kl.fit(X)
    mean, log_var = _posterior(vae, X[:200])
    mean0, log_var0 = _posterior(without_kl, X[:200])
    kl, kl0 = gaussian_kl(mean, log_var).mean().item(), gaussian_kl(mean0, log_var0).mean().item()
    assert kl > 0.1  # applied: the posterior is not the prior
    assert kl < kl0 / 3  # and it shrinks the posterior towards it
    assert log_var.exp().mean() > 10 * log_var0.exp().mean()


def test_scores_are_deterministic_and_use_the_posterior_mean(vae: Autoencoder) -> None:
    X = _bars(100, seed=1)
    np.testing.assert_array_equal(vae.reconstruction_error(X), vae.reconstruction_error(X))
    np.testing.assert_array_equal(vae.negative_elbo(X), vae.negative_elbo(X))
    mean, _ = _posterior(vae, X)
    np.testing.assert_allclose(vae.transform(X), mean.numpy(), rtol=1e-6, atol=1e-6)


def test_monte_carlo_elbo_is_reproducible_with_a_seed(vae: Autoencoder) -> None:
    X = _bars(100, seed=2)
    a = vae.negative_elbo(X, n_samples=4, random_state=7)
    np.testing.assert_array_equal(a, vae.negative_elbo(X, n_samples=4, random_state=7))
    assert not np.array_equal(a, vae.negative_elbo(X, n_samples=4, random_state=8))
    assert (a >= vae.negative_elbo(X) * 0.5).all()  # same order of magnitude as the mean code


def test_negative_elbo_flags_noise_images(vae: Autoencoder) -> None:
    normal = vae.negative_elbo(_bars(200, seed=3))
    noise = vae.negative_elbo(
        np.random.default_rng(4).integers(0, 256, (50, 12, 12), dtype=np.uint8)
    )
    assert noise.min() > np.quantile(normal, 0.95)


def test_sampling_from_the_prior(vae: Autoencoder) -> None:
    samples = vae.sample(6, random_state=0)
    assert samples.shape == (6, 12, 12)
    assert samples.min() >= 0.0
    assert samples.max() <= 1.0
    np.testing.assert_array_equal(samples, vae.sample(6, random_state=0))


@pytest.mark.parametrize("arch", ["vae", "conv_vae"])
def test_the_same_seed_draws_the_same_samples_on_any_thread_count(arch: str) -> None:
    model = Autoencoder(arch=arch, latent_dim=4, epochs=1, verbose=0, random_state=0)
    model.fit(_bars(64, seed=1))
    threads = torch.get_num_threads()
    try:
        drawn: dict[int, list[np.ndarray]] = {5: [], 40: []}
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            for n, samples in drawn.items():
                samples.append(model.sample(n, random_state=3))
    finally:
        torch.set_num_threads(threads)
    for samples in drawn.values():
        for other in samples[1:]:
            np.testing.assert_array_equal(other, samples[0])


def test_arguments_that_cannot_work_are_parameter_errors(vae: Autoencoder) -> None:
    with pytest.raises(InvalidParameterError, match="The number of samples n must be an int >= 0"):
        vae.sample(-1)
    with pytest.raises(InvalidParameterError, match="random_state must be None, an int"):
        vae.sample(2, random_state="seed")
    with pytest.raises(InvalidParameterError, match=r"n_samples must be an int >= 0; got 1\.5"):
        vae.negative_elbo(_bars(5, seed=6), n_samples=1.5)  # type: ignore[arg-type]


def test_variational_methods_need_a_variational_model() -> None:
    model = Autoencoder(latent_dim=2, epochs=1, verbose=0).fit(_bars(50, seed=5))
    with pytest.raises(InvalidInputError, match="negative_elbo needs a variational autoencoder"):
        model.negative_elbo(_bars(5, seed=6))
    with pytest.raises(InvalidInputError, match="sample needs a variational autoencoder"):
        model.sample(3)
