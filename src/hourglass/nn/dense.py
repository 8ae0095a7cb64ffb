"""A fully connected autoencoder: flatten, Linear layers down to the code, mirrored back up."""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from hourglass._subnormals import subnormals_flushed
from hourglass.nn import native
from hourglass.nn.base import ReconstructionModule
from hourglass.nn.blocks import glorot_normal_, make_activation
from hourglass.nn.fused import (
    FUSED_ACTIVATIONS,
    compiled_layer_arguments,
    gradient_buffer,
    loss_and_gradients,
)
from hourglass.nn.native import AdamWState
from hourglass.nn.noise import Corruption

__all__ = ["DenseAutoencoder", "DenseConfig"]


@dataclass(frozen=True)
class DenseConfig:
    """Architecture of a :class:`DenseAutoencoder`.

    The defaults build the reference model: 784 -> 64 -> 784, ReLU code,
    sigmoid output.
    """

    input_shape: tuple[int, ...] = (28, 28)  # one sample's shape, without the batch axis
    latent_dim: int = 64
    hidden_dims: tuple[int, ...] = ()  # encoder widths between input and code; decoder mirrors them
    activation: str = "relu"  # after every hidden layer and after the code layer
    output_activation: str = "sigmoid"  # "sigmoid" for data in [0, 1], "linear" otherwise

    @property
    def n_features(self) -> int:
        """Number of input values per sample (the product of ``input_shape``)."""
        return math.prod(self.input_shape)


def _linear(width_in: int, width_out: int) -> nn.Linear:
    # nn.Linear's own initialisation would draw from torch's global RNG: build it on
    # the meta device (no data, no randomness), then give it uninitialised storage.
    # Every Linear is initialised from the caller's generator in DenseAutoencoder.
    # (torch.nn.utils.skip_init does the same but imports sympy, ~0.4 s, on first use.)
    layer = nn.Linear(width_in, width_out, device="meta")
    layer.weight = nn.Parameter(torch.empty(width_out, width_in))
    layer.bias = nn.Parameter(torch.empty(width_out))
    return layer


def _stack(widths: list[int], activation: str) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for width_in, width_out in itertools.pairwise(widths):
        layers += [_linear(width_in, width_out), make_activation(activation)]
    return layers


