"""Keeping other libraries' log lines quiet for the length of a call."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator

__all__ = ["quieted"]


@contextlib.contextmanager
def quieted(loggers: Iterable[logging.Logger], level: int) -> Iterator[None]:
    """Raise each of ``loggers`` to ``level`` inside the block, then restore its own level."""
    chosen = list(loggers)
    previous = [logger.level for logger in chosen]
    try:
        for logger in chosen:
            logger.setLevel(level)
        yield
    finally:
        for logger, old in zip(chosen, previous, strict=True):
            logger.setLevel(old)
