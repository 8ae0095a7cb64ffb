"""map_blocks: fixed-size blocks, rows back in order, the caller's thread count kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hourglass.estimators._blocks import BLOCK_ROW_MULTIPLE, map_blocks

CPU = torch.device("cpu")


def test_every_call_sees_a_full_block_and_rows_come_back_in_order() -> None:
    values = np.arange(150, dtype=np.float32).reshape(150, 1)
    shapes = []

    def double(x: torch.Tensor) -> torch.Tensor:
        shapes.append(tuple(x.shape))
        return x * 2

    out = map_blocks(values, double, block_rows=64, device=CPU, workers=2)
    assert set(shapes) == {(64, 1)}
    assert len(shapes) == 3  # 64 + 64 + 22 rows, the last block padded
    np.testing.assert_array_equal(out.numpy(), values * 2)


def test_groups_are_trimmed_and_their_rows_restored_to_the_input_order() -> None:
    values = np.array([[1, 1, 0], [2, 0, 0], [3, 3, 3], [4, 0, 0]], dtype=np.float32)
    short = np.array([1, 3])
    groups = [(short, lambda rows: rows[:, :1]), (np.array([0, 2]), lambda rows: rows)]
    widths = []

    def row_sums(x: torch.Tensor) -> torch.Tensor:
        widths.append(x.shape[1])
        return x.sum(dim=1)

    out = map_blocks(values, row_sums, block_rows=64, device=CPU, groups=groups)
    assert sorted(widths) == [1, 3]
    np.testing.assert_array_equal(out.numpy(), [2.0, 2.0, 9.0, 4.0])


def test_the_callers_thread_count_is_kept() -> None:
    before = torch.get_num_threads()
    map_blocks(
        np.zeros((200, 2), dtype=np.float32), lambda x: x, block_rows=64, device=CPU, workers=2
    )
    assert torch.get_num_threads() == before


def test_block_sizes_must_be_multiples_of_the_vector_span() -> None:
    with pytest.raises(ValueError, match=f"multiple of {BLOCK_ROW_MULTIPLE}"):
        map_blocks(np.zeros((3, 2)), lambda x: x, block_rows=100, device=CPU)
    assert map_blocks(np.zeros((0, 2)), lambda x: x, block_rows=64, device=CPU).numel() == 0
