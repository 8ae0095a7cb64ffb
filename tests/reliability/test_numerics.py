"""Numerical robustness: stable losses, float16/float64 inputs, divergence stops cleanly."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import bar_images
from hourglass import Autoencoder
from hourglass.cli import main
from hourglass.exceptions import TrainingError
from hourglass.nn import DenseAutoencoder, DenseConfig
from hourglass.nn.fused import reconstruction_loss_reference


@pytest.mark.parametrize("loss", ["bce", "mse", "mae"])
def test_losses_stay_finite_for_extreme_logits(loss: str) -> None:
    logits = torch.tensor([[-1e4, -80.0, 0.0, 80.0, 1e4]], requires_grad=True)
    target = torch.tensor([[0.0, 1.0, 0.5, 0.0, 1.0]])
    value, mae = reconstruction_loss_reference(logits, target, "sigmoid", loss)
    value.backward()  # type: ignore[no-untyped-call]
    assert torch.isfinite(value)
    assert torch.isfinite(mae)
    assert torch.isfinite(logits.grad).all()


def test_the_fused_training_step_is_finite_for_saturated_outputs() -> None:
    module = DenseAutoencoder(
        DenseConfig(input_shape=(16,), latent_dim=4), generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.mul_(1e3)  # logits in the thousands: sigmoid saturates at 0 and 1
    x = torch.rand(32, 16, generator=torch.Generator().manual_seed(1))
    loss, mae = module.loss_and_gradients(x, x, "bce")
    assert torch.isfinite(loss)
    assert torch.isfinite(mae)
    for parameter in module.parameters():
        assert parameter.grad is not None
        assert torch.isfinite(parameter.grad).all()


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_float16_and_float64_inputs_train_like_float32(dtype: type) -> None:
    X = bar_images(100, 0).astype(np.float32) / 255
    settings = {"latent_dim": 4, "epochs": 2, "verbose": 0, "random_state": 0}
    reference = Autoencoder(**settings).fit(X)
    model = Autoencoder(**settings).fit(X.astype(dtype))  # bar images are exact in float16
    np.testing.assert_array_equal(model.transform(X.astype(dtype)), reference.transform(X))
    errors = model.reconstruction_error(X.astype(dtype))
    assert errors.dtype == np.float64
    np.testing.assert_array_equal(errors, reference.reconstruction_error(X))


def test_float16_values_beyond_float16_precision_are_not_lost() -> None:
    X = np.random.default_rng(0).random((200, 8))
    model = Autoencoder(arch="dense", latent_dim=2, epochs=1, verbose=0, random_state=0).fit(X)
    half = model.reconstruction_error(X.astype(np.float16))
    full = model.reconstruction_error(X.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(half, full)  # float16 is read exactly, then computed in float32


def _diverging_data() -> np.ndarray:
    return np.random.default_rng(0).normal(0, 1e18, (200, 6)).astype(np.float32)


def test_a_diverging_fit_stops_with_an_error_naming_the_causes() -> None:
    model = Autoencoder(
        arch="dense", latent_dim=2, epochs=3, learning_rate=1e6, verbose=0, random_state=0
    )
    with pytest.raises(TrainingError, match=r"learning rate.*scale") as error:
        model.fit(_diverging_data())
    assert "became" in str(error.value)
    assert not hasattr(model, "module_")  # no half-trained model is kept


def test_hourglass_train_saves_no_model_when_training_diverges(tmp_path: Path) -> None:
    np.save(tmp_path / "data.npy", _diverging_data())
    model_dir = tmp_path / "model"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        argv = ["train", str(tmp_path / "data.npy"), "-o", str(model_dir), "--epochs", "3"]
        argv += ["--arch", "dense"]
        code = main([*argv, "--learning-rate", "1e6", "-q"])
    assert code == 1
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1
    assert "learning rate" in lines[0]
    assert "Traceback" not in err.getvalue()
    assert not model_dir.exists()
