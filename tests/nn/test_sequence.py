"""The byte tokenizer and the GRU sequence autoencoder module."""

from __future__ import annotations

import numpy as np
import torch

from hourglass.nn.sequence import EOS, PAD, ByteTokenizer, SequenceAutoencoder, SequenceConfig


def test_tokenizer_round_trips_any_language_and_marks_the_end() -> None:
    tokenizer = ByteTokenizer(max_length=32)
    texts = ["hello", "Grüße, naïve café", "", "日本"]
    ids = tokenizer.encode(texts)
    assert ids.shape == (4, 32)
    assert ids.dtype == np.int64
    assert [tokenizer.decode(row) for row in ids] == texts
    assert ids[0, 5] == EOS
    assert (ids[0, 6:] == PAD).all()


def test_tokenizer_cuts_long_texts_but_keeps_the_end_marker() -> None:
    ids = ByteTokenizer(max_length=8).encode(["abcdefghijkl"])
    assert ids[0, -1] == EOS
    assert ByteTokenizer.decode(ids[0]) == "abcdefg"


def test_module_shapes_and_scores() -> None:
    config = SequenceConfig(input_shape=(16,), latent_dim=5, hidden_dim=12, embedding_dim=4)
    model = SequenceAutoencoder(config, generator=torch.Generator().manual_seed(0))
    tokens = torch.from_numpy(ByteTokenizer(16).encode(["abc", "hello world", "x"]))
    assert model.encode(tokens).shape == (3, 5)
    assert model(tokens).shape == (3, 12, 259)  # cut to the longest text (11 bytes + end)
    nll = model.per_text_nll(tokens)
    assert nll.shape == (3,)
    assert (nll > 0).all()
    assert model.generate(model.encode(tokens), 16).shape == (3, 16)
    loss, error_rate = model.reconstruction_loss(tokens, tokens, "nll")
    assert loss.requires_grad
    assert 0.0 <= error_rate.item() <= 1.0


def test_padding_does_not_change_a_texts_score() -> None:
    config = SequenceConfig(input_shape=(40,), latent_dim=5, hidden_dim=12, embedding_dim=4)
    model = SequenceAutoencoder(config, generator=torch.Generator().manual_seed(0)).eval()
    alone = torch.from_numpy(ByteTokenizer(40).encode(["short"]))
    beside_a_long_one = torch.from_numpy(ByteTokenizer(40).encode(["short", "a" * 30]))
    with torch.no_grad():
        torch.testing.assert_close(
            model.per_text_nll(alone)[0], model.per_text_nll(beside_a_long_one)[0]
        )
