"""The task-agnostic training loop.

:func:`train` knows nothing about autoencoders: it receives a module, an
*objective* (a function computing a dict of scalar tensors for one batch, whose
``"loss"`` entry is minimised) and tensors of inputs and targets. It owns
batching, shuffling, the optimiser, validation, early stopping with best-weight
restore, the per-epoch history, divergence detection and the progress bar.

Speed notes (measured on a 2-core CPU, see ``benchmarks/training_speed.py``):
batches are gathered from one contiguous tensor with a per-epoch permutation
(no ``DataLoader``, whose per-batch Python overhead dominates for small
models), metrics are accumulated as tensors, and the optimiser uses PyTorch's
fused Adam kernel where available.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn
from tqdm.auto import tqdm

from hourglass import distributed
from hourglass._subnormals import flushing_subnormals
from hourglass._training_types import Batch, BatchSource, CompiledBatches, Objective
from hourglass.checkpoint import Checkpoint, TrainingState, load_state, save_state
from hourglass.exceptions import TrainingError
from hourglass.sliced_gradients import SlicedGradients
from hourglass.threads import ThreadTuner, num_threads

__all__ = [
    "BatchSource",
    "CompiledBatches",
    "FusedAdamW",
    "History",
    "Objective",
    "SparseRowsAdam",
    "TensorSource",
    "TrainingConfig",
    "bfloat16_is_native",
    "evaluate",
    "train",
    "with_mixed_precision",
]


@dataclass(frozen=True)
class TrainingConfig:
    """Settings of :func:`train`."""

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.0  # decoupled (AdamW-style); 0 gives plain Adam
    adam_epsilon: float = 1e-7  # Keras' default, so the reference model trains identically
    shuffle: bool = True  # reshuffle the training samples every epoch
    early_stopping: bool = False
    patience: int = 5  # epochs without improvement of the monitored loss before stopping
    min_delta: float = 0.0  # smallest decrease of the monitored loss that counts as improvement
    eval_batch_size: int = 1024  # batch size of validation passes (no gradients, so larger)
    verbose: int = 1  # 0: silent; 1: one progress bar over all batches
    # "auto" (on a CPU): measure and switch between 1 thread and all cores while
    # training (see hourglass.threads) where the thread count provably does not change
    # the gradients (sliced batches, or a check of the first batch), else use 1 thread;
    # validate on 1 thread; the results never depend on the thread count. None: leave
    # torch's setting as it is.
    num_threads: Literal["auto"] | None = "auto"
    # Run the objective under torch.autocast with bfloat16: matrix products and
    # convolutions in bfloat16, weights, gradients and optimiser state in float32. Only
    # worth it where the hardware computes in bfloat16 (see bfloat16_is_native).
    mixed_precision: bool = False
    # Slices each batch's gradient is computed from, each on one thread, the slices in
    # parallel on the CPU's cores (see hourglass.sliced_gradients): the result does not
    # depend on the thread count. For objectives that are means over the samples and
    # draw no random numbers; 1 computes the whole batch at once.
    batch_slices: int = 1
    progress_description: str = "training"


@dataclass
class History:
    """What :func:`train` records, one entry per completed epoch."""

    metrics: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int | None = None  # 0-based epoch whose weights were kept (early stopping)
    stopped_early: bool = False

    def append(self, values: dict[str, float]) -> None:
        """Add one epoch's values."""
        for key, value in values.items():
            self.metrics.setdefault(key, []).append(value)

    @property
    def n_epochs(self) -> int:
        """Number of completed epochs."""
        return len(self.metrics.get("loss", []))


