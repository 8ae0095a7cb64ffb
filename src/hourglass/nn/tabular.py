"""An autoencoder for mixed tables: numeric columns with missing values, categorical columns.

Input rows come packed as ``[numeric (missing -> 0) | present-mask | category codes]``
(see :mod:`hourglass.tabular`). The encoder reads the numeric values, the
missing indicators and one learnt embedding per categorical column; the
decoder has one output per numeric column and one softmax head per categorical
column. The loss of a row is a sum over columns, each on a comparable scale:
the Huber error of each *present* numeric value (missing ones are ignored) and
the cross-entropy of each present category (code 0, missing, is ignored).

Training can be made robust to outliers in the training data by *trimming*: each
batch's loss is then the mean over its rows minus the given fraction with the highest
loss (:func:`trimmed_mean`), so that rows the model reconstructs worst, the likely
outliers, do not shape it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hourglass.nn.base import ReconstructionModule
from hourglass.nn.blocks import glorot_normal_, make_activation

__all__ = ["TabularAutoencoder", "TabularConfig", "trimmed_mean"]


@dataclass(frozen=True)
class TabularConfig:
    """Architecture of a :class:`TabularAutoencoder`."""

    input_shape: tuple[int, ...]  # (packed width,) = (2 * n_numeric + n_categorical,)
    n_numeric: int
    category_sizes: tuple[int, ...]  # codes per categorical column (missing + unseen + vocab)
    latent_dim: int = 8
    hidden_dims: tuple[int, ...] = (64,)
    activation: str = "relu"
    output_activation: str = "mixed"

    @property
    def embedding_dims(self) -> tuple[int, ...]:
        """Embedding width of each categorical column: grows slowly with its codes."""
        return tuple(min(16, max(2, (size + 1) // 2)) for size in self.category_sizes)


def trimmed_mean(values: torch.Tensor, fraction: float) -> torch.Tensor:
    """Mean of ``values`` ``(n,)`` without the ``floor(fraction * n)`` largest.

    The trimmed mean of robust statistics: a fraction of gross errors cannot
    move it. ``fraction`` is in [0, 0.5); 0 gives the plain mean. The gradient
    reaches the kept values only.
    """
    n = values.shape[0]
    n_kept = n - math.floor(fraction * n)
    if n_kept == n:
        return values.mean()
    return torch.topk(values, n_kept, largest=False, sorted=False).values.mean()


def _mlp(widths: list[int], activation: str, *, last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    pairs = list(itertools.pairwise(widths))
    for i, (width_in, width_out) in enumerate(pairs):
        layers.append(nn.Linear(width_in, width_out))
        if last_activation or i < len(pairs) - 1:
            layers.append(make_activation(activation))
    return nn.Sequential(*layers)


class TabularAutoencoder(ReconstructionModule):
    """Mixed-type autoencoder: numeric + missing indicators + embeddings in, typed heads out.

    Parameters
    ----------
    config : TabularConfig
        The architecture.
    generator : torch.Generator, optional
        Source of randomness for the initial weights.
    """

    def __init__(self, config: TabularConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        p = config.n_numeric
        self.embeddings = nn.ModuleList(
            nn.Embedding(size, dim)
            for size, dim in zip(config.category_sizes, config.embedding_dims, strict=True)
        )
        widths = [2 * p + sum(config.embedding_dims), *config.hidden_dims, config.latent_dim]
        self.encoder = _mlp(widths, config.activation, last_activation=True)
        out_width = p + sum(config.category_sizes)
        self.decoder = _mlp(
            [*widths[::-1][:-1], out_width], config.activation, last_activation=False
        )
        with torch.no_grad():
            for parameter in self.parameters():
                if parameter.dim() >= 2:
                    glorot_normal_(parameter, generator)
                else:
                    parameter.zero_()

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p = self.config.n_numeric
        return x[:, :p], x[:, p : 2 * p], x[:, 2 * p :].long()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``(batch, latent_dim)`` of packed rows."""
        numeric, present, codes = self._split(x)
        embedded = [emb(codes[:, k]) for k, emb in enumerate(self.embeddings)]
        codes_out: torch.Tensor = self.encoder(torch.cat([numeric, present, *embedded], dim=1))
        return codes_out

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Numeric predictions followed by every categorical head's logits."""
        out: torch.Tensor = self.decoder(z)
        return out

    def column_losses(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Loss of every column of every row, ``(batch, n_numeric + n_categorical)``.

        Missing entries cost 0. Numeric: Huber error in robust-scaled units.
        Categorical: cross-entropy of the true code. ``z``: the rows' codes,
        when the caller has them already (``encode(x)``).
        """
        return self._losses_and_outputs(x, z)[0]

    def _losses_and_outputs(
        self, x: torch.Tensor, z: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        numeric, present, codes = self._split(x)
        out = self.decode_logits(self.encode(x) if z is None else z)
        p = self.config.n_numeric
        losses = [F.huber_loss(out[:, :p], numeric, reduction="none") * present]
        start = p
        for k, size in enumerate(self.config.category_sizes):
            logits = out[:, start : start + size]
            start += size
            target = codes[:, k]
            entropy = F.cross_entropy(logits, target, reduction="none")
            losses.append((entropy * (target != 0)).unsqueeze(1))
        return torch.cat(losses, dim=1), out

    def row_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Mean column loss of each row, ``(batch,)``: the outlier score."""
        return self.column_losses(x).mean(dim=1)

    def reconstruction_loss(
        self, x: torch.Tensor, target: torch.Tensor, loss: str, *, trim: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean column loss, and the mean absolute error of the present numeric values.

        ``trim`` in [0, 0.5) leaves that fraction of the rows (rounded down), those
        with the highest mean column loss, out of the loss: see :func:`trimmed_mean`.
        The error is that of every row.
        """
        losses, out = self._losses_and_outputs(x)
        with torch.no_grad():
            numeric, present, _ = self._split(x)
            error = (out[:, : self.config.n_numeric] - numeric).abs() * present
            mae = error.sum() / present.sum().clamp(min=1)
        if trim > 0:
            return trimmed_mean(losses.mean(dim=1), trim), mae  # (batch,) row losses
        return losses.mean(), mae
