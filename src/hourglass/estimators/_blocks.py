"""Inference in fixed-size blocks: a sample's outputs never depend on its batch.

Numerical kernels are free to round differently for different shapes. A matrix
product of 1 to 3 rows takes another path than one of 100 rows; an element-wise
kernel computes the vectorised body of a tensor with one routine (SLEEF's ``exp``)
and its last few elements with another (the C library's); a matrix library
given several threads may split a sum between them. Each of these changes the
last bits of a result, so a naive batched inference gives a row a score that
depends on how many rows share its batch, where they sit and how many threads
ran them. A service that batches concurrent requests, Dask partitions of any
size and files read in pieces would then flag a borderline sample or not by
chance.

:func:`map_blocks` removes every such dependence by construction instead of by
tuning:

* **One shape.** Every forward pass runs on exactly ``block_rows`` rows; the last
  block is padded with copies of its last row. The kernels chosen for a block
  then depend on the model alone.
* **No scalar tails.** ``block_rows`` is a multiple of :data:`BLOCK_ROW_MULTIPLE`,
  so every contiguous ``(block_rows, ...)`` tensor holds a multiple of 64 values:
  element-wise kernels (whose vector body spans two vectors of at most 16 floats
  on the CPUs PyTorch supports) run every element through the same routine.
  Per-row operations on non-contiguous views run the same routine on every row.
* **One thread per block.** Each block runs on a single intra-op thread, so no
  sum is ever split between threads; blocks run side by side on a small pool of
  threads instead, which keeps multi-core throughput.
* **Groups.** Where a row's own content decides the shape it needs (a text's
  length), the caller passes a group key per row; each group runs in its own
  blocks, so the shape depends on the row alone.

What remains is what a row's computation reads: its own values and the model's
weights. The same bits come out alone, in any batch, at any position, with any
companions and any thread count, on each kernel set (``ATEN_CPU_CAPABILITY``
``default``, ``avx2``, ``avx512``; ``tests/reliability/test_batch_invariance.py``).
"""

from __future__ import annotations

import copy
import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from tqdm import tqdm

from hourglass.estimators._input import as_tensor, to_unit_float

__all__ = ["BLOCK_ROW_MULTIPLE", "in_bfloat16", "map_blocks"]

#: Block sizes are multiples of this (see the module docstring).
BLOCK_ROW_MULTIPLE = 64
#: Inference passes of at least this many blocks show a progress bar (verbose, on a terminal).
PROGRESS_MIN_BLOCKS = 50

BlockFunction = Callable[[torch.Tensor], torch.Tensor]
Trim = Callable[[NDArray[Any]], NDArray[Any]]
#: The rows of one block (a slice of the input, or indices into it) and how to trim them.
Task = tuple[slice | NDArray[np.intp], Trim | None]


def _padded(rows: NDArray[Any], block_rows: int) -> NDArray[Any]:
    missing = block_rows - rows.shape[0]
    if missing == 0:
        return rows
    return np.concatenate([rows, np.repeat(rows[-1:], missing, axis=0)])


def _use_one_intra_op_thread() -> None:
    """Run this thread's torch operations (and its matrix library) on one thread."""
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)  # costly: once per thread, not per block


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    """A pool of ``workers`` threads, kept for the next calls.

    Threads that live on keep their matrix library's buffers and their allocator's
    arenas warm from one call to the next.
    """
    with _pools_lock:
        pool = _pools.get(workers)
        if pool is None:
            pool = ThreadPoolExecutor(
                max_workers=workers,
                thread_name_prefix="hourglass-inference",
                initializer=_use_one_intra_op_thread,
            )
            _pools[workers] = pool
        return pool


def _forget_pools() -> None:
    """In a forked child the pools' threads do not exist: start new ones when needed."""
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)


def in_bfloat16(
    fn: Callable[[nn.Module, torch.Tensor], torch.Tensor], module: nn.Module, enabled: bool
) -> BlockFunction:
    """``fn(module, block)`` under ``torch.autocast`` with bfloat16 (if ``enabled``), in float32.

    Autocast is per thread: it is entered in the returned function, on the thread that
    runs the block. It would cast every weight to bfloat16 again in every block; the
    function runs on a copy of ``module`` whose matrix-product and convolution weights
    are bfloat16 already (:func:`with_bfloat16_weights`): the same results, and a block
    of the convolutional model in 13% less time.
    """
    if not enabled:
        return lambda block: fn(module, block)
    fast = with_bfloat16_weights(module)

    def autocast_fn(block: torch.Tensor) -> torch.Tensor:
        with torch.autocast(block.device.type, dtype=torch.bfloat16):
            out = fn(fast, block)
        return out.float() if out.is_floating_point() else out

    return autocast_fn


