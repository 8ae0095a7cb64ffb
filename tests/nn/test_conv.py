"""The convolutional autoencoder module."""

from __future__ import annotations

import math
from unittest import mock

import pytest
import torch
from torch import nn

from hourglass.estimators._blocks import with_bfloat16_weights
from hourglass.nn import ConvAutoencoder, ConvConfig
from hourglass.nn import conv as conv_module
from hourglass.nn.conv import FewChannelConvTranspose2d, FusingSequential


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


@pytest.mark.parametrize(
    ("in_channels", "out_channels", "kernel", "stride", "padding", "size", "extra", "phases"),
    [
        (32, 1, 4, 2, 1, 14, {}, True),  # the kernel is a multiple of the stride
        (8, 3, 4, 2, 1, 7, {}, True),
        (5, 2, 3, 1, 1, 6, {}, True),
        (6, 2, (4, 6), (2, 3), (2, 1), 5, {"output_padding": (1, 1), "bias": False}, True),
        (4, 1, 3, 2, 0, 5, {}, False),  # it is not
        (4, 2, 4, 2, 0, 5, {"output_padding": 1}, False),  # more output padding than padding
    ],
)
def test_few_channel_transposed_convolution_computes_what_torch_does(
    in_channels: int,
    out_channels: int,
    kernel: int | tuple[int, int],
    stride: int | tuple[int, int],
    padding: int | tuple[int, int],
    size: int,
    extra: dict[str, object],
    phases: bool,
) -> None:
    torch.manual_seed(0)
    reference = nn.ConvTranspose2d(in_channels, out_channels, kernel, stride, padding, **extra)
    fold = FewChannelConvTranspose2d(in_channels, out_channels, kernel, stride, padding, **extra)
    fold.load_state_dict(reference.state_dict())  # the same parameters, by the same names
    x = torch.randn(3, in_channels, size, size).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    expected, got = reference(x), fold(x)  # with gradients: by fold
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    with torch.no_grad(), mock.patch.object(fold, "_by_phases", wraps=fold._by_phases) as spy:
        torch.testing.assert_close(fold(x), expected, rtol=1e-5, atol=1e-5)  # at inference
    assert spy.called == phases
    grads = [
        torch.autograd.grad(out.square().sum(), [x, *m.parameters()])
        for out, m in ((expected, reference), (got, fold))
    ]
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_the_last_map_is_flattened_before_its_activation_and_the_image_layer_folds() -> None:
    model = ConvAutoencoder(ConvConfig())
    kinds = [type(m).__name__ for m in model.encoder]
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "Flatten", "ReLU", "Linear", "ReLU"]
    assert isinstance(model.decoder[-1], FewChannelConvTranspose2d)  # 32 -> 1 channel
    assert type(model.decoder[-3]) is nn.ConvTranspose2d  # 64 -> 32: oneDNN's is faster


def _layer_by_layer() -> mock._patch:  # type: ignore[type-arg]
    """Run every layer on its own, as a torch without oneDNN's fused ReLU would."""
    return mock.patch.object(conv_module, "_ONEDNN_FUSES_RELU", False)


def _model_in(precision: str, config: ConvConfig) -> nn.Module:
    """A seeded model; with bfloat16 weights for ``precision="bfloat16 weights"``."""
    model = ConvAutoencoder(config, generator=torch.Generator().manual_seed(0))
    return with_bfloat16_weights(model) if precision == "bfloat16 weights" else model


@pytest.mark.parametrize(
    "config",
    [ConvConfig(), ConvConfig(input_shape=(3, 13, 17), latent_dim=5, channels=(8, 16, 32))],
)
@pytest.mark.parametrize("precision", ["float32", "autocast", "bfloat16 weights"])
def test_inference_fuses_each_convolution_with_its_relu_and_computes_the_same_bits(
    config: ConvConfig, precision: str
) -> None:
    model = _model_in(precision, config)
    x = torch.rand(6, *config.input_shape, generator=torch.Generator().manual_seed(1))

    def run() -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", enabled=precision != "float32"):
            return model.reconstruct(x)

    with mock.patch.object(conv_module, "_conv_relu", wraps=conv_module._conv_relu) as fused:
        got = run()
    with _layer_by_layer():
        expected = run()
    assert torch.equal(got, expected)
    n_convolutions_with_relu = 2 * len(config.channels) - 1  # all but the image layer
    assert fused.call_count == (n_convolutions_with_relu if conv_module._ONEDNN_FUSES_RELU else 0)


