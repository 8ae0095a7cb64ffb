"""The dense family (``arch="dense"``): fully connected layers on flat rows or images."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch

from hourglass.families._arrays import ArrayFamily
from hourglass.nn import DenseAutoencoder, DenseConfig
from hourglass.nn.invariance import InvariantAutoencoder

if TYPE_CHECKING:
    from hourglass.estimators._base import BaseAutoencoder
    from hourglass.nn import ConvAutoencoder, ReconstructionModule

__all__ = ["DenseFamily", "with_invariance"]


def with_invariance(
    estimator: BaseAutoencoder, body: DenseAutoencoder | ConvAutoencoder
) -> ReconstructionModule:
    """``body``, wrapped in the contrastive invariance objective when ``invariance > 0``."""
    if estimator.invariance <= 0:
        return body
    shape = estimator.input_shape_
    image_shape = (1, *shape) if len(shape) == 2 else shape
    return InvariantAutoencoder(
        body,
        (int(image_shape[0]), int(image_shape[1]), int(image_shape[2])),
        weight=float(estimator.invariance),
    )


class DenseFamily(ArrayFamily):
    """Fully connected encoder and decoder; the reference model for images (784→64→784)."""

    name: ClassVar[str] = "dense"
    takes_invariance: ClassVar[bool] = True
    exports_onnx: ClassVar[bool] = True

    def build_module(
        self, estimator: BaseAutoencoder, generator: torch.Generator
    ) -> ReconstructionModule:
        body = DenseAutoencoder(
            DenseConfig(
                input_shape=estimator.input_shape_,
                latent_dim=int(estimator.latent_dim),
                hidden_dims=estimator._validated_hidden_dims(),
                activation=estimator.activation,
                output_activation=estimator.output_activation_,
            ),
            generator=generator,
        )
        return with_invariance(estimator, body)
