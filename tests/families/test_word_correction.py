"""Cleaning texts word by word with the transformer's vocabulary and bag of words."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hourglass import Autoencoder
from hourglass.families._word_correction import (
    WordCorrector,
    ascii_lower,
    count_words,
    edit_distance,
    vocabulary_buckets,
)
from hourglass.nn.sequence import ByteTokenizer
from hourglass.nn.text_features import word_hashes

BUCKETS = 2**15


@pytest.mark.parametrize("word", ["the", "Cat", "HELLO", "Straße", "naïve", "x" * 600, "a1b2"])
def test_a_words_bucket_is_the_one_the_bag_of_words_head_is_trained_on(word: str) -> None:
    tokens = torch.from_numpy(ByteTokenizer(1024).encode([f"{word} ."]))
    hashed = word_hashes(tokens, BUCKETS)
    assert int(hashed[hashed > 0][0]) == vocabulary_buckets([ascii_lower(word)], BUCKETS)[0]


@pytest.mark.parametrize(
    ("a", "b", "edits"),
    [
        ("the", "the", 0),
        ("teh", "the", 1),
        ("th", "the", 1),
        ("thee", "the", 1),
        ("tha", "the", 1),
        ("hte", "the", 1),
        ("cat", "dog", 3),
        ("", "ab", 2),
    ],
)
def test_edit_distance_counts_insertions_deletions_replacements_and_swaps(
    a: str, b: str, edits: int
) -> None:
    assert edit_distance(a, b) == edits


def test_count_words_ranks_lowered_words_by_frequency() -> None:
    words, counts = count_words(["The cat, the dog.", "THE end"], limit=3)
    assert words == ["the", "cat", "dog"]  # ties: alphabetical
    assert counts == [3, 1, 1]


def corrector(words: list[str], counts: list[int] | None = None) -> WordCorrector:
    return WordCorrector(words, counts or [1] * len(words), BUCKETS)


def test_known_words_and_what_lies_between_words_are_kept() -> None:
    text = "The  cat -- sat, on the MAT!"
    assert corrector(["the", "cat", "sat", "on", "mat"]).correct(text, np.zeros(BUCKETS)) == text


def test_an_unknown_word_becomes_its_nearest_known_word_in_its_own_case() -> None:
    fix = corrector(["the", "garden", "house"])
    assert fix.correct("Teh gardne HOSUE", np.zeros(BUCKETS)) == "The garden HOUSE"
    assert fix.correct("xylophone", np.zeros(BUCKETS)) == "xylophone"  # nothing near: kept


def test_short_words_move_one_edit_and_long_ones_two() -> None:
    fix = corrector(["cat", "garden"])
    assert fix.correct("cxy", np.zeros(BUCKETS)) == "cxy"  # two edits from "cat"
    assert fix.correct("gxrdxn", np.zeros(BUCKETS)) == "garden"


def test_fewest_edits_win_then_the_code_and_the_frequency_decide() -> None:
    fix = corrector(["cart", "card", "carts"], [5, 5, 100])
    likely_card = np.zeros(BUCKETS)
    likely_card[vocabulary_buckets(["card"], BUCKETS)[0]] = 3.0
    assert fix.correct("carx", likely_card) == "card"  # the code prefers it
    likely_cart = np.zeros(BUCKETS)
    likely_cart[vocabulary_buckets(["cart"], BUCKETS)[0]] = 3.0
    assert fix.correct("carx", likely_cart) == "cart"
    # "carts" is two edits away: frequency does not beat an edit.
    assert fix.correct("carx", np.zeros(BUCKETS)) in {"cart", "card"}


TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "a small garden behind the old house",
    "she reads a long letter from her brother",
    "rain falls on the quiet river at night",
] * 10


@pytest.fixture(scope="module")
def typo_model() -> Autoencoder:
    return Autoencoder(
        arch="transformer",
        hidden_dims=(16,),
        noise="typos",
        noise_strength=0.1,
        epochs=2,
        random_state=0,
        verbose=0,
    ).fit(TEXTS)


def test_fitting_counts_the_training_words(typo_model: Autoencoder) -> None:
    assert typo_model.vocabulary_[0] == "the"
    assert set(typo_model.vocabulary_) == {w for t in TEXTS for w in t.split()}
    assert len(typo_model.vocabulary_counts_) == len(typo_model.vocabulary_)


def test_denoise_corrects_typos_towards_the_training_words(typo_model: Autoencoder) -> None:
    noisy = ["the quikc brown fox jumsp over the lazy dgo", "a smal garden behind the old hous"]
    assert typo_model.denoise(noisy) == [
        "the quick brown fox jumps over the lazy dog",
        "a small garden behind the old house",
    ]
    assert typo_model.reconstruct(TEXTS[:2]) == TEXTS[:2]


def test_the_vocabulary_is_saved_and_loaded(typo_model: Autoencoder, tmp_path) -> None:
    loaded = Autoencoder.load(typo_model.save(tmp_path / "typos"))
    assert loaded.vocabulary_ == typo_model.vocabulary_
    assert loaded.vocabulary_counts_ == typo_model.vocabulary_counts_
    noisy = ["rain fals on the quiet rivr at nigth"]
    assert loaded.denoise(noisy) == typo_model.denoise(noisy) == [TEXTS[3]]


def test_models_without_a_vocabulary_decode_greedily(typo_model: Autoencoder) -> None:
    state, arrays = typo_model.family_.fitted_state(typo_model)
    assert set(arrays) == {"vocabulary_utf8_", "vocabulary_counts_"}
    typo_model.family_.restore_fitted_state(typo_model, state, {})
    try:
        decoded = typo_model.reconstruct(TEXTS[:1])
        assert isinstance(decoded[0], str)  # the byte decoder's greedy output
        assert typo_model.vocabulary_ == []
    finally:
        typo_model.family_.restore_fitted_state(typo_model, state, arrays)


@pytest.mark.parametrize(
    "change",
    [
        lambda a: a.update(vocabulary_counts_=a["vocabulary_counts_"][:-1]),
        lambda a: a.update(vocabulary_counts_=-a["vocabulary_counts_"]),
        lambda a: a.update(vocabulary_utf8_=np.array([0xFF, 0xFE], dtype=np.uint8)),
        lambda a: a.update(vocabulary_utf8_=a["vocabulary_utf8_"].astype(np.int64)),
        lambda a: a.pop("vocabulary_counts_"),
    ],
)
def test_a_damaged_vocabulary_is_refused(typo_model: Autoencoder, change) -> None:
    state, arrays = typo_model.family_.fitted_state(typo_model)
    damaged = dict(arrays)
    change(damaged)
    try:
        with pytest.raises(ValueError, match=r"vocabulary|codec"):
            typo_model.family_.restore_fitted_state(typo_model, state, damaged)
    finally:
        typo_model.family_.restore_fitted_state(typo_model, state, arrays)


def test_a_model_fitted_on_a_text_stream_has_its_vocabulary(tmp_path) -> None:
    from hourglass.data import Stream

    path = tmp_path / "texts.txt"
    path.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    model = Autoencoder(
        arch="transformer", hidden_dims=(16,), epochs=1, random_state=0, verbose=0
    ).fit(Stream.open(path))
    assert set(model.vocabulary_) == {w for t in TEXTS for w in t.split()}
    assert model.denoise(["the lazy dgo"]) == ["the lazy dog"]


def test_the_corrector_does_not_travel_with_a_pickled_model(typo_model: Autoencoder) -> None:
    import pickle

    typo_model.denoise(["the lazy dgo"])  # builds the corrector
    assert not any("corrector" in name for name in vars(pickle.loads(pickle.dumps(typo_model))))
