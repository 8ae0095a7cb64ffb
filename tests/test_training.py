"""The task-agnostic training loop: learning, history, early stopping, divergence, RNG hygiene."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hourglass import Autoencoder
from hourglass._subnormals import flushing_subnormals
from hourglass.exceptions import TrainingError
from hourglass.training import History, TrainingConfig, evaluate, train


def _regression_data(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A noiseless linear map: learnable exactly by ``nn.Linear(3, 2)``."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 3, generator=generator)
    weight = torch.tensor([[1.0, -2.0, 0.5], [0.0, 1.0, 3.0]])
    return inputs, inputs @ weight.T + 0.25


def _mse_objective(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    prediction = module(x)
    return {"loss": F.mse_loss(prediction, y), "mae": (prediction - y).abs().mean()}


def _linear(seed: int = 0) -> nn.Linear:
    torch_generator = torch.Generator().manual_seed(seed)
    layer = nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(2, 3, generator=torch_generator))
        layer.bias.zero_()
    return layer


def _config(**overrides: object) -> TrainingConfig:
    settings: dict[str, object] = {
        "epochs": 5,
        "batch_size": 32,
        "learning_rate": 0.05,
        "verbose": 0,
    }
    settings.update(overrides)
    return TrainingConfig(**settings)  # type: ignore[arg-type]


def _train(*args: Any, **kwargs: Any) -> History:
    """:func:`train` with a seeded shuffling order by default: every test is deterministic."""
    kwargs.setdefault("generator", torch.Generator().manual_seed(0))
    return train(*args, **kwargs)


def _state_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _numpy_global_state() -> tuple[object, ...]:
    # The legacy global generator is exactly what must stay untouched.
    state: tuple[object, ...] = np.random.get_state()  # noqa: NPY002
    return state


def _numpy_states_equal(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    return all(
        np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y
        for x, y in zip(a, b, strict=True)
    )


def test_loss_decreases_on_a_learnable_problem() -> None:
    inputs, targets = _regression_data()
    module = _linear()

    history = _train(module, _mse_objective, inputs, targets, config=_config(epochs=20))

    losses = history.metrics["loss"]
    assert losses[-1] < 0.01 * losses[0]
    assert all(later <= earlier for earlier, later in itertools.pairwise(losses))
    assert not module.training  # left in eval mode


def test_history_records_every_metric_per_epoch() -> None:
    inputs, targets = _regression_data()

    history = _train(_linear(), _mse_objective, inputs, targets, config=_config(epochs=3))

    assert set(history.metrics) == {"loss", "mae", "epoch_time"}
    assert history.n_epochs == 3
    assert all(len(values) == 3 for values in history.metrics.values())
    assert all(t > 0 for t in history.metrics["epoch_time"])
    assert history.best_epoch is None  # only early stopping picks a best epoch
    assert not history.stopped_early


def test_history_with_validation_has_val_entries() -> None:
    inputs, targets = _regression_data()
    val_inputs, val_targets = _regression_data(64, seed=1)

    history = _train(
        _linear(),
        _mse_objective,
        inputs,
        targets,
        validation=(val_inputs, val_targets),
        config=_config(epochs=4),
    )

    assert set(history.metrics) == {"loss", "mae", "epoch_time", "val_loss", "val_mae"}
    assert len(history.metrics["val_loss"]) == 4
    assert history.metrics["val_loss"][-1] < history.metrics["val_loss"][0]


def test_targets_default_to_inputs() -> None:
    inputs = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    module = nn.Linear(3, 3)
    with torch.no_grad():
        module.weight.zero_()
        module.bias.zero_()

    history = _train(module, _mse_objective, inputs, config=_config(epochs=30))

    assert history.metrics["loss"][-1] < 0.05  # it learnt the identity
    torch.testing.assert_close(module(inputs).detach(), inputs, atol=0.3, rtol=0)


class _ScriptedValidation:
    """An objective whose *validation* loss follows a script, recording the weights it sees.

    Training batches get a real MSE loss (so the weights keep changing); each
    validation pass (eval mode) returns the next scripted value.
    """

    def __init__(self, val_losses: list[float]) -> None:
        self._val_losses: Iterator[float] = iter(val_losses)
        self.weights_at_validation: list[dict[str, torch.Tensor]] = []

    def __call__(
        self, module: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        if module.training:
            return {"loss": F.mse_loss(module(x), y)}
        self.weights_at_validation.append(copy.deepcopy(module.state_dict()))
        return {"loss": torch.tensor(next(self._val_losses))}


def test_early_stopping_stops_and_restores_the_best_weights() -> None:
    inputs, targets = _regression_data()
    objective = _ScriptedValidation([5.0, 4.0, 3.0, 2.0, 2.5, 3.0, 9.0, 9.0, 9.0, 9.0])
    module = _linear()

    history = _train(
        module,
        objective,
        inputs,
        targets,
        validation=(inputs[:50], targets[:50]),  # one validation batch per epoch
        config=_config(epochs=10, early_stopping=True, patience=2),
    )

    assert history.stopped_early
    assert history.best_epoch == 3
    assert history.n_epochs == 6  # epochs 4 and 5 did not improve: patience exhausted
    assert history.metrics["val_loss"] == [5.0, 4.0, 3.0, 2.0, 2.5, 3.0]
    best = objective.weights_at_validation[3]
    last = objective.weights_at_validation[5]
    assert not _state_equal(best, last)  # training did move the weights
    assert _state_equal(module.state_dict(), best)


def test_early_stopping_respects_min_delta() -> None:
    inputs, targets = _regression_data()
    objective = _ScriptedValidation([1.0, 0.95, 0.92, 0.91, 0.5, 0.5])

    history = _train(
        _linear(),
        objective,
        inputs,
        targets,
        validation=(inputs[:50], targets[:50]),
        config=_config(epochs=6, early_stopping=True, patience=3, min_delta=0.1),
    )

    # No value is 0.1 below the best (1.0), so only epoch 0 counts as best.
    assert history.best_epoch == 0
    assert history.stopped_early
    assert history.n_epochs == 4


def test_early_stopping_without_stopping_keeps_the_best_epoch() -> None:
    inputs, targets = _regression_data()
    objective = _ScriptedValidation([3.0, 1.0, 2.0, 2.5])
    module = _linear()

    history = _train(
        module,
        objective,
        inputs,
        targets,
        validation=(inputs[:50], targets[:50]),
        config=_config(epochs=4, early_stopping=True, patience=10),
    )

    assert not history.stopped_early
    assert history.n_epochs == 4
    assert history.best_epoch == 1
    assert _state_equal(module.state_dict(), objective.weights_at_validation[1])


def test_early_stopping_without_validation_monitors_the_training_loss() -> None:
    inputs, targets = _regression_data()

    history = _train(
        _linear(),
        _mse_objective,
        inputs,
        targets,
        config=_config(epochs=6, early_stopping=True, patience=2),
    )

    losses = history.metrics["loss"]
    assert "val_loss" not in history.metrics
    assert history.best_epoch == int(np.argmin(losses))


def test_nan_loss_raises_training_error_mentioning_the_learning_rate() -> None:
    inputs, targets = _regression_data()

    def diverging(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": F.mse_loss(module(x), y) * float("nan")}

    with pytest.raises(TrainingError, match=r"became nan in epoch 1.*learning rate"):
        _train(_linear(), diverging, inputs, targets, config=_config())


def test_empty_data_raises_training_error() -> None:
    with pytest.raises(TrainingError, match="empty"):
        _train(_linear(), _mse_objective, torch.empty(0, 3), torch.empty(0, 2), config=_config())


def test_same_seeded_generator_gives_identical_results() -> None:
    inputs, targets = _regression_data()

    def run(seed: int, shuffle: bool = True) -> tuple[dict[str, torch.Tensor], History]:
        module = _linear()
        history = _train(
            module,
            _mse_objective,
            inputs,
            targets,
            config=_config(epochs=2, learning_rate=0.01, shuffle=shuffle),
            generator=torch.Generator().manual_seed(seed),
        )
        return module.state_dict(), history

    first, first_history = run(0)
    again, again_history = run(0)
    other, _ = run(1)
    assert _state_equal(first, again)
    assert first_history.metrics["loss"] == again_history.metrics["loss"]
    assert not _state_equal(first, other)  # the order of the batches matters
    # Without shuffling the generator is irrelevant.
    assert _state_equal(run(0, shuffle=False)[0], run(1, shuffle=False)[0])


def test_training_leaves_the_global_rngs_alone() -> None:
    inputs, targets = _regression_data()
    module = _linear()
    torch_before = torch.get_rng_state()
    numpy_before = _numpy_global_state()

    _train(
        module,
        _mse_objective,
        inputs,
        targets,
        config=_config(epochs=2),
        generator=torch.Generator().manual_seed(0),
    )

    assert torch.equal(torch_before, torch.get_rng_state())
    assert _numpy_states_equal(numpy_before, _numpy_global_state())


@pytest.mark.parametrize("random_state", [0, None])
def test_autoencoder_fit_leaves_the_global_rngs_alone(random_state: int | None) -> None:
    X = np.random.default_rng(0).random((64, 6), dtype=np.float32)
    torch_before = torch.get_rng_state()
    numpy_before = _numpy_global_state()

    Autoencoder(
        latent_dim=2,
        epochs=2,
        batch_size=16,
        validation_fraction=0.25,
        verbose=0,
        random_state=random_state,
    ).fit(X)

    assert torch.equal(torch_before, torch.get_rng_state())
    assert _numpy_states_equal(numpy_before, _numpy_global_state())


def test_autoencoder_fit_restores_the_thread_count() -> None:
    previous = torch.get_num_threads()
    X = np.random.default_rng(0).random((32, 4), dtype=np.float32)

    Autoencoder(latent_dim=2, epochs=1, num_threads=1, verbose=0, random_state=0).fit(X)

    assert torch.get_num_threads() == previous


def test_evaluate_weights_batches_by_size_and_restores_the_mode() -> None:
    inputs = torch.arange(10.0).reshape(10, 1)
    module = nn.Linear(1, 1)
    module.train()

    def mean_input(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        assert not module.training
        assert not torch.is_grad_enabled()
        return {"loss": x.mean()}

    values = evaluate(module, mean_input, inputs, inputs, batch_size=3)  # batches 3, 3, 3, 1

    assert values == {"loss": pytest.approx(4.5)}
    assert module.training


def test_progress_bar_is_silent_with_verbose_0(capsys: pytest.CaptureFixture[str]) -> None:
    inputs, targets = _regression_data()

    _train(_linear(), _mse_objective, inputs, targets, config=_config(epochs=1, verbose=0))

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


# ------------------------------------------------------------------ mixed precision


def _conv_images() -> np.ndarray:
    return (np.random.default_rng(5).random((96, 12, 12)) * 255).astype(np.uint8)


def _conv_fit(**params: Any) -> Autoencoder:
    settings: dict[str, Any] = {"arch": "conv", "epochs": 2, "batch_size": 32, "verbose": 0}
    settings.update(params)
    return Autoencoder(random_state=0, **settings).fit(_conv_images())


def test_mixed_precision_falls_back_to_float32_where_bfloat16_is_not_native(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from hourglass.estimators import _params

    monkeypatch.setattr(_params, "bfloat16_is_native", lambda device: False)
    with caplog.at_level("INFO", logger="hourglass"):
        mixed = _conv_fit(mixed_precision=True)
    plain = _conv_fit()
    assert "does not compute in bfloat16 natively; using float32" in caplog.text
    for a, b in zip(mixed.module_.parameters(), plain.module_.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.skipif(
    not __import__("hourglass.training").training.bfloat16_is_native(torch.device("cpu")),
    reason="this CPU has no native bfloat16",
)
def test_mixed_precision_is_reproducible_and_predicts_float32() -> None:
    first, second = _conv_fit(mixed_precision=True), _conv_fit(mixed_precision=True)
    for a, b in zip(first.module_.parameters(), second.module_.parameters(), strict=True):
        assert a.dtype == torch.float32
        assert torch.equal(a, b)
    X = _conv_images()
    reconstruction = first.reconstruct(X)
    assert reconstruction.dtype == np.float32
    assert np.array_equal(reconstruction[:5], first.reconstruct(X[:5]))  # batch-invariant
    assert np.isfinite(first.history_["loss"]).all()


def test_with_mixed_precision_runs_the_objective_under_bfloat16_autocast() -> None:
    from hourglass.training import with_mixed_precision

    seen: list[torch.dtype] = []

    def objective(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        seen.append(torch.get_autocast_dtype("cpu"))
        assert torch.is_autocast_enabled("cpu")
        return {"loss": module(x).sum()}

    with_mixed_precision(objective, torch.device("cpu"))(nn.Linear(3, 1), torch.ones(2, 3), None)
    assert seen == [torch.bfloat16]
    assert not torch.is_autocast_enabled("cpu")


class _StepByStep:
    """A :class:`CompiledBatches` in Python: the loop's own steps, recorded by call."""

    def __init__(
        self, module: nn.Module, corrupt: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> None:
        self.module, self.corrupt = module, corrupt
        self.calls: list[tuple[int, int, bool]] = []  # first, count, shuffled

    def __call__(
        self,
        inputs: torch.Tensor,
        order: torch.Tensor | None,
        batch_size: int,
        first: int,
        count: int,
        optimizer: Any,
    ) -> dict[str, torch.Tensor]:
        self.calls.append((first, count, order is not None))
        values = []
        for b in range(first, first + count):
            rows = slice(b * batch_size, (b + 1) * batch_size)
            x = inputs[rows] if order is None else inputs.index_select(0, order[rows])
            seen = x if self.corrupt is None else self.corrupt(x)
            batch = _mse_objective(self.module, seen, x)
            optimizer.zero_grad(set_to_none=True)
            batch["loss"].backward()
            with flushing_subnormals():
                optimizer.step()
            values.append({key: value.detach() for key, value in batch.items()})
        return {key: torch.stack([v[key] for v in values]) for key in values[0]}


def _square(seed: int = 0) -> nn.Linear:
    layer = nn.Linear(3, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed)))
        layer.bias.zero_()
    return layer


