"""The scoring service: a saved outlier detector behind HTTP (``hourglass serve``).

``POST /score`` takes ``{"records": [...]}`` (objects keyed by column name) or
``{"rows": [...]}`` (arrays) and answers, per row, the score, the
reconstruction error, the outlier flag, the conformal p-value and, for tables,
the columns contributing most. ``GET /health``, ``GET /metadata`` (the model
card and the limits) and ``GET /openapi.json`` (with the request schema of the
model's input) complete it. Malformed or mismatched input gets a 4xx answer
with a one-line JSON error; oversized bodies get 413 before they are read;
slow clients are cut off (408); overload is shed with 503.

The service needs the ``serve`` extra (FastAPI, uvicorn, httptools):
``pip install "hourglass-ae[serve]"``. This package imports them only when
:func:`create_app` or :func:`serve` is called.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from hourglass.exceptions import HourglassError
from hourglass.serve._limits import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_READ_TIMEOUT,
)
from hourglass.serve._scoring import RequestError, ScoringModel

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_READ_TIMEOUT",
    "INSTALL_HINT",
    "RequestError",
    "ScoringModel",
    "create_app",
    "require_dependencies",
    "serve",
]

INSTALL_HINT = 'pip install "hourglass-ae[serve]"'
_DEPENDENCIES = ("fastapi", "uvicorn", "httptools")


def require_dependencies() -> None:
    """Raise :class:`~hourglass.exceptions.HourglassError` unless the ``serve`` extra is installed.

    Raises
    ------
    HourglassError
        Naming the missing packages and the command that installs them.
    """
    import importlib.util

    missing = [name for name in _DEPENDENCIES if importlib.util.find_spec(name) is None]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise HourglassError(
            f"The scoring service needs {', '.join(missing)}, which {verb} not installed: "
            f"{INSTALL_HINT}"
        )


def create_app(
    model: ScoringModel | str | os.PathLike[str],
    *,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    device: str | None = None,
    server_limits: Mapping[str, Any] | None = None,
) -> FastAPI:
    """Build the scoring service's FastAPI app for one model.

    Parameters
    ----------
    model : ScoringModel, str or path-like
        A model directory (an :class:`~hourglass.AutoencoderOutlierDetector`
        saved with ``save`` or ``hourglass train``), or a loaded
        :class:`ScoringModel`.
    max_batch : int, default=1024
        Most rows one request may hold (when ``model`` is a directory).
    max_body_bytes : int, default=4 MiB
        Largest request body; larger ones get 413 without being read.
    device : str, optional
        Overrides the model's saved device (when ``model`` is a directory).
    server_limits : mapping, optional
        The server's own limits (timeouts, connections), shown in ``/metadata``.

    Returns
    -------
    fastapi.FastAPI
        An ASGI app. :func:`serve` runs it with the guards against slow clients;
        any ASGI server can run it too.
    """
    require_dependencies()
    from hourglass.serve._app import create_app as create

    return create(
        model,
        max_batch=max_batch,
        max_body_bytes=max_body_bytes,
        device=device,
        server_limits=server_limits,
    )


def serve(
    model_dir: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    device: str | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    threads: int = 1,
    access_log: bool = False,
    log_level: str = "warning",
    on_ready: Callable[[ScoringModel, str, int], None] | None = None,
) -> None:
    """Serve a saved outlier detector over HTTP until interrupted (SIGINT or SIGTERM).

    Parameters
    ----------
    model_dir : str or path-like
        A directory written by ``save`` or ``hourglass train``.
    host, port : str, int
        Where to listen; port 0 picks a free port (``on_ready`` is told which).
    workers : int, default=1
        Server processes, each with its own copy of the model.
    device : str, optional
        Overrides the model's saved device.
    max_batch, max_body_bytes : int
        Most rows per request; largest request body (413 beyond either).
    max_connections : int, default=256
        Open connections plus requests in progress (per worker) beyond which
        new requests get 503.
    read_timeout : float, default=10.0
        Seconds a client has to send a whole request (408 after).
    threads : int, default=1
        PyTorch threads per worker: one suits single rows and small batches.
    access_log : bool, default=False
        Log every request (costs throughput).
    log_level : str, default="warning"
        uvicorn's log level.
    on_ready : callable, optional
        Called with the loaded model, the host and the port once the socket is bound.

    Raises
    ------
    HourglassError
        If the ``serve`` extra is not installed.
    ModelFileError, InvalidInputError, OSError
        If the model cannot be loaded or served, or the address is taken.
    InvalidParameterError
        If a limit (``workers``, ``max_batch``, ``read_timeout``, ...) or the
        port is out of range.
    """
    require_dependencies()
    from hourglass.serve._server import serve as run

    run(
        model_dir,
        host=host,
        port=port,
        workers=workers,
        device=device,
        max_batch=max_batch,
        max_body_bytes=max_body_bytes,
        max_connections=max_connections,
        read_timeout=read_timeout,
        threads=threads,
        access_log=access_log,
        log_level=log_level,
        on_ready=on_ready,
    )