class FusedAdamW:
    """AdamW through PyTorch's fused kernel, without ``torch.optim``'s per-step overhead.

    Numerically the same as ``torch.optim.AdamW(..., fused=True)`` (the same
    kernel, called the same way), but a step costs one kernel call instead of
    about 60 µs of Python bookkeeping, and the first step does not import
    ``torch._dynamo`` (about a second). For the small models trained here that
    overhead is a tenth of a training step.

    The compiled training loop (:mod:`hourglass.nn.native`) makes the same update
    from C++; a change to :meth:`step` must be made there too.
    """

    def __init__(
        self,
        params: list[torch.Tensor],
        *,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.params = params
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.exp_avgs = [torch.zeros_like(p) for p in params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in params]
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in params]

    @staticmethod
    def supports(params: list[torch.Tensor]) -> bool:
        """Whether the fused kernel exists and can update ``params``."""
        devices = {p.device for p in params}
        return (
            hasattr(torch, "_fused_adamw_")
            and len(devices) == 1
            and next(iter(devices)).type in ("cpu", "cuda")
            and all(p.dtype in (torch.float32, torch.float64) for p in params)
        )

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (``set_to_none=False`` zeroes them in place)."""
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """Apply one update with the parameters' current ``.grad``."""
        grads = [p.grad for p in self.params if p.grad is not None]
        if len(grads) != len(self.params):
            raise TrainingError("Every parameter needs a gradient before an optimiser step.")
        torch._foreach_add_(self.steps, 1)
        torch._fused_adamw_(
            self.params,
            grads,
            self.exp_avgs,
            self.exp_avg_sqs,
            [],
            self.steps,
            amsgrad=False,
            lr=self.lr,
            beta1=self.betas[0],
            beta2=self.betas[1],
            weight_decay=self.weight_decay,
            eps=self.eps,
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The moments and step counts, named ``{exp_avg,exp_avg_sq,step}.<index>``."""
        return _moment_tensors(self.exp_avgs, self.exp_avg_sqs, self.steps)

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_tensors` returned."""
        for i in range(len(self.params)):
            self.exp_avgs[i].copy_(tensors[f"exp_avg.{i}"])
            self.exp_avg_sqs[i].copy_(tensors[f"exp_avg_sq.{i}"])
            self.steps[i].copy_(tensors[f"step.{i}"])


def _moment_tensors(
    exp_avgs: list[torch.Tensor], exp_avg_sqs: list[torch.Tensor], steps: list[torch.Tensor]
) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for i, (avg, avg_sq, step) in enumerate(zip(exp_avgs, exp_avg_sqs, steps, strict=True)):
        tensors.update({f"exp_avg.{i}": avg, f"exp_avg_sq.{i}": avg_sq, f"step.{i}": step})
    return tensors


class SparseRowsAdam:
    """Adam for a module with sparse embeddings: only the rows a batch used are updated.

    Hashed text features live in embedding tables of tens of thousands of rows,
    of which a batch touches a few hundred. Their gradients are sparse, and
    ``torch.optim.SparseAdam`` updates just those rows (a lazy Adam); the dense
    parameters go to the usual optimiser. Without this, zeroing and updating
    the whole tables took most of a training step.

    Parameters
    ----------
    dense : FusedAdamW or torch.optim.AdamW
        The optimiser of the dense parameters.
    sparse_params : list of torch.Tensor
        The weights of the embeddings built with ``sparse=True``.
    lr, eps : float
        As for the dense optimiser (sparse rows take no weight decay).
    """

    def __init__(
        self, dense: Any, sparse_params: list[torch.Tensor], *, lr: float, eps: float
    ) -> None:
        self.dense = dense
        self.sparse = torch.optim.SparseAdam(sparse_params, lr=lr, eps=eps)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of both parts."""
        self.dense.zero_grad(set_to_none=set_to_none)
        self.sparse.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        """One update of both parts."""
        self.dense.step()
        self.sparse.step()  # type: ignore[no-untyped-call]


def _optimizer_tensors(optimizer: Any) -> dict[str, torch.Tensor]:
    """The state of a :class:`FusedAdamW`, ``torch.optim.AdamW`` or
    :class:`SparseRowsAdam` as named tensors."""
    if isinstance(optimizer, SparseRowsAdam):
        sparse = _optimizer_tensors(optimizer.sparse)
        return {
            **_optimizer_tensors(optimizer.dense),
            **{f"sparse_{k}": v for k, v in sparse.items()},
        }
    if isinstance(optimizer, FusedAdamW):
        return optimizer.state_tensors()
    params = optimizer.param_groups[0]["params"]
    states = [optimizer.state.get(p, {}) for p in params]
    if not all(states):  # before the first step there is nothing to save
        return {}
    return _moment_tensors(
        [s["exp_avg"] for s in states],
        [s["exp_avg_sq"] for s in states],
        [torch.as_tensor(s["step"], dtype=torch.float32) for s in states],
    )


def _load_optimizer_tensors(optimizer: Any, tensors: dict[str, torch.Tensor]) -> None:
    if isinstance(optimizer, SparseRowsAdam):
        sparse = {k[len("sparse_") :]: v for k, v in tensors.items() if k.startswith("sparse_")}
        dense = {k: v for k, v in tensors.items() if not k.startswith("sparse_")}
        _load_optimizer_tensors(optimizer.dense, dense)
        _load_optimizer_tensors(optimizer.sparse, sparse)
        return
    if isinstance(optimizer, FusedAdamW):
        optimizer.load_state_tensors(tensors)
        return
    if not tensors:
        return
    for i, p in enumerate(optimizer.param_groups[0]["params"]):
        step = tensors[f"step.{i}"].clone()
        optimizer.state[p] = {
            # SparseAdam counts its steps in a Python int (AdamW in a tensor)
            "step": int(step) if isinstance(optimizer, torch.optim.SparseAdam) else step,
            "exp_avg": tensors[f"exp_avg.{i}"].to(p.device).clone(),
            "exp_avg_sq": tensors[f"exp_avg_sq.{i}"].to(p.device).clone(),
        }


def _sparse_weights(module: nn.Module) -> list[torch.Tensor]:
    """The weights of the module's embeddings that produce sparse gradients."""
    return [
        m.weight
        for m in module.modules()
        if isinstance(m, nn.Embedding | nn.EmbeddingBag) and m.sparse and m.weight.requires_grad
    ]


def _make_optimizer(module: nn.Module, config: TrainingConfig) -> Any:
    sparse = _sparse_weights(module)
    params: list[torch.Tensor] = [
        p for p in module.parameters() if p.requires_grad and all(p is not w for w in sparse)
    ]
    dense: Any
    if FusedAdamW.supports(params):
        dense = FusedAdamW(
            params,
            lr=config.learning_rate,
            eps=config.adam_epsilon,
            weight_decay=config.weight_decay,
        )
    else:
        dense = torch.optim.AdamW(
            params,
            lr=config.learning_rate,
            eps=config.adam_epsilon,
            weight_decay=config.weight_decay,
        )
    if not sparse:
        return dense
    return SparseRowsAdam(dense, sparse, lr=config.learning_rate, eps=config.adam_epsilon)


def bfloat16_is_native(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively (fast mixed precision).

    On a CPU, that takes AVX512-BF16 or AMX, which oneDNN uses for bfloat16
    matrix products and convolutions; elsewhere bfloat16 is emulated, slower
    than float32.
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def with_mixed_precision(objective: Objective, device: torch.device) -> Objective:
    """``objective`` run under ``torch.autocast`` with bfloat16 on ``device``."""

    def autocast_objective(
        module: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return objective(module, x, y)

    return autocast_objective


def _identity(batch: torch.Tensor) -> torch.Tensor:
    return batch


class TensorSource:
    """Batches gathered from tensors in memory, with a per-epoch permutation.

    Parameters
    ----------
    inputs : torch.Tensor
        The samples, first axis = samples.
    targets : torch.Tensor, optional
        What the model must output for each sample; None when it is ``inputs``.
    """

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> None:
        if targets is not None and targets.shape[0] != inputs.shape[0]:
            raise ValueError("inputs and targets must hold as many samples.")
        self.inputs, self.targets = inputs, targets

    @property
    def n_samples(self) -> int:
        """Number of samples."""
        return int(self.inputs.shape[0])

    def to(self, device: torch.device) -> TensorSource:
        """The same samples on ``device`` (one copy when targets are the inputs)."""
        targets = None if self.targets is None else self.targets.to(device)
        return TensorSource(self.inputs.to(device), targets)

    def order(self, *, shuffle: bool, generator: torch.Generator | None) -> torch.Tensor | None:
        """An epoch's order of the samples: a random permutation if ``shuffle``, else None."""
        if not shuffle:
            return None
        return torch.randperm(self.n_samples, generator=generator).to(self.inputs.device)

    def epoch(
        self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None
    ) -> Iterator[Batch]:
        """Consecutive batches, of a random permutation of the samples if ``shuffle``."""
        n = self.n_samples
        order = self.order(shuffle=shuffle, generator=generator)
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            if order is None:
                x = self.inputs[start:stop]
                y = None if self.targets is None else self.targets[start:stop]
            else:
                index = order[start:stop]
                x = self.inputs.index_select(0, index)
                y = None if self.targets is None else self.targets.index_select(0, index)
            yield x, y

    def head(self, n: int) -> Batch:
        """The first ``n`` samples."""
        return self.inputs[:n], None if self.targets is None else self.targets[:n]


def _as_source(data: torch.Tensor | BatchSource, targets: torch.Tensor | None) -> BatchSource:
    if isinstance(data, torch.Tensor):
        return TensorSource(data, None if targets is data else targets)
    if targets is not None:
        raise ValueError("Pass targets with the source's batches, not separately.")
    return data


@torch.no_grad()
def evaluate(
    module: nn.Module,
    objective: Objective,
    inputs: torch.Tensor | BatchSource,
    targets: torch.Tensor | None = None,
    *,
    batch_size: int = 1024,
    device: torch.device | None = None,
    prepare_batch: Callable[[torch.Tensor], torch.Tensor] | None = None,
    corrupt_inputs: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, float]:
    """Average ``objective`` over a data set, in eval mode and without gradients.

    ``inputs`` is a tensor (with ``targets``, which default to the inputs) or a
    :class:`BatchSource`. Returns a dict with the same keys as the objective,
    each the mean over samples (batches weighted by their size).
    """
    source = _as_source(inputs, targets)
    batches = source.epoch(batch_size, shuffle=False, generator=None)
    totals, _ = _evaluation_sums(
        module,
        objective,
        ((x, y, int(x.shape[0])) for x, y in batches),
        device=device or next(module.parameters()).device,
        prepare_batch=prepare_batch or _identity,
        corrupt_inputs=corrupt_inputs,
    )
    return {key: float(total) / source.n_samples for key, total in totals.items()}


@torch.no_grad()
def _evaluation_sums(
    module: nn.Module,
    objective: Objective,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor | None, int]],
    *,
    device: torch.device,
    prepare_batch: Callable[[torch.Tensor], torch.Tensor],
    corrupt_inputs: Callable[[torch.Tensor], torch.Tensor] | None,
) -> tuple[dict[str, torch.Tensor], int]:
    """Sums over samples of the objective's values, and the number of samples.

    ``batches`` holds ``(inputs, targets or None, number of samples counted)``:
    a data-parallel share may hold a padding row that counts for 0.
    """
    was_training = module.training
    module.eval()
    totals: dict[str, torch.Tensor] = {}
    n = 0
    try:
        for x_raw, y_raw, size in batches:
            n += size
            x = prepare_batch(x_raw.to(device, non_blocking=True))
            y = x if y_raw is None else prepare_batch(y_raw.to(device, non_blocking=True))
            if corrupt_inputs is not None:
                x = corrupt_inputs(x)
            values = objective(module, x, y)
            for key, value in values.items():
                totals[key] = totals.get(key, 0) + value.detach() * size
    finally:
        module.train(was_training)
    return totals, n


def _evaluate_data_parallel(
    parallel: distributed.DataParallel,
    module: nn.Module,
    objective: Objective,
    source: BatchSource,
    *,
    batch_size: int,
    device: torch.device,
    prepare_batch: Callable[[torch.Tensor], torch.Tensor],
    corrupt_inputs: Callable[[torch.Tensor], torch.Tensor] | None,
) -> dict[str, float]:
    """:func:`evaluate`, each process on its share of every batch, averaged over all."""
    shares = parallel.shares(source, batch_size, shuffle=False, generator=None)
    totals, n = _evaluation_sums(
        module,
        objective,
        ((x, y, count) for x, y, count, _ in shares),
        device=device,
        prepare_batch=prepare_batch,
        corrupt_inputs=corrupt_inputs,
    )
    return parallel.mean(totals, n)


def _gradients_thread_invariant(
    module: nn.Module,
    objective: Objective,
    x: torch.Tensor,
    y: torch.Tensor,
    thread_counts: tuple[int, ...],
) -> bool:
    """Whether one training step gives bit-identical gradients with every thread count.

    Matrix-product libraries split some shapes along the summed dimension when
    given several threads, which changes the rounding; for those shapes the thread
    count must stay fixed for training to be reproducible. The split depends on
    shapes and thread counts only, so one batch tells for all batches of its size.
    """
    gradients = []
    for count in thread_counts:
        with num_threads(count):
            values = objective(module, x, y)
            if values["loss"].requires_grad:
                module.zero_grad(set_to_none=True)
                values["loss"].backward()  # type: ignore[no-untyped-call]
        gradients.append([None if p.grad is None else p.grad.clone() for p in module.parameters()])
    module.zero_grad(set_to_none=True)
    reference = gradients[0]
    return all(
        all(
            (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))
            for a, b in zip(reference, other, strict=True)
        )
        for other in gradients[1:]
    )


