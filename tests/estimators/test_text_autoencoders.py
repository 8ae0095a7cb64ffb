"""Text: both text families (GRU and transformer) flag unfamiliar text, encode, decode, denoise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hourglass import Autoencoder, AutoencoderOutlierDetector, load
from hourglass.data import Stream
from hourglass.exceptions import InvalidInputError, InvalidParameterError

TEXT_FAMILIES = ["sequence", "transformer"]

WORDS = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "red", "house", "sea"]
SMALL = {"latent_dim": 8, "hidden_dims": (32,), "verbose": 0, "random_state": 0}


def _sentences(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(3, 8))) for _ in range(n)]


def _gibberish(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    letters = list("ÄÖÜßqxzjkwvy0123456789")
    return ["".join(rng.choice(letters, size=rng.integers(10, 40))) for _ in range(n)]


@pytest.fixture(scope="module", params=TEXT_FAMILIES)
def model(request: pytest.FixtureRequest) -> AutoencoderOutlierDetector:
    return AutoencoderOutlierDetector(
        arch=request.param, epochs=8, learning_rate=3e-3, fpr=0.05, **SMALL
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
    assert model.arch_ in TEXT_FAMILIES


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


@pytest.mark.parametrize("arch", TEXT_FAMILIES)
def test_same_seed_same_model(arch: str) -> None:
    texts = _sentences(120, seed=8)
    a = Autoencoder(arch=arch, epochs=1, **SMALL).fit(texts)
    b = Autoencoder(arch=arch, epochs=1, **SMALL).fit(texts)
    np.testing.assert_array_equal(a.reconstruction_error(texts), b.reconstruction_error(texts))


def test_auto_chooses_the_transformer_family_for_texts() -> None:
    model = Autoencoder(arch="auto", epochs=1, **SMALL).fit(_sentences(50, seed=9))
    assert model.arch_ == "transformer"


@pytest.mark.parametrize(
    ("n_texts", "batch_size", "epochs"),
    [(3469, 64, 30), (8947, 64, 12), (20_000, 64, 10), (40, 64, 30), (3469, 256, 30)],
)
def test_auto_epochs_give_text_transformers_about_1600_steps(
    n_texts: int, batch_size: int, epochs: int
) -> None:
    from hourglass.families import get_family

    assert get_family("transformer").auto_epochs(n_texts, batch_size) == epochs
    assert get_family("sequence").auto_epochs(n_texts, batch_size) == 10  # the default


def test_epochs_auto_is_the_default_and_resolved_at_fit() -> None:
    texts = _sentences(100, seed=12)  # 2 steps an epoch at batch 64: the 30-epoch ceiling
    model = Autoencoder(arch="transformer", **SMALL).fit(texts)
    assert model.epochs == "auto"
    assert model.n_epochs_ == 30
    assert Autoencoder(arch="transformer", epochs=3, **SMALL).fit(texts).n_epochs_ == 3
    assert Autoencoder(arch="sequence", **SMALL).fit(texts[:20]).n_epochs_ == 10


@pytest.mark.parametrize("arch", TEXT_FAMILIES)
def test_a_text_scores_the_same_alone_and_in_any_batch(arch: str) -> None:
    model = Autoencoder(arch=arch, epochs=1, **SMALL).fit(_sentences(100, seed=10))
    texts = [*_sentences(40, seed=11), "x" * 300, ""]
    together = model.reconstruction_error(texts)
    assert np.isfinite(together).all()
    alone = np.array([model.reconstruction_error([text])[0] for text in texts])
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(model.transform(texts[::-1]), model.transform(texts)[::-1])


@pytest.mark.parametrize("arch", TEXT_FAMILIES)
@pytest.mark.parametrize("noise", ["word_deletion", "typos"])
def test_a_denoising_text_model_returns_cleaned_strings(arch: str, noise: str) -> None:
    texts = _sentences(300, seed=12)
    model = Autoencoder(
        arch=arch, noise=noise, noise_strength=0.3, epochs=3, learning_rate=3e-3, **SMALL
    ).fit(texts)
    cleaned = model.denoise(["the cat sat on a mat", "the dgo ran to hte sea"])
    assert len(cleaned) == 2
    assert all(isinstance(text, str) for text in cleaned)
    assert model.history_["loss"][-1] < model.history_["loss"][0]


def test_text_noise_changes_training_and_array_noise_is_refused_for_texts() -> None:
    texts = _sentences(120, seed=13)
    plain = Autoencoder(arch="transformer", epochs=1, **SMALL).fit(texts)
    noisy = Autoencoder(arch="transformer", epochs=1, noise="typos", **SMALL).fit(texts)
    assert not np.array_equal(plain.transform(texts), noisy.transform(texts))
    with pytest.raises(InvalidParameterError, match="texts take noise in"):
        Autoencoder(arch="transformer", noise="gaussian", epochs=1, **SMALL).fit(texts)
    with pytest.raises(InvalidParameterError, match="corrupts texts"):
        Autoencoder(arch="dense", noise="typos", epochs=1, **SMALL).fit(np.zeros((20, 4)))


@pytest.mark.parametrize("arch", ["auto", "sequence"])
def test_text_models_train_from_a_text_stream(arch: str, tmp_path: Path) -> None:
    texts = _sentences(400, seed=14)
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    stream = Stream.open(path, piece_bytes=1024)  # many blocks
    model = Autoencoder(arch=arch, epochs=2, learning_rate=3e-3, **SMALL).fit(stream)
    assert model.arch_ == ("transformer" if arch == "auto" else arch)
    assert model.history_["loss"][-1] < model.history_["loss"][0]
    np.testing.assert_array_equal(
        model.reconstruction_error(stream), model.reconstruction_error(texts)
    )
    assert model.transform(stream).shape == (400, 8)


@pytest.mark.parametrize(
    ("arch", "X", "message"),
    [
        ("sequence", np.zeros((5, 3)), "needs strings: a list"),
        ("transformer", np.zeros((5, 3)), "needs strings: a list"),
        ("dense", ["some text", "more text"], "arch='dense' needs numeric arrays; got texts"),
        ("sequence", "one string", "not a single string"),
        ("sequence", ["text", 3], "item 1 is a int"),
        ("sequence", [], "at least one text"),
    ],
)
def test_mismatched_data_and_family_are_clear_errors(arch: str, X: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Autoencoder(arch=arch, epochs=1, **SMALL).fit(X)


@pytest.mark.parametrize("arch", TEXT_FAMILIES)
def test_english_model_flags_german_on_the_real_texts(arch: str) -> None:
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
        arch=arch,
        epochs=2,
        latent_dim=16,
        hidden_dims=(64,),
        learning_rate=5e-3,
        random_state=0,
        verbose=0,
    ).fit(train)
    scores = np.r_[model.reconstruction_error(held_out), model.reconstruction_error(german[:300])]
    assert roc_auc_score(np.r_[np.zeros(300), np.ones(300)], scores) > 0.8
