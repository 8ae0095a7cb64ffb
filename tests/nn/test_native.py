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
from hourglass._subnormals import flushing_subnormals
from hourglass.estimators._input import to_unit_float
from hourglass.exceptions import NativeBuildError
from hourglass.nn import ConvAutoencoder, ConvConfig, DenseAutoencoder, DenseConfig, native
from hourglass.nn.noise import NOISE_KINDS, Corruption
from hourglass.training import FusedAdamW
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


def _trained_by_steps(
    model: DenseAutoencoder,
    inputs: torch.Tensor,
    order: torch.Tensor | None,
    batch_size: int,
    loss: str,
    corruption: Corruption | None = None,
) -> tuple[FusedAdamW, list[torch.Tensor]]:
    """The training loop's steps over every batch of ``inputs``, in Python."""
    optimizer = FusedAdamW(list(model.parameters()), lr=0.01, weight_decay=0.1)
    values = []
    for start in range(0, inputs.shape[0], batch_size):
        rows = slice(start, start + batch_size)
        batch = inputs[rows] if order is None else inputs.index_select(0, order[rows])
        x = to_unit_float(batch)
        seen = x if corruption is None else corruption(x)
        values += model.loss_and_gradients(seen, x, loss)
        with flushing_subnormals():
            optimizer.step()
    return optimizer, values


@pytest.mark.parametrize(("activation", "output", "loss"), FUSED_CASES)
@pytest.mark.parametrize("uint8", [True, False], ids=["uint8", "float32"])
@pytest.mark.usefixtures("compiled_step_dir")
def test_compiled_batches_give_the_training_loops_bits(
    monkeypatch: pytest.MonkeyPatch, activation: str, output: str, loss: str, uint8: bool
) -> None:
    generator = torch.Generator().manual_seed(3)
    inputs = torch.randint(0, 256, (8 * 5 + 3, 4, 5), dtype=torch.uint8, generator=generator)
    if not uint8:
        inputs = inputs.float() / 64 - 2 if output == "linear" else inputs.float() / 255
    order = torch.randperm(inputs.shape[0], generator=generator) if uint8 else None
    config = DenseConfig(
        input_shape=(4, 5), latent_dim=3, hidden_dims=(7,), activation=activation,
        output_activation=output,
    )  # fmt: skip
    monkeypatch.setenv(native.ENABLE_VARIABLE, "0")  # the Python step
    by_steps = DenseAutoencoder(config, generator=torch.Generator().manual_seed(1))
    stepped, values = _trained_by_steps(by_steps, inputs, order, 8, loss)
    monkeypatch.delenv(native.ENABLE_VARIABLE)
    compiled = DenseAutoencoder(config, generator=torch.Generator().manual_seed(1))
    train_batches = compiled.compiled_batches(loss, scale=255.0)
    assert train_batches is not None
    optimizer = FusedAdamW(list(compiled.parameters()), lr=0.01, weight_decay=0.1)
    got = [
        train_batches(inputs, order, 8, first, count, optimizer)
        for first, count in ((0, 2), (2, 3), (5, 1))  # the last batch has 3 rows
    ]
    assert torch.equal(torch.cat([g["loss"] for g in got]), torch.stack(values[0::2]))
    assert torch.equal(torch.cat([g["mae"] for g in got]), torch.stack(values[1::2]))
    state, expected = optimizer.state_tensors(), stepped.state_tensors()
    assert all(torch.equal(state[name], expected[name]) for name in expected)
    for got_parameter, want in zip(compiled.parameters(), by_steps.parameters(), strict=True):
        assert torch.equal(got_parameter, want)


