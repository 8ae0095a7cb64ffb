"""A variational autoencoder around a dense or convolutional body.

The body is an ordinary autoencoder module whose code layer is used as a
feature extractor: two Linear heads map its features to the mean and the log
variance of a diagonal Gaussian posterior ``q(z | x)``, a sample
``z = mean + std * eps`` (the reparameterisation trick) goes through a Linear
layer back to the body's code size, and the body's decoder produces the
reconstruction. The prior is a standard normal.

Training minimises, per input value, the reconstruction loss plus
``beta * KL(q(z | x) || N(0, I)) / n_features`` — with ``beta = 1`` that is the
negative evidence lower bound (ELBO) divided by the number of input values.
In eval mode the code is the posterior mean, so scores are deterministic.
"""

from __future__ import annotations

import torch
from torch import nn

from hourglass.nn.base import ReconstructionModule
from hourglass.nn.blocks import glorot_normal_, make_activation
from hourglass.nn.fused import reconstruction_loss_reference

__all__ = ["VariationalAutoencoder", "gaussian_kl"]


def gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL divergence of ``N(mean, exp(log_var))`` from ``N(0, I)``, per sample ``(batch,)``."""
    return 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var).sum(dim=1)


class VariationalAutoencoder(ReconstructionModule):
    """A Gaussian-posterior VAE whose encoder and decoder trunks come from ``body``.

    Parameters
    ----------
    body : ReconstructionModule
        A dense or convolutional autoencoder; its code (``body.config.latent_dim``
        values, after the activation) is the feature vector the heads read.
    latent_dim : int
        Size of ``z``.
    beta : float, default=1.0
        Weight of the KL term.
    generator : torch.Generator, optional
        Source of randomness for the initial weights of the heads.
    """

    def __init__(
        self,
        body: ReconstructionModule,
        latent_dim: int,
        *,
        beta: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.body = body
        self.config = body.config
        self.latent_dim = latent_dim
        self.beta = beta
        features = body.config.latent_dim
        self.to_mean = nn.Linear(features, latent_dim)
        self.to_log_var = nn.Linear(features, latent_dim)
        expand = nn.Linear(latent_dim, features)
        self.from_latent = nn.Sequential(expand, make_activation(body.config.activation))
        for layer in (self.to_mean, self.to_log_var, expand):
            glorot_normal_(layer.weight, generator)
            nn.init.zeros_(layer.bias)
        #: Draws the reparameterisation noise while training; set it for reproducibility.
        self.sampling_generator: torch.Generator | None = None

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log variance of ``q(z | x)``, each ``(batch, latent_dim)``."""
        features = self.body.encode(x)
        return self.to_mean(features), self.to_log_var(features)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean: a deterministic code ``(batch, latent_dim)``."""
        return self.posterior(x)[0]

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Map latent vectors to pre-activation outputs of shape ``(batch, *input_shape)``."""
        return self.body.decode_logits(self.from_latent(z))

    def sample_latent(
        self, mean: torch.Tensor, log_var: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """``mean + std * eps`` with ``eps ~ N(0, I)`` from ``generator``."""
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return mean + (0.5 * log_var).exp() * eps

    def reconstruction_loss(
        self, x: torch.Tensor, target: torch.Tensor, loss: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-value reconstruction loss plus ``beta`` times the per-value KL term.

        In training mode the code is sampled (with :attr:`sampling_generator`);
        in eval mode it is the posterior mean. Returns ``(loss, mae)``.
        """
        mean, log_var = self.posterior(x)
        z = self.sample_latent(mean, log_var, self.sampling_generator) if self.training else mean
        logits = self.decode_logits(z)
        reconstruction, mae = reconstruction_loss_reference(
            logits, target, self.config.output_activation, loss
        )
        n_features = logits[0].numel()
        kl = gaussian_kl(mean, log_var).mean() / n_features
        return reconstruction + self.beta * kl, mae
