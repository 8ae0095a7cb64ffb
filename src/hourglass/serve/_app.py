"""The HTTP face of the scoring service: a FastAPI app over a :class:`ScoringModel`.

Routes: ``POST /score``, ``GET /health``, ``GET /metadata`` (the model card and
the limits), ``GET /openapi.json`` (its request schema generated from the
model's input) and ``GET /docs``. Every error is JSON, ``{"error": "..."}``, one
line saying what was expected and what to do; no response ever carries a
traceback or a file path (unexpected exceptions are logged on the server and
answered with a generic 500).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hourglass._version import __version__
from hourglass.exceptions import InvalidInputError
from hourglass.serve._limits import DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY_BYTES
from hourglass.serve._scoring import (
    PreparedRequest,
    RequestError,
    ScoringModel,
    one_line,
    parse_json,
)

__all__ = ["create_app", "error_response"]

_LOGGER = logging.getLogger("hourglass.serve")

_ENDPOINTS = "POST /score, GET /health, GET /metadata, GET /openapi.json and GET /docs"
_JSON = "application/json"


def error_response(status: int, message: str, *, close: bool = False) -> Response:
    """A JSON error response, ``{"error": message}``, with ``message`` on one line.

    Parameters
    ----------
    status : int
        The HTTP status.
    message : str
        What was expected and what to do.
    close : bool, default=False
        Close the connection after the response (when the request's body was not read).
    """
    body = json.dumps({"error": one_line(message)}).encode()
    headers = {"connection": "close"} if close else None
    return Response(body, status_code=status, media_type=_JSON, headers=headers)


class _TooLarge(HTTPException):
    """A streamed (chunked) body grew past the limit."""


class _BodyLimit:
    """ASGI middleware refusing request bodies over ``max_body_bytes`` with 413.

    A declared ``Content-Length`` over the limit is refused before any of the body
    is read; a body without one (chunked) is counted as it streams in and refused
    as soon as it passes the limit. Either way the connection is closed afterwards,
    so the rest of the body is never read.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    def _message(self) -> str:
        return (
            f"The request body is larger than this service's limit of {self.max_body_bytes:,} "
            "bytes. Split the batch into smaller requests."
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                # httptools has checked that it is a number and reads exactly that many bytes.
                if int(value) > self.max_body_bytes:
                    response = error_response(413, self._message(), close=True)
                    await response(scope, receive, send)
                    return
                await self.app(scope, receive, send)
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _TooLarge(413, self._message())
            return message

        await self.app(scope, counting_receive, send)


class _MicroBatcher:
    """Scores the requests that are ready at the same time in one forward pass.

    A request checked and ready to score waits for the end of the event loop's
    current round, in which the other connections' requests that arrived
    together are parsed too; then all of them (up to ``max_batch`` rows per
    pass) are scored at once. Under concurrent load this divides the cost of a
    forward pass between many requests; alone, a request waits for nothing.
    Scores do not depend on the batching (see :meth:`ScoringModel.score_prepared`).
    """

    def __init__(self, model: ScoringModel) -> None:
        self.model = model
        self._pending: list[tuple[PreparedRequest, asyncio.Future[dict[str, Any]]]] = []
        self._scheduled = False

    async def score(self, prepared: PreparedRequest) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._pending.append((prepared, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        chunk: list[tuple[PreparedRequest, asyncio.Future[dict[str, Any]]]] = []
        rows = 0
        for item in pending:
            if chunk and rows + item[0].n_rows > self.model.max_batch:
                self._score(chunk)
                chunk, rows = [], 0
            chunk.append(item)
            rows += item[0].n_rows
        if chunk:
            self._score(chunk)

    def _score(self, chunk: list[tuple[PreparedRequest, asyncio.Future[dict[str, Any]]]]) -> None:
        try:
            responses = self.model.score_prepared([prepared for prepared, _ in chunk])
        except Exception as error:
            if len(chunk) > 1:  # score them one by one: only the culprit fails
                for item in chunk:
                    self._score([item])
            elif not chunk[0][1].done():
                chunk[0][1].set_exception(error)
            return
        for (_, future), response in zip(chunk, responses, strict=True):
            if not future.done():
                future.set_result(response)


def _internal_error(request: Request, error: Exception) -> Response:
    """Log an unexpected exception with its traceback; answer a generic 500."""
    _LOGGER.error(
        "Unexpected error answering %s %s", request.method, request.url.path, exc_info=error
    )
    return error_response(
        500, "Internal error while answering this request; it was logged on the server."
    )


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def create_app(
    model: ScoringModel | str | os.PathLike[str],
    *,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    device: str | None = None,
    server_limits: Mapping[str, Any] | None = None,
) -> FastAPI:
    """The scoring service's FastAPI app; see :func:`hourglass.serve.create_app`."""
    if not isinstance(model, ScoringModel):
        model = ScoringModel.load(model, device=device, max_batch=max_batch)
    if (
        isinstance(max_body_bytes, bool)
        or not isinstance(max_body_bytes, int)
        or max_body_bytes < 1
    ):
        raise InvalidInputError(f"max_body_bytes must be an int >= 1; got {max_body_bytes!r}.")
    card = model.card()
    app = FastAPI(
        title="hourglass scoring service",
        version=__version__,
        description=(
            f"Scores {model.kind} with a {card['family']} autoencoder outlier detector "
            f"(metric {card['metric']}, threshold {card['threshold']:.6g}). POST /score with "
            "'records' or 'rows'; GET /metadata for the model card."
        ),
        redoc_url=None,
    )
    app.state.model = model
    limits = {
        "max_batch": model.max_batch,
        "max_body_bytes": max_body_bytes,
        **(server_limits or {}),
    }
    _add_score_route(app, model)
    _add_info_routes(app, card, limits)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_middleware(_BodyLimit, max_body_bytes=max_body_bytes)
    _add_error_schema(app)
    return app


def _error_doc(description: str) -> dict[str, Any]:
    """The OpenAPI description of an error response: JSON, the ``Error`` schema."""
    return {
        "description": description,
        "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _add_score_route(app: FastAPI, model: ScoringModel) -> None:
    """``POST /score``, with its request and response schemas generated from ``model``."""
    batcher = _MicroBatcher(model)

    # No docstring on the route function: FastAPI would publish it as the description.
    @app.post(
        "/score",
        summary="Score rows: reconstruction errors, outlier flags, p-values",
        response_class=Response,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {_JSON: {"schema": model.request_schema()}},
            },
        },
        responses={
            200: {
                "description": "One result per row, in order",
                "content": {_JSON: {"schema": model.response_schema()}},
            },
            400: _error_doc("The body is not valid JSON"),
            408: _error_doc("The request did not arrive in time"),
            413: _error_doc("The body or the batch is larger than the limits"),
            415: _error_doc("The body is not declared as application/json"),
            422: _error_doc("The JSON does not fit the model's input (see /metadata)"),
            503: {"description": "Too many connections: retry later"},
        },
    )
    async def score(request: Request) -> Response:
        return await _score(request, model, batcher)


async def _score(request: Request, model: ScoringModel, batcher: _MicroBatcher) -> Response:
    """Answer ``POST /score``: the results, or the one-line error that says what to fix."""
    media_type = _media_type(request.headers.get("content-type"))
    if media_type != _JSON and not media_type.endswith("+json"):
        return error_response(
            415,
            "POST /score takes JSON: send the header 'Content-Type: application/json'"
            f" (got {one_line(repr(media_type), 60) if media_type else 'none'}).",
        )
    try:
        body = await request.body()
    except ClientDisconnect:  # the client left (or was cut off): nobody to answer
        return Response(status_code=400)
    try:
        result = await batcher.score(model.prepare(parse_json(body)))
    except RequestError as error:
        return error_response(error.status, error.message)
    except InvalidInputError as error:
        return error_response(422, str(error))
    except Exception as error:  # a bug: logged here, never shown to the client
        return _internal_error(request, error)
    return Response(json.dumps(result, allow_nan=False).encode(), media_type=_JSON)


def _add_info_routes(app: FastAPI, card: dict[str, Any], limits: dict[str, Any]) -> None:
    """``GET /health`` and ``GET /metadata``, their answers computed once."""
    metadata = json.dumps({"model": card, "limits": limits, "endpoints": _ENDPOINTS}).encode()
    health = json.dumps({"status": "ok", "model": card["class"], "family": card["family"]})

    @app.get("/health", summary="Whether the service is up", response_class=Response)
    async def get_health() -> Response:
        return Response(health, media_type=_JSON)

    @app.get(
        "/metadata",
        summary="The model card, the input the model takes and the service's limits",
        response_class=Response,
    )
    async def get_metadata() -> Response:
        return Response(metadata, media_type=_JSON)


async def _http_error(request: Request, error: Exception) -> Response:
    """404, 405 and the other HTTP errors, as JSON that lists the endpoints."""
    assert isinstance(error, HTTPException)
    status = error.status_code
    if status == 404:
        message = f"Not found. This service answers {_ENDPOINTS}."
    elif status == 405:
        message = f"Method {request.method} is not allowed here. This service answers {_ENDPOINTS}."
    else:
        message = str(error.detail)
    return error_response(status, message, close=isinstance(error, _TooLarge))


async def _validation_error(request: Request, error: Exception) -> Response:
    """A request FastAPI's own validation refused."""
    return error_response(422, f"The request does not fit this endpoint. {_ENDPOINTS}.")


async def _unexpected_error(request: Request, error: Exception) -> Response:
    """Any other exception: logged, answered with a generic 500."""
    return _internal_error(request, error)


def _add_error_schema(app: FastAPI) -> None:
    """Generate ``app``'s OpenAPI schema once, with the ``Error`` schema of the error responses."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = {
                "type": "object",
                "properties": {"error": {"type": "string", "description": "what to do, one line"}},
                "required": ["error"],
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