@pytest.mark.parametrize("kind", NOISE_KINDS)
@pytest.mark.parametrize(
    ("output", "loss"), [("sigmoid", "bce"), ("linear", "mse")], ids=["images", "values"]
)
@pytest.mark.usefixtures("compiled_step_dir")
def test_compiled_batches_corrupt_as_the_training_loop_does(
    monkeypatch: pytest.MonkeyPatch, kind: str, output: str, loss: str
) -> None:
    generator = torch.Generator().manual_seed(3)
    inputs = torch.randint(0, 256, (8 * 5 + 3, 4, 5), dtype=torch.uint8, generator=generator)
    low, high = (0.0, 1.0) if output == "sigmoid" else (0.1, 0.9)
    order = torch.randperm(inputs.shape[0], generator=generator)
    config = DenseConfig(input_shape=(4, 5), latent_dim=3, output_activation=output)

    def corruption() -> Corruption:
        return Corruption(kind, 0.3, torch.Generator().manual_seed(7), low, high)

    monkeypatch.setenv(native.ENABLE_VARIABLE, "0")
    by_steps = DenseAutoencoder(config, generator=torch.Generator().manual_seed(1))
    stepped, values = _trained_by_steps(by_steps, inputs, order, 8, loss, corruption())
    monkeypatch.delenv(native.ENABLE_VARIABLE)
    compiled = DenseAutoencoder(config, generator=torch.Generator().manual_seed(1))
    train_batches = compiled.compiled_batches(loss, scale=255.0, corruption=corruption())
    assert train_batches is not None
    optimizer = FusedAdamW(list(compiled.parameters()), lr=0.01, weight_decay=0.1)
    got = torch.cat([train_batches(inputs, order, 8, 0, 6, optimizer)["loss"]])
    assert torch.equal(got, torch.stack(values[0::2]))
    for got_parameter, want in zip(compiled.parameters(), by_steps.parameters(), strict=True):
        assert torch.equal(got_parameter, want)
    state, expected = optimizer.state_tensors(), stepped.state_tensors()
    assert all(torch.equal(state[name], expected[name]) for name in expected)


def _fit(
    monkeypatch: pytest.MonkeyPatch, compiled: bool, X: np.ndarray, **params: object
) -> Autoencoder:
    monkeypatch.setenv(native.ENABLE_VARIABLE, "1" if compiled else "0")
    settings: dict[str, object] = {"latent_dim": 4, "epochs": 2, "batch_size": 32}
    model = Autoencoder(arch="dense", random_state=0, **{**settings, **params})
    return model.fit(X, validation_data=X[:50])


_IMAGES = np.random.default_rng(0).integers(0, 256, (300, 6, 5), dtype=np.uint8)
_TABLE = np.random.default_rng(0).normal(size=(300, 20)).astype(np.float32)


@pytest.mark.parametrize(
    ("X", "params"),
    [
        (_IMAGES, {"num_threads": None}),  # uint8, thread counts chosen while it trains
        (_TABLE, {"num_threads": 1, "shuffle": False}),  # float32, a linear output
        (_IMAGES, {"num_threads": 1, "early_stopping": True, "patience": 1, "epochs": 4}),
        (_IMAGES, {"noise": "salt_pepper", "noise_strength": 0.2}),  # denoising
        (_TABLE, {"noise": "gaussian", "noise_strength": 0.5, "num_threads": 1}),
    ],
    ids=["images", "table", "early-stopping", "denoising-images", "denoising-table"],
)
@pytest.mark.usefixtures("compiled_step_dir")
def test_fit_trains_the_same_weights_through_the_compiled_loop(
    monkeypatch: pytest.MonkeyPatch, X: np.ndarray, params: dict[str, object]
) -> None:
    built = native.module()
    calls = []

    class Counting:
        def train_batches(self, *args: object) -> object:
            calls.append(args[4])  # the number of batches
            return built.train_batches(*args)  # type: ignore[union-attr]

        def loss_and_gradients(self, *args: object) -> object:  # the thread count's check
            return built.loss_and_gradients(*args)  # type: ignore[union-attr]

    monkeypatch.setattr(native, "module", Counting)
    compiled = _fit(monkeypatch, True, X, **params)
    assert sum(calls) == compiled.n_epochs_ * 10  # 10 batches of up to 32 rows an epoch
    monkeypatch.undo()
    python = _fit(monkeypatch, False, X, **params)
    assert compiled.history_ == {**python.history_, "epoch_time": compiled.history_["epoch_time"]}
    want = python.module_.state_dict()
    got = compiled.module_.state_dict()
    assert got.keys() == want.keys()
    for name in want:
        assert torch.equal(got[name], want[name]), name


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


@pytest.mark.usefixtures("compiled_step_dir")
def test_only_fused_dense_models_offer_the_compiled_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    def model(activation: str) -> DenseAutoencoder:
        config = DenseConfig(input_shape=(6,), latent_dim=2, activation=activation)
        return DenseAutoencoder(config, generator=torch.Generator().manual_seed(0))

    assert model("relu").compiled_batches("bce", scale=255.0) is not None
    assert model("gelu").compiled_batches("bce", scale=255.0) is None  # no fused step
    conv = ConvAutoencoder(ConvConfig(input_shape=(8, 8), channels=(4,), latent_dim=2))
    assert conv.compiled_batches("bce", scale=255.0) is None
    monkeypatch.setenv(native.ENABLE_VARIABLE, "0")
    assert model("relu").compiled_batches("bce", scale=255.0) is None
