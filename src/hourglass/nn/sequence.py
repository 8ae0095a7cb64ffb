"""A sequence autoencoder for text: GRU encoder to a code vector, GRU decoder back.

Text is read as UTF-8 bytes (:class:`ByteTokenizer`): no vocabulary to build or
download, any language, and unseen characters do not exist. The encoder reads
the bytes and its last hidden state becomes the code; the decoder, started
from the code and fed the code at every step, predicts each byte from the
previous ones (teacher forcing). The reconstruction loss of a text is the mean
negative log-likelihood per byte (including the end-of-text marker), which is
the outlier score: text unlike the training text costs more bits per byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from hourglass.nn.base import ReconstructionModule
from hourglass.nn.blocks import glorot_normal_

__all__ = ["ByteTokenizer", "SequenceAutoencoder", "SequenceConfig", "text_lengths"]

PAD, BOS, EOS = 256, 257, 258  # ids after the 256 byte values
VOCAB_SIZE = 259


@dataclass(frozen=True)
class ByteTokenizer:
    """UTF-8 bytes as token ids, an end-of-text id, padding to ``max_length``.

    Texts longer than ``max_length - 1`` bytes are cut (the end-of-text id
    always fits).
    """

    max_length: int = 256

    def encode(self, texts: Sequence[str]) -> NDArray[np.int64]:
        """Token ids of shape ``(len(texts), max_length)``, padded with ``PAD``."""
        ids = np.full((len(texts), self.max_length), PAD, dtype=np.int64)
        for row, text in zip(ids, texts, strict=True):
            encoded = text.encode("utf-8", errors="replace")[: self.max_length - 1]
            data = np.frombuffer(encoded, dtype=np.uint8)
            row[: data.size] = data
            row[data.size] = EOS
        return ids

    @staticmethod
    def decode(ids: Sequence[int] | NDArray[np.int64]) -> str:
        """The text of one row of ids, up to the end-of-text id (invalid UTF-8 replaced)."""
        data = bytearray()
        for token in ids:
            if token in (EOS, PAD):
                break
            if token < 256:
                data.append(int(token))
        return data.decode("utf-8", errors="replace")


def text_lengths(tokens: torch.Tensor) -> torch.Tensor:
    """Number of ids up to and including the end-of-text id, per row (at least 1)."""
    return (tokens != PAD).sum(dim=1).clamp(min=1)


@dataclass(frozen=True)
class SequenceConfig:
    """Architecture of a :class:`SequenceAutoencoder`."""

    input_shape: tuple[int, ...] = (256,)  # (max_length,): token ids per text
    latent_dim: int = 64
    hidden_dim: int = 128  # GRU state size of encoder and decoder
    embedding_dim: int = 32
    activation: str = "linear"  # the code is linear: a saturating tanh made codes alike
    output_activation: str = "softmax"  # over the next byte


class SequenceAutoencoder(ReconstructionModule):
    """GRU encoder → linear code → GRU decoder conditioned on the code at every step.

    Parameters
    ----------
    config : SequenceConfig
        The architecture.
    generator : torch.Generator, optional
        Source of randomness for the initial weights.
    """

    def __init__(self, config: SequenceConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(VOCAB_SIZE, config.embedding_dim, padding_idx=PAD)
        self.encoder = nn.GRU(config.embedding_dim, config.hidden_dim, batch_first=True)
        self.to_code = nn.Linear(config.hidden_dim, config.latent_dim)
        self.to_state = nn.Linear(config.latent_dim, config.hidden_dim)
        self.decoder = nn.GRU(
            config.embedding_dim + config.latent_dim, config.hidden_dim, batch_first=True
        )
        self.to_bytes = nn.Linear(config.hidden_dim, VOCAB_SIZE)
        with torch.no_grad():
            for name, parameter in self.named_parameters():
                if parameter.dim() >= 2:
                    glorot_normal_(parameter, generator)
                elif "bias" in name:
                    parameter.zero_()

    lengths = staticmethod(text_lengths)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``(batch, latent_dim)`` of token rows ``(batch, length)``.

        The encoder runs over every column and each row's code is read at its own
        last id. Unlike a packed sequence, whose step sizes depend on the other
        rows' lengths, every row's arithmetic is then the same whatever rows it
        shares the batch with.
        """
        tokens = x.long()
        states, _ = self.encoder(self.embed(tokens))  # (batch, length, hidden)
        last = (self.lengths(tokens) - 1).view(-1, 1, 1).expand(-1, 1, states.shape[2])
        codes: torch.Tensor = self.to_code(states.gather(1, last).squeeze(1))
        return codes

    def decode_logits_for(self, z: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Next-byte logits ``(batch, length, vocab)`` given the code and the true bytes."""
        previous = torch.cat([torch.full_like(tokens[:, :1], BOS), tokens[:, :-1]], dim=1)
        steps = previous.shape[1]
        inputs = torch.cat([self.embed(previous), z.unsqueeze(1).expand(-1, steps, -1)], dim=2)
        state = torch.tanh(self.to_state(z)).unsqueeze(0)  # (1, batch, hidden)
        outputs, _ = self.decoder(inputs, state)
        logits: torch.Tensor = self.to_bytes(outputs)
        return logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher-forced next-byte logits for token rows ``x``."""
        tokens = x.long()
        length = int(self.lengths(tokens).max())
        tokens = tokens[:, :length]  # no work on all-padding columns
        return self.decode_logits_for(self.encode(tokens), tokens)

    def per_text_nll(self, x: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood per byte of each text, ``(batch,)``.

        Computed over all of ``x``'s columns (callers cut all-padding columns), so
        that a row's arithmetic does not depend on the other rows' lengths.
        """
        tokens = x.long()
        logits = self.decode_logits_for(self.encode(tokens), tokens)
        nll = F.cross_entropy(logits.transpose(1, 2), tokens, ignore_index=PAD, reduction="none")
        return nll.sum(dim=1) / self.lengths(tokens)

    def reconstruction_loss(
        self, x: torch.Tensor, target: torch.Tensor, loss: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean NLL per byte of ``target`` given the code of ``x``, and the next-byte error rate.

        ``x`` and ``target`` differ for a denoising model (``x`` corrupted).
        """
        length = int(torch.maximum(self.lengths(x.long()), self.lengths(target.long())).max())
        tokens = target.long()[:, :length]
        logits = self.decode_logits_for(self.encode(x.long()[:, :length]), tokens)
        value = F.cross_entropy(logits.transpose(1, 2), tokens, ignore_index=PAD)
        with torch.no_grad():
            real = tokens != PAD
            error_rate = ((logits.argmax(dim=2) != tokens) & real).sum() / real.sum()
        return value, error_rate

    @torch.no_grad()
    def generate(self, z: torch.Tensor, max_length: int) -> torch.Tensor:
        """Greedy decoding of codes into token rows ``(batch, max_length)``."""
        batch = z.shape[0]
        state = torch.tanh(self.to_state(z)).unsqueeze(0)
        previous = torch.full((batch, 1), BOS, dtype=torch.long, device=z.device)
        out = torch.full((batch, max_length), PAD, dtype=torch.long, device=z.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=z.device)
        for step in range(max_length):
            inputs = torch.cat([self.embed(previous), z.unsqueeze(1)], dim=2)
            output, state = self.decoder(inputs, state)
            token = self.to_bytes(output[:, -1]).argmax(dim=1)
            token = torch.where(finished, torch.full_like(token, PAD), token)
            out[:, step] = token
            finished |= token == EOS
            if bool(finished.all()):
                break
            previous = token.unsqueeze(1)
        return out
