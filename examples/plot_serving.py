"""
Serving a saved detector over HTTP
==================================

``hourglass serve MODEL_DIR`` puts a saved outlier detector behind HTTP:
``POST /score`` takes rows as JSON and answers, per row, the score, the outlier
flag, the p-value and, for tables, the columns that contributed most. This
example saves a small table model, starts the service in a subprocess (as
``hourglass serve`` would be started in production), waits for ``GET /health``,
posts a few rows, and draws the scores it returns. The ``finally`` block stops
the service whatever happens. The service needs the ``serve`` extra
(``pip install "hourglass-ae[serve]"``).
"""

import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hourglass import AutoencoderOutlierDetector

rng = np.random.default_rng(0)
size = rng.uniform(30, 120, 1000)
train = pd.DataFrame(
    {
        "size_m2": size.round(1),
        "rooms": np.maximum(1, np.round(size / 25 + rng.normal(0, 0.5, 1000))),
        "rent": (size * 14 * rng.lognormal(0, 0.1, 1000)).round(),
        "city": rng.choice(["Lyon", "Lille", "Nantes"], 1000),
    }
)
model_dir = Path(tempfile.mkdtemp()) / "flats"
AutoencoderOutlierDetector(epochs=10, fpr=0.05, verbose=0, random_state=0).fit(train).save(
    model_dir
)

# %%
# Start the service on a free port (``--port 0``); it prints its address once it
# listens. Then wait until ``GET /health`` answers.
process = subprocess.Popen(
    [sys.executable, "-m", "hourglass", "serve", str(model_dir), "--port", "0"],
    stdout=subprocess.PIPE,
    stderr=subprocess.DEVNULL,
    text=True,
)
try:
    url = None
    for line in process.stdout:  # blocks until a line is printed or the service exits
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        if found:
            url = found.group(0)
            break
    if url is None:
        raise RuntimeError(f"hourglass serve exited with code {process.wait()}")
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if response.status == 200:
                    break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    print("serving at", url)

    # %%
    # Post five flats: three ordinary ones, one far too expensive for its size and
    # one with too many rooms.
    rows = [
        {"size_m2": 45.0, "rooms": 2, "rent": 640, "city": "Lyon"},
        {"size_m2": 80.0, "rooms": 3, "rent": 1100, "city": "Lille"},
        {"size_m2": 100.0, "rooms": 4, "rent": 1420, "city": "Nantes"},
        {"size_m2": 40.0, "rooms": 2, "rent": 3000, "city": "Lyon"},
        {"size_m2": 35.0, "rooms": 7, "rent": 500, "city": "Nantes"},
    ]
    request = urllib.request.Request(
        f"{url}/score",
        data=json.dumps({"records": rows}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
finally:
    process.terminate()  # a graceful shutdown, as Ctrl-C or a container's stop
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.stdout.close()

# %%
# The answer names the metric and the threshold, then gives one result per row. The
# too-expensive flat's result in full:
print(f"metric {answer['metric']}, threshold {answer['threshold']:.4f}")
print(json.dumps(answer["results"][3], indent=1))

# %%
# ``score`` follows scikit-learn's ``score_samples`` (the lower, the more abnormal);
# a row is an ``outlier`` when ``-score`` is above the threshold. The bars show
# ``-score`` for each posted flat.
results = answer["results"]
scores = [-result["score"] for result in results]
colours = ["tab:red" if result["outlier"] else "tab:blue" for result in results]
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.bar([f"flat {i}" for i in range(len(rows))], scores, color=colours)
ax.axhline(answer["threshold"], color="black", linestyle="--", label="threshold")
ax.set_ylabel("-score (the higher, the more abnormal)")
ax.legend()
fig.tight_layout()
