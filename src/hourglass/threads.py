"""Choosing torch's CPU thread count for training by measuring, not guessing.

Small networks are a bad fit for a fixed thread count. On an idle 2-core
machine, two intra-op threads train the reference autoencoder 1.4× faster than
one; with the other core busy, the same two threads can run 15× *slower*, since
every parallel region waits for a thread that is not scheduled. So
:class:`ThreadTuner` measures: training runs in blocks of batches, the first
blocks of each round try every candidate thread count, the fastest one is kept,
and a block that runs much slower than expected (the machine got busier) starts
a new round of measurement. Rounds also restart periodically, to notice when
the machine became idle again.

One block per candidate is too little on a shared machine. A block of the dense
reference model lasts about 25 ms; measured in alternating blocks over an epoch on
a 2-core cloud VM, two threads were 13–18% faster than one (medians), but the
faster count won only 8–12 of 14 adjacent pairs of blocks, so a round of one block
each kept one thread in about a third of the fits. Each candidate is therefore
measured ``trials`` times (default 2), in mirrored order (1, 2, 2, 1): a steady
drift of the machine's speed then weighs on every candidate alike. A candidate's
fastest block counts, since a block can only be slowed down by the machine. Where
the first block of each already tells them apart by more than noise does (the
convolutional model's slices run 1.6x faster on two cores), the round ends there.

Changing the thread count must not change the results. Whether it does is up to
the matrix library and the CPU: some split a product's output between threads,
others (on some AVX-512 CPUs, for the reference encoder) split its sums, which
changes the rounding. Training therefore checks the first batch's gradients on
every candidate count and tunes only where they agree, else keeps one thread
(``hourglass.training``; ``tests/test_threads.py`` checks both cases) — unless each
batch is computed in slices of one thread each (:mod:`hourglass.sliced_gradients`),
whose result never depends on the thread count.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
from collections.abc import Iterator

import torch

__all__ = ["ThreadTuner", "available_cores", "num_threads"]


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (``None`` leaves it unchanged).

    Setting the count costs more than reading it, so an unchanged count is not set.
    """
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    if n != previous:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


class ThreadTuner:
    """Picks, block by block, the thread count that trains fastest right now.

    Call :meth:`start_block` before each block of ``block_size`` batches (it
    sets torch's thread count and returns it) and :meth:`end_block` after it
    with the block's duration.

    Parameters
    ----------
    candidates : tuple of int
        Thread counts to choose from, e.g. ``(1, 2)``.
    block_size : int, default=32
        Batches per measured block.
    slowdown : float, default=1.5
        A block this many times slower per batch than expected restarts the
        measurement.
    remeasure_every : int, default=40
        Blocks after which the measurement restarts anyway.
    trials : int, default=2
        Blocks measured per candidate in each round, in mirrored order; the
        fastest of a candidate's blocks counts.
    decisive : float, default=1.3
        After one block of every candidate, the round ends early when the
        fastest is this many times faster per batch than every other.
    """

    def __init__(
        self,
        candidates: tuple[int, ...],
        *,
        block_size: int = 32,
        slowdown: float = 1.5,
        remeasure_every: int = 40,
        trials: int = 2,
        decisive: float = 1.3,
    ) -> None:
        if trials < 1:
            raise ValueError(f"trials must be at least 1, got {trials}.")
        self.candidates = candidates
        self.block_size = block_size
        self.slowdown = slowdown
        self.remeasure_every = remeasure_every
        self.trials, self.decisive = trials, decisive
        self.choice = candidates[0]
        self._plan = self._measuring_plan()  # thread counts still to measure in this round
        self._round: dict[int, list[float]] = {}  # seconds per batch measured in this round
        self._expected = math.inf  # seconds per batch of the current choice
        self._blocks_since_round = 0

    @classmethod
    def for_this_machine(cls, max_threads: int | None = None) -> ThreadTuner:
        """Candidates 1 and the number of available cores (capped at ``max_threads``)."""
        most = available_cores() if max_threads is None else min(max_threads, available_cores())
        return cls(tuple(sorted({1, max(1, most)})))

    def start_block(self) -> int:
        """Set and return the thread count for the next block."""
        threads = self._plan[0] if self._plan else self.choice
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        return threads

    def end_block(self, seconds: float, n_batches: int) -> None:
        """Record that the block just run took ``seconds`` for ``n_batches`` batches."""
        if n_batches < self.block_size:
            return  # a short last block measures nothing reliable
        per_batch = seconds / n_batches
        if self._plan:  # measuring
            self._round.setdefault(self._plan.pop(0), []).append(per_batch)
            if self._first_blocks_decide():
                self._plan = []
            if not self._plan:
                self.choice = min(self._round, key=lambda threads: min(self._round[threads]))
                # What a block of the choice normally takes: the mean of its blocks.
                self._expected = statistics.fmean(self._round[self.choice])
                self._blocks_since_round = 0
            return
        self._blocks_since_round += 1
        slower = per_batch > self.slowdown * self._expected
        if slower or self._blocks_since_round >= self.remeasure_every:
            self._plan, self._round = self._measuring_plan(), {}

    def _first_blocks_decide(self) -> bool:
        """Whether this round's first block of every candidate already tells the fastest."""
        blocks_done = sum(len(times) for times in self._round.values())
        if blocks_done != len(self.candidates) or len(self._round) != len(self.candidates):
            return False
        fastest, *others = sorted(times[0] for times in self._round.values())
        return all(other > self.decisive * fastest for other in others)

    def _measuring_plan(self) -> list[int]:
        """The candidates in mirrored order, ``trials`` blocks each: 1, 2, 2, 1, 1, 2, ..."""
        forward, backward = list(self.candidates), list(reversed(self.candidates))
        return [c for trial in range(self.trials) for c in (backward if trial % 2 else forward)]
