"""Saving and loading models: JSON for everything but tensors, safetensors for tensors.

A model directory holds two files:

``config.json``
    ``format`` and ``format_version``, the hourglass version that wrote it, the
    estimator class, its constructor parameters, its fitted non-tensor state,
    and a manifest of the tensors (name, dtype, shape) with the SHA-256 digest
    of the weights file.
``model.safetensors``
    The module's weights and the fitted arrays.

Nothing is ever unpickled: reading a model parses JSON and the safetensors
format, neither of which can execute code. The weights file is checked
against the manifest's size and digest *before* it is parsed, so a truncated,
swapped or tampered file is rejected without allocating more than the
manifest announces, and a model is either loaded whole or not at all.

Model files are untrusted input. The digest only detects accidents: whoever
can edit ``model.safetensors`` can edit the digest in ``config.json`` too. So
everything read is also checked for what ``fit`` could have produced: the
``check_*`` helpers below validate the fitted state, and
:func:`allocation_limit` caps what building the network may allocate at a
few times the weights the file actually holds, so that a config announcing
a huge network is refused before any memory is taken.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import reprlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from safetensors.torch import load as safetensors_load
from safetensors.torch import save_file
from torch.overrides import TorchFunctionMode

from hourglass._atomic import atomic_directory
from hourglass._version import __version__
from hourglass.exceptions import ModelFileError, ModelVersionError

__all__ = [
    "CONFIG_NAME",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "ModelFile",
    "allocation_limit",
    "check_array",
    "check_bool",
    "check_choice",
    "check_int",
    "check_real",
    "json_params",
    "model_class_name",
    "read_model_dir",
    "short_repr",
    "weights_digest",
    "write_model_dir",
]

FORMAT = "hourglass-model"
#: 2: image detectors record their complexity feature set (files without one use zlib
#: features); tabular models count their columns in ``n_features_in_``. Files of
#: version 1 load and score as before; older hourglass versions refuse version 2.
FORMAT_VERSION = 2
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
#: A config.json larger than this is not a hourglass config (guards memory).
MAX_CONFIG_BYTES = 64 * 2**20
#: Slack for the safetensors JSON header on top of the manifest's tensor bytes.
MAX_HEADER_BYTES = 2**20
#: Longest class name a config may hold (hourglass's are far shorter).
MAX_CLASS_NAME = 100

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
_ITEMSIZES: dict[str, int] = {
    name: torch.empty((), dtype=dtype).element_size() for name, dtype in _DTYPES.items()
}


@dataclass(frozen=True)
class ModelFile:
    """The parsed content of a model directory."""

    class_name: str
    params: dict[str, Any]
    state: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    library_version: str


def json_params(params: dict[str, Any]) -> dict[str, Any]:
    """Constructor parameters as JSON values (tuples become lists).

    A ``random_state`` that is a generator object cannot be stored; it is saved
    as ``None`` (the fitted weights are saved, so nothing is lost for scoring).
    """
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, np.integer):
            value = int(value)
        elif isinstance(value, np.floating):
            value = float(value)
        elif isinstance(value, np.random.RandomState | np.random.Generator):
            value = None
        out[key] = value
    return out


def _dtype_name(dtype: torch.dtype) -> str:
    for name, candidate in _DTYPES.items():
        if candidate == dtype:
            return name
    raise ValueError(f"Cannot save tensors of dtype {dtype}.")


def write_model_dir(
    path: str | os.PathLike[str],
    *,
    class_name: str,
    params: dict[str, Any],
    state: dict[str, Any],
    tensors: dict[str, torch.Tensor],
) -> Path:
    """Write a model directory atomically; return its path."""
    contiguous = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    with atomic_directory(path) as tmp:
        weights_path = tmp / WEIGHTS_NAME
        save_file(contiguous, str(weights_path))
        digest = hashlib.sha256(weights_path.read_bytes()).hexdigest()
        config = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "library_version": __version__,
            "class": class_name,
            "params": params,
            "state": state,
            "tensors": {
                name: {"dtype": _dtype_name(t.dtype), "shape": list(t.shape)}
                for name, t in contiguous.items()
            },
            "weights_sha256": digest,
        }
        text = json.dumps(config, indent=2, sort_keys=True, allow_nan=True)
        (tmp / CONFIG_NAME).write_text(text + "\n", encoding="utf-8")
    return Path(path)


_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to a readable length, for messages about a file's content.

    Parameters
    ----------
    value : object
        A value read from a model file, possibly huge or deeply nested.

    Returns
    -------
    str
        At most a few dozen characters.

    Examples
    --------
    >>> short_repr("x" * 1000)
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxxxxxxxxxxxx'"
    """
    try:
        return _REPR.repr(value)
    except ValueError:  # an int too long to print (sys.get_int_max_str_digits)
        return f"<{type(value).__name__}>"


