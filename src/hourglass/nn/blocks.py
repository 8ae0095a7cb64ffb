"""Building blocks shared by the model families."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "OUTPUT_ACTIVATIONS", "glorot_normal_", "make_activation"]

ACTIVATIONS: tuple[str, ...] = ("relu", "leaky_relu", "elu", "gelu", "selu", "tanh", "sigmoid")
OUTPUT_ACTIVATIONS: tuple[str, ...] = ("sigmoid", "linear")
_IN_PLACE = frozenset({"relu", "leaky_relu", "elu", "selu"})  # take an ``inplace`` flag

# Keras' truncated-normal initialisers divide the standard deviation by this
# constant: the standard deviation of a unit normal truncated to [-2, 2].
_TRUNCATED_NORMAL_STD = 0.87962566103423978


def make_activation(name: str, *, inplace: bool = False) -> nn.Module:
    """Return a fresh activation module for ``name`` (one of :data:`ACTIVATIONS`).

    ``inplace=True`` makes the activations that can (ReLU, leaky ReLU, ELU, SELU)
    overwrite their input: one pass over memory instead of two. Only for inputs
    that nothing else reads afterwards, such as a convolution's or a Linear
    layer's output (their backward passes read their inputs, not their outputs).
    """
    factories: dict[str, type[nn.Module]] = {
        "relu": nn.ReLU,
        "leaky_relu": nn.LeakyReLU,
        "elu": nn.ELU,
        "gelu": nn.GELU,
        "selu": nn.SELU,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
    }
    if name not in factories:
        raise ValueError(f"Unknown activation {name!r}; expected one of {sorted(factories)}.")
    if inplace and name in _IN_PLACE:
        return factories[name](inplace=True)
    return factories[name]()


def glorot_normal_(weight: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill a Linear ``(out, in)`` or convolution ``(out, in, *kernel)`` weight as Keras does.

    A normal distribution with standard deviation ``sqrt(2 / (fan_in + fan_out))``,
    truncated at two standard deviations and rescaled so that the truncated
    distribution keeps that standard deviation. Values beyond two standard
    deviations are redrawn (about 4.6% of them per round).
    """
    receptive_field = math.prod(weight.shape[2:])  # 1 for a Linear weight
    fan_out, fan_in = weight.shape[0] * receptive_field, weight.shape[1] * receptive_field
    std = math.sqrt(2.0 / (fan_in + fan_out)) / _TRUNCATED_NORMAL_STD
    with torch.no_grad():
        values = torch.randn(weight.shape, generator=generator)
        outside = values.abs() > 2.0
        while bool(outside.any()):
            values[outside] = torch.randn(int(outside.sum()), generator=generator)
            outside = values.abs() > 2.0
        return weight.copy_(values.mul_(std))
