"""What the text families share: texts as rows of UTF-8 byte ids, scored by likelihood.

Both text families (``arch="sequence"``, a GRU, and ``arch="transformer"``)
read a text as a row of byte ids (:class:`~hourglass.nn.sequence.ByteTokenizer`),
train from lists of texts or from text streams, corrupt texts for denoising,
score a text by the mean negative log-likelihood its model gives it, and decode
codes back into strings. They differ in their network and training objective.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray

from hourglass.data.stream import Stream
from hourglass.estimators._input import PreparedInput, prepare_text
from hourglass.estimators._streaming import StreamInput
from hourglass.exceptions import InvalidInputError, InvalidParameterError
from hourglass.families._family import Family
from hourglass.families.conv import SMALL_INFERENCE_BLOCK_ROWS
from hourglass.nn.sequence import PAD, ByteTokenizer
from hourglass.nn.text_features import TEXT_NOISE_KINDS, delete_words, substitute_bytes

if TYPE_CHECKING:
    from hourglass.estimators._base import BaseAutoencoder
    from hourglass.nn import ReconstructionModule

__all__ = ["TEXT_MAX_BYTES", "TEXT_NOISE", "TextFamily", "texts_by_length"]

#: Texts are cut to this many UTF-8 bytes (including the end-of-text marker).
TEXT_MAX_BYTES = 256
#: Texts are computed in groups of lengths up to a multiple of this many bytes.
TEXT_LENGTH_STEP = 32
#: The corruptions of texts (``noise=``), each hitting a fraction ``noise_strength``.
TEXT_NOISE: dict[str, Callable[..., torch.Tensor]] = dict(
    zip(TEXT_NOISE_KINDS, (delete_words, substitute_bytes), strict=True)
)


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


def _encode_texts(frame: pd.DataFrame, *, max_length: int) -> NDArray[np.int64]:
    """A piece of a text stream (one column of str) as rows of byte ids."""
    return ByteTokenizer(max_length).encode(frame.iloc[:, 0].tolist())


class TextFamily(Family):
    """Base class of the text families: byte-id rows, likelihood scores, decoded strings."""

    takes_noise: ClassVar[bool] = True
    own_metric: ClassVar[str | None] = "nll"
    saved_outputs: ClassVar[tuple[str, ...]] = ("softmax",)
    saved_losses: ClassVar[tuple[str, ...]] = ("nll",)

    #: The network, and its configuration (a frozen dataclass with ``input_shape``,
    #: ``latent_dim`` and ``hidden_dim``, which ``hidden_dims=(width,)`` sets).
    module_class: ClassVar[type[ReconstructionModule]]
    config_class: ClassVar[Any]

    def build_module(
        self, estimator: BaseAutoencoder, generator: torch.Generator
    ) -> ReconstructionModule:
        hidden = estimator._validated_hidden_dims()
        config = self.config_class(
            input_shape=estimator.input_shape_,
            latent_dim=int(estimator.latent_dim),
            hidden_dim=hidden[0] if hidden else self.config_class.hidden_dim,
        )
        return self.module_class(config, generator=generator)

    def prepare_training(self, estimator: BaseAutoencoder, X: Any) -> PreparedInput | StreamInput:
        if isinstance(X, Stream):
            return replace(self._scan_text_stream(estimator, X), family=self.name)
        return replace(prepare_text(estimator, X, max_length=TEXT_MAX_BYTES), family=self.name)

    def _scan_text_stream(self, estimator: BaseAutoencoder, stream: Stream) -> StreamInput:
        if not stream.is_text:
            raise InvalidInputError(
                f"arch={self.name!r} trains on texts: a list of str or a stream of .txt files "
                f"(one text per line); {stream!r} holds arrays or a table."
            )
        n_rows = stream.n_rows
        if n_rows == 0:
            raise InvalidInputError(f"{stream!r} holds no texts to fit on.")
        no_range = np.zeros(TEXT_MAX_BYTES, dtype=np.float32)
        return StreamInput(
            stream=stream,
            sample_shape=(TEXT_MAX_BYTES,),
            n_samples=n_rows,
            was_uint8=False,
            feature_min=no_range,
            feature_max=no_range,
            encode=functools.partial(_encode_texts, max_length=TEXT_MAX_BYTES),
        )

    def prepare_later(self, estimator: BaseAutoencoder, X: Any) -> PreparedInput:
        return prepare_text(estimator, X, max_length=estimator.input_shape_[0])

    def input_kind(self, input_shape: tuple[int, ...]) -> str:
        return "texts"

    def check_fit(self, estimator: BaseAutoencoder, prepared: PreparedInput | StreamInput) -> None:
        noise = estimator.noise
        if noise is not None and noise not in TEXT_NOISE:
            raise InvalidParameterError(
                f"noise={noise!r} corrupts numbers; texts take noise in {sorted(TEXT_NOISE)} "
                "(words left out, or letters replaced)."
            )
        if noise is not None and estimator.noise_strength >= 1:
            raise InvalidParameterError(
                f"noise_strength is the fraction of words or letters hit by noise={noise!r}, "
                f"so it must be below 1; got {estimator.noise_strength}."
            )
        super().check_fit(estimator, prepared)

    def output_and_loss(
        self, estimator: BaseAutoencoder, prepared: PreparedInput | StreamInput
    ) -> tuple[str, str]:
        return "softmax", "nll"  # next-byte distribution, negative log-likelihood

    def corruption(
        self, estimator: BaseAutoencoder, generator: torch.Generator
    ) -> Callable[[torch.Tensor], torch.Tensor] | None:
        if estimator.noise is None:
            return None
        corrupt = TEXT_NOISE[estimator.noise]
        strength = float(estimator.noise_strength)
        return lambda tokens: corrupt(tokens.long(), strength, generator)

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
        """Mean negative log-likelihood of each text (see the family's module)."""

        def nll(module: Any, x: torch.Tensor) -> torch.Tensor:
            result: torch.Tensor = module.per_text_nll(x)
            return result

        return estimator._map_batches(values, nll).numpy().astype(np.float64)

    def reconstruct(self, estimator: BaseAutoencoder, values: NDArray[Any]) -> list[str]:
        """The greedily decoded texts."""
        length = estimator.input_shape_[0]

        def run(module: Any, x: torch.Tensor) -> torch.Tensor:
            result: torch.Tensor = module.generate(module.encode(x), length)
            return result

        rows = estimator._map_batches(values, run).numpy()
        return [ByteTokenizer.decode(row) for row in rows]
