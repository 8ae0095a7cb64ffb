"""Sliced gradients: the same bits on any number of threads, and the whole batch's gradient."""

from __future__ import annotations

from typing import Any
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import bar_images
from hourglass import Autoencoder
from hourglass.families import get_family
from hourglass.nn import fused
from hourglass.nn.conv import ConvAutoencoder, ConvConfig
from hourglass.nn.dense import DenseAutoencoder, DenseConfig
from hourglass.sliced_gradients import SlicedGradients
from hourglass.threads import num_threads


def conv_objective(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    logits = module.decode_logits(module.encode(x))
    loss = F.binary_cross_entropy_with_logits(logits, y)
    return {"loss": loss, "mae": (torch.sigmoid(logits) - y).abs().mean()}


def fused_objective(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    loss, mae = module.loss_and_gradients(x, y, "bce")
    return {"loss": loss, "mae": mae}


def conv_module() -> ConvAutoencoder:
    return ConvAutoencoder(
        ConvConfig(input_shape=(12, 12), latent_dim=4, channels=(4, 8)),
        torch.Generator().manual_seed(0),
    )


def dense_module() -> DenseAutoencoder:
    return DenseAutoencoder(
        DenseConfig(input_shape=(20,), hidden_dims=(8,), latent_dim=3),
        torch.Generator().manual_seed(0),
    )


def gradients(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in module.parameters()]


def steps_on_one_and_two_threads(
    module: torch.nn.Module, objective: Any, x: torch.Tensor
) -> list[tuple[dict, list[torch.Tensor]]]:
    """The values and gradients of a sliced step on ``x`` with one worker, then two."""
    sliced = SlicedGradients(module, objective)
    try:
        return [(sliced.step(x, x, workers=n), gradients(module)) for n in (1, 2)]
    finally:
        sliced.close()


@pytest.mark.parametrize("rows", [16, 7])
def test_conv_gradients_are_the_same_bits_on_one_or_two_threads(rows: int) -> None:
    x = torch.rand(rows, 12, 12, generator=torch.Generator().manual_seed(1))
    (one, first), (two, second) = steps_on_one_and_two_threads(conv_module(), conv_objective, x)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert all(torch.equal(one[key], two[key]) for key in ("loss", "mae"))


@pytest.mark.parametrize("rows", [16, 7])
def test_sliced_conv_gradients_equal_the_whole_batch_gradients(rows: int) -> None:
    x = torch.rand(rows, 12, 12, generator=torch.Generator().manual_seed(2))
    module = conv_module()
    values = conv_objective(module, x, x)
    whole = torch.autograd.grad(values["loss"], list(module.parameters()))
    sliced = SlicedGradients(module, conv_objective)
    try:
        sliced_values = sliced.step(x, x, workers=2)
    finally:
        sliced.close()
    for expected, param in zip(whole, module.parameters(), strict=True):
        torch.testing.assert_close(param.grad, expected, rtol=1e-5, atol=1e-7)
    # The values are means over all rows, the slices weighted by their sizes (4 and 3 of 7).
    torch.testing.assert_close(sliced_values["loss"], values["loss"].detach())
    torch.testing.assert_close(sliced_values["mae"], values["mae"].detach())


def test_fused_objectives_write_each_slice_into_its_own_buffers() -> None:
    x = torch.rand(16, 20, generator=torch.Generator().manual_seed(3))
    module = dense_module()
    whole = fused_objective(module, x, x)
    expected = gradients(module)
    module.zero_grad(set_to_none=True)
    (_, first), (values, second) = steps_on_one_and_two_threads(module, fused_objective, x)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    for got, want in zip(second, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(values["loss"], whole["loss"])


def test_gradients_into_redirects_fused_gradients_in_this_thread_only() -> None:
    parameter = torch.nn.Parameter(torch.zeros(3))
    buffers: dict[int, torch.Tensor] = {}
    with fused.gradients_into(buffers):
        fused.gradient_buffer(parameter).fill_(1.0)
    assert parameter.grad is None
    assert torch.equal(buffers[id(parameter)], torch.ones(3))
    fused.gradient_buffer(parameter).fill_(2.0)  # outside: the parameter's own .grad
    assert torch.equal(parameter.grad, torch.full((3,), 2.0))


def test_a_conv_model_trains_to_the_same_weights_on_one_and_two_threads() -> None:
    images = bar_images(96, 0)

    def weights(threads: int) -> torch.Tensor:
        with num_threads(threads):
            model = Autoencoder(
                arch="conv",
                latent_dim=3,
                epochs=2,
                batch_size=16,
                random_state=0,
                verbose=0,
                num_threads=threads,
            ).fit(images)
        return torch.cat([p.detach().flatten() for p in model.module_.parameters()])

    assert torch.equal(weights(1), weights(2))
    automatic = Autoencoder(
        arch="conv", latent_dim=3, epochs=2, batch_size=16, random_state=0, verbose=0
    ).fit(images)
    assert np.array_equal(
        torch.cat([p.detach().flatten() for p in automatic.module_.parameters()]).numpy(),
        weights(1).numpy(),
    )


def test_sliced_training_computes_the_slices_on_the_workers_and_waits_on_one_thread() -> None:
    # The training thread's own OpenMP threads would spin on the cores the slices need.
    seen: list[tuple[int, int]] = []
    step = SlicedGradients.step

    def spy(self: SlicedGradients, x: torch.Tensor, y: torch.Tensor, workers: int) -> dict:
        seen.append((workers, torch.get_num_threads()))
        return step(self, x, y, workers)

    with num_threads(2), mock.patch.object(SlicedGradients, "step", spy):
        Autoencoder(
            arch="conv", latent_dim=3, epochs=1, batch_size=16, verbose=0, num_threads=2
        ).fit(bar_images(40, 0))
        assert torch.get_num_threads() == 2  # the caller's count, restored
    assert seen == [(2, 1)] * 3  # batches of 16, 16 and 8 rows


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"arch": "conv"}, True),
        ({"arch": "conv", "invariance": 1.0}, False),  # compares the batch's images
        ({"arch": "conv_vae"}, False),  # samples its codes
        ({"arch": "dense"}, False),  # steps too short to pay
        ({"arch": "tabular"}, False),  # trims the batch's worst rows
    ],
)
def test_families_slice_batches_only_where_slices_are_independent(
    params: dict, expected: bool
) -> None:
    estimator = Autoencoder(**params)
    assert get_family(params["arch"]).slices_batches(estimator) is expected
