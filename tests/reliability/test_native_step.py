"""On every kernel set, the compiled training step and loop train the Python loop's weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hourglass import Autoencoder
from hourglass.nn import native
from native_build import compiled_step_dir  # noqa: F401  (a fixture)


def _weights(
    monkeypatch: pytest.MonkeyPatch, compiled: bool, uint8: bool = False, **params: object
) -> dict[str, torch.Tensor]:
    monkeypatch.setenv(native.ENABLE_VARIABLE, "1" if compiled else "0")
    assert (native.module() is not None) == compiled
    X = np.random.default_rng(3).random((200, 6, 6), dtype=np.float32)
    if uint8:
        X = (X * 255).astype(np.uint8)
    model = Autoencoder(
        arch="dense", latent_dim=3, epochs=3, batch_size=16, random_state=4, **params
    )
    return dict(model.fit(X).module_.state_dict())


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"activation": "tanh", "loss": "mse", "num_threads": 2},
        {"uint8": True, "shuffle": False},
        {"noise": "gaussian"},  # the Python loop with the compiled step
    ],
    ids=["defaults", "tanh-mse-two-threads", "uint8-in-order", "denoising"],
)
@pytest.mark.usefixtures("compiled_step_dir")
def test_compiled_and_python_steps_train_identical_weights(
    monkeypatch: pytest.MonkeyPatch, params: dict[str, object]
) -> None:
    compiled = _weights(monkeypatch, True, **params)
    python = _weights(monkeypatch, False, **params)
    for name, value in python.items():
        assert torch.equal(compiled[name], value), name
