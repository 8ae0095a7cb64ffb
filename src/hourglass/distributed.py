"""Data-parallel training with :mod:`torch.distributed`: one model, several processes.

``hourglass train --nproc N ...`` runs ``torchrun --standalone --nproc-per-node N -m
hourglass train ...`` (``torch.distributed.run``); on several machines, run ``torchrun``
yourself with its ``--nnodes`` and rendezvous options. In a process that ``torchrun``
started, ``hourglass train`` joins the process group (:func:`process_group`: gloo on
CPUs, NCCL on GPUs); from Python, call ``torch.distributed.init_process_group``
yourself. While a process group of more than one process is initialised,
:func:`hourglass.training.train` (so ``Autoencoder.fit`` and
``AutoencoderOutlierDetector.fit``) trains data-parallel:

- Every process holds the same data and draws the same shuffling order from the shared
  seed (:func:`broadcast_seed`). Rank ``r`` of ``W`` trains on rows ``r, r + W, r + 2W,
  ...`` of every batch of ``batch_size`` rows (:func:`shard_batches`), so the ranks'
  batches together are exactly the single-process batch, and ``batch_size`` keeps its
  meaning: the global batch (it must be a multiple of ``W``).
- A source that can read part of its data (a :class:`~hourglass.data.stream.Stream`'s
  ``StreamSource.shard_epoch``) is not read whole: every process draws the same block
  order and reads every ``W``-th block from its rank, serving ``batch_size / W`` rows a
  step (:meth:`DataParallel.shares`).
- The model is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`, which
  averages the gradients over the processes. A short last batch that does not split
  evenly is weighted so that the averaged gradient is still the gradient of the batch's
  mean loss, and every process runs every step (a process with no row of a batch runs a
  row with weight 0), since a missing step would leave the others waiting forever.
- Training and validation metrics are summed over the processes (``all_reduce``), so
  every process records the same history and makes the same early-stopping decision.
- Statistics computed from the data (value ranges, calibration thresholds) come from the
  full data on every process: identical everywhere and equal to a single-process fit's.
- Only rank 0 writes: checkpoints here, the model in the CLI.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any, cast

import numpy as np
import torch
import torch.distributed as dist
from numpy.typing import NDArray
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from hourglass._logging import quieted
from hourglass._training_types import Batch, BatchSource, Objective
from hourglass.exceptions import InvalidInputError, TrainingError
from hourglass.threads import available_cores

__all__ = [
    "DataParallel",
    "ShardedBatch",
    "broadcast_seed",
    "check_batch_size",
    "check_same_on_every_rank",
    "gather_arrays",
    "gather_generator_states",
    "gather_objects",
    "is_main_process",
    "launch",
    "launched_by_torchrun",
    "own_generator_states",
    "process_device",
    "process_group",
    "rank",
    "rank_seed",
    "reduce_range",
    "shard_batches",
    "threads_per_process",
    "world_size",
]

#: One process's part of a global batch: its rows (inputs, targets or None), how many
#: of them count (0 for the padding row of an empty share), and how many rows the
#: global batch has.
ShardedBatch = tuple[torch.Tensor, "torch.Tensor | None", int, int]


def world_size() -> int:
    """Number of processes training together (1 without an initialised process group)."""
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_world_size())
    return 1


def rank() -> int:
    """This process's rank in the process group (0 without one)."""
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    return 0


def is_main_process() -> bool:
    """Whether this process writes outputs: rank 0, or the only process."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    """Whether ``torchrun`` (``torch.distributed.run``) started this process."""
    return "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ


def _local_world_size() -> int:
    """Processes of this run on this machine (torchrun says; else all of them)."""
    if "LOCAL_WORLD_SIZE" in os.environ:
        return int(os.environ["LOCAL_WORLD_SIZE"])
    return world_size() if dist.is_initialized() else int(os.environ.get("WORLD_SIZE", "1"))


def threads_per_process() -> int:
    """torch CPU threads for each process: this machine's cores shared out evenly.

    More threads than cores only adds waiting: on 2 busy cores, 2 processes of 2
    threads each trained MNIST about 10x slower than 2 processes of 1 thread (see the
    README).
    """
    return max(1, available_cores() // _local_world_size())


def process_device(device: torch.device) -> torch.device:
    """``device``, with an unnumbered ``cuda`` resolved to this process's own GPU."""
    if device.type != "cuda" or device.index is not None or world_size() == 1:
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", rank()))
    return torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))