def _choose_threads(
    module: nn.Module,
    objective: Objective,
    source: BatchSource,
    config: TrainingConfig,
    device: torch.device,
    prepare_batch: Callable[[torch.Tensor], torch.Tensor],
    *,
    sliced: bool = False,
) -> ThreadTuner | None:
    """Set up ``config.num_threads == "auto"``: a tuner, or one thread where none may be used.

    With ``sliced`` gradients the thread count never changes the result, so the
    tuner may always choose it.
    """
    if config.num_threads != "auto" or device.type != "cpu":
        return None
    tuner = ThreadTuner.for_this_machine()
    if len(tuner.candidates) > 1 and sliced:
        return tuner
    if len(tuner.candidates) > 1 and source.n_samples >= config.batch_size:
        x_raw, y_raw = source.head(config.batch_size)
        x = prepare_batch(x_raw.to(device))
        y = x if y_raw is None else prepare_batch(y_raw.to(device))
        if _gradients_thread_invariant(module, objective, x, y, tuner.candidates):
            return tuner
    torch.set_num_threads(1)  # reproducible, and never slowed down by busy cores
    return None


def _batch_weighted_sums(
    records: list[dict[str, torch.Tensor]], batch_sizes: list[int]
) -> dict[str, torch.Tensor]:
    """Per-sample sums of per-batch means.

    Each record holds the means of one batch (scalars) or of several (vectors);
    ``batch_sizes`` has one size per batch.
    """
    sizes = torch.tensor(batch_sizes, dtype=torch.float64)
    return {
        key: torch.cat([r[key].reshape(-1) for r in records]).double().cpu() @ sizes
        for key in records[0]
    }


