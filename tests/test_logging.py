"""hourglass._logging.quieted: other libraries' log levels raised for a block, then restored."""

from __future__ import annotations

import logging

import pytest

from hourglass._logging import quieted


def test_levels_are_raised_inside_and_restored_after_even_on_error() -> None:
    first, second = logging.getLogger("hourglass-test.a"), logging.getLogger("hourglass-test.b")
    first.setLevel(logging.INFO)
    second.setLevel(logging.NOTSET)
    inside: list[tuple[int, int]] = []

    def fail_inside() -> None:
        with quieted([first, second], logging.ERROR):
            inside.append((first.level, second.level))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail_inside()
    assert inside == [(logging.ERROR, logging.ERROR)]
    assert (first.level, second.level) == (logging.INFO, logging.NOTSET)
