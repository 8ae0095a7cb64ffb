"""Input corruptions for denoising autoencoders (pure torch).

A denoising autoencoder sees a corrupted input and is trained to reconstruct
the clean one. Three corruptions, each with one ``strength`` parameter:

``"gaussian"``
    Add Gaussian noise with standard deviation ``strength``.
``"salt_pepper"``
    Set a fraction ``strength`` of the values to the low or the high end of
    the range (each with probability 1/2).
``"mask"``
    Set a fraction ``strength`` of the values to zero (dropout-style masking).

The result is clipped to ``[low, high]`` when bounds are given (``[0, 1]`` for
data with a sigmoid output), so corrupted images stay valid images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["NOISE_KINDS", "Corruption", "corrupt"]

NOISE_KINDS: tuple[str, ...] = ("gaussian", "salt_pepper", "mask")


def corrupt(
    x: torch.Tensor,
    kind: str,
    strength: float,
    *,
    generator: torch.Generator | None = None,
    low: float | None = None,
    high: float | None = None,
) -> torch.Tensor:
    """Return a corrupted copy of ``x`` (``x`` itself is not modified).

    Parameters
    ----------
    x : torch.Tensor
        A batch, any shape.
    kind : {"gaussian", "salt_pepper", "mask"}
        The corruption (see the module docstring).
    strength : float
        Noise standard deviation (gaussian) or fraction of values hit.
    generator : torch.Generator, optional
        Source of randomness, for reproducible corruption.
    low, high : float, optional
        Range to clip to, and the values salt-and-pepper noise sets. Default
        to the batch's own minimum and maximum for salt-and-pepper, and to no
        clipping otherwise.
    """
    if kind == "gaussian":
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        noisy = x + strength * noise
    elif kind == "salt_pepper":
        draws = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        low_value = float(x.min()) if low is None else low
        high_value = float(x.max()) if high is None else high
        noisy = x.clone()
        noisy[draws < strength / 2] = low_value  # pepper
        noisy[(draws >= strength / 2) & (draws < strength)] = high_value  # salt
    elif kind == "mask":
        keep = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) >= strength
        noisy = x * keep
    else:
        raise ValueError(f"Unknown noise {kind!r}; expected one of {list(NOISE_KINDS)}.")
    if low is not None or high is not None:
        noisy = noisy.clamp(min=low, max=high)
    return noisy


@dataclass(frozen=True)
class Corruption:
    """One corruption of a denoising autoencoder's training inputs: :func:`corrupt`'s settings.

    Calling it corrupts a batch with ``generator`` (see :func:`corrupt`). The
    compiled training loop (:mod:`hourglass.nn.native`) reads the settings and draws
    from the same generator, with the same operations: a change to :func:`corrupt`
    must be made in ``csrc/fused_dense.cpp`` too (``tests/nn/test_native.py`` compares
    the two bit for bit).
    """

    kind: str
    strength: float
    generator: torch.Generator
    low: float
    high: float

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """A corrupted copy of the batch ``x``."""
        return corrupt(
            x,
            self.kind,
            self.strength,
            generator=self.generator,
            low=self.low,
            high=self.high,
        )