def _batch_weighted_means(
    records: list[dict[str, torch.Tensor]], batch_sizes: list[int]
) -> dict[str, float]:
    """Per-sample means of per-batch means."""
    n = sum(batch_sizes)
    return {
        key: float(total) / n for key, total in _batch_weighted_sums(records, batch_sizes).items()
    }


def _check_finite(values: dict[str, float], epoch: int) -> None:
    loss = values["loss"]
    if not math.isfinite(loss):
        raise TrainingError(
            f"The training loss became {loss} in epoch {epoch + 1}, so training stopped and "
            "no model was kept. Likely causes: a learning rate that is too high (try 10x "
            "lower), or input data that is not scaled (scale features to [0, 1] or "
            "standardise them)."
        )


def _training_source(
    inputs: torch.Tensor | BatchSource, targets: torch.Tensor | None, device: torch.device
) -> BatchSource:
    """The training data as a source, on ``device`` when it is an accelerator and the data small."""
    source = _as_source(inputs, targets)
    if source.n_samples == 0:
        raise TrainingError("Cannot train on an empty data set.")
    # Keep the whole data set on an accelerator when it is small enough, to avoid
    # one host-to-device copy per batch.
    if (
        device.type != "cpu"
        and isinstance(source, TensorSource)
        and source.inputs.numel() * source.inputs.element_size() < 2**30
    ):
        source = source.to(device)
    return source


@dataclass
class _EarlyStopping:
    """Early stopping's state: the best value of the monitored loss so far, and its weights.

    The best epoch and the decision to stop are the :class:`History`'s; a
    checkpoint saves the rest from here.
    """

    monitor: str  # "val_loss" when there is validation data, else "loss"
    min_delta: float
    patience: int
    best_value: float = math.inf
    best_state: dict[str, torch.Tensor] | None = None  # the best weights, restored at the end
    epochs_without_improvement: int = 0

    def update(
        self, epoch: int, values: dict[str, float], module: nn.Module, history: History
    ) -> None:
        """Judge the epoch that just ended: keep its weights if it improved, else count it."""
        current = values[self.monitor]
        if current < self.best_value - self.min_delta:
            self.best_value = current
            self.best_state = copy.deepcopy(module.state_dict())
            history.best_epoch = epoch
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
            history.stopped_early = self.epochs_without_improvement >= self.patience


