"""Values recorded bit for bit on one CPU, and how a test finds the ones made on its own.

A fixed-seed fit or a saved model's scores are the same bits from run to run, but only on
the same numerics: PyTorch's kernel set (``ATEN_CPU_CAPABILITY``) picks its element-wise
kernels, and the CPU itself picks the matrix and convolution kernels (MKL and oneDNN
choose their code by the CPU's vendor and instruction sets). A test that holds today's
code to values recorded earlier can therefore demand the same bits only of a record made
on the same numerics; anywhere else it compares to float rounding.

A record's numerics are named by :func:`kernel_fingerprint`, a digest of what this
process computes for a fixed set of the operations the families use. Records written
before fingerprints existed carry the CPU vendor instead and match on the vendor and the
kernel set.

Fixture format (JSON)::

    {"note": "...",
     "records": [{"kernels": "AVX512", "cpu": "AuthenticAMD AMD EPYC",
                  "fingerprint": "3f1c...", "values": {...}}, ...]}
"""

from __future__ import annotations

import hashlib
import json
import platform
from functools import cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F


def cpu_description() -> str:
    """The CPU's vendor and model name, e.g. ``"AuthenticAMD AMD EPYC"``."""
    fields: dict[str, str] = {}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    vendor = fields.get("vendor_id", platform.machine())
    return f"{vendor} {fields.get('model name', platform.processor())}".strip()


def _operations(generator: torch.Generator) -> list[torch.Tensor]:
    """Outputs and gradients of the kinds of operation the families train and score with."""

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator) * 2 - 1

    outputs: list[torch.Tensor] = []
    # Matrix products of the shapes of small and wide layers, forward and backward.
    for rows, width, out in ((1, 784, 64), (64, 784, 64), (64, 64, 784), (300, 6, 16), (512, 9, 5)):
        x = uniform(rows, width).requires_grad_()
        weight = uniform(out, width).requires_grad_()
        y = torch.sigmoid(F.linear(x, weight, uniform(out)))
        y.sum().backward()
        outputs += [y, x.grad, weight.grad]
    # Convolutions, both memory layouts, forward and backward.
    for layout in (torch.contiguous_format, torch.channels_last):
        image = uniform(8, 1, 12, 12).contiguous(memory_format=layout).requires_grad_()
        first = uniform(32, 1, 3, 3).contiguous(memory_format=layout).requires_grad_()
        second = uniform(16, 32, 3, 3).contiguous(memory_format=layout).requires_grad_()
        up = uniform(16, 8, 4, 4).contiguous(memory_format=layout).requires_grad_()
        hidden = F.relu(F.conv2d(image, first, stride=2, padding=1))
        code = F.relu(F.conv2d(hidden, second, stride=2, padding=1))
        back = F.conv_transpose2d(code, up, stride=2, padding=1)
        back.square().mean().backward()
        outputs += [back, image.grad, first.grad, second.grad, up.grad]
    # A recurrent layer and attention's pieces.
    gru = torch.nn.GRU(8, 16, batch_first=True)
    with torch.no_grad():
        for parameter in gru.parameters():
            parameter.copy_(uniform(*parameter.shape) * 0.3)
    states, _ = gru(uniform(4, 10, 8))
    outputs += [states, F.layer_norm(states, (16,)), torch.softmax(states @ states.mT, dim=-1)]
    # Element-wise and reducing kernels.
    x = uniform(1000) * 4
    outputs += [x.exp(), x.tanh(), F.softplus(x), x.abs().log1p(), x.sum(), x.square().mean()]
    return outputs


@cache
def kernel_fingerprint() -> str:
    """A digest of this process's numerics: the same bits here mean the same kernels.

    Computed on one thread, as hourglass trains and scores each slice and block; kernels
    given more threads may split their sums.
    """
    digest = hashlib.sha256()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            for tensor in _operations(torch.Generator().manual_seed(0)):
                digest.update(tensor.detach().contiguous().numpy().tobytes())
    finally:
        torch.set_num_threads(threads)
    return digest.hexdigest()[:16]


def find_record(saved: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The values recorded on these numerics and ``True``, else a reference and ``False``.

    The reference (recorded under PyTorch's portable ``DEFAULT`` kernels where there is one)
    agrees with this CPU's results to float rounding only.
    """
    kernels = torch.backends.cpu.get_cpu_capability()
    vendor = cpu_description().split(" ")[0]
    records = saved["records"]
    for record in records:
        if record.get("fingerprint") == kernel_fingerprint():
            return record["values"], True
    for record in records:
        if record.get("fingerprint") is None and (record["cpu"], record["kernels"]) == (
            vendor,
            kernels,
        ):
            return record["values"], True
    portable = [record for record in records if record["kernels"] == "DEFAULT"] or records
    return portable[0]["values"], False


def read_record(fixture: Path) -> tuple[Any, bool]:
    """:func:`find_record` of the JSON fixture file ``fixture``."""
    return find_record(json.loads(fixture.read_text()))


def put_record(saved: dict[str, Any], values: dict[str, Any]) -> None:
    """Record ``values`` for this process's numerics, replacing an earlier record of them."""
    record = {
        "kernels": torch.backends.cpu.get_cpu_capability(),
        "cpu": cpu_description(),
        "fingerprint": kernel_fingerprint(),
        "values": values,
    }
    saved["records"] = [
        kept for kept in saved.get("records", []) if kept.get("fingerprint") != kernel_fingerprint()
    ] + [record]
