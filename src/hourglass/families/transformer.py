"""The transformer family (``arch="transformer"``): texts as words, a pooled code, two decoders."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from hourglass.families._text import TextFamily
from hourglass.nn import ReconstructionModule
from hourglass.nn.transformer import TransformerTextAutoencoder, TransformerTextConfig

__all__ = ["TransformerFamily"]


class TransformerFamily(TextFamily):
    """A transformer over hashed words and character n-grams; bag-of-words and byte decoders.

    See :mod:`hourglass.nn.transformer`. ``hidden_dims=(width,)`` sets the
    width of the encoder's tokens.
    """

    name: ClassVar[str] = "transformer"
    module_class: ClassVar[type[ReconstructionModule]] = TransformerTextAutoencoder
    config_class: ClassVar[Any] = TransformerTextConfig

    def attach_generators(
        self, module: ReconstructionModule, generators: dict[str, torch.Generator]
    ) -> None:
        assert isinstance(module, TransformerTextAutoencoder)  # what build_module makes
        module.dropout_generator = generators["augmentation"]
