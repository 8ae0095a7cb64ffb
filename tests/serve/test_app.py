"""The scoring service over HTTP: a real ``hourglass serve`` process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import select
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from helpers import bar_images, mixed_table
from hourglass import AutoencoderOutlierDetector
from hourglass.serve import ScoringModel, create_app
from serving import LEAKS, Server, as_records, running_server

MAX_BATCH = 64
MAX_BODY = 100_000
READ_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "table-model"
    AutoencoderOutlierDetector(
        arch="tabular", epochs=2, latent_dim=2, fpr=0.05, verbose=0, random_state=0
    ).fit(mixed_table(400, 0)).save(path)
    return path


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "image-model"
    AutoencoderOutlierDetector(latent_dim=4, epochs=2, fpr=0.1, verbose=0, random_state=0).fit(
        bar_images(300, 0)
    ).save(path)
    return path


@pytest.fixture(scope="module")
def table_server(table_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("logs") / "table-server.log"
    options = ["--max-batch", str(MAX_BATCH), "--max-body-bytes", str(MAX_BODY)]
    with running_server(table_dir, log, *options, "--read-timeout", str(READ_TIMEOUT)) as server:
        yield server
    assert "Traceback" not in log.read_text()  # nothing went unexpectedly wrong


@pytest.fixture(scope="module")
def image_server(image_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(image_dir, tmp_path_factory.mktemp("logs") / "image.log") as server:
        yield server


@pytest.fixture(scope="module")
def client(table_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=table_server.url, timeout=30) as http:
        yield http


def test_table_scores_equal_the_library_s(client: httpx.Client, table_dir: Path) -> None:
    detector = AutoencoderOutlierDetector.load(table_dir)
    frame = mixed_table(40, 2)
    response = client.post("/score", json={"records": as_records(frame)})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    results = body["results"]
    assert body["threshold"] == detector.threshold_
    assert body["metric"] == "distance"
    np.testing.assert_array_equal([r["score"] for r in results], detector.score_samples(frame))
    np.testing.assert_array_equal([r["p_value"] for r in results], detector.p_values(frame))
    np.testing.assert_array_equal([r["outlier"] for r in results], detector.predict(frame) == -1)
    explained = detector.explain(frame)
    for result, (_, row) in zip(results, explained.iterrows(), strict=True):
        best = row.sort_values(ascending=False, kind="stable")[:3]
        assert [c["column"] for c in result["top_columns"]] == list(best.index)
        assert [c["contribution"] for c in result["top_columns"]] == list(best)
    rows = [[r[c] for c in explained.columns] for r in as_records(frame)]
    assert client.post("/score", json={"rows": rows}).json() == body


def test_concurrent_requests_each_get_their_own_scores(
    client: httpx.Client, table_dir: Path
) -> None:
    detector = AutoencoderOutlierDetector.load(table_dir)
    frame = mixed_table(64, 5)
    expected = detector.score_samples(frame)
    records = as_records(frame)

    def score(i: int) -> float:
        response = client.post("/score", json={"records": [records[i]]})
        assert response.status_code == 200
        return float(response.json()["results"][0]["score"])

    with ThreadPoolExecutor(16) as pool:
        scores = list(pool.map(score, range(len(records))))
    np.testing.assert_array_equal(scores, expected)


def test_image_scores_equal_the_library_s(image_server: Server, image_dir: Path) -> None:
    detector = AutoencoderOutlierDetector.load(image_dir)
    images = bar_images(12, 3)
    images[0] = 255 - images[0]  # an outlier
    response = httpx.post(image_server.url + "/score", json={"rows": images.tolist()})
    assert response.status_code == 200
    results = response.json()["results"]
    np.testing.assert_array_equal([r["score"] for r in results], detector.score_samples(images))
    np.testing.assert_array_equal([r["outlier"] for r in results], detector.predict(images) == -1)
    assert results[0]["outlier"]
    assert "top_columns" not in results[0]
    metadata = httpx.get(image_server.url + "/metadata").json()
    assert metadata["model"]["input"] == {"kind": "images", "shape": [12, 12], "dtype": "uint8"}


def test_health_metadata_and_openapi(client: httpx.Client, table_dir: Path) -> None:
    detector = AutoencoderOutlierDetector.load(table_dir)
    assert client.get("/health").json() == {
        "status": "ok",
        "model": "AutoencoderOutlierDetector",
        "family": "tabular",
    }
    metadata = client.get("/metadata").json()
    card = metadata["model"]
    assert card["family"] == "tabular"
    assert card["threshold"] == detector.threshold_
    assert card["n_calibration"] == detector.n_calibration_
    assert [c["name"] for c in card["input"]["columns"]] == ["age", "income", "city", "owner"]
    assert card["input"]["columns"][2]["values"] == detector.table_schema_.vocabularies[0]
    assert len(card["weights_sha256"]) == 64
    assert metadata["limits"]["max_batch"] == MAX_BATCH
    assert metadata["limits"]["max_body_bytes"] == MAX_BODY
    assert metadata["limits"]["read_timeout_s"] == READ_TIMEOUT
    assert not LEAKS.search(json.dumps(metadata))  # no file paths
    schema = client.get("/openapi.json").json()
    score = schema["paths"]["/score"]["post"]
    request = score["requestBody"]["content"]["application/json"]["schema"]
    record = request["properties"]["records"]["items"]
    assert record["required"] == ["age", "income", "city", "owner"]
    assert record["properties"]["age"]["type"] == ["number", "null"]
    assert record["additionalProperties"] is False
    assert request["properties"]["records"]["maxItems"] == MAX_BATCH
    assert {"200", "400", "413", "415", "422"} <= set(score["responses"])
    assert (
        "top_columns"
        in (
            score["responses"]["200"]["content"]["application/json"]["schema"]["properties"][
                "results"
            ]["items"]["properties"]
        )
    )
    assert client.get("/docs").status_code == 200


GOOD = {"age": 41, "income": 41000, "city": "north", "owner": True}
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status"),
    [
        ("POST", "/score", JSON, b'{"records": [', 400),
        ("POST", "/score", JSON, b"", 400),
        ("POST", "/score", JSON, b'{"rows": [[NaN, 1, "x", true]]}', 400),
        ("POST", "/score", JSON, b"\xff\xfe\x00garbage", 400),
        ("POST", "/score", JSON, b"[" * 90_000, 400),
        ("POST", "/score", JSON, b'"just a string"', 422),
        ("POST", "/score", JSON, b'{"records": [], "extra": 1}', 422),
        ("POST", "/score", JSON, json.dumps({"records": [{"age": 1}]}).encode(), 422),
        ("POST", "/score", JSON, json.dumps({"records": [{**GOOD, "id": 3}]}).encode(), 422),
        ("POST", "/score", JSON, json.dumps({"records": [{**GOOD, "age": "old"}]}).encode(), 422),
        ("POST", "/score", JSON, json.dumps({"records": [{**GOOD, "city": [1]}]}).encode(), 422),
        ("POST", "/score", JSON, json.dumps({"rows": [[1, 2]]}).encode(), 422),
        ("POST", "/score", JSON, b'{"rows": [[1e999, 2, "x", null]]}', 422),
        ("POST", "/score", JSON, json.dumps({"records": [GOOD] * (MAX_BATCH + 1)}).encode(), 413),
        (
            "POST",
            "/score",
            {"content-type": "text/plain"},
            json.dumps({"records": [GOOD]}).encode(),
            415,
        ),
        ("POST", "/score", {}, json.dumps({"records": [GOOD]}).encode(), 415),
        ("GET", "/score", {}, b"", 405),
        ("DELETE", "/health", {}, b"", 405),
        ("GET", "/nowhere/../../etc/passwd", {}, b"", 404),
        ("POST", "/score", JSON, b" " * (MAX_BODY + 1), 413),
    ],
)
def test_bad_requests_get_a_4xx_with_a_one_line_json_error(
    client: httpx.Client, method: str, path: str, headers: dict[str, str], body: bytes, status: int
) -> None:
    response = client.request(method, path, headers=headers, content=body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()
    assert list(error) == ["error"]
    assert "\n" not in error["error"]
    assert len(error["error"]) < 600
    assert not LEAKS.search(response.text)
    # The service stays up and keeps answering correctly.
    assert client.post("/score", json={"records": [GOOD]}).status_code == 200


def test_a_declared_oversized_body_is_refused_unread(table_server: Server) -> None:
    with socket.create_connection(("127.0.0.1", table_server.port), timeout=10) as conn:
        conn.sendall(
            b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000\r\n\r\n"
        )
        reply = _read_all(conn)
    assert reply.startswith(b"HTTP/1.1 413")
    assert b"connection: close" in reply.lower()
    assert b"limit of 100,000 bytes" in reply


def test_a_streamed_oversized_body_is_cut_off(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"rows": ['
        for _ in range(1000):
            yield b'[1, 2, "x", true],' * 20

    try:
        response = client.post("/score", headers=JSON, content=chunks())
    except httpx.TransportError:  # the server may close while the client still sends
        return
    assert response.status_code == 413
    assert "limit of 100,000 bytes" in response.json()["error"]


def test_slow_and_idle_clients_are_cut_off(table_server: Server) -> None:
    started = time.monotonic()
    with (
        socket.create_connection(("127.0.0.1", table_server.port), timeout=10) as slow,
        socket.create_connection(("127.0.0.1", table_server.port), timeout=10) as idle,
    ):
        for byte in b"POST /score HTTP/1.1\r\nHost: x\r\n" * 10:
            if select.select([slow], [], [], 0.1)[0]:  # the server answered: stop sending
                break
            slow.send(bytes([byte]))
        # Meanwhile the service answers others.
        assert httpx.get(table_server.url + "/health").status_code == 200
        reply, quiet = _read_all(slow), _read_all(idle)
    assert time.monotonic() - started < READ_TIMEOUT + 4
    for answer in (reply, quiet):
        assert answer.startswith(b"HTTP/1.1 408")
        assert b"did not arrive within 2 seconds" in answer


def test_huge_headers_are_refused(table_server: Server) -> None:
    with socket.create_connection(("127.0.0.1", table_server.port), timeout=10) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(200):
                conn.sendall(b"X-Padding: " + b"a" * 1000 + b"\r\n")
        except OSError:  # closed by the server mid-way
            pass
        reply = _read_all(conn)
    assert reply.startswith(b"HTTP/1.1 431")


def test_malformed_http_gets_400(table_server: Server) -> None:
    with socket.create_connection(("127.0.0.1", table_server.port), timeout=10) as conn:
        conn.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        reply = _read_all(conn)
    assert reply.startswith(b"HTTP/1.1 400")
    assert not LEAKS.search(reply.decode("latin-1"))


def _read_all(conn: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := conn.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def test_unexpected_errors_are_a_generic_500(
    table_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    model = ScoringModel.load(table_dir)

    def broken(batch: object) -> object:
        raise RuntimeError(f"secret detail from {table_dir}")

    monkeypatch.setattr(model, "score_prepared", broken)

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(model), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
            return await http.post("/score", json={"records": [GOOD]})

    response = asyncio.run(post())
    assert response.status_code == 500
    assert response.json() == {
        "error": "Internal error while answering this request; it was logged on the server."
    }
    assert "secret detail" in caplog.text  # logged on the server, never sent
