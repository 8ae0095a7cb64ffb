"""The variational families (``arch="vae"`` and ``"conv_vae"``): Gaussian codes, sampling.

Beside the reconstruction error, a variational model scores samples by their
negative evidence lower bound and draws new samples from its prior.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from numpy.typing import NDArray

from hourglass.families._arrays import ArrayFamily, clip_to_training_range
from hourglass.families.conv import ConvolutionalImages, conv_body
from hourglass.nn import DenseAutoencoder, DenseConfig, VariationalAutoencoder
from hourglass.nn.variational import gaussian_kl
from hourglass.scoring import per_sample_error
from hourglass.threads import num_threads

if TYPE_CHECKING:
    from hourglass.estimators._base import BaseAutoencoder
    from hourglass.nn import ReconstructionModule

__all__ = ["ConvVariationalFamily", "DenseVariationalFamily", "VariationalFamily"]

#: Width of the features a variational head reads from a convolutional body.
CONV_VAE_FEATURES = 256
#: Hidden widths of a dense variational body when ``hidden_dims`` is empty.
VAE_HIDDEN_DIMS = (256,)


class VariationalFamily(ArrayFamily):
    """What both variational families share: the Gaussian head, the ELBO and sampling."""

    samples: ClassVar[bool] = True

    def body(self, estimator: BaseAutoencoder, generator: torch.Generator) -> ReconstructionModule:
        """The deterministic network whose code the Gaussian head reads."""
        raise NotImplementedError

    def build_module(
        self, estimator: BaseAutoencoder, generator: torch.Generator
    ) -> ReconstructionModule:
        return VariationalAutoencoder(
            self.body(estimator, generator),
            int(estimator.latent_dim),
            beta=float(estimator.beta),
            generator=generator,
        )

    def slices_batches(self, estimator: BaseAutoencoder) -> bool:
        """No: the codes are sampled, and slices in parallel would draw in any order."""
        return False

    def attach_generators(
        self, module: ReconstructionModule, generators: dict[str, torch.Generator]
    ) -> None:
        assert isinstance(module, VariationalAutoencoder)  # what build_module makes
        module.sampling_generator = generators["sampling"]

    def negative_elbo(
        self,
        estimator: BaseAutoencoder,
        values: NDArray[Any],
        n_samples: int,
        generator: torch.Generator,
    ) -> NDArray[np.float64]:
        """Reconstruction loss summed over the input values plus KL, per sample."""
        module = estimator.module_
        assert isinstance(module, VariationalAutoencoder)
        metric = "bce" if estimator.loss_ == "bce" else "mse"

        def summed_error(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            logits = module.decode_logits(z)
            if estimator.output_activation_ == "sigmoid":
                error = per_sample_error(logits, x, metric, from_logits=True)
            else:
                clipped = clip_to_training_range(estimator, logits)
                error = per_sample_error(clipped, x, metric, from_logits=False)
            return error * x[0].numel()  # a sum over the input values, as in the ELBO

        def run(network: ReconstructionModule, x: torch.Tensor) -> torch.Tensor:
            mean, log_var = module.posterior(x)
            if n_samples == 0:
                reconstruction = summed_error(mean, x)
            else:
                draws = [module.sample_latent(mean, log_var, generator) for _ in range(n_samples)]
                reconstruction = torch.stack([summed_error(z, x) for z in draws]).mean(dim=0)
            return reconstruction + gaussian_kl(mean, log_var)

        # The draws come from one generator: blocks run in order, on this thread.
        out = estimator._map_batches(values, run, parallel=False)
        return out.numpy().astype(np.float64)

    def sample(
        self, estimator: BaseAutoencoder, n: int, generator: torch.Generator
    ) -> NDArray[np.float32]:
        """``n`` samples decoded from codes drawn from the prior.

        Decoded on one thread, as one batch: kernels given several threads may split
        their sums, and the same seed must draw the same samples on any thread count.
        """
        module = estimator.module_
        assert isinstance(module, VariationalAutoencoder)
        module.eval()
        with num_threads(1), torch.inference_mode():
            z = torch.randn((n, module.latent_dim), generator=generator, device=estimator.device_)
            drawn = clip_to_training_range(estimator, module.output(module.decode_logits(z)))
        return drawn.cpu().numpy()


class DenseVariationalFamily(VariationalFamily):
    """A dense body whose last hidden layer feeds the Gaussian head."""

    name: ClassVar[str] = "vae"

    def body(self, estimator: BaseAutoencoder, generator: torch.Generator) -> ReconstructionModule:
        hidden = estimator._validated_hidden_dims() or VAE_HIDDEN_DIMS
        return DenseAutoencoder(
            DenseConfig(
                input_shape=estimator.input_shape_,
                latent_dim=hidden[-1],  # the body's code is the last hidden layer
                hidden_dims=hidden[:-1],
                activation=estimator.activation,
                output_activation=estimator.output_activation_,
            ),
            generator=generator,
        )


class ConvVariationalFamily(ConvolutionalImages, VariationalFamily):
    """A convolutional body with :data:`CONV_VAE_FEATURES` features under the Gaussian head."""

    name: ClassVar[str] = "conv_vae"

    def body(self, estimator: BaseAutoencoder, generator: torch.Generator) -> ReconstructionModule:
        return conv_body(estimator, generator, CONV_VAE_FEATURES)
