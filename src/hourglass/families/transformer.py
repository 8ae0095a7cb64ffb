"""The transformer family (``arch="transformer"``): texts as words, a pooled code, two decoders."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch

from hourglass.families._text import TextFamily
from hourglass.nn.transformer import TransformerTextAutoencoder, TransformerTextConfig

if TYPE_CHECKING:
    from hourglass.estimators._base import BaseAutoencoder
    from hourglass.nn import ReconstructionModule

__all__ = ["TransformerFamily"]


class TransformerFamily(TextFamily):
    """A transformer over hashed words and character n-grams; bag-of-words and byte decoders.

    See :mod:`hourglass.nn.transformer`. ``hidden_dims=(width,)`` sets the
    width of the encoder's tokens.
    """

    name: ClassVar[str] = "transformer"

    def build_module(
        self, estimator: BaseAutoencoder, generator: torch.Generator
    ) -> ReconstructionModule:
        hidden = estimator._validated_hidden_dims()
        return TransformerTextAutoencoder(
            TransformerTextConfig(
                input_shape=estimator.input_shape_,
                latent_dim=int(estimator.latent_dim),
                hidden_dim=hidden[0] if hidden else TransformerTextConfig.hidden_dim,
            ),
            generator=generator,
        )

    def attach_generators(
        self, module: ReconstructionModule, generators: dict[str, torch.Generator]
    ) -> None:
        assert isinstance(module, TransformerTextAutoencoder)  # what build_module makes
        module.dropout_generator = generators["augmentation"]
