"""``hourglass serve``: one-line errors, the install hint, several workers."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from hourglass import AutoencoderOutlierDetector
from hourglass.cli import main
from serving import running_server


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve-cli") / "model"
    X = np.random.default_rng(0).normal(size=(200, 4))
    AutoencoderOutlierDetector(latent_dim=2, epochs=2, fpr=0.05, verbose=0, random_state=0).fit(
        X
    ).save(path)
    return path


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("hourglass serve: error: ")
    return err


def test_missing_dependencies_give_the_install_hint(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "fastapi" else find_spec(name, *args),
    )
    assert main(["serve", str(model_dir)]) == 1
    assert 'needs fastapi, which is not installed: pip install "hourglass-ae[serve]"' in (
        _one_error_line(capsys)
    )


def test_a_missing_model_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(tmp_path / "nothing")]) == 1
    assert "Cannot load the model" in _one_error_line(capsys)


def test_a_taken_port_is_one_line(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(model_dir), "--port", str(port)]) == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in _one_error_line(capsys)


def test_a_server_that_stops_leaves_the_thread_setting_as_it_was(model_dir: Path) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            assert main(["serve", str(model_dir), "--port", str(taken.getsockname()[1])]) == 1
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize(
    "option",
    [["--port", "-1"], ["--workers", "0"], ["--read-timeout", "nan"], ["--max-batch", "x"]],
)
def test_bad_options_are_usage_errors(
    model_dir: Path, option: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", str(model_dir), *option]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_several_workers_serve_the_same_scores(model_dir: Path, tmp_path: Path) -> None:
    detector = AutoencoderOutlierDetector.load(model_dir)
    X = np.random.default_rng(1).normal(size=(10, 4))
    with running_server(model_dir, tmp_path / "log", "--workers", "2") as server:
        for _ in range(4):  # connections land on either worker
            with httpx.Client(base_url=server.url) as client:
                response = client.post("/score", json={"rows": X.tolist()})
            assert response.status_code == 200
            scores = [r["score"] for r in response.json()["results"]]
            np.testing.assert_array_equal(scores, detector.score_samples(X))
        assert httpx.get(server.url + "/metadata").json()["limits"]["workers"] == 2


def test_help_describes_the_service(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--workers", "--max-batch", "--max-body-bytes"):
        assert option in out
    assert "POST /score" in out