def _fail(path: Path, problem: str) -> ModelFileError:
    return ModelFileError(
        f"Cannot load the model in {path}: {problem}. Re-save it (the estimator's save() "
        "or `hourglass train`), or check that the path points at a model directory."
    )


def _read_at_most(file: Path, limit: int) -> bytes | None:
    """The bytes of ``file``, or None if it holds more than ``limit`` bytes.

    Never reads (or allocates) more than the file's size plus one byte, which
    also catches a file that grows while it is read.
    """
    with file.open("rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        if size > limit:
            return None
        data = stream.read(size + 1)
    return None if len(data) > size else data


def _read_config(path: Path) -> dict[str, Any]:
    config_path = path / CONFIG_NAME
    if not path.is_dir():
        raise _fail(
            path, "the directory does not exist" if not path.exists() else "not a directory"
        )
    if not config_path.is_file():
        raise _fail(path, f"{CONFIG_NAME} is missing (or is not a regular file)")
    data = _read_at_most(config_path, MAX_CONFIG_BYTES)
    if data is None:
        raise _fail(path, f"{CONFIG_NAME} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        config = json.loads(data.decode("utf-8"))
    # ValueError also covers integers too long to convert (sys.get_int_max_str_digits).
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        problem = short_repr(str(error)).strip("'\"")
        raise _fail(path, f"{CONFIG_NAME} is not valid JSON ({problem})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise _fail(path, f"{CONFIG_NAME} is not an hourglass model config")
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _fail(path, "its format_version is missing or invalid")
    if version > FORMAT_VERSION:
        writer = config.get("library_version")
        writer = writer if isinstance(writer, str) and len(writer) <= 40 else "?"
        raise ModelVersionError(
            f"The model in {path} was saved in format version {version} by hourglass "
            f"{writer}; this hourglass ({__version__}) reads format versions up to "
            f"{FORMAT_VERSION}. Upgrade hourglass (pip install --upgrade hourglass-ae) to load it."
        )
    for key, kind in (("class", str), ("params", dict), ("state", dict), ("tensors", dict)):
        if not isinstance(config.get(key), kind):
            raise _fail(path, f"{CONFIG_NAME} lacks a valid {key!r} entry")
    name = config["class"]
    if not name.isidentifier() or len(name) > MAX_CLASS_NAME:
        raise _fail(path, f"its class {short_repr(name)} is not an hourglass estimator")
    if not isinstance(config.get("weights_sha256"), str):
        raise _fail(path, f"{CONFIG_NAME} lacks the weights' SHA-256 digest")
    return config


#: Tensors have at most this many dimensions, each at most this large (safetensors: u64).
_MAX_NDIM = 64
_MAX_DIM = 2**63


def _expected_bytes(path: Path, manifest: dict[str, Any]) -> int:
    total = 0
    for name, spec in manifest.items():
        dtype = spec.get("dtype") if isinstance(spec, dict) else None
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise _fail(path, f"tensor {short_repr(name)} has an unsupported dtype in the manifest")
        shape = spec.get("shape")
        if (
            not isinstance(shape, list)
            or len(shape) > _MAX_NDIM
            or not all(
                isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= _MAX_DIM for s in shape
            )
        ):
            raise _fail(path, f"tensor {short_repr(name)} has an invalid shape in the manifest")
        total += math.prod(shape) * _ITEMSIZES[dtype]
    return total


def read_model_dir(path: str | os.PathLike[str]) -> ModelFile:
    """Read and verify a model directory written by :func:`write_model_dir`.

    Reads at most :data:`MAX_CONFIG_BYTES` of ``config.json`` and at most what
    the manifest announces (plus :data:`MAX_HEADER_BYTES`) of the weights.

    Raises
    ------
    ModelFileError
        The directory or a file is missing, truncated, altered or inconsistent.
    ModelVersionError
        The model was written in a newer format.
    """
    directory = Path(path)
    config = _read_config(directory)
    manifest: dict[str, Any] = config["tensors"]
    weights_path = directory / WEIGHTS_NAME
    if not weights_path.is_file():
        raise _fail(directory, f"{WEIGHTS_NAME} is missing (or is not a regular file)")
    limit = _expected_bytes(directory, manifest) + MAX_HEADER_BYTES
    data = _read_at_most(weights_path, limit)
    if data is None:
        size = weights_path.stat().st_size
        raise _fail(directory, f"{WEIGHTS_NAME} is {size} bytes, more than its manifest allows")
    if hashlib.sha256(data).hexdigest() != config["weights_sha256"]:
        raise _fail(
            directory,
            f"{WEIGHTS_NAME} does not match the SHA-256 digest recorded in {CONFIG_NAME} "
            "(the file is truncated, corrupted or was modified)",
        )
    try:
        tensors = safetensors_load(data)
    except Exception as error:  # safetensors raises its own SafetensorError
        problem = short_repr(str(error)).strip("'\"")
        raise _fail(
            directory, f"{WEIGHTS_NAME} is not a valid safetensors file ({problem})"
        ) from None
    if set(tensors) != set(manifest):
        raise _fail(directory, f"the tensors in {WEIGHTS_NAME} differ from the manifest")
    for name, tensor in tensors.items():
        spec = manifest[name]
        if list(tensor.shape) != spec["shape"] or tensor.dtype != _DTYPES[spec["dtype"]]:
            raise _fail(directory, f"tensor {short_repr(name)} does not match its manifest entry")
    return ModelFile(
        class_name=config["class"],
        params=config["params"],
        state=config["state"],
        tensors=tensors,
        library_version=str(config.get("library_version", "?")),
    )


def model_class_name(path: str | os.PathLike[str]) -> str:
    """The estimator class a model directory holds, read (and checked) from ``config.json`` only.

    Raises
    ------
    ModelFileError
        The directory or its config is missing or invalid.
    ModelVersionError
        The model was written in a newer format.
    """
    return str(_read_config(Path(path))["class"])


def weights_digest(path: str | os.PathLike[str]) -> str:
    """The SHA-256 digest of a model's weights, as its ``config.json`` records it.

    Reads (and checks) only ``config.json``, not the weights: a cheap way to tell
    whether two paths, or one path at two moments, hold the same model.

    Raises
    ------
    ModelFileError
        The directory or its config is missing or invalid.
    ModelVersionError
        The model was written in a newer format.
    """
    return str(_read_config(Path(path))["weights_sha256"])


# ------------------------------------------------- checking what a file claims


def check_int(value: Any, name: str, *, low: int = 0, high: int | None = None) -> int:
    """``value`` if it is an int (not a bool) in ``[low, high]``, else ``ValueError``.

    Parameters
    ----------
    value : object
        A value read from a model file.
    name : str
        What it is, for the message (e.g. ``"n_epochs_"``).
    low, high : int, optional
        Inclusive bounds; ``high=None`` for none.

    Returns
    -------
    int
        ``value``.

    Examples
    --------
    >>> check_int(3, "n_epochs_")
    3
    """
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < low
        or (high is not None and value > high)
    ):
        bounds = f"[{low}, {'inf' if high is None else high}]"
        raise ValueError(f"{name} must be an int in {bounds}; got {short_repr(value)}")
    return value


def check_real(value: Any, name: str, *, finite: bool = False) -> float:
    """``value`` as a float if it is a JSON number (finite if asked), else ``ValueError``.

    Parameters
    ----------
    value : object
        A value read from a model file.
    name : str
        What it is, for the message.
    finite : bool, default=False
        Whether NaN and infinities are refused.

    Returns
    -------
    float
        ``value`` as a float.

    Examples
    --------
    >>> check_real(2, "fit_time_")
    2.0
    """
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an int beyond float's range
            number = None
    if number is None or (finite and not math.isfinite(number)):
        kind = "a finite number" if finite else "a number"
        raise ValueError(f"{name} must be {kind}; got {short_repr(value)}")
    return number


def check_bool(value: Any, name: str) -> bool:
    """``value`` if it is a bool, else ``ValueError``.

    Parameters
    ----------
    value : object
        A value read from a model file.
    name : str
        What it is, for the message.

    Returns
    -------
    bool
        ``value``.
    """
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false; got {short_repr(value)}")
    return value


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of the strings ``choices``, else ``ValueError``.

    Parameters
    ----------
    value : object
        A value read from a model file.
    name : str
        What it is, for the message.
    choices : sequence of str
        The values ``fit`` can produce.

    Returns
    -------
    str
        ``value``.

    Examples
    --------
    >>> check_choice("mse", "loss_", ("mae", "mse"))
    'mse'
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}; got {short_repr(value)}")
    return value


def check_array(
    arrays: dict[str, NDArray[Any]], name: str, shape: Sequence[int | None]
) -> NDArray[Any]:
    """The fitted array ``name`` if present with ``shape`` (None: any size), else ``ValueError``.

    Parameters
    ----------
    arrays : dict of str to ndarray
        The fitted arrays read from the weights file.
    name : str
        The array wanted (e.g. ``"data_min_"``).
    shape : sequence of int or None
        The shape it must have; None matches any size along that axis.

    Returns
    -------
    ndarray
        The array.
    """
    if name not in arrays:
        raise ValueError(f"the fitted array {name} is missing")
    array = arrays[name]
    if array.ndim != len(shape) or any(
        want is not None and got != want for got, want in zip(array.shape, shape, strict=True)
    ):
        expected = tuple("any" if s is None else s for s in shape)
        raise ValueError(f"the fitted array {name} has shape {array.shape}, not {expected}")
    return array


# ------------------------------------------------ bounding what a config builds

#: Tensor factories and the position of their size argument.
_SIZE_ARGUMENT: dict[Callable[..., Any], int] = {
    torch.empty: 0,
    torch.zeros: 0,
    torch.ones: 0,
    torch.full: 0,
    torch.rand: 0,
    torch.randn: 0,
    torch.empty_strided: 0,
    torch.Tensor.new_empty: 1,
    torch.Tensor.new_zeros: 1,
    torch.Tensor.new_ones: 1,
    torch.Tensor.new_full: 1,
}
#: Factories that take their size from a tensor.
_LIKE = frozenset(
    {
        torch.empty_like,
        torch.zeros_like,
        torch.ones_like,
        torch.full_like,
        torch.rand_like,
        torch.randn_like,
    }
)


def _requested_elements(
    func: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]
) -> int | None:
    """Elements a tensor factory call asks for, or None if ``func`` creates no tensor."""
    if func in _LIKE:
        source = args[0] if args else kwargs.get("input")
        return source.numel() if isinstance(source, torch.Tensor) else 0
    start = _SIZE_ARGUMENT.get(func)
    if start is None:
        return None
    size: Any = kwargs.get("size", args[start:])
    if len(size) > 0 and isinstance(size[0], Sequence):  # f((3, 4)) rather than f(3, 4)
        size = size[0]
    return math.prod(max(int(d), 0) for d in size if isinstance(d, int))


