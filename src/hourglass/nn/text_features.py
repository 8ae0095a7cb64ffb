"""Words and character n-grams of byte-token texts, hashed, and word-level corruption (pure torch).

Texts reach a text model as rows of UTF-8 byte ids (:class:`~hourglass.nn.sequence.ByteTokenizer`).
The functions here find the words in those rows and hash them, and each byte's
character n-grams, into a fixed number of buckets: the feature-hashing trick,
so there is no vocabulary to build, save or keep in step with the data. Hashes
are integer arithmetic on the bytes, so a text's features are the same on any
machine and whatever texts it is batched with.

A *word* is a run of ASCII letters and digits and of non-ASCII bytes (so
"Straße" and "naïve" are words); words are hashed case-insensitively.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hourglass.nn.sequence import BOS, EOS, PAD

__all__ = [
    "TEXT_NOISE_KINDS",
    "byte_ngram_hashes",
    "delete_words",
    "in_word",
    "substitute_bytes",
    "word_hashes",
    "word_index",
]

#: The corruptions of texts for denoising (``noise=``): words left out, letters replaced.
TEXT_NOISE_KINDS: tuple[str, ...] = ("word_deletion", "typos")
#: Hashes are computed modulo this prime, then folded into the buckets.
_MODULUS = 1_048_573
_BASE = 257
_LONGEST_WORD = 512  # bytes; rows are never longer
_POWERS = torch.tensor([pow(_BASE, k, _MODULUS) for k in range(_LONGEST_WORD)], dtype=torch.long)


def in_word(tokens: torch.Tensor) -> torch.Tensor:
    """Whether each byte id belongs to a word: ASCII letters and digits, non-ASCII bytes."""
    lower = (tokens >= 97) & (tokens <= 122)
    upper = (tokens >= 65) & (tokens <= 90)
    digit = (tokens >= 48) & (tokens <= 57)
    return lower | upper | digit | ((tokens >= 128) & (tokens < 256))


def _lowercase(tokens: torch.Tensor) -> torch.Tensor:
    return torch.where((tokens >= 65) & (tokens <= 90), tokens + 32, tokens)


def _word_starts(word: torch.Tensor) -> torch.Tensor:
    return word & ~F.pad(word, (1, 0), value=False)[:, :-1]


def word_index(tokens: torch.Tensor) -> torch.Tensor:
    """``(batch, length)``: the 1-based number of the word each byte is in, 0 outside words."""
    word = in_word(tokens)
    number = torch.cumsum(_word_starts(word).long(), dim=1)
    return torch.where(word, number, torch.zeros_like(number))


def _fold(hashes: torch.Tensor, buckets: int) -> torch.Tensor:
    """Hash values to buckets 1..buckets-1 (bucket 0 means "no feature")."""
    return 1 + hashes % (buckets - 1)


def word_hashes(tokens: torch.Tensor, buckets: int) -> torch.Tensor:
    """``(batch, length)``: the bucket of the lowercased word ending at each byte, 0 elsewhere."""
    batch, length = tokens.shape
    word = in_word(tokens)
    number = word_index(tokens)
    positions = torch.arange(length, device=tokens.device).expand(batch, length)
    start = torch.cummax(torch.where(_word_starts(word), positions, 0), dim=1).values
    powers = _POWERS.to(tokens.device)[(positions - start).clamp(max=_LONGEST_WORD - 1)]
    terms = torch.where(word, (_lowercase(tokens) + 1) * powers % _MODULUS, 0)
    sums = torch.zeros(batch, length + 1, dtype=torch.long, device=tokens.device)
    sums.scatter_add_(1, number, terms)
    hashes = sums.gather(1, number) % _MODULUS
    ends = word & ~F.pad(word, (0, 1), value=False)[:, 1:]
    return torch.where(ends, _fold(hashes, buckets), 0)


def byte_ngram_hashes(tokens: torch.Tensor, n: int, buckets: int) -> torch.Tensor:
    """``(batch, length)``: the bucket of the lowercased ``n`` bytes ending at each byte.

    The text's start counts as a byte (so prefixes have n-grams of their own);
    n-grams that reach into the padding get bucket 0.
    """
    lowered = _lowercase(tokens)
    hashes = torch.full_like(tokens, n)  # n-grams of each n hash apart
    inside = torch.ones_like(tokens, dtype=torch.bool)
    for back in range(n):
        earlier = F.pad(lowered, (back, 0), value=BOS)[:, : tokens.shape[1]]
        hashes = (hashes * _BASE + earlier) % _MODULUS
        inside &= earlier != PAD
    return torch.where(inside, _fold(hashes, buckets), 0)


def _compact(tokens: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The kept ids of each row moved to its front, in order; padding after them."""
    length = tokens.shape[1]
    positions = torch.arange(length, device=tokens.device)
    order = torch.argsort(torch.where(keep, positions, positions + length), dim=1, stable=True)
    moved = tokens.gather(1, order)
    n_kept = keep.sum(dim=1, keepdim=True)
    return torch.where(positions < n_kept, moved, PAD)


def delete_words(
    tokens: torch.Tensor, fraction: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Delete each word, with the separators after it, with probability ``fraction``.

    Separators before a text's first word always stay, and so does the
    end-of-text id. Returns new rows of the same shape, padded on the right.
    """
    batch, length = tokens.shape
    number = torch.cumsum(_word_starts(in_word(tokens)).long(), dim=1)
    drawn = torch.rand(batch, length + 1, generator=generator, device=tokens.device) < fraction
    drawn[:, 0] = False  # "word 0": what comes before the first word
    dropped = drawn.gather(1, number) & (tokens != PAD) & (tokens != EOS)
    return _compact(tokens, (tokens != PAD) & ~dropped)


def substitute_bytes(
    tokens: torch.Tensor, fraction: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Replace a ``fraction`` of the letters with random lowercase ASCII letters (typos)."""
    letters = in_word(tokens) & (tokens < 128)
    hit = (torch.rand(tokens.shape, generator=generator, device=tokens.device) < fraction) & letters
    random_letters = torch.randint(
        97, 123, tokens.shape, generator=generator, device=tokens.device, dtype=tokens.dtype
    )
    return torch.where(hit, random_letters, tokens)
