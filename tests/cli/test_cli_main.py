"""The ``hourglass`` command itself: version, help, usage errors and error handling.

Everything runs in-process through :func:`hourglass.cli.main`.
"""

from __future__ import annotations

import argparse

import pytest
from sklearn.utils._param_validation import InvalidParameterError as SklearnParameterError

import hourglass
from hourglass.cli import build_parser, main
from hourglass.cli import train as train_verb
from hourglass.exceptions import InvalidInputError, InvalidParameterError

VERBS = ("train", "score", "encode", "demo")

# Options each verb's --help must mention.
VERB_OPTIONS = {
    "train": ("--output", "--latent-dim", "--hidden-dims", "--epochs", "--fpr", "--drop-columns"),
    "score": ("--output", "--threshold", "--fpr", "--contamination", "--drop-columns"),
    "encode": ("--output", "--device", "--drop-columns"),
    "demo": ("--data-dir", "--train-size", "--epochs", "--out", "--seed", "--quiet"),
}


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0

    assert capsys.readouterr().out.strip() == f"hourglass {hourglass.__version__}"


def test_help_lists_every_verb(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("usage: hourglass")
    for verb in VERBS:
        assert verb in out


@pytest.mark.parametrize("verb", VERBS)
def test_verb_help_mentions_its_options(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([verb, "--help"]) == 0

    out = capsys.readouterr().out
    assert out.startswith(f"usage: hourglass {verb}")
    for option in VERB_OPTIONS[verb]:
        assert option in out


def test_no_verb_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2

    err = capsys.readouterr().err
    assert err == (
        "hourglass: error: the following arguments are required: VERB (see 'hourglass --help')\n"
    )


def test_unknown_verb_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fly"]) == 2

    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith("hourglass: error: argument VERB: invalid choice")


def test_build_parser_dispatches_each_verb() -> None:
    parser = build_parser()

    assert isinstance(parser, argparse.ArgumentParser)
    args = parser.parse_args(["encode", "model", "data.npy", "-o", "codes.npy"])
    assert args.verb == "encode"
    assert callable(args.run)


def _failing_train(error: BaseException) -> object:
    def run(args: argparse.Namespace) -> int:
        raise error

    return run


@pytest.mark.parametrize(
    ("error", "code", "prefix"),
    [
        (InvalidInputError("bad data; fix it."), 1, "hourglass train: error: bad data; fix it."),
        # A bad parameter or option value exits as argparse's usage errors do.
        (InvalidParameterError("bad value; fix it."), 2, "hourglass train: error: bad value"),
        (SklearnParameterError("The 'x' parameter..."), 2, "hourglass train: error: The 'x'"),
        (FileNotFoundError("no such file"), 1, "hourglass train: error: no such file"),
        (KeyboardInterrupt(), 130, "hourglass train: interrupted"),
        (
            RuntimeError("boom"),
            1,
            "hourglass train: internal error: RuntimeError: boom. Set HOURGLASS_DEBUG=1",
        ),
    ],
)
def test_errors_become_one_line_and_an_exit_code(
    error: BaseException,
    code: int,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("HOURGLASS_DEBUG", raising=False)
    monkeypatch.setattr(train_verb, "run", _failing_train(error))

    assert main(["train", "data.npy", "-o", "model"]) == code

    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1
    assert captured.err.startswith(prefix)
    assert "Traceback" not in captured.err


def test_hourglass_debug_shows_the_traceback_of_an_internal_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOURGLASS_DEBUG", "1")
    monkeypatch.setattr(train_verb, "run", _failing_train(RuntimeError("boom")))

    assert main(["train", "data.npy", "-o", "model"]) == 1

    err = capsys.readouterr().err
    assert "Traceback" in err
    assert err.splitlines()[-1].startswith("hourglass train: internal error: RuntimeError: boom")


def test_warnings_are_printed_as_one_line(tmp_path, capsys) -> None:
    import numpy as np

    from hourglass.cli import main

    data = tmp_path / "small.npy"
    np.save(data, np.random.default_rng(0).random((100, 8)).astype(np.float32))
    code = main(["train", str(data), "-o", str(tmp_path / "model"), "--epochs", "1", "-q"])
    assert code == 0
    err = capsys.readouterr().err.strip().splitlines()
    warning_lines = [line for line in err if "warning:" in line]
    assert len(warning_lines) == 1
    assert warning_lines[0].startswith("hourglass train: warning: 20 calibration samples")
