"""The compiled training step (hourglass.nn.native) computes the Python step's bits."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils import cpp_extension

from helpers import FUSED_CASES
from hourglass import Autoencoder
from hourglass.exceptions import NativeBuildError
from hourglass.nn import DenseAutoencoder, DenseConfig, native
from native_build import compiled_step_dir  # noqa: F401  (a fixture)


def _step(
    monkeypatch: pytest.MonkeyPatch,
    compiled: bool,
    activation: str,
    output: str,
    loss: str,
    shape: tuple[int, int],
) -> list[torch.Tensor]:
    """Loss, MAE and every gradient of one step, with or without the compiled step."""
    monkeypatch.setenv(native.ENABLE_VARIABLE, "1" if compiled else "0")
    assert (native.module() is not None) == compiled
    config = DenseConfig(
        input_shape=(shape[1],),
        latent_dim=3,
        hidden_dims=(9,),
        activation=activation,
        output_activation=output,
    )
    model = DenseAutoencoder(config, generator=torch.Generator().manual_seed(1))
    x = torch.rand(shape, generator=torch.Generator().manual_seed(2))
    if output == "linear":
        x = x * 4 - 2
    value, mae = model.loss_and_gradients(x, x, loss)
    return [value, mae, *(p.grad for p in model.parameters())]


@pytest.mark.parametrize(("activation", "output", "loss"), FUSED_CASES)
@pytest.mark.parametrize("shape", [(6, 20), (8, 16)], ids=["with-tail", "no-tail"])
@pytest.mark.usefixtures("compiled_step_dir")
def test_compiled_step_gives_the_python_steps_bits(
    monkeypatch: pytest.MonkeyPatch,
    activation: str,
    output: str,
    loss: str,
    shape: tuple[int, int],
) -> None:
    python = _step(monkeypatch, False, activation, output, loss, shape)
    compiled = _step(monkeypatch, True, activation, output, loss, shape)
    assert len(compiled) == len(python) == 10  # loss, mae, 4 layers' weights and biases
    for got, want in zip(compiled, python, strict=True):
        assert torch.equal(got, want)


def _fit(monkeypatch: pytest.MonkeyPatch, compiled: bool) -> dict[str, torch.Tensor]:
    monkeypatch.setenv(native.ENABLE_VARIABLE, "1" if compiled else "0")
    X = np.random.default_rng(0).random((300, 20), dtype=np.float32)
    model = Autoencoder(
        arch="dense", latent_dim=4, epochs=2, batch_size=32, random_state=0, num_threads=1
    )
    model.fit(X)
    return model.module_.state_dict()


@pytest.mark.usefixtures("compiled_step_dir")
def test_fit_trains_the_same_weights_through_the_compiled_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = native.module()
    calls = []

    class Counting:
        def loss_and_gradients(self, *args: object) -> object:
            calls.append(1)
            return built.loss_and_gradients(*args)  # type: ignore[union-attr]

    monkeypatch.setattr(native, "module", Counting)
    compiled = _fit(monkeypatch, True)
    assert len(calls) == 2 * 10  # 2 epochs of 10 batches of up to 32 rows
    monkeypatch.undo()
    python = _fit(monkeypatch, False)
    assert compiled.keys() == python.keys()
    for name in python:
        assert torch.equal(compiled[name], python[name]), name


@pytest.mark.usefixtures("compiled_step_dir")
def test_the_environment_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert native.module() is not None
    monkeypatch.setenv(native.ENABLE_VARIABLE, "0")
    assert native.module() is None


def test_nothing_is_used_before_it_is_built(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(native.DIRECTORY_VARIABLE, str(tmp_path))
    monkeypatch.delenv(native.ENABLE_VARIABLE, raising=False)
    assert native.module() is None
    assert not native.library_path().exists()
    assert native.library_path().parent.parent == tmp_path


def test_building_without_a_compiler_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(native.DIRECTORY_VARIABLE, str(tmp_path))
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    with pytest.raises(NativeBuildError, match=r"C\+\+ compiler.*g\+\+ or clang\+\+"):
        native.build()
    assert not any(tmp_path.iterdir())


@pytest.mark.usefixtures("compiled_step_dir")
def test_a_library_that_cannot_be_loaded_is_built_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    good = native.library_path()
    monkeypatch.setenv(native.DIRECTORY_VARIABLE, str(tmp_path))
    broken = native.library_path()
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a shared library")  # an interrupted build, say
    assert native.module() is None
    loads = []

    def load(**kwargs: object) -> None:  # torch's build, standing in: the good library
        loads.append(kwargs["build_directory"])
        shutil.copyfile(good, broken)

    monkeypatch.setattr(cpp_extension, "load", load)
    assert native.build() == broken
    assert loads == [str(broken.parent)]
    assert native.module() is not None
