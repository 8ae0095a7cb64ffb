"""Test-session settings shared by the whole suite."""

import os

# scikit-learn's estimator battery includes an array-API input check (with plain
# NumPy arrays) that it skips unless SciPy's array-API mode is on; turn it on so
# that the check runs. It must be set before SciPy is first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
