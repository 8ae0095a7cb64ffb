"""Thread-count measurement during training, and its invariance of results."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from hourglass import Autoencoder, training
from hourglass.threads import ThreadTuner, available_cores, num_threads


def test_num_threads_restores_the_previous_thread_count() -> None:
    previous = torch.get_num_threads()
    target = 1 if previous != 1 else 2
    with num_threads(target):
        assert torch.get_num_threads() == target
    assert torch.get_num_threads() == previous
    with pytest.raises(RuntimeError, match="boom"), num_threads(target):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == previous
    with num_threads(None):
        assert torch.get_num_threads() == previous


def _drive(tuner: ThreadTuner, seconds_per_batch: dict[int, float], blocks: int) -> list[int]:
    """Run ``blocks`` full blocks with the given speed per thread count; return the counts."""
    used = []
    for _ in range(blocks):
        threads = tuner.start_block()
        used.append(threads)
        tuner.end_block(seconds_per_batch[threads] * tuner.block_size, tuner.block_size)
    return used


@pytest.fixture
def restore_threads():
    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)


@pytest.mark.usefixtures("restore_threads")
def test_tuner_measures_every_candidate_then_keeps_the_fastest() -> None:
    # Close (1.2x apart): two blocks each, in mirrored order.
    tuner = ThreadTuner((1, 2), block_size=4, remeasure_every=1000)
    used = _drive(tuner, {1: 1.2, 2: 1.0}, blocks=7)
    assert used == [1, 2, 2, 1, 2, 2, 2]
    assert tuner.choice == 2
    tuner = ThreadTuner((1, 2), block_size=4, remeasure_every=1000)
    assert _drive(tuner, {1: 1.0, 2: 1.2}, blocks=6) == [1, 2, 2, 1, 1, 1]
    # Far apart (2x, 6x): the first block of each decides.
    tuner = ThreadTuner((1, 2), block_size=4, remeasure_every=1000)
    assert _drive(tuner, {1: 1.0, 2: 0.5}, blocks=4) == [1, 2, 2, 2]
    tuner = ThreadTuner((1, 2), block_size=4, remeasure_every=1000)
    assert _drive(tuner, {1: 0.5, 2: 3.0}, blocks=4) == [1, 2, 1, 1]
    tuner = ThreadTuner((1, 2), block_size=4, remeasure_every=1000, trials=1)
    assert _drive(tuner, {1: 1.2, 2: 1.0}, blocks=4) == [1, 2, 2, 2]
    tuner = ThreadTuner((1, 2, 4), block_size=4, remeasure_every=1000, trials=3)
    assert _drive(tuner, {1: 3.0, 2: 1.0, 4: 1.2}, blocks=10) == [1, 2, 4, 4, 2, 1, 1, 2, 4, 2]


@pytest.mark.usefixtures("restore_threads")
def test_one_slow_block_while_measuring_does_not_decide() -> None:
    """The machine is briefly busy during one of the faster count's blocks."""
    seconds = iter([1.0, 0.8 * 1.5, 0.8, 1.0])  # blocks of 1, 2, 2, 1 thread(s), per batch
    tuner = ThreadTuner((1, 2), block_size=4, remeasure_every=1000)
    for _ in range(4):
        tuner.start_block()
        tuner.end_block(next(seconds) * tuner.block_size, tuner.block_size)
    assert tuner.choice == 2
    assert tuner.start_block() == 2


def test_tuner_needs_at_least_one_trial() -> None:
    with pytest.raises(ValueError, match="trials"):
        ThreadTuner((1, 2), trials=0)


@pytest.mark.usefixtures("restore_threads")
def test_tuner_remeasures_when_the_machine_gets_busy_and_switches() -> None:
    tuner = ThreadTuner((1, 2), block_size=4, slowdown=1.5, remeasure_every=1000)
    _drive(tuner, {1: 1.0, 2: 0.5}, blocks=2)
    assert tuner.choice == 2
    # Another program takes a core: two threads become 10x slower.
    used = _drive(tuner, {1: 1.0, 2: 5.0}, blocks=5)
    assert used == [2, 1, 2, 1, 1]  # one slow block, a round of measurement, one thread
    assert tuner.choice == 1


@pytest.mark.usefixtures("restore_threads")
def test_tuner_remeasures_periodically_and_ignores_short_blocks() -> None:
    tuner = ThreadTuner((1, 2), block_size=4, remeasure_every=3)
    used = _drive(tuner, {1: 1.0, 2: 1.2}, blocks=12)
    assert used == [1, 2, 2, 1, 1, 1, 1, 1, 2, 2, 1, 1]
    tuner = ThreadTuner((1, 2), block_size=4)
    tuner.start_block()
    tuner.end_block(100.0, 2)  # a short last block: not a measurement
    assert tuner.start_block() == 1


def test_tuner_for_this_machine_offers_one_thread_and_all_cores() -> None:
    tuner = ThreadTuner.for_this_machine()
    assert tuner.candidates[0] == 1
    assert tuner.candidates[-1] == available_cores()
    assert ThreadTuner.for_this_machine(max_threads=1).candidates == (1,)


def test_fit_restores_the_callers_thread_count() -> None:
    previous = torch.get_num_threads()
    X = np.random.default_rng(0).random((3000, 16), dtype=np.float32)
    Autoencoder(latent_dim=4, epochs=2, verbose=0, random_state=0).fit(X)
    assert torch.get_num_threads() == previous


def _weights(X: np.ndarray, threads: int | None, **params: object) -> list[torch.Tensor]:
    model = Autoencoder(epochs=2, num_threads=threads, verbose=0, random_state=0, **params)
    return [p.detach().clone() for p in model.fit(X).module_.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(
    "params",
    [
        {"latent_dim": 6},
        {"latent_dim": 6, "hidden_dims": (32, 16), "batch_size": 100},
        {"latent_dim": 64},
    ],
    ids=["small", "deeper", "wide"],
)
def test_automatic_threads_give_the_weights_of_one_thread(params: dict[str, object]) -> None:
    side = 28 if params["latent_dim"] == 64 else 8
    X = (np.random.default_rng(1).random((700, side, side)) * 255).astype(np.uint8)
    one_thread = _weights(X, 1, **params)
    assert _same(_weights(X, None, **params), one_thread)
    assert _same(_weights(X, None, **params), one_thread)  # and again: reproducible


def test_automatic_mode_uses_several_threads_exactly_where_they_train_identically(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Whether the thread count changes the arithmetic depends on the CPU's matrix
    # library (some split the reference encoder's sums between threads, some do
    # not). On every CPU, the automatic mode must switch counts only where that
    # cannot change the weights, and must keep one thread only where it would.
    X = (np.random.default_rng(2).random((700, 28, 28)) * 255).astype(np.uint8)
    tuned: list[bool] = []
    choose = training._choose_threads

    def spy(*args: Any, **kwargs: Any) -> ThreadTuner | None:
        tuner = choose(*args, **kwargs)
        tuned.append(tuner is not None)
        return tuner

    monkeypatch.setattr(training, "_choose_threads", spy)
    _weights(X, None)
    monkeypatch.undo()
    identical = _same(_weights(X, 1), _weights(X, 2))
    if tuned == [True]:
        assert identical
    elif available_cores() > 1:
        assert not identical
