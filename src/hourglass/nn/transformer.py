"""A transformer text autoencoder: words in, a pooled code, a bag of words and the bytes out.

The input is a row of UTF-8 byte ids (:class:`~hourglass.nn.sequence.ByteTokenizer`),
as for the GRU model, so both text families read texts the same way.

Encoder
    Each word becomes one token: the embedding of its hashed lowercase form
    plus those of its hashed character n-grams (:mod:`hourglass.nn.text_features`),
    so unseen and misspelt words still share most of their features with known
    ones. A transformer encoder reads the tokens, which are then mean-pooled
    and mapped linearly to the code. While training, each word is left out
    with probability ``word_dropout`` (as TSDAE does): the code has to say what
    a text is about, not which words it spells.
Decoders, both conditioned on the code
    A *bag-of-words head* predicts the text's hashed words from the code alone
    (a softmax over buckets). It is what makes texts about the same things get
    nearby codes. A *byte decoder*, a causal transformer over the bytes with
    the code added at every position, predicts each byte from the previous
    ones; it gives the per-byte likelihood and the decoded text.

The training loss, and the outlier score of a text, is the mean negative
log-likelihood per byte plus the mean negative log-likelihood per word of the
bag of words.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hourglass.nn.base import ReconstructionModule
from hourglass.nn.sequence import BOS, EOS, PAD, VOCAB_SIZE
from hourglass.nn.text_features import byte_ngram_hashes, delete_words, word_hashes, word_index

__all__ = ["TransformerTextAutoencoder", "TransformerTextConfig"]


@dataclass(frozen=True)
class TransformerTextConfig:
    """Architecture of a :class:`TransformerTextAutoencoder`."""

    input_shape: tuple[int, ...] = (256,)  # (max_length,): byte ids per text
    latent_dim: int = 64
    hidden_dim: int = 128  # width of the word tokens and the encoder
    encoder_layers: int = 1
    heads: int = 4
    feature_buckets: int = 2**16  # hashed words and character n-grams (encoder input)
    ngram_sizes: tuple[int, ...] = (3, 4, 5)
    bag_buckets: int = 2**15  # hashed words (bag-of-words head)
    decoder_dim: int = 64
    decoder_layers: int = 1
    word_dropout: float = 0.65  # training only
    feature_scale: float = 30.0  # feature embeddings are stored divided by this (see below)
    bag_scale: float = 10.0  # the bag-of-words logits are multiplied by this
    activation: str = "linear"
    output_activation: str = "softmax"  # over the next byte


def _layer(width: int, heads: int) -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(
        width,
        heads,
        2 * width,
        dropout=0.0,
        activation="gelu",
        batch_first=True,
        norm_first=True,
    )


class TransformerTextAutoencoder(ReconstructionModule):
    """Word-token transformer encoder → pooled linear code → bag-of-words head and byte decoder.

    Parameters
    ----------
    config : TransformerTextConfig
        The architecture.
    generator : torch.Generator, optional
        Source of randomness for the initial weights.
    """

    def __init__(
        self, config: TransformerTextConfig, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.config = config
        width, length = config.hidden_dim, config.input_shape[0]
        self.features = nn.Embedding(config.feature_buckets, width, padding_idx=0, sparse=True)
        self.word_positions = nn.Parameter(torch.zeros(length + 1, width))
        self.encoder = nn.TransformerEncoder(
            _layer(width, config.heads), config.encoder_layers, enable_nested_tensor=False
        )
        self.to_code = nn.Linear(width, config.latent_dim)
        self.bag = nn.Linear(config.latent_dim, config.bag_buckets)
        dim = config.decoder_dim
        self.byte_embedding = nn.Embedding(VOCAB_SIZE, dim)
        self.byte_positions = nn.Parameter(torch.zeros(length, dim))
        self.code_to_bytes = nn.Linear(config.latent_dim, dim)
        self.decoder = nn.TransformerEncoder(
            _layer(dim, max(1, dim // 32)), config.decoder_layers, enable_nested_tensor=False
        )
        self.to_bytes = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, VOCAB_SIZE))
        self.dropout_generator: torch.Generator | None = None
        with torch.no_grad():
            for parameter in self.parameters():
                if parameter.dim() >= 2:
                    parameter.normal_(0.0, 0.02, generator=generator)
            self.features.weight.normal_(0.0, 0.02 / config.feature_scale, generator=generator)
            self.features.weight[0].zero_()
            for name, parameter in self.named_parameters():
                if parameter.dim() == 1 and "bias" in name:
                    parameter.zero_()

    # ------------------------------------------------------------- encoder

    def word_tokens(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token vectors ``(batch, words, hidden)`` of each row's words, and which are real."""
        batch, _ = tokens.shape
        config = self.config
        number = word_index(tokens)
        inside = (number > 0).unsqueeze(-1)
        vectors = self.features(word_hashes(tokens, config.feature_buckets))
        for n in config.ngram_sizes:
            vectors = vectors + self.features(byte_ngram_hashes(tokens, n, config.feature_buckets))
        # Adam moves a parameter by about the learning rate per step, whatever its scale;
        # storing the rarely-updated feature rows small and scaling them up here lets them
        # learn ``feature_scale`` times faster than the dense weights.
        vectors = vectors * inside * config.feature_scale
        # Training: as many word slots as the batch has words. Inference: as many as a row
        # of this length could hold, so a text's arithmetic never depends on its batch.
        most = int(number.max()) if self.training else (tokens.shape[1] + 1) // 2
        n_words = max(1, most)
        width = vectors.shape[-1]
        sums = torch.zeros(batch, n_words + 1, width, dtype=vectors.dtype, device=vectors.device)
        sums.scatter_add_(1, number.unsqueeze(-1).expand(-1, -1, width), vectors)
        counts = torch.zeros(batch, n_words + 1, dtype=vectors.dtype, device=vectors.device)
        counts.scatter_add_(1, number, inside.squeeze(-1).to(vectors.dtype))
        words, counts = sums[:, 1:], counts[:, 1:]
        return words / counts.clamp(min=1).sqrt().unsqueeze(-1), counts > 0

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``(batch, latent_dim)`` of byte-id rows ``(batch, length)``."""
        tokens = x.long()
        if self.training and self.config.word_dropout > 0:
            tokens = delete_words(tokens, self.config.word_dropout, self.dropout_generator)
        words, real = self.word_tokens(tokens)
        states = self.encoder(
            words + self.word_positions[: words.shape[1]], src_key_padding_mask=~real
        )
        weights = real.unsqueeze(-1).to(states.dtype)
        pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
        codes: torch.Tensor = self.to_code(pooled)
        return codes

    # ------------------------------------------------------------ decoders

    def byte_logits(self, z: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Next-byte logits ``(batch, length, vocab)`` given the code and the true bytes."""
        length = tokens.shape[1]
        previous = torch.cat([torch.full_like(tokens[:, :1], BOS), tokens[:, :-1]], dim=1)
        inputs = (
            self.byte_embedding(previous)
            + self.byte_positions[:length]
            + self.code_to_bytes(z).unsqueeze(1)
        )
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device)
        states = self.decoder(inputs, mask=mask, is_causal=True)
        logits: torch.Tensor = self.to_bytes(states)
        return logits

    def bag_nll(self, z: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood per word of each text's bag of words, ``(batch,)``."""
        buckets = self.config.bag_buckets
        hashed = word_hashes(tokens, buckets)
        counts = torch.zeros(tokens.shape[0], buckets, dtype=z.dtype, device=z.device)
        counts.scatter_add_(1, hashed, (hashed > 0).to(z.dtype))
        counts[:, 0] = 0
        log_probabilities = F.log_softmax(self.bag(z) * self.config.bag_scale, dim=1)
        return -(counts * log_probabilities).sum(dim=1) / counts.sum(dim=1).clamp(min=1)

    @staticmethod
    def lengths(tokens: torch.Tensor) -> torch.Tensor:
        """Number of ids up to and including the end-of-text id, per row."""
        return (tokens != PAD).sum(dim=1).clamp(min=1)

    def per_text_losses(self, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Per text: NLL per byte, NLL per word of the bag, and mispredicted bytes.

        ``x`` is encoded (possibly corrupted), ``target`` is reconstructed; the
        computation uses all of their columns (callers cut all-padding columns).
        """
        tokens = target.long()
        z = self.encode(x)
        logits = self.byte_logits(z, tokens)
        nll = F.cross_entropy(logits.transpose(1, 2), tokens, ignore_index=PAD, reduction="none")
        real = tokens != PAD
        with torch.no_grad():
            wrong = ((logits.argmax(dim=2) != tokens) & real).sum(dim=1)
        return nll.sum(dim=1) / self.lengths(tokens), self.bag_nll(z, tokens), wrong

    def per_text_nll(self, x: torch.Tensor) -> torch.Tensor:
        """The outlier score: NLL per byte plus NLL per word of the bag, ``(batch,)``."""
        byte_nll, bag_nll, _ = self.per_text_losses(x, x)
        return byte_nll + bag_nll

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher-forced next-byte logits for byte-id rows ``x``."""
        tokens = x.long()
        tokens = tokens[:, : int(self.lengths(tokens).max())]
        return self.byte_logits(self.encode(tokens), tokens)

    def reconstruction_loss(
        self, x: torch.Tensor, target: torch.Tensor, loss: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's mean score (the training loss) and its next-byte error rate."""
        width = int(torch.maximum(self.lengths(x.long()), self.lengths(target.long())).max())
        byte_nll, bag_nll, wrong = self.per_text_losses(x[:, :width], target[:, :width])
        error_rate = wrong.sum() / self.lengths(target.long()[:, :width]).sum()
        return (byte_nll + bag_nll).mean(), error_rate

    @torch.no_grad()
    def generate(self, z: torch.Tensor, max_length: int) -> torch.Tensor:
        """Greedy decoding of codes into byte-id rows ``(batch, max_length)``."""
        batch = z.shape[0]
        out = torch.full((batch, max_length), PAD, dtype=torch.long, device=z.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=z.device)
        for step in range(max_length):
            logits = self.byte_logits(z, out[:, : step + 1])[:, step]
            token = torch.where(finished, PAD, logits.argmax(dim=1))
            out[:, step] = token
            finished |= token == EOS
            if bool(finished.all()):
                break
        return out
