"""The scoring service under abuse: a bounded soak test on loopback.

For ``SOAK_SECONDS``, good clients score rows (and check every score against
the library's) while, beside them, abusive clients send malformed JSON, wrong
types, missing and extra fields, oversized bodies (declared and streamed),
floods of connections beyond the service's limit, requests dribbled byte by
byte (slowloris), idle connections and huge headers. The service must answer
all abuse with a 4xx, shed it with 503 or close the connection, never answer
500, never leak a traceback or a path, cut slow clients off after its read
timeout, stay up, and keep answering good requests correctly. Run with ``-s``
to read the figures (requests served, shed, errors, latency percentiles).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from helpers import mixed_table
from hourglass import AutoencoderOutlierDetector
from serving import LEAKS, Server, as_records, running_server

SOAK_SECONDS = 10.0
MAX_CONNECTIONS = 48
READ_TIMEOUT = 2.0
MAX_BODY = 65_536
GOOD_CLIENTS = 4
SLOW_CLIENTS = 16
FLOOD_SIZE = 3 * MAX_CONNECTIONS

JSON = {"Content-Type": "application/json"}
GOOD = {"age": 41, "income": 41000, "city": "north", "owner": True}
BAD_BODIES: list[tuple[dict[str, str], bytes]] = [
    (JSON, b'{"records": [{"age": 41,'),  # truncated JSON
    (JSON, b"{'records': []}"),  # not JSON
    (JSON, b'{"rows": [[NaN, 1, "x", true]]}'),
    (JSON, b"\xff\xfe\xfa"),
    (JSON, b"[" * 50_000),
    (JSON, b"null"),
    (JSON, json.dumps({"records": [{**GOOD, "age": "forty"}]}).encode()),  # wrong type
    (JSON, json.dumps({"records": [{**GOOD, "city": {"x": 1}}]}).encode()),
    (JSON, json.dumps({"records": [{"age": 41}]}).encode()),  # missing fields
    (JSON, json.dumps({"records": [{**GOOD, "ssn": "123"}]}).encode()),  # extra field
    (JSON, json.dumps({"records": [GOOD], "debug": True}).encode()),
    (JSON, json.dumps({"rows": [[1, 2, 3]]}).encode()),
    (JSON, json.dumps({"rows": "all of them"}).encode()),
    (JSON, json.dumps({"records": [GOOD] * 65}).encode()),  # too many rows
    (JSON, b'{"rows": [[1e999, 1, "x", true]]}'),
    ({"Content-Type": "text/csv"}, b"age,income\n41,41000\n"),
    ({}, json.dumps({"records": [GOOD]}).encode()),
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("abuse") / "model"
    AutoencoderOutlierDetector(
        arch="tabular", epochs=2, latent_dim=2, fpr=0.05, verbose=0, random_state=0
    ).fit(mixed_table(400, 0)).save(path)
    return path


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("abuse-logs") / "server.log"
    options = [
        "--max-connections",
        str(MAX_CONNECTIONS),
        "--read-timeout",
        str(READ_TIMEOUT),
        "--max-body-bytes",
        str(MAX_BODY),
        "--max-batch",
        "64",
    ]
    with running_server(model_dir, log, *options) as running:
        yield running


class Tally:
    """Thread-safe counters and the violations seen."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.violations: list[str] = []

    def count(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] += n

    def violation(self, message: str) -> None:
        with self.lock:
            self.violations.append(message[:300])


def _until(stop: threading.Event, tally: Tally, name: str, step: Callable[[], None]) -> None:
    while not stop.is_set():
        try:
            step()
        except Exception as error:  # a bug in the test client itself must not pass silently
            tally.violation(f"{name} client crashed: {type(error).__name__}: {error}")
            return


def _check_error_body(tally: Tally, what: str, status: int, body: bytes) -> None:
    if status == 503:  # uvicorn's own shedding answer
        return
    text = body.decode("utf-8", "replace")
    if LEAKS.search(text):
        tally.violation(f"{what}: the error body leaks internals: {text[:200]}")
    try:
        error = json.loads(text)
    except ValueError:
        tally.violation(f"{what}: the {status} body is not JSON: {text[:200]}")
        return
    if list(error) != ["error"] or "\n" in error["error"]:
        tally.violation(f"{what}: the {status} body is not one error line: {text[:200]}")


