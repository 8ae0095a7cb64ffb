"""The transformer text module: shapes, the sampled byte loss, decoding, word slots."""

from __future__ import annotations

import pytest
import torch

from hourglass.nn.sequence import PAD, ByteTokenizer
from hourglass.nn.transformer import TransformerTextAutoencoder, TransformerTextConfig

TEXTS = ["the cat sat on the mat", "a dog", "Zwei Hunde laufen schnell davon.", ""]


def _model(**overrides: object) -> TransformerTextAutoencoder:
    config = TransformerTextConfig(input_shape=(64,), latent_dim=8, hidden_dim=16, **overrides)
    return TransformerTextAutoencoder(config, generator=torch.Generator().manual_seed(0))


def _rows() -> torch.Tensor:
    return torch.from_numpy(ByteTokenizer(64).encode(TEXTS))


def test_codes_scores_and_decoded_rows_have_their_shapes() -> None:
    model = _model().eval()
    rows = _rows()
    with torch.no_grad():
        codes = model.encode(rows)
        assert codes.shape == (4, 8)
        scores = model.per_text_nll(rows)
        assert scores.shape == (4,)
        assert torch.isfinite(scores).all()
        decoded = model.generate(codes, 64)
    assert decoded.shape == (4, 64)


def test_the_sampled_byte_loss_estimates_the_exact_one() -> None:
    model = _model(word_dropout=0.0, trained_bytes=0.999999)
    rows = _rows()
    sampled, _ = model.train().reconstruction_loss(rows, rows, "nll")
    exact, _ = model.eval().reconstruction_loss(rows, rows, "nll")
    assert float(sampled.detach()) == pytest.approx(float(exact), rel=0.05)


def test_training_and_inference_word_slots_give_the_same_code() -> None:
    """Training pads to the batch's words, inference to what the row length allows."""
    model = _model(word_dropout=0.0)
    rows = _rows()
    with torch.no_grad():
        trained = model.train().encode(rows)
        inferred = model.eval().encode(rows)
    torch.testing.assert_close(trained, inferred, rtol=1e-4, atol=1e-5)


def test_greedy_decoding_matches_teacher_forcing_on_its_own_output() -> None:
    model = _model().eval()
    with torch.no_grad():
        codes = model.encode(_rows())
        decoded = model.generate(codes, 64)
        logits = model.byte_logits(codes, decoded)
    real = decoded != PAD
    assert torch.equal(logits.argmax(dim=2)[real], decoded[real])


def test_feature_rows_get_sparse_gradients() -> None:
    model = _model()
    loss, _ = model.train().reconstruction_loss(_rows(), _rows(), "nll")
    loss.backward()
    assert model.features.weight.grad is not None
    assert model.features.weight.grad.is_sparse
