"""Every file the CLI writes is written atomically: a crash leaves the old file or the new one.

The crash is simulated at the last moment: the rename that would put the new
file in place fails. A verb that wrote its output directly, not through a
temporary file, would already have overwritten the old content, so each test
checks that the old content survives and that no temporary file is left.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hourglass._atomic
from helpers import bar_images
from hourglass.cli import main

OLD = b"the previous output\n"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("atomic")
    np.save(folder / "train.npy", bar_images(150, 0))
    np.save(folder / "data.npy", bar_images(30, 1))
    argv = ["train", str(folder / "train.npy"), "-o", str(folder / "model")]
    assert main([*argv, "--latent-dim", "4", "--epochs", "2", "--fpr", "0.05", "-q"]) == 0
    return folder


def _verb_argv(verb: str, folder: Path, output: Path) -> list[str]:
    model, data = str(folder / "model"), str(folder / "data.npy")
    return {
        "score": ["score", model, data, "-o", str(output)],
        "encode": ["encode", model, data, "-o", str(output)],
        "cluster": ["cluster", model, data, "-k", "2", "-o", str(output)],
        "neighbors": ["neighbors", model, data, "--reference", data, "-o", str(output)],
        "map": ["map", model, data, "-o", str(output)],
        "report": ["report", model, data, "-o", str(output)],
        "denoise": ["denoise", model, data, "-o", str(output)],
    }[verb]


OUTPUTS = {
    "score": "scores.csv",
    "encode": "codes.npy",
    "cluster": "clusters.csv",
    "neighbors": "neighbors.csv",
    "map": "map.png",
    "report": "report.html",
    "denoise": "clean.npy",
}


def _crash_on_rename(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(hourglass._atomic.os, "replace", fail)


def _run(argv: list[str]) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(argv)


@pytest.mark.parametrize("verb", OUTPUTS)
def test_a_crash_while_writing_leaves_the_old_file(
    verb: str, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / OUTPUTS[verb]
    output.write_bytes(OLD)
    _crash_on_rename(monkeypatch)
    assert _run(_verb_argv(verb, workspace, output)) != 0
    assert output.read_bytes() == OLD
    assert [p.name for p in tmp_path.iterdir()] == [output.name]  # no temporary file left


@pytest.mark.parametrize("verb", OUTPUTS)
def test_without_a_crash_the_new_file_replaces_the_old(
    verb: str, workspace: Path, tmp_path: Path
) -> None:
    output = tmp_path / OUTPUTS[verb]
    output.write_bytes(OLD)
    assert _run(_verb_argv(verb, workspace, output)) == 0
    assert output.read_bytes() != OLD
    assert [p.name for p in tmp_path.iterdir()] == [output.name]


def test_a_crash_while_saving_a_model_leaves_the_old_model(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_bytes(OLD)
    _crash_on_rename(monkeypatch)
    argv = ["train", str(workspace / "train.npy"), "-o", str(model), "--epochs", "1", "-q"]
    assert _run(argv) != 0
    assert sorted(p.name for p in model.iterdir()) == ["config.json"]
    assert (model / "config.json").read_bytes() == OLD
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
