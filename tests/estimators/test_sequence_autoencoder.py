"""Text: a sequence autoencoder trained on one kind of text flags another."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hourglass import Autoencoder, AutoencoderOutlierDetector, load
from hourglass.exceptions import InvalidInputError

WORDS = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "red", "house", "sea"]
SMALL = {"latent_dim": 8, "hidden_dims": (32,), "verbose": 0, "random_state": 0}


def _sentences(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(3, 8))) for _ in range(n)]


def _gibberish(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    letters = list("ÄÖÜßqxzjkwvy0123456789")
    return ["".join(rng.choice(letters, size=rng.integers(10, 40))) for _ in range(n)]


@pytest.fixture(scope="module")
def model() -> AutoencoderOutlierDetector:
    return AutoencoderOutlierDetector(
        arch="sequence", epochs=8, learning_rate=3e-3, fpr=0.05, **SMALL
    ).fit(_sentences(600, seed=0))


def test_unfamiliar_text_costs_more_bits_per_byte(model: AutoencoderOutlierDetector) -> None:
    familiar = model.reconstruction_error(_sentences(100, seed=1))
    strange = model.reconstruction_error(_gibberish(100, seed=2))
    assert strange.min() > np.quantile(familiar, 0.95)
    assert (model.predict(_gibberish(50, seed=3)) == -1).all()
    assert (model.p_values(_gibberish(20, seed=4)) < 0.05).all()


def test_history_records_the_next_byte_error_rate(model: AutoencoderOutlierDetector) -> None:
    assert set(model.history_) >= {"loss", "error_rate", "epoch_time"}
    assert model.history_["loss"][-1] < model.history_["loss"][0]
    assert model.arch_ == "sequence"


def test_codes_reconstructions_and_neighbours(model: AutoencoderOutlierDetector) -> None:
    texts = _sentences(20, seed=5)
    assert model.transform(texts).shape == (20, 8)
    decoded = model.reconstruct(texts[:3])
    assert isinstance(decoded, list)
    assert all(isinstance(text, str) for text in decoded)
    neighbours = model.most_similar(texts[:2], texts, k=3)
    assert [row[0][0] for row in neighbours] == [0, 1]  # each text is its own nearest
    assert neighbours[0][0][1] == pytest.approx(1.0)
    assert neighbours[0][0][2] == texts[0]


def test_save_load_gives_bit_identical_scores(
    model: AutoencoderOutlierDetector, tmp_path: Path
) -> None:
    texts = _sentences(30, seed=6) + _gibberish(5, seed=7)
    restored = load(model.save(tmp_path / "text-model"))
    np.testing.assert_array_equal(restored.score_samples(texts), model.score_samples(texts))
    np.testing.assert_array_equal(restored.transform(texts), model.transform(texts))


def test_same_seed_same_model() -> None:
    texts = _sentences(120, seed=8)
    a = Autoencoder(arch="sequence", epochs=1, **SMALL).fit(texts)
    b = Autoencoder(arch="sequence", epochs=1, **SMALL).fit(texts)
    np.testing.assert_array_equal(a.reconstruction_error(texts), b.reconstruction_error(texts))


def test_auto_chooses_the_sequence_family_for_texts() -> None:
    model = Autoencoder(arch="auto", epochs=1, **SMALL).fit(_sentences(50, seed=9))
    assert model.arch_ == "sequence"


@pytest.mark.parametrize(
    ("arch", "X", "message"),
    [
        ("sequence", np.zeros((5, 3)), "arch='sequence' needs strings"),
        ("dense", ["some text", "more text"], "arch='dense' needs numeric arrays; got texts"),
        ("sequence", "one string", "not a single string"),
        ("sequence", ["text", 3], "item 1 is a int"),
        ("sequence", [], "at least one text"),
    ],
)
def test_mismatched_data_and_family_are_clear_errors(arch: str, X: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Autoencoder(arch=arch, epochs=1, **SMALL).fit(X)


def test_noise_is_rejected_for_text() -> None:
    with pytest.raises(InvalidInputError, match="does not apply to arch='sequence'"):
        Autoencoder(arch="sequence", noise="mask", epochs=1, **SMALL).fit(_sentences(20, 1))


def test_english_model_flags_german_on_the_real_texts() -> None:
    """A small, briefly trained model; the full benchmark (benchmarks/text.py) reaches 0.97."""
    import os

    from sklearn.metrics import roc_auc_score

    folder = os.environ.get("HOURGLASS_DATA")
    if not folder:
        pytest.skip("HOURGLASS_DATA is not set: no en.txt / de.txt to test on")
    english = (Path(folder) / "text" / "en.txt").read_text(encoding="utf-8").splitlines()
    german = (Path(folder) / "text" / "de.txt").read_text(encoding="utf-8").splitlines()
    order = np.random.default_rng(0).permutation(len(english))
    train = [english[i] for i in order[:1500]]
    held_out = [english[i] for i in order[-300:]]
    model = Autoencoder(
        arch="sequence",
        epochs=2,
        latent_dim=16,
        hidden_dims=(64,),
        learning_rate=5e-3,
        random_state=0,
        verbose=0,
    ).fit(train)
    scores = np.r_[model.reconstruction_error(held_out), model.reconstruction_error(german[:300])]
    assert roc_auc_score(np.r_[np.zeros(300), np.ones(300)], scores) > 0.8