def _resume(
    checkpoint: Checkpoint,
    module: nn.Module,
    optimizer: Any,
    generators: dict[str, torch.Generator],
    history: History,
    stopping: _EarlyStopping,
    config: TrainingConfig,
) -> int:
    """Restore the state saved in ``checkpoint``, if any; return the first epoch left to run."""
    resumed = load_state(checkpoint)
    if resumed is None:
        return 0
    module.load_state_dict(resumed.module)
    _load_optimizer_tensors(optimizer, resumed.optimizer)
    for name, state in distributed.own_generator_states(resumed.generators).items():
        if name in generators:
            generators[name].set_state(state)
    history.metrics = resumed.history
    history.best_epoch = resumed.best_epoch
    history.stopped_early = resumed.stopped_early
    stopping.best_value = resumed.best_value
    stopping.best_state = resumed.best_module
    stopping.epochs_without_improvement = resumed.epochs_without_improvement
    return config.epochs if resumed.stopped_early else resumed.epochs_done


def _data_parallel(
    module: nn.Module,
    objective: Objective,
    device: torch.device,
    config: TrainingConfig,
    source: BatchSource,
    validation: BatchSource | None,
    first_epoch: int,
) -> distributed.DataParallel | None:
    """The data-parallel wrapper while a process group trains together; None in one process.

    Checks first that every process has the same data, settings and checkpoint.
    """
    if distributed.world_size() <= 1:
        return None
    distributed.check_batch_size(config.batch_size)
    distributed.check_same_on_every_rank(
        "the number of samples, the settings or the checkpoint",
        {
            "samples": source.n_samples,
            "validation samples": None if validation is None else validation.n_samples,
            "config": config,
            "first epoch": first_epoch,
        },
    )
    return distributed.DataParallel(module, objective, device)


def _sliced_gradients(
    module: nn.Module,
    objective: Objective,
    config: TrainingConfig,
    device: torch.device,
    parallel: distributed.DataParallel | None,
) -> SlicedGradients | None:
    """The slice-by-slice step of ``config.batch_slices``, on a CPU in one process."""
    if config.batch_slices <= 1 or device.type != "cpu" or parallel is not None:
        return None
    return SlicedGradients(module, objective, config.batch_slices)


@dataclass(frozen=True)
class _Run:
    """What the epochs of one :func:`train` call share."""

    module: nn.Module
    objective: Objective
    optimizer: Any  # a FusedAdamW, a torch.optim.AdamW or a SparseRowsAdam
    config: TrainingConfig
    device: torch.device
    prepare_batch: Callable[[torch.Tensor], torch.Tensor]
    corrupt_inputs: Callable[[torch.Tensor], torch.Tensor] | None
    generator: torch.Generator | None  # the shuffling order's
    parallel: distributed.DataParallel | None  # None in a single process
    slices: SlicedGradients | None  # None: the whole batch at once
    compiled_batches: CompiledBatches | None = None  # see _compiled_loop


def _run_epochs(
    run: _Run,
    source: BatchSource,
    validation: BatchSource | None,
    first_epoch: int,
    history: History,
    stopping: _EarlyStopping,
    generators: dict[str, torch.Generator],
    checkpoint: Checkpoint | None,
) -> None:
    """Train from ``first_epoch`` to the last epoch or an early stop, behind a progress bar.

    Each epoch is recorded in ``history`` and, with a ``checkpoint``, saved. The
    caller's torch thread count is restored at the end, and the slices' worker
    threads stopped.
    """
    config = run.config
    progress = tqdm(
        total=max(0, config.epochs - first_epoch) * math.ceil(source.n_samples / config.batch_size),
        desc=config.progress_description,
        unit="batch",
        disable=config.verbose <= 0 or not distributed.is_main_process(),
        mininterval=0.5,
        leave=True,
    )
    threads_before = torch.get_num_threads()  # restored at the end
    # In the automatic mode, validation runs on one thread like everything whose result
    # counts: the same bits whatever the machine's load, and never slowed 10x by
    # waiting for a busy core. Otherwise with the caller's thread count.
    automatic = config.num_threads == "auto" and run.device.type == "cpu"
    validation_threads = 1 if automatic else threads_before
    try:
        tuner = _set_up_threads(run, source, generators)
        for epoch in range(first_epoch, config.epochs):
            values = _train_epoch(run, source, epoch, tuner, progress, threads_before)
            val = _validate(run, validation, validation_threads)
            values.update({f"val_{key}": value for key, value in val.items()})
            history.append(values)
            progress.set_postfix(
                {k: f"{v:.4g}" for k, v in values.items() if k in ("loss", "val_loss")},
                refresh=False,
            )
            if config.early_stopping:
                stopping.update(epoch, values, run.module, history)
            if checkpoint is not None:
                _save_checkpoint(checkpoint, epoch, run, generators, history, stopping)
            if history.stopped_early:
                break
    finally:
        progress.close()
        if run.slices is not None:
            run.slices.close()  # its worker threads
        if torch.get_num_threads() != threads_before:
            torch.set_num_threads(threads_before)


