"""The sequence family (``arch="sequence"``): texts read byte by byte by a recurrent network."""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from numpy.typing import NDArray

from hourglass.data.stream import Stream
from hourglass.estimators._input import PreparedInput, prepare_text
from hourglass.exceptions import InvalidInputError
from hourglass.families._family import Family
from hourglass.families.conv import SMALL_INFERENCE_BLOCK_ROWS
from hourglass.nn.sequence import PAD, ByteTokenizer, SequenceAutoencoder, SequenceConfig

if TYPE_CHECKING:
    from hourglass.estimators._base import BaseAutoencoder
    from hourglass.estimators._streaming import StreamInput
    from hourglass.nn import ReconstructionModule

__all__ = ["TEXT_MAX_BYTES", "SequenceFamily", "texts_by_length"]

#: Texts are cut to this many UTF-8 bytes (including the end-of-text marker).
TEXT_MAX_BYTES = 256
#: Texts are computed in groups of lengths up to a multiple of this many bytes.
TEXT_LENGTH_STEP = 32


def _first_columns(rows: NDArray[Any], n: int) -> NDArray[Any]:
    return rows[:, :n]


def texts_by_length(tokens: NDArray[Any]) -> list[tuple[NDArray[np.intp], Any]]:
    """Texts grouped by their own length, rounded up, each group cut to that length.

    A text's group, and so the shape of every tensor it meets, depends on the text
    alone; cutting all-padding columns saves most of the work on short texts.
    """
    lengths = np.maximum((tokens != PAD).sum(axis=1), 1)
    limits = np.minimum(-(-lengths // TEXT_LENGTH_STEP) * TEXT_LENGTH_STEP, tokens.shape[1])
    return [
        (np.flatnonzero(limits == limit), functools.partial(_first_columns, n=int(limit)))
        for limit in np.unique(limits)
    ]


class SequenceFamily(Family):
    """A GRU encoder to a code, and a GRU decoder that predicts each next byte from it."""

    name: ClassVar[str] = "sequence"
    trains_from_streams: ClassVar[bool] = False
    own_metric: ClassVar[str | None] = "nll"
    saved_outputs: ClassVar[tuple[str, ...]] = ("softmax",)
    saved_losses: ClassVar[tuple[str, ...]] = ("nll",)

    def prepare_training(self, estimator: BaseAutoencoder, X: Any) -> PreparedInput | StreamInput:
        if isinstance(X, Stream):
            raise InvalidInputError(
                "arch='sequence' cannot be trained from a stream yet. Fit on texts that fit "
                "in memory, then score the whole stream."
            )
        return replace(prepare_text(estimator, X, max_length=TEXT_MAX_BYTES), family=self.name)

    def prepare_later(self, estimator: BaseAutoencoder, X: Any) -> PreparedInput:
        return prepare_text(estimator, X, max_length=estimator.input_shape_[0])

    def input_kind(self, input_shape: tuple[int, ...]) -> str:
        return "texts"

    def output_and_loss(
        self, estimator: BaseAutoencoder, prepared: PreparedInput | StreamInput
    ) -> tuple[str, str]:
        return "softmax", "nll"  # next-byte distribution, negative log-likelihood

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

    def objective(
        self,
        estimator: BaseAutoencoder,
        module: ReconstructionModule,
        x: torch.Tensor,
        target: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        loss, error_rate = module.reconstruction_loss(x, target, estimator.loss_)
        # The share of mispredicted next bytes, in place of the MAE.
        return {"loss": loss, "error_rate": error_rate}

    def inference_block_rows(self, input_shape: tuple[int, ...]) -> int:
        return SMALL_INFERENCE_BLOCK_ROWS

    def inference_groups(self, values: NDArray[Any]) -> list[tuple[NDArray[np.intp], Any]] | None:
        return texts_by_length(values)

    def scores(
        self, estimator: BaseAutoencoder, values: NDArray[Any], metric: str
    ) -> NDArray[np.float64]:
        """Mean negative log-likelihood per byte of each text."""

        def nll(module: SequenceAutoencoder, x: torch.Tensor) -> torch.Tensor:
            return module.per_text_nll(x)

        return estimator._map_batches(values, nll).numpy().astype(np.float64)

    def reconstruct(self, estimator: BaseAutoencoder, values: NDArray[Any]) -> list[str]:
        """The greedily decoded texts."""
        length = estimator.input_shape_[0]

        def run(module: SequenceAutoencoder, x: torch.Tensor) -> torch.Tensor:
            return module.generate(module.encode(x), length)

        rows = estimator._map_batches(values, run).numpy()
        return [ByteTokenizer.decode(row) for row in rows]
