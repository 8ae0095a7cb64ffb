"""The built wheel, installed in a fresh environment, works: `hourglass --version` and a fit.

The wheel is built from this checkout without network access (``python -m build --wheel
--no-isolation``) and installed with ``--no-index --no-deps`` into a new virtual
environment. That environment sees this one's installed dependencies (torch, NumPy, ...)
through a ``.pth`` file, so nothing is downloaded; this checkout's editable install is not
visible there, so ``hourglass`` can only be imported from the wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

import hourglass

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTION = "hourglass-ae"

# Runs in the fresh environment: where hourglass comes from, its template, and one fit.
FIT = """
import importlib.metadata, importlib.resources
import numpy as np
import hourglass
from hourglass import Autoencoder

print(hourglass.__file__)
print(importlib.metadata.version("hourglass-ae"))
print(importlib.resources.files("hourglass.report") / "templates" / "report.html.j2")
print(importlib.resources.files("hourglass.nn") / "csrc" / "fused_dense.cpp")
X = np.random.default_rng(0).random((64, 8)).astype(np.float32)
model = Autoencoder(latent_dim=2, epochs=1, verbose=0, random_state=0).fit(X)
print(model.transform(X).shape)
"""


def _program(env: Path, name: str) -> Path:
    return env / ("Scripts" if os.name == "nt" else "bin") / name


def _run(*command: str | Path) -> str:
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=300,
        env={**environment, "PYTHONNOUSERSITE": "1", "MPLBACKEND": "Agg"},
        check=False,
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", out, ROOT)
    (built,) = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def fresh_env(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with the wheel installed and this one's dependencies visible."""
    env = tmp_path_factory.mktemp("env")
    venv.EnvBuilder(with_pip=False).create(env)
    python = _program(env, "python")
    site_packages = Path(
        _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip()
    )
    # The dependencies, without installing them; the editable install's own .pth file is not
    # read from a folder listed here, so this checkout's src/ stays out of sys.path.
    ours = dict.fromkeys(sysconfig.get_path(kind) for kind in ("purelib", "platlib"))
    (site_packages / "dependencies-of-the-test-runner.pth").write_text("\n".join(ours) + "\n")
    _run(
        sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel
    )
    return env


@pytest.mark.slow
def test_the_wheel_is_named_for_the_distribution(wheel: Path) -> None:
    assert wheel.name == f"hourglass_ae-{hourglass.__version__}-py3-none-any.whl"


@pytest.mark.slow
def test_the_installed_command_reports_its_version(fresh_env: Path) -> None:
    assert (
        _run(_program(fresh_env, "hourglass"), "--version").strip()
        == f"hourglass {hourglass.__version__}"
    )


@pytest.mark.slow
def test_the_installed_package_fits_a_model(fresh_env: Path) -> None:
    output = _run(_program(fresh_env, "python"), "-c", FIT)
    location, version, template, source, shape = output.strip().splitlines()[-5:]

    env = fresh_env.resolve()
    assert Path(location).resolve().is_relative_to(env)  # the wheel's copy, not this checkout's
    assert version == hourglass.__version__
    assert Path(template).resolve().is_relative_to(env)  # the template ships in the wheel
    assert Path(template).is_file()
    assert Path(source).resolve().is_relative_to(env)  # so is the compiled step's source
    assert Path(source).is_file()
    assert shape == "(64, 2)"
