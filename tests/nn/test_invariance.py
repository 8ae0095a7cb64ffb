"""Random deformations, the contrastive term and the invariant autoencoder module."""

from __future__ import annotations

import math

import pytest
import torch

from hourglass.nn import DenseAutoencoder, DenseConfig
from hourglass.nn.invariance import (
    AffineJitter,
    InvariantAutoencoder,
    contrastive_loss,
    random_affine,
)


def _square_images(n: int = 8) -> torch.Tensor:
    images = torch.zeros(n, 1, 16, 16)
    images[:, :, 6:10, 6:10] = 1.0
    return images


def test_no_jitter_leaves_images_unchanged() -> None:
    images = _square_images()
    still = random_affine(images, AffineJitter(0.0, 0.0, 0.0))
    torch.testing.assert_close(still, images, atol=1e-5, rtol=0)


def test_a_shift_moves_the_centre_of_mass_within_the_range() -> None:
    images = _square_images(200)
    generator = torch.Generator().manual_seed(0)
    moved = random_affine(images, AffineJitter(0.2, 0.0, 0.0), generator=generator)
    columns = torch.arange(16, dtype=torch.float32)
    centre = (moved.sum(dim=2).squeeze(1) * columns).sum(1) / moved.sum(dim=(1, 2, 3))
    offset = centre - 7.5
    assert offset.abs().max() <= 0.2 * 16 + 0.5
    assert offset.std() > 1.0  # really moved, in both directions
    assert (offset > 0).any()
    assert (offset < 0).any()


def test_deformations_are_reproducible_with_a_seeded_generator() -> None:
    images = _square_images()
    first = random_affine(images, generator=torch.Generator().manual_seed(3))
    second = random_affine(images, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, second)


def test_contrastive_loss_is_small_for_matching_pairs_and_large_for_swapped_ones() -> None:
    codes = torch.nn.functional.normalize(
        torch.randn(32, 8, generator=torch.Generator().manual_seed(0)), dim=1
    )
    matching = contrastive_loss(codes, codes, temperature=0.1)
    shuffled = contrastive_loss(codes, codes.roll(1, dims=0), temperature=0.1)
    assert matching < 1.0 < shuffled


def test_contrastive_loss_of_identical_codes_is_log_of_the_candidates() -> None:
    codes = torch.nn.functional.normalize(torch.ones(5, 3), dim=1)
    loss = contrastive_loss(codes, codes, temperature=0.5)
    assert loss.item() == pytest.approx(math.log(9), rel=1e-5)  # 2n - 1 equal candidates


def _module(weight: float = 1.0) -> InvariantAutoencoder:
    generator = torch.Generator().manual_seed(0)
    body = DenseAutoencoder(
        DenseConfig(input_shape=(16, 16), latent_dim=6, hidden_dims=(32,)), generator=generator
    )
    return InvariantAutoencoder(body, (1, 16, 16), weight=weight)


def test_codes_are_unit_vectors() -> None:
    codes = _module().encode(torch.rand(10, 16, 16))
    torch.testing.assert_close(codes.norm(dim=1), torch.ones(10))


def test_training_loss_adds_the_weighted_contrastive_term() -> None:
    x = _square_images(16).reshape(16, 16, 16)
    parts = {}
    for weight in (0.0, 2.0):
        module = _module(weight)
        module.augmentation_generator = torch.Generator().manual_seed(1)
        parts[weight] = module.training_loss(x, x, "bce")
    assert parts[0.0]["contrastive"] == parts[2.0]["contrastive"]
    torch.testing.assert_close(
        parts[2.0]["loss"], parts[0.0]["loss"] + 2.0 * parts[2.0]["contrastive"]
    )
    assert parts[2.0]["loss"].requires_grad
