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
    nearby codes. A *byte decoder* predicts each byte from the code and the
    previous ``decoder_context`` bytes (a causal convolution, then one hidden
    layer); it gives the per-byte likelihood and the decoded text. Attention
    over every previous byte cost most of a training step and did not
    separate languages better: the bag of words carries the text's content.

The training loss, and the outlier score of a text, is the mean negative
log-likelihood per byte plus ``bag_weight`` times the mean negative
log-likelihood per word of the bag of words.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hourglass.nn.base import ReconstructionModule
from hourglass.nn.sequence import BOS, EOS, PAD, VOCAB_SIZE, text_lengths
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
    decoder_dim: int = 128  # width of the byte decoder's hidden layer
    decoder_context: int = 8  # previous bytes the byte decoder reads
    trained_bytes: float = 0.25  # share of byte positions in each training step's byte loss
    word_dropout: float = 0.65  # training only
    feature_scale: float = 30.0  # feature embeddings are stored divided by this (see below)
    bag_scale: float = 10.0  # the bag-of-words logits are multiplied by this
    bag_weight: float = 3.0  # weight of the bag-of-words term in the loss and score
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
        self.features = nn.EmbeddingBag(
            config.feature_buckets, width, mode="sum", padding_idx=0, sparse=True
        )
        self.word_positions = nn.Parameter(torch.zeros(length + 1, width))
        self.encoder = nn.TransformerEncoder(
            _layer(width, config.heads), config.encoder_layers, enable_nested_tensor=False
        )
        self.to_code = nn.Linear(width, config.latent_dim)
        self.bag = nn.Linear(config.latent_dim, config.bag_buckets)
        dim = config.decoder_dim
        self.byte_embedding = nn.Embedding(VOCAB_SIZE, 32)
        # Each byte from the previous decoder_context bytes (a causal convolution) and the code.
        self.context = nn.Conv1d(32, dim, config.decoder_context)
        self.code_to_bytes = nn.Linear(config.latent_dim, dim)
        self.to_bytes = nn.Linear(dim, VOCAB_SIZE)
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
        """Token vectors ``(batch, words, hidden)`` of each row's words, and which are real.

        A word's vector is the sum of the embeddings of its hash and of the hashed
        n-grams ending at each of its bytes, divided by the root of its length: one
        bag per word slot of one embedding-bag call.
        """
        batch, _ = tokens.shape
        config = self.config
        number = word_index(tokens)
        # Training: as many word slots as the batch has words. Inference: as many as a row
        # of this length could hold, so a text's arithmetic never depends on its batch.
        most = int(number.max()) if self.training else (tokens.shape[1] + 1) // 2
        n_words = max(1, most)
        hashed = [word_hashes(tokens, config.feature_buckets)] + [
            byte_ngram_hashes(tokens, n, config.feature_buckets) for n in config.ngram_sizes
        ]
        rows, columns = (number > 0).nonzero(as_tuple=True)  # by row, then word: bag order
        ids = torch.stack(hashed, dim=-1)[rows, columns]  # (bytes in words, features)
        slot = rows * n_words + number[rows, columns] - 1
        lengths = torch.bincount(slot, minlength=batch * n_words)
        offsets = torch.cumsum(lengths, 0) - lengths
        # Adam moves a parameter by about the learning rate per step, whatever its scale;
        # storing the rarely-updated feature rows small and scaling them up here lets them
        # learn ``feature_scale`` times faster than the dense weights.
        scale = config.feature_scale / lengths.clamp(min=1).to(torch.float32).sqrt()
        weights = scale[slot].repeat_interleave(ids.shape[1])
        words = self.features(ids.flatten(), offsets * ids.shape[1], per_sample_weights=weights)
        real = (lengths > 0).view(batch, n_words)
        real[:, 0] |= ~real.any(dim=1)  # a text without words: one empty token to attend to
        return words.view(batch, n_words, -1), real

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
        previous = torch.cat([torch.full_like(tokens[:, :1], BOS), tokens[:, :-1]], dim=1)
        return self._logits_after(z, previous)

    def _logits_after(self, z: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """Logits of the byte after each of ``previous`` ids (zeros before the first)."""
        embedded = self.byte_embedding(previous).transpose(1, 2)  # (batch, 32, length)
        context = self.context(F.pad(embedded, (self.config.decoder_context - 1, 0)))
        return self._byte_head(context.transpose(1, 2), self.code_to_bytes(z).unsqueeze(1))

    def _byte_head(self, context: torch.Tensor, code_terms: torch.Tensor) -> torch.Tensor:
        """Byte logits from the previous bytes' convolution and the code's projection."""
        logits: torch.Tensor = self.to_bytes(F.gelu(context + code_terms))
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

    lengths = staticmethod(text_lengths)

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
        score: torch.Tensor = byte_nll + self.config.bag_weight * bag_nll
        return score

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher-forced next-byte logits for byte-id rows ``x``."""
        tokens = x.long()
        tokens = tokens[:, : int(self.lengths(tokens).max())]
        return self.byte_logits(self.encode(tokens), tokens)

    def _sampled_byte_losses(
        self, z: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean NLL and error rate of the bytes at a random ``trained_bytes`` of the positions.

        An unbiased estimate of the mean NLL per byte at a fraction of the cost:
        the byte decoder runs only where it is scored.
        """
        real = tokens != PAD
        drawn = torch.rand(tokens.shape, generator=self.dropout_generator, device=tokens.device)
        chosen = real & (drawn < self.config.trained_bytes)
        chosen[:, 0] |= ~chosen.any()  # never an empty sample
        window = self.config.decoder_context
        # The window of previous ids of each chosen position: BOS before the text, and
        # padding (a zero embedding, as the convolution's zero padding) before that.
        history = F.pad(tokens, (window, 0), value=PAD)
        history[:, window - 1] = BOS
        rows, columns = chosen.nonzero(as_tuple=True)
        offsets = torch.arange(window, device=tokens.device)
        previous = history[rows.unsqueeze(1), columns.unsqueeze(1) + offsets]  # (n, window)
        embedded = self.byte_embedding(previous) * (previous != PAD).unsqueeze(-1)
        picked = embedded.transpose(1, 2).flatten(1)  # (n, 32 * window), as the conv reads it
        context = F.linear(picked, self.context.weight.flatten(1), self.context.bias)
        logits = self._byte_head(context, self.code_to_bytes(z)[rows])
        targets = tokens[rows, columns]
        with torch.no_grad():
            error_rate = (logits.argmax(dim=1) != targets).float().mean()
        return F.cross_entropy(logits, targets), error_rate

    def reconstruction_loss(
        self, x: torch.Tensor, target: torch.Tensor, loss: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's mean score (the training loss) and its next-byte error rate.

        In a training step the byte term is estimated on a random ``trained_bytes``
        of the byte positions; in evaluation it is exact.
        """
        width = int(torch.maximum(self.lengths(x.long()), self.lengths(target.long())).max())
        x, tokens = x.long()[:, :width], target.long()[:, :width]
        if self.training and torch.is_grad_enabled() and self.config.trained_bytes < 1:
            z = self.encode(x)
            byte_loss, error_rate = self._sampled_byte_losses(z, tokens)
            bag_loss = self.bag_nll(z, tokens).mean()
            return byte_loss + self.config.bag_weight * bag_loss, error_rate
        byte_nll, bag_nll, wrong = self.per_text_losses(x, tokens)
        error_rate = wrong.sum() / self.lengths(tokens).sum()
        return (byte_nll + self.config.bag_weight * bag_nll).mean(), error_rate

    @torch.no_grad()
    def generate(self, z: torch.Tensor, max_length: int) -> torch.Tensor:
        """Greedy decoding of codes into byte-id rows ``(batch, max_length)``."""
        batch = z.shape[0]
        out = torch.full((batch, max_length), PAD, dtype=torch.long, device=z.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=z.device)
        history = torch.cat([torch.full_like(out[:, :1], BOS), out], dim=1)
        window = self.config.decoder_context
        for step in range(max_length):
            previous = history[:, max(0, step + 1 - window) : step + 1]
            logits = self._logits_after(z, previous)[:, -1]
            token = torch.where(finished, PAD, logits.argmax(dim=1))
            out[:, step] = token
            history[:, step + 1] = token
            finished |= token == EOS
            if bool(finished.all()):
                break
        return out
