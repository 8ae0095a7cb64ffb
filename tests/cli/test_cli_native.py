"""``hourglass native build|status``."""

from __future__ import annotations

from pathlib import Path

import pytest

from hourglass.cli import main
from hourglass.nn import native
from native_build import compiled_step_dir  # noqa: F401  (a fixture)


def test_status_before_building_says_how_to_build(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(native.DIRECTORY_VARIABLE, str(tmp_path))
    assert main(["native", "status"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Not built")
    assert "hourglass native build" in out


@pytest.mark.usefixtures("compiled_step_dir")
def test_build_when_built_and_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["native", "build"]) == 0
    assert capsys.readouterr().out == f"Already built: {native.library_path()}\n"
    assert main(["native", "status"]) == 0
    assert capsys.readouterr().out.startswith("Built and in use: ")
    monkeypatch.setenv(native.ENABLE_VARIABLE, "0")
    assert main(["native", "status"]) == 0
    assert "not in use" in capsys.readouterr().out


def test_build_without_a_compiler_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(native.DIRECTORY_VARIABLE, str(tmp_path))
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    assert main(["native", "build"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hourglass native: error: Building the compiled training loop needs")
    assert err.count("\n") == 1
