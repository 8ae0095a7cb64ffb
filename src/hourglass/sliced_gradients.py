"""Training steps that use every core and give the same bits on any number of them.

A CPU matrix or convolution library given several threads splits some of its
sums between them, which changes their rounding: the gradients, and so the
trained weights, depend on the thread count. :func:`hourglass.training.train`
therefore trained such models on one thread, while the other cores idled.

:class:`SlicedGradients` computes a batch's gradient as the sum of the
gradients of :data:`SLICES` fixed slices of it. Every slice runs on one
thread, and the slices' gradients are added in a fixed order, so the result
does not depend on whether the slices run one after another on one core or at
the same time on several: the same bits either way, and the training loop may
switch between the two as the machine's load changes (the
:class:`hourglass.threads.ThreadTuner` does). It needs an objective whose
values are means over the batch's samples and that draws no random numbers
(the families say which, :meth:`Family.slices_batches`).

Measured on 2 cores (Fashion-MNIST, batch 64): the convolutional model's
training step takes 14.7 ms instead of 24 ms on one thread; two threads on the
whole batch take 13.3 ms, but change the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn

from hourglass._training_types import Objective
from hourglass.nn import fused
from hourglass.threads import num_threads

__all__ = ["SLICES", "SlicedGradients"]

#: Slices of every batch. Fixed, not the number of cores: the slices decide the
#: result, the cores only how fast it comes.
SLICES = 2


class SlicedGradients:
    """A batch's objective and gradients, computed slice by slice on up to :data:`SLICES` cores.

    Parameters
    ----------
    module : torch.nn.Module
        The model whose parameters receive the gradients (in ``.grad``).
    objective : callable
        ``objective(module, inputs, targets)`` returning a dict of scalar
        tensors, each a mean over the samples; ``"loss"`` is differentiated.
        It may instead write the gradients itself through
        :func:`hourglass.nn.fused.gradient_buffer` (a fused step).
    slices : int, default=SLICES
        Slices per batch.
    """

    def __init__(self, module: nn.Module, objective: Objective, slices: int = SLICES) -> None:
        self.module, self.objective, self.slices = module, objective, int(slices)
        self.params = [p for p in module.parameters() if p.requires_grad]
        # One set of fused-gradient buffers per slice, reused from step to step.
        self._buffers: list[dict[int, torch.Tensor]] = [{} for _ in range(self.slices)]
        self._pool: ThreadPoolExecutor | None = None

    def step(self, x: torch.Tensor, y: torch.Tensor, workers: int) -> dict[str, torch.Tensor]:
        """Set every parameter's ``.grad`` for the batch ``(x, y)``; return its values.

        ``workers`` threads (at most :data:`SLICES`) compute the slices; the
        result is the same for every ``workers``.
        """
        n = x.shape[0]
        parts = [
            (i, xs, ys)
            for i, (xs, ys) in enumerate(
                zip(
                    torch.tensor_split(x, self.slices),
                    torch.tensor_split(y, self.slices),
                    strict=True,
                )
            )
            if xs.shape[0] > 0
        ]
        if workers > 1 and len(parts) > 1:
            results = list(self._workers().map(self._slice, parts))
        else:
            with num_threads(1):
                results = [self._slice(part) for part in parts]
        weights = [xs.shape[0] / n for _, xs, _ in parts]
        for index, param in enumerate(self.params):
            param.grad = _weighted_sum([grads[index] for _, grads in results], weights)
        means: dict[str, torch.Tensor] = {}
        for key in results[0][0]:
            mean = _weighted_sum([values[key] for values, _ in results], weights)
            assert mean is not None  # every slice has every value
            means[key] = mean
        return means

    def close(self) -> None:
        """Stop the worker threads (a later :meth:`step` starts them again)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _workers(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                self.slices,
                thread_name_prefix="hourglass-slice",
                initializer=torch.set_num_threads,  # per thread: each slice on one core
                initargs=(1,),
            )
        return self._pool

    def _slice(
        self, part: tuple[int, torch.Tensor, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], list[torch.Tensor | None]]:
        index, xs, ys = part
        buffers = self._buffers[index]
        with fused.gradients_into(buffers):
            values = self.objective(self.module, xs, ys)
        loss = values["loss"]
        grads: Sequence[torch.Tensor | None]
        if loss.requires_grad:
            grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        else:  # a fused step wrote them into this slice's buffers
            grads = [buffers.get(id(p)) for p in self.params]
        return {k: v.detach() for k, v in values.items()}, list(grads)


def _weighted_sum(
    terms: Sequence[torch.Tensor | None], weights: Sequence[float]
) -> torch.Tensor | None:
    """``sum(w * t)`` in the given order, skipping ``None`` (no gradient).

    The first term is scaled in place: the terms are this step's own tensors.
    """
    total: torch.Tensor | None = None
    for term, weight in zip(terms, weights, strict=True):
        if term is None:
            continue
        if total is None:
            total = term.mul_(weight)
        else:
            total.add_(term, alpha=weight)
    return total
