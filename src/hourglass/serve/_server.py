"""Running the scoring service: uvicorn, with the guards a public endpoint needs.

uvicorn sheds load (``limit_concurrency``: 503 beyond a number of connections and
requests) and closes idle keep-alive connections, but it waits forever for a
request that arrives slowly, and lets its headers grow without bound. A client
that opens connections and sends a byte now and then (slowloris) would hold
them forever, and with them the connection budget. :class:`GuardedProtocol`
adds the two missing guards: each request must arrive whole within
``read_timeout`` seconds (408, then the connection is closed), and its headers
may hold at most ``max_header_bytes`` (431).
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import os
import socket
from collections.abc import Callable
from typing import Any

import torch
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from hourglass.exceptions import HourglassError, InvalidInputError, InvalidParameterError
from hourglass.serve._app import create_app
from hourglass.serve._limits import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_READ_TIMEOUT,
    KEEP_ALIVE_TIMEOUT,
    MAX_HEADER_BYTES,
)
from hourglass.serve._scoring import ScoringModel
from hourglass.threads import num_threads

__all__ = ["GuardedProtocol", "ServeConfig", "serve", "worker_app"]

#: Where ``serve(workers > 1)`` leaves the settings for the worker processes' app factory.
SETTINGS_VARIABLE = "HOURGLASS_SERVE_SETTINGS"
#: Seconds requests in progress get to finish when the server is asked to stop.
GRACEFUL_SHUTDOWN = 10.0


class ServeConfig(uvicorn.Config):
    """uvicorn's ``Config`` plus the settings of :class:`GuardedProtocol`.

    Parameters
    ----------
    app : ASGI app or import string
        As for ``uvicorn.Config``.
    read_timeout : float
        Seconds a client has to send a whole request.
    max_header_bytes : int
        Most bytes of request line and headers.
    **kwargs
        Passed to ``uvicorn.Config``.
    """

    def __init__(
        self,
        app: Any,
        *,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_header_bytes: int = MAX_HEADER_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.read_timeout = read_timeout
        self.max_header_bytes = max_header_bytes


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a read deadline and a cap on header size.

    The deadline starts when the connection opens (for its first request) or at
    the first byte of a later request, and ends when the request's last body
    byte has arrived. A request still incomplete then is answered 408 (if no
    response has started) and its connection closed. Request line and headers
    larger than the cap are answered 431 and the connection closed.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._read_timeout = float(getattr(config, "read_timeout", DEFAULT_READ_TIMEOUT))
        self._max_header_bytes = int(getattr(config, "max_header_bytes", MAX_HEADER_BYTES))
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_headers = True
        self._header_bytes = 0

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self._read_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _refuse(self, status: int, reason: str, message: str) -> None:
        """Answer ``status`` with a JSON error (unless a response has started); close."""
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            body = json.dumps({"error": message}).encode()
            self.transport.write(
                f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode("latin-1")
                + body
            )
        self.transport.close()

    def _too_slow(self) -> None:
        self._deadline = None
        self._refuse(
            408,
            "Request Timeout",
            f"The request did not arrive within {self._read_timeout:g} seconds; send it whole, "
            "in one go.",
        )

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        if self._reading_headers and self._header_bytes > self._max_header_bytes:
            self._refuse(
                431,
                "Request Header Fields Too Large",
                f"The request line and headers are larger than {self._max_header_bytes:,} "
                "bytes; send shorter headers.",
            )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_headers = True
        self._arm()

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._header_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()


#: Connections the socket holds before a worker accepts them (uvicorn's default).
LISTEN_BACKLOG = 2048


def _bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (port 0: any free port)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise InvalidInputError(f"Cannot serve on host {host!r}: {error.strerror}.") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise OSError(
            f"Cannot listen on {host}:{port}: {error.strerror}. Choose another --port (0 picks "
            "a free one) or stop what is using it."
        ) from None
    # Listening from here on: connections made while the workers start wait in the
    # backlog instead of being refused (the workers listen again with their own backlog).
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


def _freeze_heap() -> None:
    """Exempt everything allocated so far from garbage collection.

    PyTorch, pandas, scikit-learn and FastAPI leave about 300,000 objects on the
    heap; a full collection walks them all and stalls every request for about
    200 ms (measured: the p99.9 of the load benchmark). They live as long as the
    server, so they are moved out of the collector's sight.
    """
    gc.collect()
    gc.freeze()


def worker_app() -> Any:
    """The app of one worker process (``serve(workers > 1)``), from the parent's settings."""
    settings = json.loads(os.environ[SETTINGS_VARIABLE])
    torch.set_num_threads(settings["threads"])
    app = create_app(
        settings["model"],
        max_batch=settings["max_batch"],
        max_body_bytes=settings["max_body_bytes"],
        device=settings["device"],
        server_limits=settings["server_limits"],
    )
    _freeze_heap()
    return app


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
    """Serve a saved detector until interrupted; see :func:`hourglass.serve.serve`."""
    for name, value, low in (
        ("workers", workers, 1),
        ("max_connections", max_connections, 1),
        ("threads", threads, 1),
        ("port", port, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidParameterError(f"{name} must be an int >= {low}; got {value!r}.")
    if not read_timeout > 0:
        raise InvalidParameterError(
            f"read_timeout must be a positive number; got {read_timeout!r}."
        )
    # One worker serves in this process, on ``threads`` threads; the setting is undone
    # when the server stops (or fails to start). Worker processes set their own.
    with num_threads(threads if workers == 1 else None):
        model = ScoringModel.load(model_dir, device=device, max_batch=max_batch)
        server_limits = {
            "read_timeout_s": read_timeout,
            "keep_alive_timeout_s": KEEP_ALIVE_TIMEOUT,
            "max_connections": max_connections,
            "max_header_bytes": MAX_HEADER_BYTES,
            "workers": workers,
        }
        app: Any
        if workers == 1:
            app = create_app(model, max_body_bytes=max_body_bytes, server_limits=server_limits)
        else:
            os.environ[SETTINGS_VARIABLE] = json.dumps(
                {
                    "model": os.fspath(model_dir),
                    "device": device,
                    "max_batch": max_batch,
                    "max_body_bytes": max_body_bytes,
                    "threads": threads,
                    "server_limits": server_limits,
                }
            )
            app = "hourglass.serve._server:worker_app"
            # Refuse bad settings here, once, rather than in every worker.
            create_app(model, max_body_bytes=max_body_bytes)
        config = ServeConfig(
            app,
            factory=workers > 1,
            workers=workers,
            http=GuardedProtocol,
            read_timeout=read_timeout,
            max_header_bytes=MAX_HEADER_BYTES,
            limit_concurrency=max_connections,
            timeout_keep_alive=int(KEEP_ALIVE_TIMEOUT),
            timeout_graceful_shutdown=int(GRACEFUL_SHUTDOWN),
            access_log=access_log,
            log_level=log_level,
            lifespan="off",
            ws="none",
        )
        sock = _bind(host, port)
        try:
            bound_host, bound_port = sock.getsockname()[:2]
            if on_ready is not None:
                on_ready(model, str(bound_host), int(bound_port))
            server = uvicorn.Server(config)
            if workers == 1:
                _freeze_heap()
                server.run(sockets=[sock])
                if not server.started:
                    raise HourglassError("The server did not start; the log above says why.")
                return
            from uvicorn.supervisors import Multiprocess

            if "target" in inspect.signature(Multiprocess).parameters:  # older uvicorn
                Multiprocess(config, target=server.run, sockets=[sock]).run()  # type: ignore[call-arg]
            else:
                Multiprocess(config, sockets=[sock]).run()
        finally:
            sock.close()