def _set_up_threads(
    run: _Run, source: BatchSource, generators: dict[str, torch.Generator]
) -> ThreadTuner | None:
    """Set torch's thread count for training; return the tuner that will vary it, if any.

    Every generator in ``generators`` is left as it was.
    """
    # The check runs the objective, which may draw random numbers: put them back.
    states = {name: g.get_state() for name, g in generators.items()}
    config = run.config
    if run.parallel is None:
        tuner = _choose_threads(
            run.module,
            run.objective,
            source,
            config,
            run.device,
            run.prepare_batch,
            sliced=run.slices is not None,
        )
    else:  # processes share the cores; measuring would only tell how busy the others are
        tuner = None
        if config.num_threads == "auto" and run.device.type == "cpu":
            torch.set_num_threads(distributed.threads_per_process())
    for name, state in states.items():
        generators[name].set_state(state)
    return tuner


#: Batches the compiled loop trains in one call where no tuner sets the blocks: few
#: enough that the progress bar moves, many enough that the call's overhead is small.
_UNTUNED_BLOCK = 32


class _TunedBlocks:
    """Drives a :class:`ThreadTuner` through an epoch (a fixed thread count without one).

    Times every block of ``tuner.block_size`` batches for the tuner, and runs a
    short last batch with a fixed thread count.

    With ``sliced`` batches the chosen count goes to :attr:`workers`, the threads
    that compute a batch's slices side by side, and this thread computes on one:
    it only waits for the slices, adds up their gradients and updates the
    weights. Given threads of its own, their OpenMP team would spin after each
    parallel region on the cores the slices need: a step of the convolutional
    model took 12.5 instead of 10 ms.
    """

    def __init__(
        self, tuner: ThreadTuner | None, batch_size: int, *, sliced: bool, workers: int
    ) -> None:
        self.tuner, self.batch_size, self.sliced = tuner, batch_size, sliced
        self.workers = workers  # without a tuner: the caller's thread count
        self.started, self.n_batches = time.perf_counter(), 0
        self._start_block()

    def _start_block(self) -> None:
        if self.tuner is not None:
            self.workers = self.tuner.start_block()
        if self.sliced and torch.get_num_threads() != 1:
            torch.set_num_threads(1)

    def before_batch(self, n_rows: int) -> None:
        """Call before a batch of ``n_rows`` rows."""
        if self.tuner is not None and not self.sliced and n_rows < self.batch_size:
            # A short last batch has other shapes, for which the thread count
            # was not checked: run it with a fixed count, so results stay
            # reproducible.
            torch.set_num_threads(self.tuner.candidates[0])

    def batches_left(self) -> int:
        """Batches until the block ends (with a tuner; otherwise a block of the same size)."""
        size = _UNTUNED_BLOCK if self.tuner is None else self.tuner.block_size
        return max(1, size - self.n_batches % size)

    def after_batch(self, count: int = 1) -> None:
        """Call after every batch (or ``count`` batches, at most :meth:`batches_left`).

        Ends the block, and starts the next, after the last of it.
        """
        self.n_batches += count
        if self.tuner is not None and self.n_batches == self.tuner.block_size:
            now = time.perf_counter()
            self.tuner.end_block(now - self.started, self.n_batches)
            self._start_block()
            self.started, self.n_batches = now, 0


def _train_epoch(
    run: _Run,
    source: BatchSource,
    epoch: int,
    tuner: ThreadTuner | None,
    progress: Any,
    threads: int,
) -> dict[str, float]:
    """One pass over ``source``: the objective's means over its samples, and ``epoch_time``.

    ``threads`` is the thread count to train with where no ``tuner`` chooses it.

    Raises
    ------
    TrainingError
        If the training loss is not finite.
    """
    run.module.train()
    started = time.perf_counter()
    records: list[dict[str, torch.Tensor]] = []  # per-batch values, summed at the end
    batch_sizes: list[int] = []
    blocks = _TunedBlocks(
        tuner, run.config.batch_size, sliced=run.slices is not None, workers=threads
    )
    compiled = _compiled_loop(run, source)
    if compiled is not None:
        _train_compiled_epoch(run, compiled, blocks, progress, records, batch_sizes)
    else:
        for x_raw, y_raw, count, total in _epoch_shares(run, source):
            blocks.before_batch(int(x_raw.shape[0]))
            batch_sizes.append(count)
            records.append(_step(run, x_raw, y_raw, count, total, blocks.workers))
            progress.update(1)
            blocks.after_batch()
    if run.parallel is None:
        values = _batch_weighted_means(records, batch_sizes)
    else:  # over all processes' samples, so that every process records the same
        sums = _batch_weighted_sums(records, batch_sizes)
        values = run.parallel.mean(sums, sum(batch_sizes))
    values["epoch_time"] = time.perf_counter() - started
    _check_finite(values, epoch)
    return values


def _compiled_loop(run: _Run, source: BatchSource) -> tuple[CompiledBatches, TensorSource] | None:
    """The run's compiled batches and in-memory source, where they can replace the loop's steps.

    They can where the batches come straight from memory with themselves as targets,
    are neither sliced nor shared between processes, and are updated by a
    :class:`FusedAdamW` in float32 on the CPU: what the compiled loop computes (its
    inputs corrupted as ``corrupt_inputs`` would).
    """
    if not (
        run.compiled_batches is not None
        and isinstance(source, TensorSource)
        and source.targets is None
        and run.parallel is None
        and run.slices is None
        and isinstance(run.optimizer, FusedAdamW)
        and run.device.type == "cpu"
        and not run.config.mixed_precision
    ):
        return None
    return run.compiled_batches, source


