"""hourglass's compiled training loop: built once on request, then used automatically.

A dense model's training step is some 40 small tensor operations; on a CPU the
interpreter and the Python bindings around them take about a fifth of the step, and
the training loop's bookkeeping around each batch as much again.
``src/hourglass/nn/csrc/fused_dense.cpp`` makes the same ATen calls as
:func:`hourglass.nn.fused.loss_and_gradients`, in the same order with the same
arguments, from C++; and it runs whole blocks of the training loop's batches (gathering
each batch, corrupting it for a denoising model, the step, the AdamW update) in one
call. **The same bits** (tested), in less time: on a 2-core CPU the reference
784→64→784 model trained about 1.4× faster (:ref:`bench-training-speed`).

Building needs a C++ compiler and ninja (``pip install ninja``); it takes about half a
minute, once per PyTorch version::

    hourglass native build      # or: python -c "import hourglass.nn.native as n; n.build()"

The library is cached under ``$HOURGLASS_NATIVE_DIR`` (default
``~/.cache/hourglass/native``). Once it is there, dense models train with it without
further ado; ``HOURGLASS_NATIVE=0`` turns it off, and without it hourglass trains as
before, only more slowly.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Protocol

import torch

from hourglass.exceptions import NativeBuildError

__all__ = [
    "DIRECTORY_VARIABLE",
    "ENABLE_VARIABLE",
    "AdamWState",
    "build",
    "cache_dir",
    "library_path",
    "module",
]

#: Set to ``0`` to train without the compiled loop even where it is built.
ENABLE_VARIABLE = "HOURGLASS_NATIVE"
#: Where the compiled loop is built and looked for (default ``~/.cache/hourglass/native``).
DIRECTORY_VARIABLE = "HOURGLASS_NATIVE_DIR"
_SOURCE = Path(__file__).with_name("csrc") / "fused_dense.cpp"


class AdamWState(Protocol):
    """What the compiled loop needs of an AdamW optimiser (:class:`hourglass.training.FusedAdamW`).

    Its parameters, their two moments and step counts (updated in place), and its settings.
    """

    params: list[torch.Tensor]
    exp_avgs: list[torch.Tensor]
    exp_avg_sqs: list[torch.Tensor]
    steps: list[torch.Tensor]
    lr: float
    betas: tuple[float, float]
    eps: float
    weight_decay: float


def cache_dir() -> Path:
    """Where compiled loops are kept: ``$HOURGLASS_NATIVE_DIR``, or the user's cache."""
    configured = os.environ.get(DIRECTORY_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "hourglass" / "native"


def _name() -> str:
    """A module name unique to the source, PyTorch, Python and machine it is built for."""
    digest = hashlib.sha256()
    for part in (_SOURCE.read_bytes(), torch.__version__.encode(), sys.version.encode()):
        digest.update(part)
    digest.update(platform.machine().encode())
    return f"hourglass_fused_dense_{digest.hexdigest()[:16]}"


def library_path() -> Path:
    """The compiled loop's shared library (it exists once :func:`build` has run)."""
    name = _name()
    return cache_dir() / name / f"{name}.so"


def build(*, verbose: bool = False) -> Path:
    """Compile the training loop for this PyTorch and Python; return the library's path.

    Does nothing when it is built already; a library that cannot be loaded (an
    interrupted build, say) is built again. About half a minute on two cores.

    Parameters
    ----------
    verbose : bool, default=False
        Show the compiler's commands and output.

    Returns
    -------
    pathlib.Path
        The shared library, which later processes load by themselves.

    Raises
    ------
    NativeBuildError
        Without a C++ compiler or ninja, or when the compilation fails.
    """
    target = library_path()
    if target.exists():
        if _import(target) is not None:
            return target
        target.unlink()  # cannot be loaded: build it again
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        raise NativeBuildError(
            f"Building the compiled training loop needs a C++ compiler, and {compiler!r} was "
            "not found. Install g++ or clang++ (or set CXX to one). hourglass trains "
            "without it, only more slowly."
        )
    from torch.utils import cpp_extension

    try:
        cpp_extension.verify_ninja_availability()
    except RuntimeError:
        raise NativeBuildError(
            "Building the compiled training loop needs ninja: pip install ninja. hourglass "
            "trains without it, only more slowly."
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        cpp_extension.load(
            name=_name(),
            sources=[str(_SOURCE)],
            build_directory=str(target.parent),
            extra_cflags=["-O2"],
            verbose=verbose,
        )
    except Exception as error:  # the compiler's own message says what went wrong
        raise NativeBuildError(
            f"Compiling {_SOURCE.name} failed: {error}. Run again with verbose=True (or "
            "'hourglass native build --verbose') to see the compiler's output; hourglass "
            "trains without it, only more slowly."
        ) from error
    _loaded.clear()
    return target


_loaded: dict[tuple[str | None, str | None], ModuleType | None] = {}


def module() -> ModuleType | None:
    """The compiled loop if it is built and not turned off (``HOURGLASS_NATIVE=0``), else None.

    Looked up once per setting of the two environment variables, then cached.
    """
    key = (os.environ.get(ENABLE_VARIABLE), os.environ.get(DIRECTORY_VARIABLE))
    if key in _loaded:
        return _loaded[key]
    loaded: ModuleType | None = None
    if key[0] != "0":
        path = library_path()
        if path.exists():
            loaded = _import(path)
    _loaded[key] = loaded
    return loaded


def _import(path: Path) -> ModuleType | None:
    """Import the library at ``path``; None where it cannot be loaded (``build`` rebuilds it)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        return None
    try:
        loaded = importlib.util.module_from_spec(spec)  # an extension is loaded here already
        spec.loader.exec_module(loaded)
    except ImportError:
        return None
    return loaded
