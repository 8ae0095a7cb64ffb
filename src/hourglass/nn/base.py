"""What every autoencoder module shares: encode, decode to logits, reconstruct, losses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from hourglass.nn.fused import output_loss_and_gradient, reconstruction_loss_reference
from hourglass.nn.noise import Corruption

__all__ = ["ReconstructionModule"]


class ReconstructionModule(nn.Module):
    """Base class of the autoencoder modules.

    Subclasses set ``self.config`` (a frozen dataclass with at least
    ``input_shape``, ``latent_dim`` and ``output_activation``) and implement
    :meth:`encode` and :meth:`decode_logits`. ``forward`` returns the
    decoder's *pre-activation* output (logits for a sigmoid output), shaped
    like the input, so that binary cross-entropy can be computed stably from
    logits; :meth:`reconstruct` returns outputs in data space.
    """

    config: Any

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``x`` of shape ``(batch, *input_shape)`` to codes ``(batch, latent_dim)``."""
        raise NotImplementedError

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Map codes to pre-activation outputs of shape ``(batch, *input_shape)``."""
        raise NotImplementedError

    def output(self, logits: torch.Tensor) -> torch.Tensor:
        """Apply the output activation to pre-activation outputs."""
        if self.config.output_activation == "sigmoid":
            return torch.sigmoid(logits)
        return logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activation reconstruction of ``x``, same shape as ``x``."""
        return self.decode_logits(self.encode(x))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of ``x`` in data space (after the output activation)."""
        return self.output(self.forward(x))

    def reconstruction_loss(
        self, x: torch.Tensor, target: torch.Tensor, loss: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean ``loss`` (``"bce"``, ``"mse"`` or ``"mae"``) of reconstructing ``target``.

        Returns ``(loss, mae)``: the differentiable loss (through autograd) and
        the mean absolute error of the output (no gradient).
        """
        logits = self.forward(x)
        if torch.is_grad_enabled() or logits.dtype != torch.float32:
            return reconstruction_loss_reference(
                logits, target, self.config.output_activation, loss
            )
        # Evaluation (validation): the fused training step's loss, the same to rounding
        # and 5x faster than binary_cross_entropy_with_logits on a CPU, whose logarithm
        # and exponential are not vectorised.
        value, mae, _ = output_loss_and_gradient(
            logits, target, self.config.output_activation, loss
        )
        return value, mae

    @property
    def has_fused_gradients(self) -> bool:
        """Whether :meth:`loss_and_gradients` is available (a faster training step)."""
        return False

    def loss_and_gradients(
        self, x: torch.Tensor, target: torch.Tensor, loss: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and MAE, with the parameters' gradients written into ``.grad``."""
        raise NotImplementedError(f"{type(self).__name__} has no fused training step.")

    def compiled_batches(
        self, loss: str, *, scale: float, corruption: Corruption | None = None
    ) -> Callable[..., dict[str, torch.Tensor]] | None:
        """A compiled loop over whole blocks of training batches, or None (the default).

        Where a subclass has one, it trains as :meth:`loss_and_gradients` and the
        training loop's update would, batch after batch, with ``loss``; uint8 inputs
        divided by ``scale``, then corrupted by ``corruption`` (the targets stay
        clean); see :class:`hourglass.training.CompiledBatches`.
        """
        return None