def _train_compiled_epoch(
    run: _Run,
    compiled: tuple[CompiledBatches, TensorSource],
    blocks: _TunedBlocks,
    progress: Any,
    records: list[dict[str, torch.Tensor]],
    batch_sizes: list[int],
) -> None:
    """One epoch through the compiled loop, a block of batches a call.

    The same batches, thread counts and updates as the loop's own steps; the
    objective's values and the batches' sizes are appended to ``records`` and
    ``batch_sizes``.
    """
    train_batches, source = compiled
    size, n = run.config.batch_size, source.n_samples
    order = source.order(shuffle=run.config.shuffle, generator=run.generator)
    n_batches, full_batches = math.ceil(n / size), n // size
    first = 0
    while first < n_batches:
        rows = min(size, n - first * size)
        blocks.before_batch(rows)
        count = 1 if rows < size else min(blocks.batches_left(), full_batches - first)
        records.append(train_batches(source.inputs, order, size, first, count, run.optimizer))
        batch_sizes += [min(size, n - b * size) for b in range(first, first + count)]
        progress.update(count)
        blocks.after_batch(count)
        first += count


def _epoch_shares(run: _Run, source: BatchSource) -> Iterator[distributed.ShardedBatch]:
    """This process's part of every batch of one epoch of ``source``.

    Each as ``(inputs, targets or None, samples counted, samples in the whole
    batch)``; in a single process, the whole batch.
    """
    config = run.config
    if run.parallel is not None:
        return run.parallel.shares(
            source, config.batch_size, shuffle=config.shuffle, generator=run.generator
        )
    batches = source.epoch(config.batch_size, shuffle=config.shuffle, generator=run.generator)
    return ((x, y, int(x.shape[0]), int(x.shape[0])) for x, y in batches)


def _step(
    run: _Run,
    x_raw: torch.Tensor,
    y_raw: torch.Tensor | None,
    count: int,
    total: int,
    workers: int,
) -> dict[str, torch.Tensor]:
    """One optimiser step on a batch (this process's ``count`` of its ``total`` rows).

    Sliced batches are computed on ``workers`` threads.

    Returns the objective's values, detached.
    """
    x = run.prepare_batch(x_raw.to(run.device, non_blocking=True))
    y = x if y_raw is None else run.prepare_batch(y_raw.to(run.device, non_blocking=True))
    if run.corrupt_inputs is not None:
        x = run.corrupt_inputs(x)  # the target y stays clean
    if run.slices is not None:  # slice by slice, on as many cores as the tuner chose
        values = run.slices.step(x, y, workers=workers)
        _update(run)
        return values
    if run.parallel is None:
        values = run.objective(run.module, x, y)
        loss = values["loss"]
    else:  # through DDP, which averages the gradients over the processes
        values, loss = run.parallel.forward(x, y, count, total)
    if loss.requires_grad:
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
    # else: the objective wrote the gradients itself (a fused step)
    _update(run)
    return {key: value.detach() for key, value in values.items()}


def _update(run: _Run) -> None:
    """The optimiser's step; on a CPU with subnormal floats flushed to zero.

    Adam's moments of weights whose gradients stay zero shrink into the subnormal
    range, where a CPU computes slowly (:mod:`hourglass._subnormals`).
    """
    if run.device.type != "cpu":
        run.optimizer.step()
        return
    with flushing_subnormals():
        run.optimizer.step()


def _validate(run: _Run, validation: BatchSource | None, threads: int) -> dict[str, float]:
    """The objective's means over ``validation`` (none without it).

    A single process evaluates with ``threads`` threads.
    """
    if validation is None:
        return {}
    if run.parallel is not None:
        return _evaluate_data_parallel(
            run.parallel,
            run.module,
            run.objective,
            validation,
            batch_size=run.config.eval_batch_size,
            device=run.device,
            prepare_batch=run.prepare_batch,
            corrupt_inputs=run.corrupt_inputs,
        )
    with num_threads(threads):
        return evaluate(
            run.module,
            run.objective,
            validation,
            batch_size=run.config.eval_batch_size,
            device=run.device,
            prepare_batch=run.prepare_batch,
            corrupt_inputs=run.corrupt_inputs,
        )


def _save_checkpoint(
    checkpoint: Checkpoint,
    epoch: int,
    run: _Run,
    generators: dict[str, torch.Generator],
    history: History,
    stopping: _EarlyStopping,
) -> None:
    """Save the state after epoch ``epoch`` (0-based); only rank 0 writes."""
    # Every process's random streams (they differ between processes); rank 0 writes.
    generator_states = distributed.gather_generator_states(
        {name: g.get_state() for name, g in generators.items()}
    )
    if distributed.is_main_process():
        save_state(
            checkpoint,
            TrainingState(
                epochs_done=epoch + 1,
                module=run.module.state_dict(),
                optimizer=_optimizer_tensors(run.optimizer),
                generators=generator_states,
                history=history.metrics,
                best_epoch=history.best_epoch,
                best_value=stopping.best_value,
                epochs_without_improvement=stopping.epochs_without_improvement,
                best_module=stopping.best_state,
                stopped_early=history.stopped_early,
            ),
        )


