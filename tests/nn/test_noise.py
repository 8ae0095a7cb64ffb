"""Input corruptions for denoising training."""

from __future__ import annotations

import pytest
import torch

from hourglass.nn.noise import corrupt


def _batch() -> torch.Tensor:
    return torch.rand(200, 50, generator=torch.Generator().manual_seed(0))


def test_gaussian_noise_has_the_requested_standard_deviation() -> None:
    x = _batch()
    noisy = corrupt(x, "gaussian", 0.3, generator=torch.Generator().manual_seed(1))
    assert (noisy - x).std().item() == pytest.approx(0.3, rel=0.03)


def test_salt_and_pepper_hits_the_requested_fraction_with_the_range_ends() -> None:
    x = _batch()
    noisy = corrupt(
        x, "salt_pepper", 0.2, generator=torch.Generator().manual_seed(1), low=0.0, high=1.0
    )
    changed = noisy != x
    assert changed.float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert set(noisy[changed].unique().tolist()) == {0.0, 1.0}
    assert (noisy[changed] == 0.0).float().mean().item() == pytest.approx(0.5, abs=0.03)


def test_mask_zeroes_the_requested_fraction() -> None:
    x = _batch() + 1.0  # no zeros to begin with
    noisy = corrupt(x, "mask", 0.4, generator=torch.Generator().manual_seed(1))
    assert (noisy == 0).float().mean().item() == pytest.approx(0.4, abs=0.01)
    kept = noisy != 0
    assert torch.equal(noisy[kept], x[kept])


def test_corruption_is_clipped_reproducible_and_leaves_the_input_alone() -> None:
    x = _batch()
    before = x.clone()
    first = corrupt(
        x, "gaussian", 0.5, generator=torch.Generator().manual_seed(7), low=0.0, high=1.0
    )
    second = corrupt(
        x, "gaussian", 0.5, generator=torch.Generator().manual_seed(7), low=0.0, high=1.0
    )
    assert torch.equal(first, second)
    assert first.min().item() >= 0.0
    assert first.max().item() <= 1.0
    assert torch.equal(x, before)


def test_unknown_noise_is_rejected() -> None:
    with pytest.raises(ValueError, match="Unknown noise 'speckle'"):
        corrupt(_batch(), "speckle", 0.1)