class _AllocationLimit(TorchFunctionMode):
    """Counts the tensors created in its block and refuses those beyond the budget."""

    def __init__(self, elements: int, tensors: int) -> None:
        super().__init__()
        self.elements_left = elements
        self.tensors_left = tensors

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        requested = _requested_elements(func, args, kwargs)
        if requested is not None:
            self.elements_left -= requested
            self.tensors_left -= 1
            if self.elements_left < 0 or self.tensors_left < 0:
                raise ValueError(
                    "its config describes a larger network than the weights file holds"
                )
        return func(*args, **kwargs)


@contextmanager
def allocation_limit(elements: int, tensors: int) -> Iterator[None]:
    """Refuse, inside the block, to create more tensor elements or tensors than given.

    A network built from a config allocates what the config describes, and a
    tampered config can describe terabytes. Inside this block every tensor
    factory call (``torch.empty``, ``torch.randn``, ...) is counted before it
    runs, on any device; one that would exceed either budget raises instead.

    Parameters
    ----------
    elements : int
        Tensor elements that may be created in all.
    tensors : int
        Tensors that may be created in all.

    Raises
    ------
    ValueError
        Inside the block, on the first creation beyond a budget (nothing is
        allocated for it).

    Examples
    --------
    >>> with allocation_limit(100, 10):
    ...     small = torch.zeros(10, 10)
    >>> with allocation_limit(100, 10):
    ...     huge = torch.zeros(10**6, 10**6)
    Traceback (most recent call last):
    ...
    ValueError: its config describes a larger network than the weights file holds
    """
    with _AllocationLimit(elements, tensors):
        yield
