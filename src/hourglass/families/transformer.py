"""The transformer family (``arch="transformer"``): texts as words, a pooled code, two decoders."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from hourglass import persistence
from hourglass.data.stream import Stream
from hourglass.estimators._input import PreparedInput
from hourglass.estimators._streaming import StreamInput
from hourglass.families._text import TextFamily
from hourglass.families._word_correction import MAX_WORDS, WordCorrector, count_words
from hourglass.nn import ReconstructionModule
from hourglass.nn.sequence import ByteTokenizer
from hourglass.nn.transformer import TransformerTextAutoencoder, TransformerTextConfig

if TYPE_CHECKING:
    from hourglass.estimators._base import BaseAutoencoder

__all__ = ["TransformerFamily"]

#: Texts whose bag-of-words distributions are held at once while correcting.
_CORRECTION_CHUNK = 256
#: Texts of a stream (drawn at random) whose words make the vocabulary.
VOCABULARY_SAMPLE = 20_000


#: Correctors of the latest vocabularies, by the ``id`` of their ``vocabulary_`` list (a
#: corrector holds its list, so the id stays unique). Not on the estimator: its index of
#: deletions is large and would travel with every pickled model.
_CORRECTORS: OrderedDict[int, WordCorrector] = OrderedDict()
_CACHED_CORRECTORS = 2
#: ``epochs="auto"``: about this many optimiser steps, at least and at most
#: ``AUTO_EPOCH_RANGE`` epochs. Fitted on 3,469 package descriptions (55 steps an
#: epoch), topic 1-NN of the codes over seeds 0-2: 10 epochs 0.656, 0.671, 0.661;
#: 20 epochs 0.669, 0.678, 0.670; 30 epochs 0.674, 0.677, 0.679 (benchmarks/text.py).
AUTO_TRAINING_STEPS = 1_600
AUTO_EPOCH_RANGE = (10, 30)


def _corrector(words: list[str], counts: list[int], buckets: int) -> WordCorrector:
    """The corrector of a vocabulary, built once (its index takes seconds for 50,000 words)."""
    corrector = _CORRECTORS.get(id(words))
    if corrector is None or corrector.words is not words:
        corrector = WordCorrector(words, counts, buckets)
        _CORRECTORS[id(words)] = corrector
        while len(_CORRECTORS) > _CACHED_CORRECTORS:
            _CORRECTORS.popitem(last=False)
    _CORRECTORS.move_to_end(id(words))
    return corrector


class TransformerFamily(TextFamily):
    """A transformer over hashed words and character n-grams; bag-of-words and byte decoders.

    See :mod:`hourglass.nn.transformer`. ``hidden_dims=(width,)`` sets the
    width of the encoder's tokens. After fitting, ``vocabulary_`` holds the
    training texts' most frequent words, with which :meth:`reconstruct` (and
    ``denoise``) corrects texts (:mod:`hourglass.families._word_correction`).
    """

    name: ClassVar[str] = "transformer"
    module_class: ClassVar[type[ReconstructionModule]] = TransformerTextAutoencoder
    config_class: ClassVar[Any] = TransformerTextConfig

    def auto_epochs(self, n_samples: int, batch_size: int) -> int:
        """Epochs for about :data:`AUTO_TRAINING_STEPS` steps, within :data:`AUTO_EPOCH_RANGE`."""
        steps_per_epoch = max(1, math.ceil(n_samples / batch_size))
        low, high = AUTO_EPOCH_RANGE
        return min(high, max(low, math.ceil(AUTO_TRAINING_STEPS / steps_per_epoch)))

    def attach_generators(
        self, module: ReconstructionModule, generators: dict[str, torch.Generator]
    ) -> None:
        assert isinstance(module, TransformerTextAutoencoder)  # what build_module makes
        module.dropout_generator = generators["augmentation"]

    def prepare_training(self, estimator: BaseAutoencoder, X: Any) -> PreparedInput | StreamInput:
        """As for texts; a stream's vocabulary comes from :data:`VOCABULARY_SAMPLE` of its texts."""
        prepared = super().prepare_training(estimator, X)
        if isinstance(X, Stream) and isinstance(prepared, StreamInput) and prepared.encode:
            texts = X.sample(VOCABULARY_SAMPLE, seed=0, as_frame=True)
            prepared = replace(prepared, sample=prepared.encode(texts))
        return prepared

    def after_fit(self, estimator: BaseAutoencoder, rows: NDArray[Any] | None) -> None:
        """Count the words of the training texts (of a stream's sample): ``vocabulary_``."""
        texts = [] if rows is None else [ByteTokenizer.decode(row) for row in rows]
        estimator.vocabulary_, estimator.vocabulary_counts_ = count_words(texts)

    def reconstruct(self, estimator: BaseAutoencoder, values: NDArray[Any]) -> list[str]:
        """The texts with their unknown words corrected towards the words their codes predict.

        Models saved before the vocabulary was kept decode greedily instead.
        """
        words = getattr(estimator, "vocabulary_", None)
        if not words:
            return super().reconstruct(estimator, values)
        buckets = estimator.module_.config.bag_buckets
        corrector = _corrector(words, estimator.vocabulary_counts_, buckets)

        def bag_log_probabilities(module: Any, x: torch.Tensor) -> torch.Tensor:
            logits = module.bag(module.encode(x)).float() * module.config.bag_scale
            return F.log_softmax(logits, dim=1)

        texts = []
        for start in range(0, len(values), _CORRECTION_CHUNK):
            chunk = values[start : start + _CORRECTION_CHUNK]
            log_probabilities = estimator._map_batches(chunk, bag_log_probabilities).numpy()
            texts += [
                corrector.correct(ByteTokenizer.decode(row), row_log_probabilities)
                for row, row_log_probabilities in zip(chunk, log_probabilities, strict=True)
            ]
        return texts

    # ----------------------------------------------------------- persistence

    def fitted_state(
        self, estimator: BaseAutoencoder
    ) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        words = getattr(estimator, "vocabulary_", [])
        if not words:
            return {}, {}
        joined = "\n".join(words).encode("utf-8")
        return {}, {
            "vocabulary_utf8_": np.frombuffer(joined, dtype=np.uint8).copy(),
            "vocabulary_counts_": np.asarray(estimator.vocabulary_counts_, dtype=np.int64),
        }

    def restore_fitted_state(
        self,
        estimator: BaseAutoencoder,
        state: dict[str, Any],
        arrays: dict[str, NDArray[Any]],
    ) -> None:
        estimator.vocabulary_, estimator.vocabulary_counts_ = [], []
        if "vocabulary_utf8_" not in arrays and "vocabulary_counts_" not in arrays:
            return  # saved before the vocabulary was kept
        joined = persistence.check_array(arrays, "vocabulary_utf8_", (None,))
        counts = persistence.check_array(arrays, "vocabulary_counts_", (None,))
        if joined.dtype != np.uint8 or counts.dtype != np.int64:
            raise ValueError("the vocabulary must be UTF-8 bytes with int64 counts")
        words = bytes(joined).decode("utf-8").split("\n")  # UnicodeDecodeError: a ValueError
        if len(words) != len(counts) or len(words) > MAX_WORDS:
            raise ValueError(f"the vocabulary needs one count per word, at most {MAX_WORDS} words")
        if not all(words) or (counts < 1).any():
            raise ValueError("the vocabulary's words must be non-empty, their counts positive")
        estimator.vocabulary_, estimator.vocabulary_counts_ = words, [int(c) for c in counts]
