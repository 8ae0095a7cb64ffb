"""The sequence family (``arch="sequence"``): texts read byte by byte by a recurrent network."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch

from hourglass.families._text import TEXT_MAX_BYTES, TextFamily, texts_by_length
from hourglass.nn.sequence import SequenceAutoencoder, SequenceConfig

if TYPE_CHECKING:
    from hourglass.estimators._base import BaseAutoencoder
    from hourglass.nn import ReconstructionModule

__all__ = ["TEXT_MAX_BYTES", "SequenceFamily", "texts_by_length"]


class SequenceFamily(TextFamily):
    """A GRU encoder to a code, and a GRU decoder that predicts each next byte from it."""

    name: ClassVar[str] = "sequence"

    def build_module(
        self, estimator: BaseAutoencoder, generator: torch.Generator
    ) -> ReconstructionModule:
        hidden = estimator._validated_hidden_dims()
        return SequenceAutoencoder(
            SequenceConfig(
                input_shape=estimator.input_shape_,
                latent_dim=int(estimator.latent_dim),
                hidden_dim=hidden[0] if hidden else SequenceConfig.hidden_dim,
            ),
            generator=generator,
        )
