"""Cleaning texts word by word: the input's words, corrected towards the words its code predicts.

A 64-number code cannot spell a sentence back byte by byte: greedy decoding of
the transformer's byte decoder gives strings like "the the the". Its
bag-of-words head, though, knows which words a text's code makes likely.
:class:`WordCorrector` keeps every word of a text that the training texts
contained, and replaces each other word by a known word within one or two
edits (letters inserted, deleted, replaced or swapped): the one with the fewest
edits, and among those the one that the code's bag of words and the word's
training frequency together make most likely. A word with no known neighbour
stays as it is, and so does everything between words.

Measured on 600 held-out English sentences with a tenth of their letters
replaced (a model trained with ``noise="typos"`` on the other English texts):
the share of words right went from 0.665 to 0.843 (``difflib`` similarity to
the clean texts 0.926 to 0.957). The edit distance and the vocabulary do most
of it: breaking ties by frequency alone gave 0.841, by the code alone 0.841;
weighing the code against the edits (an edit worth 1 to 4 nats) 0.82-0.83.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from numpy.typing import NDArray

from hourglass.nn.sequence import ByteTokenizer
from hourglass.nn.text_features import word_hashes

__all__ = [
    "MAX_WORDS",
    "WORD",
    "WordCorrector",
    "count_words",
    "edit_distance",
    "vocabulary_buckets",
]

#: A word as the text features find it: ASCII letters and digits and non-ASCII characters.
WORD = re.compile(r"(?:[A-Za-z0-9]|[^\x00-\x7f])+")
#: Words kept from the training texts, the most frequent first.
MAX_WORDS = 50_000
#: Words this long or longer are corrected within two edits; shorter ones within one.
TWO_EDITS_FROM = 5
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ENCODED_AT_ONCE = 1024


def ascii_lower(word: str) -> str:
    """``word`` with A-Z lowered and every other character kept, as the text features do."""
    return word.translate(_LOWER)


def vocabulary_buckets(words: list[str], buckets: int) -> NDArray[np.int64]:
    """Each word's bag-of-words bucket, by the hash the head is trained on (``word_hashes``).

    Every word is encoded as a text of its own, whose one hashed position is
    the word's end; words are encoded :data:`_ENCODED_AT_ONCE` at a time.
    """
    found = np.zeros(len(words), dtype=np.int64)
    for start in range(0, len(words), _ENCODED_AT_ONCE):
        chunk = words[start : start + _ENCODED_AT_ONCE]
        longest = max(len(word.encode("utf-8")) for word in chunk)
        tokens = torch.from_numpy(ByteTokenizer(longest + 1).encode(chunk))
        found[start : start + len(chunk)] = word_hashes(tokens, buckets).amax(dim=1).numpy()
    return found


def count_words(texts: Iterable[str], limit: int = MAX_WORDS) -> tuple[list[str], list[int]]:
    """The ``limit`` most frequent words of ``texts`` (lowered), most frequent first, and counts."""
    counts = Counter(ascii_lower(word) for text in texts for word in WORD.findall(text))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [word for word, _ in ranked], [count for _, count in ranked]


def _deletions(word: str, edits: int) -> set[str]:
    """``word`` with up to ``edits`` characters left out (``word`` itself included)."""
    found, frontier = {word}, {word}
    for _ in range(edits):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        found |= frontier
    return found


def edit_distance(a: str, b: str) -> int:
    """Insertions, deletions, replacements and swaps of neighbours that turn ``a`` into ``b``."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def _allowed_edits(word: str) -> int:
    return 2 if len(word) >= TWO_EDITS_FROM else 1


@dataclass
class WordCorrector:
    """Corrects the unknown words of texts, given each text's bag-of-words log-probabilities.

    Parameters
    ----------
    words : list of str
        The known words (lowered), e.g. from :func:`count_words`.
    counts : list of int
        How often each occurred in training.
    buckets : int
        Buckets of the model's bag-of-words head.
    """

    words: list[str]
    counts: list[int]
    buckets: int
    _known: set[str] = field(init=False, repr=False)
    _by_deletion: dict[str, list[int]] = field(init=False, repr=False)
    _word_buckets: NDArray[np.int64] = field(init=False, repr=False)
    _log_counts: NDArray[np.float64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._known = set(self.words)
        self._by_deletion = {}
        for index, word in enumerate(self.words):
            for deleted in _deletions(word, _allowed_edits(word)):
                self._by_deletion.setdefault(deleted, []).append(index)
        self._word_buckets = vocabulary_buckets(self.words, self.buckets)
        self._log_counts = np.log(np.asarray(self.counts, dtype=np.float64))

    def candidates(self, word: str) -> Iterator[tuple[int, int]]:
        """``(index, edits)`` of the known words within the allowed edits of ``word``."""
        lowered = ascii_lower(word)
        seen: set[int] = set()
        for deleted in _deletions(lowered, _allowed_edits(lowered)):
            for index in self._by_deletion.get(deleted, ()):
                if index in seen:
                    continue
                seen.add(index)
                known = self.words[index]
                edits = edit_distance(lowered, known)
                if edits <= min(_allowed_edits(lowered), _allowed_edits(known)):
                    yield index, edits

    def correct(self, text: str, log_probabilities: NDArray[np.floating]) -> str:
        """``text`` with each unknown word replaced by its best known neighbour.

        ``log_probabilities`` (shape ``(buckets,)``) is the bag-of-words head's
        distribution for the text's code.
        """

        def replace(match: re.Match[str]) -> str:
            word = match.group(0)
            if ascii_lower(word) in self._known:
                return word
            best, best_score = None, (-np.inf, -np.inf)
            for index, edits in self.candidates(word):
                likelihood = log_probabilities[self._word_buckets[index]] + self._log_counts[index]
                score = (-float(edits), float(likelihood))  # fewest edits, then likeliest
                if score > best_score:
                    best, best_score = self.words[index], score
            return word if best is None else _in_case_of(word, best)

        return WORD.sub(replace, text)


def _in_case_of(original: str, word: str) -> str:
    """``word`` capitalised like ``original``: all capitals, a capital first, or as it is."""
    if len(original) > 1 and original.isupper():
        return word.upper()
    if original[:1].isupper():
        return word[:1].upper() + word[1:]
    return word
