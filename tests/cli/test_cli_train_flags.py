"""``hourglass train`` maps its options to the detector's parameters from one table."""

from __future__ import annotations

import argparse

from hourglass.cli import train
from hourglass.estimators import AutoencoderOutlierDetector


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    train.add_parser(parser.add_subparsers())
    return parser.parse_args(["train", "data.npy", "-o", "model", "--quiet", *argv])


def test_every_detector_parameter_has_an_option() -> None:
    parameters = set(AutoencoderOutlierDetector().get_params())
    assert {flag.parameter for flag in train.FLAGS} == parameters - {"verbose"}


def test_the_options_default_to_the_detectors_defaults_but_a_fixed_seed() -> None:
    expected = AutoencoderOutlierDetector().get_params()
    expected.update(random_state=0, verbose=0)
    assert train.detector_params(_parse()) == expected


def test_options_set_their_parameters() -> None:
    params = train.detector_params(
        _parse(
            "--arch",
            "conv",
            "--hidden-dims",
            "32,16",
            "--categorical-columns",
            "city, owner",
            "--threads",
            "2",
            "--seed",
            "7",
            "--early-stopping",
            "--contamination",
            "0.05",
            "--trim",
            "0.1",
        )
    )
    assert params["arch"] == "conv"
    assert params["hidden_dims"] == (32, 16)
    assert params["categorical_columns"] == ("city", "owner")
    assert params["num_threads"] == 2
    assert params["random_state"] == 7
    assert params["early_stopping"] is True
    assert params["contamination"] == 0.05
    assert params["trim"] == 0.1
    AutoencoderOutlierDetector(**params)._validate_params()
