"""Default limits of the scoring service, in one place (they appear in ``/metadata``)."""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_READ_TIMEOUT",
    "KEEP_ALIVE_TIMEOUT",
    "MAX_HEADER_BYTES",
]

#: Rows (records) one request may hold.
DEFAULT_MAX_BATCH = 1024
#: Bytes a request body may hold; larger bodies get 413 before they are read.
DEFAULT_MAX_BODY_BYTES = 4 * 2**20
#: Open connections plus requests in progress beyond which new requests get 503.
DEFAULT_MAX_CONNECTIONS = 256
#: Seconds a client has to send a whole request (headers and body), counted from its
#: first byte (from the connection for the first request): slow clients are cut off.
DEFAULT_READ_TIMEOUT = 10.0
#: Seconds an idle keep-alive connection stays open.
KEEP_ALIVE_TIMEOUT = 5.0
#: Bytes of request line and headers a request may have (431 beyond).
MAX_HEADER_BYTES = 64 * 2**10
