"""The convolutional family (``arch="conv"``): strided convolutions on images."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch

from hourglass.exceptions import InvalidInputError
from hourglass.families._arrays import ArrayFamily
from hourglass.families.dense import with_invariance
from hourglass.nn import ConvAutoencoder, ConvConfig

if TYPE_CHECKING:
    from hourglass.estimators._base import BaseAutoencoder
    from hourglass.estimators._input import PreparedInput
    from hourglass.estimators._streaming import StreamInput
    from hourglass.nn import ReconstructionModule

__all__ = [
    "CONV_INFERENCE_BLOCK_ROWS",
    "SMALL_INFERENCE_BLOCK_ROWS",
    "ConvFamily",
    "ConvolutionalImages",
    "check_images",
]

#: Rows per inference block for recurrent and transformer networks, whose large
#: intermediate tensors stay in cache in small blocks.
SMALL_INFERENCE_BLOCK_ROWS = 64
#: Rows per inference block for convolutional networks: 128 predicted Fashion-MNIST
#: 1.12x faster than 64 on 2 cores (21,000 against 18,600 images/s), 256 no faster.
CONV_INFERENCE_BLOCK_ROWS = 128


def check_images(family_name: str, input_shape: tuple[int, ...]) -> None:
    """Refuse samples that are not images, for a family that needs them."""
    if len(input_shape) not in (2, 3):
        raise InvalidInputError(
            f"arch={family_name!r} needs images: X of shape (n, h, w) or (n, c, h, w). Got "
            f"samples of shape {input_shape}; reshape image rows to (n, h, w), or use "
            "arch='dense'."
        )


class ConvolutionalImages(ArrayFamily):
    """What families with a convolutional body share: images only, in small blocks."""

    def check_fit(self, estimator: BaseAutoencoder, prepared: PreparedInput | StreamInput) -> None:
        super().check_fit(estimator, prepared)
        check_images(self.name, estimator.input_shape_)

    def input_kind(self, input_shape: tuple[int, ...]) -> str:
        return "images"

    def inference_block_rows(self, input_shape: tuple[int, ...]) -> int:
        return CONV_INFERENCE_BLOCK_ROWS


class ConvFamily(ConvolutionalImages):
    """Strided convolutions down to a code and transposed convolutions back up."""

    name: ClassVar[str] = "conv"
    takes_invariance: ClassVar[bool] = True
    exports_onnx: ClassVar[bool] = True

    def slices_batches(self, estimator: BaseAutoencoder) -> bool:
        """Yes, but not with ``invariance``: its contrastive term compares a batch's images.

        On 2 cores, training on two slices at once ran 1.36x faster than one
        thread, with the same weights; the dense model's steps are too short
        for it to pay (0.7x).
        """
        return float(estimator.invariance) <= 0

    def build_module(
        self, estimator: BaseAutoencoder, generator: torch.Generator
    ) -> ReconstructionModule:
        return with_invariance(
            estimator, conv_body(estimator, generator, int(estimator.latent_dim))
        )


def conv_body(estimator: BaseAutoencoder, generator: torch.Generator, code: int) -> ConvAutoencoder:
    """The convolutional network for the fitted image shape, with a ``code``-wide bottleneck."""
    return ConvAutoencoder(
        ConvConfig(
            input_shape=estimator.input_shape_,
            latent_dim=code,
            channels=estimator._validated_hidden_dims() or ConvConfig.channels,
            activation=estimator.activation,
            output_activation=estimator.output_activation_,
        ),
        generator=generator,
    )
