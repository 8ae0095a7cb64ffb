"""Benchmark: the scoring service under load, single-row tabular requests on loopback.

Trains a tabular outlier detector (on ``tabular/credit_data.csv``, the good
credit applications, when the data directory has it; else on a synthetic
mixed table), starts ``hourglass serve`` in a subprocess on 127.0.0.1, and
sends ``POST /score`` requests of one record each (real rows, each a distinct
JSON body) from a number of concurrent keep-alive connections: 1, 8 and 32 by
default. Each level is bounded in requests and in seconds, after a warm-up.
Every response is checked (status 200 and one result); anything else counts as
an error. Prints throughput and latency percentiles as a markdown table.

The client is a minimal asyncio HTTP/1.1 client in this process (uvloop when
installed), so that measuring costs as little CPU as possible: on a small
machine it shares the cores with the server, and its own cost lowers the
figures. Latency is measured from writing a request to reading its whole
response.

Run: ``python benchmarks/serve_load.py [--data-dir DIR] [--concurrency 1 8 32]
[--requests 5000] [--seconds 20] [--workers 1]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import hourglass
from hourglass import AutoencoderOutlierDetector


def training_table(data_dir: Path | None, seed: int) -> pd.DataFrame:
    """The good credit applications, or a synthetic mixed table without the data."""
    if data_dir is not None and (data_dir / "tabular" / "credit_data.csv").is_file():
        frame = pd.read_csv(data_dir / "tabular" / "credit_data.csv")
        return frame[frame["Status"] == "good"].drop(columns="Status").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    n = 3000
    age = rng.normal(40, 10, n).round()
    return pd.DataFrame(
        {
            "age": age,
            "income": (age * 1000 + rng.normal(0, 2000, n)).round(-2),
            "city": rng.choice(["north", "centre", "south"], n),
            "owner": age + rng.normal(0, 5, n) > 40,
        }
    )


def request_bodies(frame: pd.DataFrame) -> list[bytes]:
    """One ``POST /score`` body per row: ``{"records": [row]}`` (NaN as null)."""
    bodies = []
    for row in frame.to_dict("records"):
        record = {
            str(k): None
            if isinstance(v, float) and np.isnan(v)
            else getattr(v, "item", lambda v=v: v)()
            for k, v in row.items()
        }
        bodies.append(json.dumps({"records": [record]}).encode())
    return bodies


def start_server(model_dir: Path, workers: int, log: Path) -> tuple[subprocess.Popen[str], int]:
    """``hourglass serve`` on a free port; returns the process and the port once it answers."""
    command = [sys.executable, "-m", "hourglass", "serve", str(model_dir), "--port", "0"]
    command += ["--workers", str(workers)]
    with open(log, "w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
    lines: list[str] = []
    assert process.stdout is not None
    threading.Thread(
        target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True
    ).start()
    deadline = time.monotonic() + 120
    port = None
    while port is None:
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"the server did not start:\n{log.read_text()}")
        found = [re.search(r"http://127\.0\.0\.1:(\d+)", line) for line in lines]
        port = next((int(m.group(1)) for m in found if m), None)
        time.sleep(0.05)
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5):
                return process, port
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


async def connection(
    port: int,
    bodies: list[bytes],
    start: int,
    budget: list[int],
    deadline: float,
    latencies: list[float],
    errors: list[str],
) -> None:
    """Send requests on one keep-alive connection while the shared budget lasts."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    index = start
    try:
        while budget[0] > 0 and time.perf_counter() < deadline:
            budget[0] -= 1
            body = bodies[index % len(bodies)]
            index += 1
            request = (
                b"POST /score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            started = time.perf_counter()
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                payload = await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError, AttributeError) as error:
                errors.append(f"connection: {type(error).__name__}")
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            latencies.append(time.perf_counter() - started)
            status = int(head[9:12])
            if status != 200:
                errors.append(f"status {status}")
            elif len(json.loads(payload)["results"]) != 1:
                errors.append("wrong number of results")
    finally:
        writer.close()


async def load_level(
    port: int, bodies: list[bytes], concurrency: int, requests: int, seconds: float
) -> dict[str, Any]:
    """Run one concurrency level; return its measurements."""
    latencies: list[float] = []
    errors: list[str] = []
    budget = [requests]
    started = time.perf_counter()
    await asyncio.gather(
        *(
            connection(port, bodies, i * 997, budget, started + seconds, latencies, errors)
            for i in range(concurrency)
        )
    )
    elapsed = time.perf_counter() - started
    ms = np.sort(np.asarray(latencies)) * 1000
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "seconds": elapsed,
        "throughput": len(latencies) / elapsed,
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = os.environ.get("HOURGLASS_DATA")
    parser.add_argument(
        "--data-dir", type=Path, default=Path(default_data) if default_data else None
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=5000, help="per level (default 5000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="per level, at most")
    parser.add_argument("--warmup", type=int, default=300, help="requests before each level")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run

    frame = training_table(args.data_dir, seed=0)
    source = "credit_data.csv (good applications)" if len(frame.columns) > 4 else "synthetic"
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        detector = AutoencoderOutlierDetector(
            arch="tabular", epochs=args.epochs, random_state=0, verbose=0
        ).fit(frame)
        detector.save(model_dir)
        bodies = request_bodies(frame.sample(frac=1.0, random_state=1))
        process, port = start_server(model_dir, args.workers, Path(tmp) / "server.log")
        # This process holds PyTorch and pandas too: a full garbage collection would stall
        # the client for ~200 ms. Exempt what is allocated so far (the server does the same).
        gc.collect()
        gc.freeze()
        try:
            results = []
            for concurrency in args.concurrency:
                run(load_level(port, bodies, concurrency, args.warmup, args.seconds))
                results.append(
                    run(load_level(port, bodies, concurrency, args.requests, args.seconds))
                )
        finally:
            process.terminate()
            process.wait(timeout=30)

    print(
        f"Scoring service, single-row tabular requests ({source}: {len(frame.columns)} columns), "
        f"hourglass {hourglass.__version__}, {args.workers} server worker(s), "
        f"{os.cpu_count()} CPU cores shared by server and client, Python "
        f"{platform.python_version()}, client on {run.__module__.split('.')[0]}\n"
    )
    print("| concurrency | requests | errors | requests/s | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['concurrency']} | {r['requests']:,} | {r['errors']} | {r['throughput']:,.0f} "
            f"| {r['p50']:.2f} | {r['p99']:.2f} | {r['max']:.1f} |"
        )
    for r in results:
        if r["errors"]:
            print(f"concurrency {r['concurrency']}: errors {r['error_kinds']}")


if __name__ == "__main__":
    main()
