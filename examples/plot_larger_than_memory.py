"""
Scoring a file larger than memory
=================================

A :class:`hourglass.data.Stream` reads a ``.npy``, Parquet or CSV file (or a folder of
them) piece by piece; every estimator takes one where it takes an array, and the
scores equal those of the same rows in memory. The file here is small, and the pieces
are made tiny so that it is read in many of them.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from hourglass import AutoencoderOutlierDetector
from hourglass.data import Stream

rng = np.random.default_rng(0)
rows = rng.normal(size=(20_000, 8)).astype(np.float32)
rows[::1000] += 6.0  # one row in a thousand is abnormal
folder = Path(tempfile.mkdtemp())
np.save(folder / "rows.npy", rows)

stream = Stream.open(folder / "rows.npy", piece_bytes=64 * 1024)
detector = AutoencoderOutlierDetector(epochs=2, fpr=0.01, verbose=0, random_state=0)
detector.fit(stream)
scores = detector.outlier_score(stream)
assert np.array_equal(scores, detector.outlier_score(rows))  # the same as in memory

# %%
# The planted rows stand out along the file.
fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(scores, linewidth=0.5)
ax.axhline(detector.threshold_, color="black", linestyle="--", label="threshold")
ax.set_xlabel("row of the file")
ax.set_ylabel("outlier score")
ax.legend()
fig.tight_layout()