class DenseAutoencoder(ReconstructionModule):
    """Encoder ``Linear+act`` stack to ``latent_dim``, decoder mirrored back to the input.

    ``forward`` returns the decoder's *pre-activation* output (logits for a
    sigmoid output), reshaped to the input's shape (see
    :class:`~hourglass.nn.base.ReconstructionModule`).

    Parameters
    ----------
    config : DenseConfig
        The architecture.
    generator : torch.Generator, optional
        Source of randomness for the initial weights (Glorot-normal weights,
        zero biases, as in Keras).
    """

    def __init__(self, config: DenseConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        widths = [config.n_features, *config.hidden_dims, config.latent_dim]
        self.encoder = nn.Sequential(nn.Flatten(), *_stack(widths, config.activation))
        decoder_widths = widths[::-1]
        # The decoder's last layer has no hidden activation: the output activation
        # is applied separately so that training can use logits.
        hidden = _stack(decoder_widths[:-1], config.activation)
        self.decoder = nn.Sequential(*hidden, _linear(decoder_widths[-2], decoder_widths[-1]))
        for module in self.modules():
            if isinstance(module, nn.Linear):
                glorot_normal_(module.weight, generator)
                nn.init.zeros_(module.bias)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``x`` of shape ``(batch, *input_shape)`` to codes ``(batch, latent_dim)``."""
        codes: torch.Tensor = self.encoder(x)  # (batch, latent_dim)
        return codes

    def encode_preactivation(self, x: torch.Tensor) -> torch.Tensor:
        """The codes before the code layer's activation (signed, never all zero)."""
        codes: torch.Tensor = self.encoder[:-1](x)
        return codes

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Map codes to pre-activation outputs of shape ``(batch, *input_shape)``."""
        flat: torch.Tensor = self.decoder(z)  # (batch, n_features)
        return flat.view(z.shape[0], *self.config.input_shape)

    @property
    def has_fused_gradients(self) -> bool:
        """Whether :meth:`loss_and_gradients` can be used (it depends on the activation)."""
        return self.config.activation in FUSED_ACTIVATIONS

    def loss_and_gradients(
        self, x: torch.Tensor, target: torch.Tensor, loss: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Like :meth:`reconstruction_loss`, but writes the parameters' gradients itself.

        The fast path for training (see :mod:`hourglass.nn.fused`): returns
        ``(loss, mae)`` without gradient and overwrites every parameter's
        ``.grad`` with the gradient of ``loss``.
        """
        return loss_and_gradients(
            x.reshape(x.shape[0], -1),  # (batch, n_features)
            target.reshape(target.shape[0], -1),
            self.linear_layers,
            activation=self.config.activation,
            output_activation=self.config.output_activation,
            loss=loss,
        )

    def compiled_batches(
        self, loss: str, *, scale: float, corruption: Corruption | None = None
    ) -> Callable[..., dict[str, torch.Tensor]] | None:
        """:meth:`train_batches` with these settings, where the compiled loop is built."""
        if not self.has_fused_gradients or native.module() is None:
            return None
        return functools.partial(self.train_batches, loss=loss, scale=scale, corruption=corruption)

    def train_batches(
        self,
        inputs: torch.Tensor,
        order: torch.Tensor | None,
        batch_size: int,
        first: int,
        count: int,
        optimizer: AdamWState,
        *,
        loss: str,
        scale: float,
        corruption: Corruption | None = None,
    ) -> dict[str, torch.Tensor]:
        """Train on batches ``first`` to ``first + count - 1`` of an epoch in one compiled call.

        Batch ``b`` holds the rows ``order[b * batch_size:(b + 1) * batch_size]`` of
        ``inputs`` (the rows in turn without ``order``), uint8 values divided by
        ``scale``, and is its own target; with a ``corruption`` the model sees the
        corrupted batch, drawn from its generator. Each batch's :meth:`loss_and_gradients` is
        followed by ``optimizer``'s update, with subnormal floats flushed to zero, as
        :func:`hourglass.training.train`'s loop does with a
        :class:`~hourglass.training.FusedAdamW`: the same bits, in one call instead of
        some fifty Python calls a batch (:mod:`hourglass.nn.native`).

        Returns
        -------
        dict of str to torch.Tensor
            ``"loss"`` and ``"mae"`` of every batch, each of shape ``(count,)``.
        """
        compiled = native.module()
        if compiled is None or not self.has_fused_gradients:
            raise RuntimeError(
                "The compiled training loop is not available: use compiled_batches(), which "
                "says so with None (build it with 'hourglass native build')."
            )
        losses, maes = compiled.train_batches(
            inputs,
            order,
            batch_size,
            first,
            count,
            scale,
            *compiled_layer_arguments(self.linear_layers),
            optimizer.params,
            [gradient_buffer(p) for p in optimizer.params],
            optimizer.exp_avgs,
            optimizer.exp_avg_sqs,
            optimizer.steps,
            optimizer.lr,
            optimizer.betas[0],
            optimizer.betas[1],
            optimizer.weight_decay,
            optimizer.eps,
            not subnormals_flushed(),
            *_corruption_arguments(corruption),
            self.config.activation,
            self.config.output_activation,
            loss,
        )
        return {"loss": losses, "mae": maes}

    @property
    def linear_layers(self) -> list[nn.Linear]:
        """The Linear layers, input side first (encoder, then decoder)."""
        layers = [*self.encoder, *self.decoder]
        return [layer for layer in layers if isinstance(layer, nn.Linear)]


def _corruption_arguments(
    corruption: Corruption | None,
) -> tuple[str, float, torch.Generator | None, float, float]:
    """The compiled loop's corruption arguments: kind ("" for none), strength, generator, range."""
    if corruption is None:
        return "", 0.0, None, 0.0, 0.0
    return (
        corruption.kind,
        corruption.strength,
        corruption.generator,
        corruption.low,
        corruption.high,
    )