def test_training_and_export_run_the_layers_one_by_one() -> None:
    model = ConvAutoencoder(ConvConfig(), generator=torch.Generator().manual_seed(0))
    x = torch.rand(4, 28, 28, generator=torch.Generator().manual_seed(1))
    with (
        mock.patch.object(conv_module, "_conv_relu", wraps=conv_module._conv_relu) as fused,
        mock.patch.object(
            conv_module,
            "_linear_to_channels_last_maps",
            wraps=conv_module._linear_to_channels_last_maps,
        ) as reordered,
    ):
        loss, _ = model.reconstruction_loss(x, x, "bce")  # gradients recorded
        loss.backward()
        torch.export.export(model.eval(), (x,))
    assert fused.call_count == 0
    assert reordered.call_count == 0
    assert all(p.grad is not None for p in model.parameters())


def _without_channels_last_maps() -> mock._patch:  # type: ignore[type-arg]
    """Run the decoder's Linear, activation and Unflatten as three layers."""
    return mock.patch.object(conv_module, "_maps_for_a_convolution", return_value=None)


@pytest.mark.parametrize(
    "config",
    [
        ConvConfig(),
        ConvConfig(input_shape=(3, 13, 17), latent_dim=5, channels=(8, 16, 32)),
        ConvConfig(activation="tanh"),
        ConvConfig(activation="elu", channels=(16,)),
    ],
)
@pytest.mark.parametrize("precision", ["float32", "autocast", "bfloat16 weights"])
def test_inference_writes_the_code_layer_into_channels_last_maps_with_the_same_bits(
    config: ConvConfig, precision: str
) -> None:
    model = _model_in(precision, config)
    z = torch.randn(70, config.latent_dim, generator=torch.Generator().manual_seed(1))

    def decode() -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", enabled=precision != "float32"):
            return model.decode_logits(z)

    with mock.patch.object(
        conv_module,
        "_linear_to_channels_last_maps",
        wraps=conv_module._linear_to_channels_last_maps,
    ) as reordered:
        got = decode()
    with _without_channels_last_maps():
        expected = decode()
    assert torch.equal(got, expected)
    assert reordered.call_count == 1
    with torch.inference_mode(), torch.autocast("cpu", enabled=precision != "float32"):
        maps = conv_module._linear_to_channels_last_maps(*reordered.call_args.args)
    assert maps.is_contiguous(memory_format=torch.channels_last)


def test_the_reordered_code_layer_follows_changes_of_the_weights() -> None:
    model = ConvAutoencoder(ConvConfig(), generator=torch.Generator().manual_seed(0)).eval()
    z = torch.randn(8, 64, generator=torch.Generator().manual_seed(1))

    def both() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.inference_mode():
            got = model.decode_logits(z)
            with _without_channels_last_maps():
                return got, model.decode_logits(z)

    first, _ = both()
    with torch.no_grad():
        model.decoder[0].weight.mul_(0.5)  # in place, as an optimiser step
    got, expected = both()
    assert torch.equal(got, expected)
    assert not torch.equal(got, first)
    other = ConvAutoencoder(ConvConfig(), generator=torch.Generator().manual_seed(7))
    model.load_state_dict(other.state_dict())
    got, expected = both()
    assert torch.equal(got, expected)
    with torch.no_grad():  # a new tensor in place of the old one
        model.decoder[0].bias = nn.Parameter(torch.full((3136,), 0.25))
    got, expected = both()
    assert torch.equal(got, expected)
    model.decoder[0].weight.data.mul_(2.0)  # through .data, which autograd does not track
    got, expected = both()
    assert torch.equal(got, expected)


def test_the_fusing_layers_keep_a_sequential_state_dict() -> None:
    model = ConvAutoencoder(ConvConfig())
    assert isinstance(model.encoder, FusingSequential)
    keys = list(model.state_dict())
    assert keys[:2] == ["encoder.0.weight", "encoder.0.bias"]
    plain = nn.Sequential(*model.encoder)
    assert list(plain.state_dict()) == list(model.encoder.state_dict())
