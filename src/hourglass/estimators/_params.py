"""Resolving estimator settings: seeds, devices and counts."""

from __future__ import annotations

import logging
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from hourglass.exceptions import InvalidInputError, InvalidParameterError
from hourglass.families import ARCHITECTURES
from hourglass.nn.blocks import ACTIVATIONS
from hourglass.nn.noise import NOISE_KINDS
from hourglass.nn.text_features import TEXT_NOISE_KINDS
from hourglass.scoring import ERROR_METRICS
from hourglass.training import bfloat16_is_native

__all__ = ["PARAMETER_CONSTRAINTS", "check_count", "resolve_device", "seed_from", "uses_bfloat16"]

_LOGGER = logging.getLogger("hourglass")

#: scikit-learn parameter validation of every autoencoder estimator.
PARAMETER_CONSTRAINTS: dict[str, list[Any]] = {
    "arch": [StrOptions({"auto", *ARCHITECTURES})],
    "latent_dim": [Interval(Integral, 1, None, closed="left")],
    "hidden_dims": ["array-like"],
    "activation": [StrOptions(set(ACTIVATIONS))],
    "output_activation": [StrOptions({"auto", "sigmoid", "linear"})],
    "loss": [StrOptions({"auto", *ERROR_METRICS})],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "epochs": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "shuffle": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="left"), None],
    "early_stopping": ["boolean"],
    "patience": [Interval(Integral, 1, None, closed="left")],
    "device": [str],
    "num_threads": [Interval(Integral, 1, None, closed="left"), None],
    "mixed_precision": ["boolean"],
    "beta": [Interval(Real, 0, None, closed="left")],
    "categorical_columns": ["array-like", None],
    "noise": [StrOptions(set(NOISE_KINDS) | set(TEXT_NOISE_KINDS)), None],
    "noise_strength": [Interval(Real, 0, None, closed="neither")],
    "invariance": [Interval(Real, 0, None, closed="left")],
    "trim": [Interval(Real, 0, 0.5, closed="left"), StrOptions({"auto"})],
    "verbose": ["verbose"],
    "random_state": ["random_state", np.random.Generator],  # as documented
}


def seed_from(random_state: Any) -> int:
    """A 63-bit seed derived from ``random_state`` without touching global RNGs."""
    if random_state is None:
        # Fresh OS entropy: the global NumPy and torch generators are left alone.
        return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> 1)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        return int(random_state)
    raise InvalidParameterError(
        "random_state must be None, an int, a numpy RandomState or a numpy Generator; got "
        f"{random_state!r}."
    )


def check_count(name: str, value: Any) -> int:
    """``value`` as an int >= 0, or an InvalidParameterError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise InvalidParameterError(f"{name} must be an int >= 0; got {value!r}.")
    return int(value)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as torch understands it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise InvalidInputError(
            f"Unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        ) from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(
            f"device={device!r} was requested but CUDA is not available on this machine; "
            "use device='auto' or device='cpu'."
        )
    return resolved


def uses_bfloat16(mixed_precision: bool, device: torch.device) -> bool:
    """Whether to compute in bfloat16: ``mixed_precision`` asked for it, and ``device`` has it.

    Where the device only emulates bfloat16 (slower than float32), float32 is used and
    a message logged.
    """
    if not mixed_precision:
        return False
    if bfloat16_is_native(device):
        return True
    _LOGGER.info(
        "mixed_precision=True: %s does not compute in bfloat16 natively; using float32.", device
    )
    return False