def train(
    module: nn.Module,
    objective: Objective,
    inputs: torch.Tensor | BatchSource,
    targets: torch.Tensor | None = None,
    *,
    validation: tuple[torch.Tensor, torch.Tensor] | BatchSource | None = None,
    config: TrainingConfig = TrainingConfig(),
    generator: torch.Generator | None = None,
    device: torch.device | None = None,
    prepare_batch: Callable[[torch.Tensor], torch.Tensor] | None = None,
    corrupt_inputs: Callable[[torch.Tensor], torch.Tensor] | None = None,
    random_generators: dict[str, torch.Generator] | None = None,
    checkpoint: Checkpoint | None = None,
    compiled_batches: CompiledBatches | None = None,
) -> History:
    """Train ``module`` in place by minimising ``objective(module, x, y)["loss"]``.

    Parameters
    ----------
    module : torch.nn.Module
        The model, already on ``device``.
    objective : callable
        ``objective(module, inputs, targets)`` returning a dict of scalar
        tensors; ``"loss"`` is minimised, every entry is recorded in the history
        (validation entries prefixed with ``val_``).
    inputs, targets : torch.Tensor, or a BatchSource
        Training data on the CPU, first axis = samples. ``targets`` defaults to
        ``inputs`` (the autoencoder case). A :class:`BatchSource` (e.g. a file
        read in chunks) brings its own targets.
    validation : (inputs, targets) or BatchSource, optional
        Held-out data evaluated after every epoch.
    config : TrainingConfig
        Epochs, batch size, optimiser and early-stopping settings.
    generator : torch.Generator, optional
        Source of the shuffling order; pass a seeded one for reproducibility.
    device : torch.device, optional
        Where batches are sent; defaults to the module's device.
    prepare_batch : callable, optional
        Applied to every batch (inputs and targets, training and validation)
        once it is on the device, e.g. to turn compact uint8 storage into
        floats. Defaults to the identity.
    corrupt_inputs : callable, optional
        Applied to the (prepared) inputs only, never to the targets, of every
        training and validation batch: the denoising set-up, where the model
        sees a corrupted input and must produce the clean target.
    random_generators : dict of str to torch.Generator, optional
        The generators ``objective`` and ``corrupt_inputs`` draw from (the
        shuffling ``generator`` is added as ``"shuffle"``). They are saved in
        checkpoints, and left untouched by the thread-count check, so that
        results depend on the seed only.
    checkpoint : Checkpoint, optional
        Save the whole training state atomically after every epoch, and with
        ``checkpoint.resume`` continue from a saved one; a resumed run ends
        with the weights of an uninterrupted one.
    compiled_batches : CompiledBatches, optional
        Trains whole blocks of batches in place of the loop's steps (inputs
        corrupted alike), where it can: in-memory data, a :class:`FusedAdamW`, one process.

    Returns
    -------
    History
        Per-epoch metrics, including ``"epoch_time"`` (seconds spent on the
        training part of each epoch, validation excluded).

    Raises
    ------
    TrainingError
        If the training loss stops being finite.
    InvalidInputError
        In data-parallel training, if ``config.batch_size`` is not a multiple of
        the number of processes, or the processes disagree on the data's size.

    Notes
    -----
    While a ``torch.distributed`` process group of several processes is
    initialised, training is data-parallel (see :mod:`hourglass.distributed`):
    every process passes the same data and a generator seeded alike; each
    trains on its share of every batch through ``DistributedDataParallel``, with
    ``config.batch_size`` the global batch; the history (training and validation
    values averaged over all processes) and early stopping agree everywhere, and
    only rank 0 writes checkpoints. Objectives must leave the gradients to
    autograd there (no fused step); the processes share the CPU's cores.
    """
    device = device or next(module.parameters()).device
    if config.mixed_precision:
        objective = with_mixed_precision(objective, device)
    source = _training_source(inputs, targets, device)
    if isinstance(validation, tuple):
        validation = _as_source(*validation)
    optimizer = _make_optimizer(module, config)
    history = History()
    monitor = "val_loss" if validation is not None else "loss"
    stopping = _EarlyStopping(monitor, min_delta=config.min_delta, patience=config.patience)
    generators = dict(random_generators or {})
    if generator is not None:
        generators["shuffle"] = generator
    first_epoch = 0
    if checkpoint is not None and checkpoint.resume:
        first_epoch = _resume(checkpoint, module, optimizer, generators, history, stopping, config)
    parallel = _data_parallel(module, objective, device, config, source, validation, first_epoch)
    run = _Run(
        module=module,
        objective=objective,
        optimizer=optimizer,
        config=config,
        device=device,
        prepare_batch=prepare_batch or _identity,
        corrupt_inputs=corrupt_inputs,
        generator=generator,
        parallel=parallel,
        slices=_sliced_gradients(module, objective, config, device, parallel),
        compiled_batches=compiled_batches,
    )
    _run_epochs(run, source, validation, first_epoch, history, stopping, generators, checkpoint)
    if stopping.best_state is not None:
        module.load_state_dict(stopping.best_state)
    module.eval()
    return history
