"""The compiled training step, built once for the whole test run (and reused by later runs).

Tests that need it take the ``compiled_step_dir`` fixture: a directory holding the build,
made the one :mod:`hourglass.nn.native` uses. Without a C++ compiler or ninja they are
skipped, except on CI, where that is an error.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from hourglass.exceptions import NativeBuildError
from hourglass.nn import native

#: Shared by every test run on this machine; the library's name changes with its source.
BUILD_DIR = Path(tempfile.gettempdir()) / "hourglass-tests-native"


@pytest.fixture
def compiled_step_dir(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(native.DIRECTORY_VARIABLE, str(BUILD_DIR))
    monkeypatch.delenv(native.ENABLE_VARIABLE, raising=False)
    try:
        native.build()
    except NativeBuildError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"the compiled step cannot be built here: {error}")
    assert native.module() is not None
    return BUILD_DIR
