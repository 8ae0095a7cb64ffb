"""The types the training loop and its data-parallel part share.

:mod:`hourglass.training` imports :mod:`hourglass.distributed`, and both use
these; keeping them here lets the dependency run one way. Import them from
:mod:`hourglass.training`, their public home.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from hourglass.nn.native import AdamWState

__all__ = ["Batch", "BatchSource", "CompiledBatches", "Objective"]

#: ``objective(module, inputs, targets) -> {"loss": scalar, other metrics...}``,
#: every value a scalar tensor averaged over the batch. If ``"loss"`` does not
#: require grad while gradients are enabled, the objective is taken to have
#: written the parameters' ``.grad`` itself (a fused step), and no backward
#: pass is run.
Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]

#: One batch as a source yields it: inputs, and targets or None where the targets
#: are the inputs themselves (the autoencoder case; one tensor, not two copies).
Batch = tuple[torch.Tensor, torch.Tensor | None]


@runtime_checkable
class BatchSource(Protocol):
    """Where :func:`hourglass.training.train` and ``evaluate`` get their batches from.

    :class:`hourglass.training.TensorSource` serves tensors held in memory;
    streaming sources (:mod:`hourglass.data.stream`) read them from files chunk
    by chunk. Every epoch yields full batches of ``batch_size`` samples but maybe
    the last.
    """

    @property
    def n_samples(self) -> int:
        """Number of samples an epoch goes through."""
        ...

    def epoch(
        self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None
    ) -> Iterator[Batch]:
        """The batches of one pass, in a random order drawn from ``generator`` if ``shuffle``."""
        ...

    def head(self, n: int) -> Batch:
        """The first ``n`` samples (fewer if there are fewer), for a trial step."""
        ...


class CompiledBatches(Protocol):
    """Several consecutive training batches of an epoch in one call (a compiled loop).

    ``compiled(inputs, order, batch_size, first, count, optimizer)`` trains on
    batches ``first`` to ``first + count - 1`` of an epoch over the in-memory
    ``inputs``: batch ``b`` holds the rows ``order[b * batch_size:(b + 1) *
    batch_size]`` (the rows in turn when ``order`` is None), prepared as the
    loop's ``prepare_batch`` would and its own target, the inputs corrupted as
    the loop's ``corrupt_inputs`` would; each is followed by ``optimizer``'s
    update. It must compute exactly what the loop's own steps would, and return
    the objective's values of every batch, each of shape ``(count,)``.
    """

    def __call__(
        self,
        inputs: torch.Tensor,
        order: torch.Tensor | None,
        batch_size: int,
        first: int,
        count: int,
        optimizer: AdamWState,
    ) -> dict[str, torch.Tensor]:
        """Train on the batches; return their objective values."""
        ...
