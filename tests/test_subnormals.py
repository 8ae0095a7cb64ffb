"""Subnormal floats flushed to zero around the optimiser's update."""

from __future__ import annotations

from unittest import mock

import pytest
import torch

from hourglass._subnormals import flushing_subnormals, subnormals_flushed
from hourglass.training import FusedAdamW, TrainingConfig, train

pytestmark = pytest.mark.skipif(
    not torch.set_flush_denormal(False), reason="this CPU has no flush-to-zero mode"
)


def test_the_mode_is_on_inside_and_restored_after() -> None:
    assert not subnormals_flushed()
    with flushing_subnormals():
        assert subnormals_flushed()
        assert torch.tensor([1e-40]).mul(1.0).item() == 0.0
    assert not subnormals_flushed()
    assert torch.tensor([1e-40]).mul(1.0).item() > 0.0


def test_a_mode_set_by_the_caller_stays_set() -> None:
    torch.set_flush_denormal(True)
    try:
        with flushing_subnormals():
            assert subnormals_flushed()
        assert subnormals_flushed()
    finally:
        torch.set_flush_denormal(False)


def test_training_flushes_them_in_the_update_only_and_keeps_adams_result() -> None:
    # A moment that decayed into the subnormal range is zero after a flushed update;
    # the weight moves exactly as without flushing (the moment is far below its last bit).
    weights = []
    for flushed in (False, True):
        param = torch.nn.Parameter(torch.tensor([0.5, -0.25]))
        optimizer = FusedAdamW([param], lr=1e-3)
        param.grad = torch.tensor([0.1, 0.0])
        optimizer.step()
        optimizer.exp_avgs[0][1] = 1e-39  # as after ~800 steps of zero gradient
        optimizer.exp_avg_sqs[0][1] = 1e-12
        param.grad = torch.tensor([0.1, 0.0])
        if flushed:
            with flushing_subnormals():
                optimizer.step()
            assert optimizer.exp_avgs[0][1].item() == 0.0
        else:
            optimizer.step()
            assert optimizer.exp_avgs[0][1].item() > 0.0
        weights.append(param.detach().clone())
    assert torch.equal(weights[0], weights[1])


def test_the_training_loop_updates_with_subnormals_flushed_and_computes_without() -> None:
    seen: dict[str, list[bool]] = {"update": [], "objective": []}
    step = FusedAdamW.step

    def spy(self: FusedAdamW) -> None:
        seen["update"].append(subnormals_flushed())
        step(self)

    module = torch.nn.Linear(3, 3)

    def objective(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
        seen["objective"].append(subnormals_flushed())
        return {"loss": torch.nn.functional.mse_loss(module(x), y)}

    x = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
    with mock.patch.object(FusedAdamW, "step", spy):
        train(module, objective, x, x, config=TrainingConfig(epochs=1, batch_size=8, verbose=0))
    assert seen["update"] == [True] * 4
    assert not any(seen["objective"])
    assert not subnormals_flushed()