def _noise(seed: int) -> Callable[[torch.Tensor], torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return lambda x: x + 0.1 * torch.randn(x.shape, generator=generator)


@pytest.mark.parametrize(("shuffle", "denoising"), [(True, False), (False, False), (True, True)])
def test_compiled_batches_replace_the_steps_a_block_at_a_time(
    shuffle: bool, denoising: bool
) -> None:
    inputs = torch.randn(32 * 70 + 5, 3, generator=torch.Generator().manual_seed(1))
    config = _config(epochs=2, learning_rate=0.01, shuffle=shuffle)
    plain = _square()
    corrupt = _noise(5) if denoising else None
    expected = _train(plain, _mse_objective, inputs, config=config, corrupt_inputs=corrupt)
    module = _square()
    compiled = _StepByStep(module, _noise(5) if denoising else None)
    history = _train(
        module,
        _mse_objective,
        inputs,
        config=config,
        corrupt_inputs=_noise(6) if denoising else None,  # the compiled batches corrupt
        compiled_batches=compiled,
    )
    # Blocks of 32 batches, the thread tuner's (or as many without it); the short last
    # batch alone, as the loop runs it with a fixed thread count.
    blocks = [(0, 32), (32, 32), (64, 6), (70, 1)]
    assert compiled.calls == [(first, count, shuffle) for first, count in blocks * 2]
    assert _state_equal(module.state_dict(), plain.state_dict())
    assert history.metrics["loss"] == expected.metrics["loss"]
    assert history.metrics["mae"] == expected.metrics["mae"]


def test_compiled_batches_are_left_out_where_they_cannot_compute_the_steps() -> None:
    inputs = torch.randn(100, 3, generator=torch.Generator().manual_seed(1))
    config = _config(epochs=1)
    for kwargs in (
        {"targets": inputs.flip(1)},  # targets other than the inputs
        {"validation": (inputs, inputs)},  # (validation alone does not stop it)
    ):
        module = _square()
        compiled = _StepByStep(module)
        _train(module, _mse_objective, inputs, config=config, compiled_batches=compiled, **kwargs)
        assert bool(compiled.calls) == ("validation" in kwargs), kwargs
    module = _square()
    compiled = _StepByStep(module)
    source = _ListSource(inputs)  # not in memory as one tensor
    _train(module, _mse_objective, source, config=config, compiled_batches=compiled)
    assert compiled.calls == []


class _ListSource:
    """A :class:`BatchSource` that is not a TensorSource (a stream, say)."""

    def __init__(self, inputs: torch.Tensor) -> None:
        self.inputs = inputs

    @property
    def n_samples(self) -> int:
        return int(self.inputs.shape[0])

    def epoch(
        self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None
    ) -> Iterator[tuple[torch.Tensor, None]]:
        for start in range(0, self.n_samples, batch_size):
            yield self.inputs[start : start + batch_size], None

    def head(self, n: int) -> tuple[torch.Tensor, None]:
        return self.inputs[:n], None