def with_bfloat16_weights(module: nn.Module) -> nn.Module:
    """A shallow copy of ``module`` whose Linear and convolution weights are bfloat16.

    Under autocast these layers compute in bfloat16 and cast their float32 weights
    first; given bfloat16 weights, they compute the same values without the cast.
    Everything else (biases, buffers, other parameters, configuration) is shared with
    ``module``, which is left as it is.
    """
    fast = copy.copy(module)  # its own tables of sub-modules and parameters, below
    fast._modules = {
        name: None if child is None else with_bfloat16_weights(child)
        for name, child in module._modules.items()
    }
    fast._parameters = dict(module._parameters)
    if isinstance(module, nn.Linear | nn.modules.conv._ConvNd):
        fast._parameters["weight"] = nn.Parameter(
            module.weight.detach().to(torch.bfloat16), requires_grad=False
        )
    return fast


def map_blocks(
    values: NDArray[Any],
    fn: BlockFunction,
    *,
    block_rows: int,
    device: torch.device,
    workers: int = 1,
    groups: Sequence[tuple[NDArray[np.intp], Trim]] | None = None,
    verbose: bool = False,
) -> torch.Tensor:
    """Apply ``fn`` to ``values`` in padded blocks of ``block_rows`` rows; rows in order.

    Parameters
    ----------
    values : ndarray of shape (n_samples, ...)
        Model-ready rows; uint8 rows are divided by 255 block by block.
    fn : callable
        ``fn(x) -> tensor`` with one leading row per row of ``x``. Called in
        inference mode; it must treat rows independently.
    block_rows : int
        Rows per forward pass, a multiple of :data:`BLOCK_ROW_MULTIPLE`. Fixed for
        a model: every path that scores it must use the same value.
    device : torch.device
        Where the blocks are computed.
    workers : int, default=1
        Threads that compute blocks side by side (on CPU; one on other devices).
        Results do not depend on it.
    groups : sequence of (row indices, trim), optional
        Rows that are computed together, each group with ``trim`` applied to its
        rows first (e.g. cutting texts to the group's length). Default: all rows,
        untrimmed.
    verbose : bool, default=False
        Show a progress bar for long passes on a terminal.

    Returns
    -------
    torch.Tensor
        The rows of ``fn``'s outputs, in the order of ``values``, on the CPU.
    """
    if block_rows <= 0 or block_rows % BLOCK_ROW_MULTIPLE:
        raise ValueError(
            f"block_rows must be a positive multiple of {BLOCK_ROW_MULTIPLE}; got {block_rows}."
        )
    # (rows, trim): slices of ``values`` where there are no groups (no copy), else indices.
    tasks: list[Task] = []
    if groups is None:
        for start in range(0, values.shape[0], block_rows):
            tasks.append((slice(start, start + block_rows), None))
    else:
        for indices, trim in groups:
            for start in range(0, len(indices), block_rows):
                tasks.append((indices[start : start + block_rows], trim))

    if not tasks:
        return torch.empty(0)

    def compute(task: Task) -> torch.Tensor:
        selection, trim = task
        rows = values[selection]
        n_rows = rows.shape[0]
        if trim is not None:
            rows = trim(rows)
        block = to_unit_float(as_tensor(_padded(rows, block_rows)).to(device))
        with torch.inference_mode():
            return fn(block)[:n_rows].cpu()

    outputs: list[torch.Tensor] = []  # the output, allocated by the first block done
    allocation = threading.Lock()

    def compute_and_store(task: Task) -> None:
        result = compute(task)
        with allocation:
            if not outputs:
                with torch.inference_mode():
                    shape = (values.shape[0], *result.shape[1:])
                    outputs.append(torch.empty(shape, dtype=result.dtype))
        # Each block writes its own rows: no gathering pass over the whole output.
        selection = task[0]
        with torch.inference_mode():
            if isinstance(selection, slice):
                outputs[0][selection] = result
            else:
                outputs[0][torch.from_numpy(selection)] = result

    threads_before = torch.get_num_threads()
    on_cpu = device.type == "cpu"
    if on_cpu:
        _use_one_intra_op_thread()
    quiet = not verbose or len(tasks) < PROGRESS_MIN_BLOCKS or not sys.stderr.isatty()
    try:
        with tqdm(
            total=len(tasks), desc="scoring", unit="block", disable=quiet, leave=False
        ) as bar:
            if workers <= 1 or not on_cpu:
                for task in tasks:
                    compute_and_store(task)
                    bar.update(1)
            else:
                for _ in _pool(workers).map(compute_and_store, tasks):
                    bar.update(1)
    finally:
        # Workers set the intra-op count of their own threads only; this thread's,
        # which is also the default of threads started later, is the caller's again.
        torch.set_num_threads(threads_before)
    return outputs[0]
