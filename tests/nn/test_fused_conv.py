"""The convolutional training step with hand-written gradients agrees with autograd."""

from __future__ import annotations

import pytest
import torch

from hourglass.nn import ConvAutoencoder, ConvConfig
from hourglass.nn.fused_conv import SPLIT_BATCH
from hourglass.threads import num_threads

# (input shape, channels, activation, output, loss): one channel and several, sizes that
# need padding, one to three levels, every fused activation and loss.
CASES = [
    ((28, 28), (32, 64), "relu", "sigmoid", "bce"),
    ((3, 10, 12), (4, 5), "tanh", "linear", "mse"),
    ((13, 9), (3,), "leaky_relu", "sigmoid", "mae"),
    ((2, 16, 16), (2, 6, 4), "sigmoid", "sigmoid", "mse"),
]


def _model(shape: tuple[int, ...], channels: tuple[int, ...], activation: str, output: str):
    config = ConvConfig(
        input_shape=shape,
        latent_dim=5,
        channels=channels,
        activation=activation,
        output_activation=output,
    )
    return ConvAutoencoder(config, generator=torch.Generator().manual_seed(1)).double()


@pytest.mark.parametrize("batch", [3, SPLIT_BATCH + 5])  # one part, and two
@pytest.mark.parametrize(("shape", "channels", "activation", "output", "loss"), CASES)
def test_fused_conv_gradients_equal_autograd(
    shape: tuple[int, ...],
    channels: tuple[int, ...],
    activation: str,
    output: str,
    loss: str,
    batch: int,
) -> None:
    model = _model(shape, channels, activation, output)
    x = torch.rand(batch, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    if output == "linear":
        x = x * 4 - 2

    value, mae = model.reconstruction_loss(x, x, loss)
    value.backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)

    assert model.has_fused_gradients
    fused_value, fused_mae = model.loss_and_gradients(x, x, loss)
    assert not fused_value.requires_grad
    torch.testing.assert_close(fused_value, value.detach(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(fused_mae, mae, rtol=1e-10, atol=1e-12)
    for got, want in zip((p.grad for p in model.parameters()), expected, strict=True):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_fused_conv_gradients_do_not_depend_on_the_thread_count() -> None:
    model = ConvAutoencoder(ConvConfig(), generator=torch.Generator().manual_seed(0))
    x = torch.rand(64, 28, 28, generator=torch.Generator().manual_seed(1))
    gradients = []
    for threads in (1, 2, 3):
        with num_threads(threads):
            value, _ = model.loss_and_gradients(x, x, "bce")
        gradients.append([value] + [p.grad.clone() for p in model.parameters()])
    for other in gradients[1:]:
        assert all(torch.equal(a, b) for a, b in zip(gradients[0], other, strict=True))


def test_fused_conv_gradients_overwrite_the_previous_ones_in_place() -> None:
    model = _model((12, 12), (3, 4), "relu", "sigmoid")
    x = torch.rand(SPLIT_BATCH, 12, 12, dtype=torch.float64)
    model.loss_and_gradients(x, x, "bce")
    buffers = [p.grad for p in model.parameters()]
    first = [g.clone() for g in buffers]
    model.loss_and_gradients(x, x, "bce")
    assert all(p.grad is b for p, b in zip(model.parameters(), buffers, strict=True))
    assert all(torch.equal(a, p.grad) for a, p in zip(first, model.parameters(), strict=True))


def test_conv_weights_are_channels_last_and_train_to_the_same_model_as_contiguous_ones() -> None:
    model = ConvAutoencoder(ConvConfig(), generator=torch.Generator().manual_seed(0))
    contiguous = ConvAutoencoder(ConvConfig(), generator=torch.Generator().manual_seed(0))
    contiguous.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    assert model.encoder[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(20, 28, 28, generator=torch.Generator().manual_seed(1))
    model.loss_and_gradients(x, x, "bce")
    contiguous.loss_and_gradients(x, x, "bce")
    for a, b in zip(model.parameters(), contiguous.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-7)