def _good_client(
    server: Server, tally: Tally, records: list[dict[str, object]], expected: np.ndarray, seed: int
) -> Callable[[], None]:
    rng = np.random.default_rng(seed)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)

    def step() -> None:
        nonlocal conn
        rows = rng.choice(len(records), size=int(rng.choice([1, 1, 1, 5])), replace=False)
        body = json.dumps({"records": [records[i] for i in rows]})
        started = time.perf_counter()
        try:
            conn.request("POST", "/score", body=body, headers=JSON)
            response = conn.getresponse()
            data = response.read()
        except (ConnectionError, http.client.HTTPException, TimeoutError):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            tally.count("good: connection dropped")
            return
        elapsed = time.perf_counter() - started
        if response.status == 503:
            tally.count("good: shed (503)")
            return
        if response.status != 200:
            tally.violation(f"good request answered {response.status}: {data[:200]!r}")
            return
        scores = [r["score"] for r in json.loads(data)["results"]]
        if scores != expected[rows].tolist():
            tally.violation(f"good request answered wrong scores for rows {rows}")
            return
        tally.count("good: served (200, correct)")
        with tally.lock:
            tally.latencies.append(elapsed)

    return step


def _malformed_client(server: Server, tally: Tally) -> Callable[[], None]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    order = iter(range(10**9))

    def step() -> None:
        nonlocal conn
        headers, body = BAD_BODIES[next(order) % len(BAD_BODIES)]
        try:
            conn.request("POST", "/score", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (ConnectionError, http.client.HTTPException, TimeoutError):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            tally.count("malformed: connection closed")
            return
        tally.count(f"malformed: {response.status}")
        if response.status not in (400, 413, 415, 422, 503):
            tally.violation(f"malformed body {body[:60]!r} answered {response.status}")
        _check_error_body(tally, "malformed", response.status, data)

    return step


def _read_reply(sock: socket.socket, limit: float = 10.0) -> bytes:
    sock.settimeout(limit)
    data = b""
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def _status(reply: bytes) -> int | None:
    return int(reply[9:12]) if reply.startswith(b"HTTP/1.1 ") else None


def _oversized_client(server: Server, tally: Tally) -> Callable[[], None]:
    turn = iter(range(10**9))

    def step() -> None:
        chunked = next(turn) % 2 == 1
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            header = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            header += (
                b"Transfer-Encoding: chunked\r\n\r\n"
                if chunked
                else b"Content-Length: 50000000\r\n\r\n"
            )
            piece = b'[1, 2, "x", true],' * 3000
            try:
                sock.sendall(header + (b"%x\r\n%s\r\n" % (9, b'{"rows":[') if chunked else b""))
                for _ in range(64):  # up to 3 MB, far over the limit
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                    if select.select([sock], [], [], 0)[0]:
                        break  # the server answered
            except OSError:
                pass  # it closed the connection on us: refused
            reply = _read_reply(sock)
        status = _status(reply)
        kind = "chunked" if chunked else "declared"
        tally.count(f"oversized ({kind}): {status or 'closed'}")
        if status not in (None, 413, 503):
            tally.violation(f"oversized {kind} body answered {status}")
        if status == 413:
            _check_error_body(tally, "oversized", 413, reply.split(b"\r\n\r\n", 1)[1])

    return step


def _flood_client(server: Server, tally: Tally) -> Callable[[], None]:
    def step() -> None:
        sockets = []
        try:
            for _ in range(FLOOD_SIZE):
                try:
                    sockets.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
                except OSError:
                    tally.count("flood: connect refused")
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            for sock in sockets:
                status = _status(_read_reply(sock, 10.0))
                tally.count(f"flood: {status or 'closed'}")
                if status not in (None, 200, 503):
                    tally.violation(f"a flood connection was answered {status}")
        finally:
            for sock in sockets:
                sock.close()
        time.sleep(0.5)

    return step


def _slow_client(server: Server, tally: Tally, idle: bool) -> Callable[[], None]:
    request = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" * 20

    def step() -> None:
        opened = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            reply = b""
            for byte in request:
                if select.select([sock], [], [], 0.25)[0]:
                    reply = _read_reply(sock)
                    break
                if not idle:
                    try:
                        sock.send(bytes([byte]))
                    except OSError:
                        break
            lived = time.monotonic() - opened
        status = _status(reply)
        kind = "idle" if idle else "slowloris"
        tally.count(f"{kind}: {status or 'closed'}")
        with tally.lock:
            tally.counts[f"{kind}: longest life (ms)"] = max(
                tally.counts[f"{kind}: longest life (ms)"], int(lived * 1000)
            )
        if lived > READ_TIMEOUT + 3:
            tally.violation(f"a {kind} client was not cut off after {lived:.1f} s")
        if status not in (None, 408, 503):
            tally.violation(f"a {kind} client was answered {status}")

    return step


def _huge_headers_client(server: Server, tally: Tally) -> Callable[[], None]:
    def step() -> None:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            try:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
                for _ in range(200):
                    sock.sendall(b"X-Junk: " + b"j" * 2000 + b"\r\n")
            except OSError:
                pass
            status = _status(_read_reply(sock))
        tally.count(f"huge headers: {status or 'closed'}")
        if status not in (None, 431, 503):
            tally.violation(f"huge headers answered {status}")
        time.sleep(0.2)

    return step


def test_the_service_survives_abuse_and_keeps_answering_correctly(
    server: Server, model_dir: Path
) -> None:
    detector = AutoencoderOutlierDetector.load(model_dir)
    frame = mixed_table(300, 7)
    records = as_records(frame)
    expected = detector.score_samples(frame)
    tally = Tally()
    stop = threading.Event()
    steps: list[tuple[str, Callable[[], None]]] = []
    steps += [
        ("good", _good_client(server, tally, records, expected, seed))
        for seed in range(GOOD_CLIENTS)
    ]
    steps += [("malformed", _malformed_client(server, tally)) for _ in range(2)]
    steps.append(("oversized", _oversized_client(server, tally)))
    steps.append(("flood", _flood_client(server, tally)))
    steps += [("slowloris", _slow_client(server, tally, idle=False)) for _ in range(SLOW_CLIENTS)]
    steps += [("idle", _slow_client(server, tally, idle=True)) for _ in range(4)]
    steps.append(("huge headers", _huge_headers_client(server, tally)))
    threads = [
        threading.Thread(target=_until, args=(stop, tally, name, step), daemon=True)
        for name, step in steps
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(SOAK_SECONDS)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    elapsed = time.monotonic() - started

    served = tally.counts["good: served (200, correct)"]
    latencies = np.sort(tally.latencies) * 1000
    print(f"\nSoak test: {elapsed:.1f} s on 127.0.0.1, limit {MAX_CONNECTIONS} connections")
    print(
        f"good requests: {served:,} served correctly ({served / elapsed:,.0f}/s), "
        f"{tally.counts['good: shed (503)']:,} shed with 503, "
        f"{tally.counts['good: connection dropped']:,} dropped, "
        f"{len(tally.violations):,} violations; latency of served requests p50 "
        f"{np.percentile(latencies, 50):.1f} ms, p99 {np.percentile(latencies, 99):.1f} ms, "
        f"max {latencies.max():.1f} ms"
    )
    for key, value in sorted(tally.counts.items()):
        if not key.startswith("good"):
            print(f"  {key}: {value:,}")
    for violation in tally.violations[:20]:
        print(f"  VIOLATION: {violation}")

    assert not any(thread.is_alive() for thread in threads)
    assert tally.violations == []
    assert server.process.poll() is None  # still up
    assert served >= 100
    good_attempts = (
        served + tally.counts["good: shed (503)"] + tally.counts["good: connection dropped"]
    )
    assert tally.counts["good: connection dropped"] <= 0.01 * good_attempts
    for kind in ("slowloris: 408", "idle: 408", "huge headers: 431"):
        assert tally.counts[kind] > 0, kind
    # After the abuse: healthy and correct.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/score", body=json.dumps({"records": records[:10]}), headers=JSON)
    response = conn.getresponse()
    assert response.status == 200
    assert [r["score"] for r in json.loads(response.read())["results"]] == expected[:10].tolist()
    conn.close()
    assert "Traceback" not in server.log.read_text()
