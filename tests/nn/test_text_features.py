"""Hashed words and n-grams of byte-id rows, and word-level corruption."""

from __future__ import annotations

import torch

from hourglass.nn.sequence import EOS, PAD, ByteTokenizer
from hourglass.nn.text_features import (
    byte_ngram_hashes,
    delete_words,
    in_word,
    substitute_bytes,
    word_hashes,
    word_index,
)


def _rows(*texts: str, length: int = 48) -> torch.Tensor:
    return torch.from_numpy(ByteTokenizer(length).encode(list(texts)))


def _words(row: torch.Tensor, buckets: int = 2**15) -> list[int]:
    hashed = word_hashes(row.unsqueeze(0), buckets)[0]
    return hashed[hashed > 0].tolist()


def test_a_word_hashes_alike_wherever_it_stands_and_in_any_case() -> None:
    rows = _rows("World peace", "the WORLD, again", "worlds")
    world = _words(rows[0])[0]
    assert _words(rows[1])[1] == world
    assert _words(rows[2])[0] != world  # another word
    assert len(_words(rows[1])) == 3  # punctuation separates, is no word


def test_words_are_runs_of_letters_digits_and_non_ascii_bytes() -> None:
    row = _rows("Straße 42, naïve-x")[0]
    assert word_index(row.unsqueeze(0))[0][: len("Straße 42, naïve-x".encode())].max() == 4
    assert bool(in_word(torch.tensor(["ß".encode()[0]])))
    assert not bool(in_word(torch.tensor([PAD, EOS, ord(" ")])).any())


def test_hashes_fall_in_their_buckets_and_padding_has_none() -> None:
    rows = _rows("some text here", "x")
    for hashed in (word_hashes(rows, 64), byte_ngram_hashes(rows, 3, 64)):
        assert int(hashed.min()) >= 0
        assert int(hashed.max()) < 64
        assert (hashed[rows == PAD] == 0).all()


def test_a_rows_features_do_not_depend_on_its_batch() -> None:
    alone = _rows("the cat sat")
    together = _rows("a very different and much longer sentence", "the cat sat")
    for n in (3, 4, 5):
        assert torch.equal(
            byte_ngram_hashes(alone, n, 999)[0], byte_ngram_hashes(together, n, 999)[1]
        )
    assert torch.equal(word_hashes(alone, 999)[0], word_hashes(together, 999)[1])


def test_deleting_words_keeps_the_others_in_order() -> None:
    rows = _rows("one two three four five six seven eight")
    generator = torch.Generator().manual_seed(0)
    kept = delete_words(rows, 0.5, generator)
    text = ByteTokenizer.decode(kept[0].tolist())
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight"]
    survivors = text.split()
    assert 0 < len(survivors) < len(words)
    assert [w for w in words if w in survivors] == survivors  # order kept
    assert (kept[0] == EOS).sum() == 1
    assert torch.equal(delete_words(rows, 0.0), rows)


def test_typos_hit_only_ascii_letters() -> None:
    rows = _rows("Hello, world 123 ß")
    changed = substitute_bytes(rows, 1.0, torch.Generator().manual_seed(0))
    letters = in_word(rows) & (rows < 128) & ~((rows >= 48) & (rows <= 57))
    assert torch.equal(changed[~in_word(rows)], rows[~in_word(rows)])
    assert (changed[letters] >= 97).all()
    assert (changed[letters] <= 122).all()
