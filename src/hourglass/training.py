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

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from hourglass.exceptions import TrainingError

__all__ = ["History", "Objective", "TrainingConfig", "evaluate", "num_threads", "train"]

#: ``objective(module, inputs, targets) -> {"loss": scalar, other metrics...}``,
#: every value a scalar tensor averaged over the batch.
Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


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


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (``None`` leaves it unchanged)."""
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _make_optimizer(module: nn.Module, config: TrainingConfig) -> torch.optim.Optimizer:
    params = [p for p in module.parameters() if p.requires_grad]
    # The fused kernel is several times faster than the loop implementation for
    # small models; it needs floating-point parameters on CPU or CUDA.
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.AdamW(
        params,
        lr=config.learning_rate,
        eps=config.adam_epsilon,
        weight_decay=config.weight_decay,
        fused=fused,
    )


def _batches(n: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


@torch.no_grad()
def evaluate(
    module: nn.Module,
    objective: Objective,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    batch_size: int = 1024,
    device: torch.device | None = None,
) -> dict[str, float]:
    """Average ``objective`` over a data set, in eval mode and without gradients.

    Returns a dict with the same keys as the objective, each the mean over
    samples (batches weighted by their size).
    """
    device = device or next(module.parameters()).device
    was_training = module.training
    module.eval()
    totals: dict[str, torch.Tensor] = {}
    n = inputs.shape[0]
    try:
        for batch in _batches(n, batch_size):
            x = inputs[batch].to(device, non_blocking=True)
            y = targets[batch].to(device, non_blocking=True)
            values = objective(module, x, y)
            size = x.shape[0]
            for key, value in values.items():
                totals[key] = totals.get(key, 0) + value.detach() * size
    finally:
        module.train(was_training)
    return {key: float(total) / n for key, total in totals.items()}


def _check_finite(values: dict[str, float], epoch: int) -> None:
    loss = values["loss"]
    if not math.isfinite(loss):
        raise TrainingError(
            f"The training loss became {loss} in epoch {epoch + 1}, so training stopped and "
            "no model was kept. Likely causes: a learning rate that is too high (try 10x "
            "lower), or input data that is not scaled (scale features to [0, 1] or "
            "standardise them)."
        )


def train(
    module: nn.Module,
    objective: Objective,
    inputs: torch.Tensor,
    targets: torch.Tensor | None = None,
    *,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    config: TrainingConfig = TrainingConfig(),
    generator: torch.Generator | None = None,
    device: torch.device | None = None,
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
    inputs, targets : torch.Tensor
        Training data on the CPU, first axis = samples. ``targets`` defaults to
        ``inputs`` (the autoencoder case).
    validation : (inputs, targets), optional
        Held-out data evaluated after every epoch.
    config : TrainingConfig
        Epochs, batch size, optimiser and early-stopping settings.
    generator : torch.Generator, optional
        Source of the shuffling order; pass a seeded one for reproducibility.
    device : torch.device, optional
        Where batches are sent; defaults to the module's device.

    Returns
    -------
    History
        Per-epoch metrics, including ``"epoch_time"`` (seconds spent on the
        training part of each epoch, validation excluded).

    Raises
    ------
    TrainingError
        If the training loss stops being finite.
    """
    targets = inputs if targets is None else targets
    device = device or next(module.parameters()).device
    n = inputs.shape[0]
    if n == 0:
        raise TrainingError("Cannot train on an empty data set.")
    n_batches = math.ceil(n / config.batch_size)
    # Keep the whole data set on an accelerator when it is small enough, to avoid
    # one host-to-device copy per batch.
    if device.type != "cpu" and inputs.numel() * inputs.element_size() < 2**30:
        inputs, targets = inputs.to(device), targets.to(device)
    same_target = targets is inputs
    optimizer = _make_optimizer(module, config)
    history = History()
    monitor = "val_loss" if validation is not None else "loss"
    best_value = math.inf
    best_state: dict[str, torch.Tensor] | None = None
    epochs_without_improvement = 0

    progress = tqdm(
        total=config.epochs * n_batches,
        desc=config.progress_description,
        unit="batch",
        disable=config.verbose <= 0,
        mininterval=0.5,
        leave=True,
    )
    try:
        for epoch in range(config.epochs):
            module.train()
            started = time.perf_counter()
            order = torch.randperm(n, generator=generator) if config.shuffle else None
            totals: dict[str, torch.Tensor] = {}
            for batch in _batches(n, config.batch_size):
                if order is None:
                    x = inputs[batch]
                    y = x if same_target else targets[batch]
                else:
                    index = order[batch].to(inputs.device)
                    x = inputs.index_select(0, index)
                    y = x if same_target else targets.index_select(0, index)
                x = x.to(device, non_blocking=True)
                y = x if same_target else y.to(device, non_blocking=True)
                optimizer.zero_grad(set_to_none=True)
                values = objective(module, x, y)
                values["loss"].backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                size = x.shape[0]
                for key, value in values.items():
                    totals[key] = totals.get(key, 0) + value.detach() * size
                progress.update(1)
            epoch_values = {key: float(total) / n for key, total in totals.items()}
            epoch_values["epoch_time"] = time.perf_counter() - started
            _check_finite(epoch_values, epoch)
            if validation is not None:
                val = evaluate(
                    module,
                    objective,
                    validation[0],
                    validation[1],
                    batch_size=config.eval_batch_size,
                    device=device,
                )
                epoch_values.update({f"val_{key}": value for key, value in val.items()})
            history.append(epoch_values)
            progress.set_postfix(
                {k: f"{v:.4g}" for k, v in epoch_values.items() if k in ("loss", "val_loss")},
                refresh=False,
            )

            if not config.early_stopping:
                continue
            current = epoch_values[monitor]
            if current < best_value - config.min_delta:
                best_value = current
                best_state = copy.deepcopy(module.state_dict())
                history.best_epoch = epoch
                epochs_without_improvement = 0
            else:
                epochs_without_improvement += 1
                if epochs_without_improvement >= config.patience:
                    history.stopped_early = True
                    break
    finally:
        progress.close()

    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return history