@contextlib.contextmanager
def process_group(device: str = "auto") -> Iterator[bool]:
    """Join the process group ``torchrun`` describes in the environment, for the duration.

    Initialises the group (``env://``: the variables torchrun sets) when
    ``WORLD_SIZE`` is above 1 and none exists yet, and destroys it on leaving;
    otherwise does nothing. The backend is NCCL when ``device`` is a GPU
    (``"auto"`` on a machine with CUDA; one GPU per process), gloo otherwise.

    Yields
    ------
    bool
        Whether this process trains with others.

    Raises
    ------
    InvalidInputError
        If NCCL would need more GPUs than this machine has.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        yield dist.is_initialized() and world_size() > 1
        return
    use_cuda = torch.cuda.is_available() and (device == "auto" or device.startswith("cuda"))
    if use_cuda:
        local_processes, gpus = _local_world_size(), torch.cuda.device_count()
        if local_processes > gpus:
            raise InvalidInputError(
                f"{local_processes} processes on this machine need a GPU each for NCCL, but it "
                f"has {gpus}. Start at most {gpus} per machine, or train on the CPU with "
                "device='cpu' (--device cpu)."
            )
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if use_cuda else "gloo", timeout=timedelta(minutes=30))
    try:
        yield True
    finally:
        dist.destroy_process_group()


def broadcast_seed(seed: int) -> int:
    """Rank 0's ``seed`` on every process (``seed`` itself in a single process).

    Every process must draw the same validation split and shuffling order, also
    when each drew a fresh seed from the OS (``random_state=None``).
    """
    if world_size() == 1:
        return seed
    values = [seed]
    dist.broadcast_object_list(values, src=0)
    return int(values[0])


def rank_seed(seed: int) -> int:
    """A seed for this process's own random stream (``seed`` itself on rank 0).

    Random corruption, sampling and augmentation must differ between processes,
    which see different samples; rank 0 keeps ``seed``, so that its stream is the
    single-process one.
    """
    if rank() == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank()]).generate_state(1, dtype=np.uint64)[0] >> 1)


def gather_generator_states(states: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every process's random-generator states, for the checkpoint rank 0 writes.

    Rank 0's keep their names; rank ``r``'s are added as ``"NAME@rank<r>"``. In a
    single process, ``states`` itself.
    """
    if world_size() == 1:
        return states
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, states)
    merged = dict(gathered[0])
    for other, other_states in enumerate(gathered[1:], start=1):
        merged.update({f"{name}@rank{other}": state for name, state in other_states.items()})
    return merged


