"""The hand-written training step agrees with autograd."""

from __future__ import annotations

import pytest
import torch

from helpers import FUSED_CASES
from hourglass.nn import DenseAutoencoder, DenseConfig
from hourglass.nn.fused import _sum_log_upper_half
from hourglass.training import FusedAdamW


def _model(activation: str, output: str) -> DenseAutoencoder:
    config = DenseConfig(
        input_shape=(5, 4),
        latent_dim=3,
        hidden_dims=(7,),
        activation=activation,
        output_activation=output,
    )
    return DenseAutoencoder(config, generator=torch.Generator().manual_seed(1)).double()


@pytest.mark.parametrize(("activation", "output", "loss"), FUSED_CASES)
def test_fused_gradients_equal_autograd(activation: str, output: str, loss: str) -> None:
    model = _model(activation, output)
    x = torch.rand(6, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    if output == "linear":
        x = x * 4 - 2  # centred data
    target = x if loss != "bce" else x.clamp(0, 1)

    value, mae = model.reconstruction_loss(x, target, loss)
    value.backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)

    fused_value, fused_mae = model.loss_and_gradients(x, target, loss)
    assert not fused_value.requires_grad
    torch.testing.assert_close(fused_value, value.detach(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(fused_mae, mae, rtol=1e-10, atol=1e-12)
    for got, want in zip((p.grad for p in model.parameters()), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_fused_gradients_overwrite_the_previous_ones_in_place() -> None:
    model = _model("relu", "sigmoid")
    x = torch.rand(6, 5, 4, dtype=torch.float64)
    model.loss_and_gradients(x, x, "bce")
    buffers = [p.grad for p in model.parameters()]
    first = [g.clone() for g in buffers]
    model.loss_and_gradients(x, x, "bce")
    assert all(p.grad is b for p, b in zip(model.parameters(), buffers, strict=True))
    assert all(torch.equal(a, p.grad) for a, p in zip(first, model.parameters(), strict=True))


def test_bce_loss_value_is_stable_for_saturated_logits() -> None:
    model = _model("relu", "sigmoid").float()
    with torch.no_grad():
        model.linear_layers[-1].bias.fill_(-60.0)  # outputs ~ 1e-26: far into saturation
    x = torch.zeros(4, 5, 4)
    x[:, 0, 0] = 1.0  # one pixel the model gets badly wrong
    value, _ = model.loss_and_gradients(x, x, "bce")
    reference, _ = model.reconstruction_loss(x, x, "bce")
    assert torch.isfinite(value)
    torch.testing.assert_close(value, reference.detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [1, 63, 64, 640, 1001])
def test_sum_log_upper_half_matches_log_sum(n: int) -> None:
    values = 0.5 + 0.5 * torch.rand(n, generator=torch.Generator().manual_seed(n))
    expected = values.double().log().sum()
    torch.testing.assert_close(_sum_log_upper_half(values).double(), expected, rtol=1e-5, atol=1e-4)


def test_fused_adamw_updates_exactly_like_torch_optim() -> None:
    generator = torch.Generator().manual_seed(0)
    mine = [torch.nn.Parameter(torch.randn(5, 3, generator=generator)) for _ in range(2)]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in mine]
    ours = FusedAdamW(list(mine), lr=1e-2, eps=1e-7, weight_decay=0.01)
    reference = torch.optim.AdamW(theirs, lr=1e-2, eps=1e-7, weight_decay=0.01, fused=True)
    for _ in range(25):
        grads = [torch.randn(p.shape, generator=generator) for p in mine]
        for p, q, g in zip(mine, theirs, grads, strict=True):
            p.grad, q.grad = g.clone(), g.clone()
        ours.step()
        reference.step()
    assert all(torch.equal(p, q) for p, q in zip(mine, theirs, strict=True))
