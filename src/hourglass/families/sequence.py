"""The sequence family (``arch="sequence"``): texts read byte by byte by a recurrent network."""

from __future__ import annotations

from typing import Any, ClassVar

from hourglass.families._text import TEXT_MAX_BYTES, TextFamily, texts_by_length
from hourglass.nn import ReconstructionModule
from hourglass.nn.sequence import SequenceAutoencoder, SequenceConfig

__all__ = ["TEXT_MAX_BYTES", "SequenceFamily", "texts_by_length"]


class SequenceFamily(TextFamily):
    """A GRU encoder to a code, and a GRU decoder that predicts each next byte from it."""

    name: ClassVar[str] = "sequence"
    module_class: ClassVar[type[ReconstructionModule]] = SequenceAutoencoder
    config_class: ClassVar[Any] = SequenceConfig
