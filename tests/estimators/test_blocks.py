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


@pytest.mark.parametrize("arch", ["conv", "dense", "transformer"])
def test_bfloat16_weights_give_what_autocast_gives_and_leave_the_model_alone(arch: str) -> None:
    from hourglass import Autoencoder
    from hourglass.estimators._blocks import in_bfloat16, with_bfloat16_weights

    rng = np.random.default_rng(0)
    if arch == "transformer":
        data = [f"sentence number {i} about {w}" for i, w in enumerate(["cats", "dogs"] * 32)]
    else:
        data = rng.random((64, 8, 8), dtype=np.float32)
    model = Autoencoder(arch=arch, latent_dim=4, epochs=1, random_state=0, verbose=0).fit(data)
    module = model.module_.eval()
    before = {name: p.detach().clone() for name, p in module.named_parameters()}

    fast = with_bfloat16_weights(module)
    cast = [p for p in fast.parameters() if p.dtype == torch.bfloat16]
    assert cast, "no weight was cast"
    assert all(p.dtype == torch.float32 for p in module.parameters())
    for name, p in module.named_parameters():
        assert torch.equal(p, before[name]), name

    values = model.family_.prepare_later(model, data[:64]).values
    block = torch.as_tensor(np.asarray(values))

    def codes(network: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return network.encode(x)

    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = module.encode(block).float()
    with torch.inference_mode():
        got = in_bfloat16(codes, module, enabled=True)(block)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
