"""``hourglass serve MODEL_DIR``: score over HTTP (needs ``pip install "hourglass-ae[serve]"``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hourglass.cli._common import add_model_arguments, at_least, positive_seconds


def add_parser(subparsers: Any) -> None:
    """Register the ``serve`` verb."""
    from hourglass.serve._limits import (
        DEFAULT_MAX_BATCH,
        DEFAULT_MAX_BODY_BYTES,
        DEFAULT_MAX_CONNECTIONS,
        DEFAULT_READ_TIMEOUT,
    )

    parser = subparsers.add_parser(
        "serve",
        help="serve a trained detector over HTTP (POST /score)",
        description=(
            "Serve MODEL_DIR over HTTP until interrupted: POST /score with "
            '{"records": [...]} or {"rows": [...]} answers scores, outlier flags, p-values '
            "and, for tables, the top contributing columns; GET /health, GET /metadata (the "
            "model card), GET /openapi.json and GET /docs. Needs the serve extra: "
            'pip install "hourglass-ae[serve]".'
        ),
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=at_least(0),
        default=8000,
        help="port; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--workers", type=at_least(1), default=1, help="server processes (default: %(default)s)"
    )
    parser.add_argument(
        "--max-batch",
        type=at_least(1),
        default=DEFAULT_MAX_BATCH,
        metavar="ROWS",
        help="most rows per request (default: %(default)s)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=at_least(1),
        default=DEFAULT_MAX_BODY_BYTES,
        metavar="BYTES",
        help="largest request body; larger ones get 413 unread (default: %(default)s)",
    )
    parser.add_argument(
        "--max-connections",
        type=at_least(1),
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="connections plus requests in progress per worker beyond which requests get 503 "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--read-timeout",
        type=positive_seconds,
        default=DEFAULT_READ_TIMEOUT,
        metavar="SECONDS",
        help="time a client has to send a whole request; slower ones get 408 "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=at_least(1),
        default=1,
        help="PyTorch threads per worker (default: %(default)s, best for single rows)",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="server log level (default: %(default)s)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Load the model, bind the address, serve until interrupted."""
    from hourglass.serve import ScoringModel, require_dependencies, serve

    require_dependencies()

    def ready(model: ScoringModel, host: str, port: int) -> None:
        shown = f"[{host}]" if ":" in host else host
        card = model.card()
        print(
            f"Serving {args.model} ({card['family']} outlier detector, {model.kind}) at "
            f"http://{shown}:{port} with {args.workers} worker(s): POST /score, GET /health, "
            "GET /metadata, GET /docs. Press Ctrl-C to stop.",
            flush=True,
        )

    serve(
        args.model,
        host=args.host,
        port=args.port,
        workers=args.workers,
        device=args.device,
        max_batch=args.max_batch,
        max_body_bytes=args.max_body_bytes,
        max_connections=args.max_connections,
        read_timeout=args.read_timeout,
        threads=args.threads,
        access_log=args.access_log,
        log_level=args.log_level,
        on_ready=ready,
    )
    print("Stopped.", file=sys.stderr)
    return 0
