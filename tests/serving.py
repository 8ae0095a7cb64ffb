"""Running ``hourglass serve`` in a subprocess on 127.0.0.1 for the service's tests."""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

#: What an error body must never contain: tracebacks, source files, absolute paths.
LEAKS = re.compile(r"Traceback|File \"|\.py\b|site-packages|/tmp/|/work/|/home/|/usr/")


@dataclass
class Server:
    """A running ``hourglass serve`` process."""

    process: subprocess.Popen[str]
    port: int
    log: Path  # its standard error

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def running_server(model_dir: Path, log: Path, *options: str) -> Iterator[Server]:
    """Start ``hourglass serve model_dir --port 0 options`` and wait until it answers."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "hourglass", "serve", str(model_dir), "--port", "0", *options],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(iter(process.stdout.readline, "")),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    try:
        port = None
        deadline = time.monotonic() + 180  # generous: workers import torch on a busy machine
        while port is None and time.monotonic() < deadline and process.poll() is None:
            found = [re.search(r"http://127\.0\.0\.1:(\d+)", line) for line in lines]
            port = next((int(m.group(1)) for m in found if m), None)
            time.sleep(0.05)
        if port is None:
            raise RuntimeError(f"hourglass serve did not start: {log.read_text()[-2000:]}")
        server = Server(process, port, log)
        healthy = False
        while not healthy and time.monotonic() < deadline and process.poll() is None:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(server.url + "/health", timeout=5) as response,
            ):
                healthy = response.status == 200
            time.sleep(0.05)
        if not healthy:
            raise RuntimeError(f"hourglass serve never answered /health: {log.read_text()[-2000:]}")
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def as_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as JSON-able records (NaN and None become None)."""

    def plain(value: Any) -> Any:
        if hasattr(value, "item"):
            value = value.item()
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return value

    return [{str(k): plain(v) for k, v in row.items()} for row in frame.to_dict("records")]
