"""The convolutional autoencoder module."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hourglass.nn import ConvAutoencoder, ConvConfig


@pytest.mark.parametrize("shape", [(28, 28), (1, 28, 28), (3, 13, 17), (2, 8, 8)])
def test_any_image_size_comes_back_in_its_own_shape(shape: tuple[int, ...]) -> None:
    model = ConvAutoencoder(ConvConfig(input_shape=shape, latent_dim=5))
    x = torch.rand(4, *shape)
    assert model.encode(x).shape == (4, 5)
    assert model(x).shape == (4, *shape)
    assert model.reconstruct(x).min() >= 0
    assert model.reconstruct(x).max() <= 1


def test_padding_is_to_a_multiple_of_the_downsampling_factor() -> None:
    assert ConvConfig(input_shape=(13, 17)).padded_size == (16, 20)
    assert ConvConfig(input_shape=(28, 28), channels=(8, 16, 32)).padded_size == (32, 32)


def test_default_architecture_for_28_by_28_images() -> None:
    model = ConvAutoencoder(ConvConfig())
    convs = [m for m in model.encoder if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride) for c in convs] == [
        (1, 32, (2, 2)),
        (32, 64, (2, 2)),
    ]
    linear = next(m for m in model.encoder if isinstance(m, nn.Linear))
    assert (linear.in_features, linear.out_features) == (64 * 7 * 7, 64)
    up = [m for m in model.decoder if isinstance(m, nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels, c.stride) for c in up] == [
        (64, 32, (2, 2)),
        (32, 1, (2, 2)),
    ]


def test_initialisation_is_glorot_normal_zero_bias_and_seeded() -> None:
    a = ConvAutoencoder(ConvConfig(), generator=torch.Generator().manual_seed(0))
    b = ConvAutoencoder(ConvConfig(), generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    conv = a.encoder[2]  # 32 -> 64 channels, 3x3
    std = math.sqrt(2.0 / (32 * 9 + 64 * 9))
    assert conv.weight.std().item() == pytest.approx(std, rel=0.05)
    assert conv.weight.abs().max().item() <= 2 * std / 0.8796 + 1e-6
    assert all(m.bias.abs().sum() == 0 for m in a.modules() if isinstance(m, nn.Conv2d))


def test_flat_samples_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"images of shape \(h, w\) or \(c, h, w\)"):
        ConvAutoencoder(ConvConfig(input_shape=(784,)))


def test_weights_are_channels_last_and_compute_what_contiguous_ones_do() -> None:
    model = ConvAutoencoder(ConvConfig(), generator=torch.Generator().manual_seed(0))
    contiguous = ConvAutoencoder(ConvConfig(), generator=torch.Generator().manual_seed(0))
    contiguous.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    convolutions = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convolutions)
    x = torch.rand(8, 28, 28, generator=torch.Generator().manual_seed(1))
    for network in (model, contiguous):
        loss, _ = network.reconstruction_loss(x, x, "bce")
        loss.backward()
    torch.testing.assert_close(model(x), contiguous(x), rtol=1e-5, atol=1e-6)
    for a, b in zip(model.parameters(), contiguous.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)
