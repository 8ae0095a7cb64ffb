"""The scikit-learn estimator battery, run against both estimators."""

from __future__ import annotations

from typing import Any

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from hourglass import Autoencoder, AutoencoderOutlierDetector

# Small and fast settings: the checks fit dozens of times on tiny data.
_FAST = {"latent_dim": 2, "epochs": 2, "batch_size": 16, "verbose": 0, "random_state": 0}

EXPECTED_FAILED_CHECKS: dict[str, str] = {}


def _expected_failed_checks(estimator: Any) -> dict[str, str]:
    return EXPECTED_FAILED_CHECKS


# The battery fits on a few dozen samples: far too few calibration samples for a
# 1% false-positive guarantee, which the detector rightly warns about.
@pytest.mark.filterwarnings("ignore:.*calibration samples cannot guarantee:UserWarning")
@parametrize_with_checks(
    [Autoencoder(**_FAST), AutoencoderOutlierDetector(**_FAST)],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator: Any, check: Any) -> None:
    check(estimator)
