"""The dense autoencoder module: architecture, initialisation, shapes and outputs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hourglass.nn import DenseAutoencoder, DenseConfig
from hourglass.nn.blocks import glorot_normal_, make_activation

TRUNCATED_NORMAL_STD = 0.87962566103423978  # std of a unit normal truncated to [-2, 2]


def _linears(sequential: nn.Sequential) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in sequential if isinstance(m, nn.Linear)]


def _seeded(config: DenseConfig, seed: int = 0) -> DenseAutoencoder:
    return DenseAutoencoder(config, generator=torch.Generator().manual_seed(seed))


def test_default_config_is_the_reference_model() -> None:
    model = _seeded(DenseConfig())

    encoder = list(model.encoder)
    assert [type(m) for m in encoder] == [nn.Flatten, nn.Linear, nn.ReLU]
    assert (encoder[1].in_features, encoder[1].out_features) == (784, 64)
    decoder = list(model.decoder)
    # No activation after the last layer: sigmoid is applied by reconstruct/output.
    assert [type(m) for m in decoder] == [nn.Linear]
    assert (decoder[0].in_features, decoder[0].out_features) == (64, 784)
    assert sum(p.numel() for p in model.parameters()) == 784 * 64 + 64 + 64 * 784 + 784


def test_shapes_and_sigmoid_output() -> None:
    model = _seeded(DenseConfig())
    x = torch.rand(5, 28, 28)

    codes = model.encode(x)
    logits = model(x)
    reconstruction = model.reconstruct(x)

    assert codes.shape == (5, 64)
    assert bool((codes >= 0).all())  # ReLU code
    assert logits.shape == x.shape
    assert model.decode_logits(codes).shape == x.shape
    torch.testing.assert_close(reconstruction, torch.sigmoid(logits), rtol=0, atol=0)
    torch.testing.assert_close(model.output(logits), torch.sigmoid(logits), rtol=0, atol=0)


@pytest.mark.parametrize("input_shape", [(10,), (1, 8, 8), (3, 4, 5)])
def test_output_is_reshaped_to_the_input_shape(input_shape: tuple[int, ...]) -> None:
    config = DenseConfig(input_shape=input_shape, latent_dim=3)
    model = _seeded(config)
    x = torch.rand(4, *input_shape)

    assert config.n_features == math.prod(input_shape)
    assert model.encode(x).shape == (4, 3)
    assert model(x).shape == (4, *input_shape)
    assert model.reconstruct(x).shape == (4, *input_shape)


def test_biases_start_at_zero() -> None:
    model = _seeded(DenseConfig(hidden_dims=(32,)))

    biases = [m.bias for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(biases) == 4
    for bias in biases:
        assert bool((bias == 0).all())


def test_weights_are_keras_glorot_normal() -> None:
    model = _seeded(DenseConfig())
    expected_std = math.sqrt(2.0 / (784 + 64))
    bound = 2.0 * expected_std / TRUNCATED_NORMAL_STD

    for layer in (model.encoder[1], model.decoder[0]):
        weight = layer.weight.detach()
        assert float(weight.mean()) == pytest.approx(0.0, abs=0.02 * expected_std)
        assert float(weight.std()) == pytest.approx(expected_std, rel=0.03)
        # Truncated at two (pre-rescaling) standard deviations, and the
        # truncation is actually reached (not a plain narrower normal).
        max_abs = float(weight.abs().max())
        assert max_abs <= bound + 1e-7
        assert max_abs > 0.98 * bound


def test_glorot_normal_uses_fan_in_plus_fan_out() -> None:
    weight = torch.empty(200, 300)
    glorot_normal_(weight, torch.Generator().manual_seed(1))

    assert float(weight.std()) == pytest.approx(math.sqrt(2.0 / 500), rel=0.03)


def test_same_seed_gives_identical_weights_and_different_seeds_do_not() -> None:
    config = DenseConfig(input_shape=(20,), latent_dim=4, hidden_dims=(8,))
    first = _seeded(config, seed=7).state_dict()
    second = _seeded(config, seed=7).state_dict()
    other = _seeded(config, seed=8).state_dict()

    for name, tensor in first.items():
        assert torch.equal(tensor, second[name])
    assert not torch.equal(first["encoder.1.weight"], other["encoder.1.weight"])


def test_building_a_seeded_module_leaves_the_global_rng_alone() -> None:
    before = torch.get_rng_state()

    _seeded(DenseConfig(hidden_dims=(16,)))

    assert torch.equal(before, torch.get_rng_state())


def test_hidden_dims_are_mirrored_by_the_decoder() -> None:
    model = _seeded(DenseConfig(hidden_dims=(256, 128)))

    assert _linears(model.encoder) == [(784, 256), (256, 128), (128, 64)]
    assert _linears(model.decoder) == [(64, 128), (128, 256), (256, 784)]
    # A hidden activation after every decoder layer except the last.
    assert [type(m) for m in model.decoder] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert [type(m) for m in model.encoder][-1] is nn.ReLU


def test_activation_is_used_throughout() -> None:
    model = _seeded(DenseConfig(hidden_dims=(32,), activation="tanh"))

    kinds = [type(m) for m in model.modules()]
    assert kinds.count(nn.Tanh) == 3  # after 784->32, after the 32->64 code, after 64->32
    assert nn.ReLU not in kinds


def test_linear_output_returns_logits_unchanged() -> None:
    model = _seeded(DenseConfig(input_shape=(6,), latent_dim=2, output_activation="linear"))
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(0))
    logits = torch.linspace(-50.0, 50.0, 12)

    assert model.output(logits) is logits
    torch.testing.assert_close(model.reconstruct(x), model(x), rtol=0, atol=0)


def test_unknown_activation_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"Unknown activation 'swish'.*'relu'"):
        make_activation("swish")