def reduce_range(
    low: NDArray[Any], high: NDArray[Any], count: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """Element-wise minimum of ``low``, maximum of ``high`` and sum of ``count`` over processes.

    In a single process, the inputs themselves (as float64).
    """
    lows = torch.from_numpy(np.asarray(low, dtype=np.float64).copy())
    highs = torch.from_numpy(np.asarray(high, dtype=np.float64).copy())
    counts = torch.tensor([float(count)], dtype=torch.float64)
    if world_size() > 1:
        dist.all_reduce(lows, op=dist.ReduceOp.MIN)
        dist.all_reduce(highs, op=dist.ReduceOp.MAX)
        dist.all_reduce(counts)
    return lows.numpy(), highs.numpy(), int(counts.item())


def gather_objects(value: Any) -> list[Any]:
    """Every process's ``value`` (picklable), in rank order, on every process."""
    if world_size() == 1:
        return [value]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def gather_arrays(array: NDArray[Any]) -> NDArray[Any]:
    """Every process's ``array`` joined along the first axis, in rank order, on every process."""
    if world_size() == 1:
        return array
    return np.concatenate(gather_objects(np.asarray(array)))


def own_generator_states(states: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """This process's states out of what :func:`gather_generator_states` returned.

    A checkpoint written by fewer processes gives the others rank 0's states.
    """
    own = {name: state for name, state in states.items() if "@rank" not in name}
    if rank() == 0:
        return own
    return {name: states.get(f"{name}@rank{rank()}", state) for name, state in own.items()}


def check_batch_size(batch_size: int, n_processes: int | None = None) -> None:
    """Refuse a global ``batch_size`` that does not split evenly over the processes.

    Raises
    ------
    InvalidInputError
        If ``batch_size`` is not a multiple of ``n_processes`` (default: the
        process group's size).
    """
    n = world_size() if n_processes is None else n_processes
    if batch_size % n == 0:
        return
    lower, higher = batch_size - batch_size % n, batch_size - batch_size % n + n
    suggestion = f"{lower} or {higher}" if lower > 0 else str(higher)
    raise InvalidInputError(
        f"batch_size={batch_size} is the global batch, split evenly over the {n} processes "
        f"training in parallel (each takes batch_size / {n} samples of every batch), so it "
        f"must be a multiple of {n}. Use batch_size={suggestion}."
    )


def check_same_on_every_rank(what: str, value: Any) -> None:
    """Raise, on every process, if ``value`` differs between the processes.

    Processes that disagree on the number of samples or batches would run
    different numbers of steps, and the collectives of the longer ones would
    wait forever; this turns that hang into an error.
    """
    if world_size() == 1:
        return
    values: list[Any] = [None] * world_size()
    dist.all_gather_object(values, value)
    if any(pickle.dumps(v) != pickle.dumps(values[0]) for v in values[1:]):
        listed = "; ".join(f"rank {r}: {v}" for r, v in enumerate(values))
        raise InvalidInputError(
            f"The processes of this data-parallel run disagree on {what} ({listed}). Every "
            "process must get the same data and settings: pass each the same files and "
            "arguments."
        )


def shard_batches(batches: Iterable[Batch], rank: int, world_size: int) -> Iterator[ShardedBatch]:
    """Rank ``rank``'s rows of each batch: rows ``rank, rank + world_size, ...``.

    The shares of all ranks together are the batch itself. A rank with no row in
    a batch (one of fewer than ``world_size`` rows) gets the batch's first row with
    a count of 0, so that it still runs the step.

    Examples
    --------
    >>> import torch
    >>> batches = [(torch.arange(4), None), (torch.arange(4, 5), None)]
    >>> [(x.tolist(), n, total) for x, _, n, total in shard_batches(batches, 1, 2)]
    [([1, 3], 2, 4), ([4], 0, 1)]
    """
    for x, y in batches:
        total = int(x.shape[0])
        count = len(range(rank, total, world_size))
        rows = slice(rank, None, world_size) if count else slice(0, 1)
        yield (
            x[rows].contiguous(),
            None if y is None else y[rows].contiguous(),
            count,
            total,
        )


class _ObjectiveModule(nn.Module):
    """The objective as a module, for DistributedDataParallel to wrap.

    DDP synchronises the gradients of what happens inside its ``forward``: this
    ``forward`` computes the whole objective dict, not just the network's output.
    """

    def __init__(self, module: nn.Module, objective: Objective) -> None:
        super().__init__()
        self.module = module
        self.objective = objective

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.objective(self.module, x, y)


class DataParallel:
    """What :func:`hourglass.training.train` needs to train in a process group.

    Parameters
    ----------
    module : torch.nn.Module
        The model, on ``device``, with the same weights on every process (DDP
        copies rank 0's anyway).
    objective : callable
        As for ``train``. It must leave the gradients to autograd: gradients
        written directly into ``.grad`` bypass DDP's synchronisation.
    device : torch.device
        This process's device.
    """

    def __init__(self, module: nn.Module, objective: Objective, device: torch.device) -> None:
        self.rank, self.world_size = rank(), world_size()
        self.device = device
        self.model = DistributedDataParallel(
            _ObjectiveModule(module, objective),
            device_ids=[device] if device.type == "cuda" else None,
        )

    def shard(self, batches: Iterable[Batch]) -> Iterator[ShardedBatch]:
        """This process's share of each of ``batches``."""
        return shard_batches(batches, self.rank, self.world_size)

    def shares(
        self,
        source: BatchSource,
        batch_size: int,
        *,
        shuffle: bool,
        generator: torch.Generator | None,
    ) -> Iterator[ShardedBatch]:
        """This process's share of every batch of one epoch of ``source``.

        A source that can read a part of its data (a stream: ``shard_epoch``)
        reads only this process's blocks; other sources are read whole by every
        process, which keeps its rows of each global batch.
        """
        sharded = getattr(source, "shard_epoch", None)
        if sharded is not None:
            return cast(
                Iterator[ShardedBatch],
                sharded(
                    batch_size // self.world_size,
                    self.rank,
                    self.world_size,
                    shuffle=shuffle,
                    generator=generator,
                ),
            )
        return self.shard(source.epoch(batch_size, shuffle=shuffle, generator=generator))

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, count: int, total: int
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The objective on this process's rows, and the loss to back-propagate.

        DDP averages the processes' gradients; weighting each process's mean loss by
        ``world_size * count / total`` makes that average the gradient of the global
        batch's mean loss also when the shares differ in size (weight 1 when they
        are equal, 0 for a padding row).
        """
        values = self.model(x, y)
        loss = values["loss"]
        if not loss.requires_grad:
            raise TrainingError(
                "The objective wrote the gradients itself (a fused step), which "
                "DistributedDataParallel cannot synchronise; use autograd in data-parallel "
                "training."
            )
        weight = self.world_size * count / total
        return values, loss if weight == 1.0 else loss * weight

    def mean(self, sums: dict[str, torch.Tensor], count: int) -> dict[str, float]:
        """Means over all processes of values summed over ``count`` samples on each."""
        keys = sorted(sums)
        values = [sums[key].detach().reshape(()).to(self.device, torch.float64) for key in keys]
        count_ = torch.tensor(float(count), dtype=torch.float64, device=self.device)
        local = torch.stack([*values, count_])  # one collective for all of them
        dist.all_reduce(local)
        totals = local.cpu().tolist()
        return {key: totals[i] / totals[-1] for i, key in enumerate(keys)}


def _quiet_launcher() -> contextlib.AbstractContextManager[None]:
    """Silence torchrun's own log lines; the processes report their errors themselves."""
    return quieted([logging.getLogger("torch.distributed.elastic")], logging.CRITICAL)


def launch(n_processes: int, argv: Sequence[str]) -> None:
    """Run ``python -m hourglass ARGV`` in ``n_processes`` processes, through torchrun.

    The same as ``torchrun --standalone --nproc-per-node N -m hourglass ARGV``
    (``torch.distributed.run``; one machine, the rendezvous on a free local port),
    run from this process. Each process gets its share of the cores as
    ``OMP_NUM_THREADS`` unless that is set.

    Raises
    ------
    TrainingError
        If any of the processes failed (after they printed their own error).
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    if n_processes < 1:
        raise InvalidInputError(f"--nproc must be at least 1; got {n_processes}.")
    command = ["--standalone", f"--nproc-per-node={n_processes}", "-m", "hourglass", *argv]
    args = parse_args(command)  # type: ignore[no-untyped-call]
    threads = os.environ.get("OMP_NUM_THREADS")
    # The processes inherit the environment; torchrun would otherwise set 1 and warn.
    os.environ["OMP_NUM_THREADS"] = threads or str(max(1, available_cores() // n_processes))
    try:
        with _quiet_launcher():
            run(args)  # type: ignore[no-untyped-call]
    except ChildFailedError as error:
        failed = ", ".join(
            f"rank {failed_rank} (exit code {failure.exitcode})"
            for failed_rank, failure in sorted(error.failures.items())
        )
        raise TrainingError(
            f"Data-parallel training in {n_processes} processes failed: {failed}. Their "
            "errors are above."
        ) from None
    except SignalException:  # Ctrl-C or a kill: torchrun stopped the processes
        raise KeyboardInterrupt from None
    finally:
        if threads is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = threads
