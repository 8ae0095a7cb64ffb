"""The helper that finds the values recorded on this CPU's numerics (``platform_records``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import platform_records
from platform_records import find_record, kernel_fingerprint, put_record

FIXTURES = Path(__file__).parent / "fixtures"


def test_the_fingerprint_is_computed_on_one_thread_whatever_the_setting() -> None:
    threads = torch.get_num_threads()
    first = kernel_fingerprint()
    kernel_fingerprint.cache_clear()
    try:
        torch.set_num_threads(2)
        assert kernel_fingerprint() == first
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_a_record_of_these_numerics_is_found_and_exact() -> None:
    saved: dict = {"records": [{"kernels": "DEFAULT", "cpu": "x", "fingerprint": "0", "values": 1}]}
    put_record(saved, {"answer": 2})
    put_record(saved, {"answer": 3})  # replaces the record of the same numerics

    assert len(saved["records"]) == 2
    assert find_record(saved) == ({"answer": 3}, True)


def test_a_record_without_fingerprint_matches_on_vendor_and_kernels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kernels = torch.backends.cpu.get_cpu_capability()
    legacy = {"kernels": kernels, "cpu": "SomeVendor", "fingerprint": None, "values": "old"}
    monkeypatch.setattr(platform_records, "cpu_description", lambda: "SomeVendor Some CPU")

    assert find_record({"records": [legacy]}) == ("old", True)
    monkeypatch.setattr(platform_records, "cpu_description", lambda: "OtherVendor Some CPU")
    assert find_record({"records": [legacy]}) == ("old", False)


def test_other_numerics_get_the_portable_record_to_compare_to_rounding() -> None:
    records = [
        {"kernels": kernels, "cpu": "Elsewhere", "fingerprint": f"not-{kernels}", "values": kernels}
        for kernels in ("AVX2", "DEFAULT", "AVX512")
    ]
    assert find_record({"records": records}) == ("DEFAULT", False)


@pytest.mark.parametrize(
    ("fixture", "values"),
    [
        ("zlib_complexity_detector_scores.json", "outlier_score"),
        ("table_distance_detector_scores.json", "outlier_score"),
    ],
)
def test_every_cpu_recorded_agrees_with_the_others_to_rounding(fixture: str, values: str) -> None:
    """What a test on unrecorded numerics relies on: CPUs differ by rounding only."""
    records = json.loads((FIXTURES / fixture).read_text())["records"]
    assert len({record["cpu"] for record in records}) >= 2
    reference = np.asarray(records[0]["values"][values])
    for record in records[1:]:
        np.testing.assert_allclose(record["values"][values], reference, rtol=1e-5, atol=1e-7)
        assert record["values"]["predict"] == records[0]["values"]["predict"]


def test_every_cpu_recorded_fits_the_families_alike_to_rounding() -> None:
    records = json.loads((FIXTURES / "family_digests.json").read_text())["records"]
    reference = records[0]["values"]
    for record in records[1:]:
        assert record["values"].keys() == reference.keys()
        for name, summary in record["values"].items():
            np.testing.assert_allclose(
                summary["first_errors"], reference[name]["first_errors"], rtol=1e-4
            )
