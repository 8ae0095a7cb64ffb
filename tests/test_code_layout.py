"""The package's layout rules: family-specific code lives with its family.

Outside ``hourglass/families`` (and the networks in ``hourglass/nn``), no code
compares ``arch`` or ``arch_`` to a family's name or tests ``isinstance`` against a
family's network class; the shared estimator stays small; no function is long.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hourglass.families import ARCHITECTURES

SOURCE = Path(__file__).resolve().parents[1] / "src" / "hourglass"
FAMILY_CODE = (SOURCE / "families", SOURCE / "nn")
FAMILY_NETWORKS = {
    "ConvAutoencoder",
    "DenseAutoencoder",
    "InvariantAutoencoder",
    "SequenceAutoencoder",
    "TabularAutoencoder",
    "VariationalAutoencoder",
}
#: The most lines of one function or method.
MAX_FUNCTION_LINES = 120
#: The most lines of the estimators' shared base module.
MAX_BASE_LINES = 450


def _shared_modules() -> list[Path]:
    return [
        path
        for path in sorted(SOURCE.rglob("*.py"))
        if not any(path.is_relative_to(folder) for folder in FAMILY_CODE)
    ]


def _names_arch(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr in ("arch", "arch_")) or (
        isinstance(node, ast.Name) and node.id in ("arch", "arch_")
    )


def _family_names_in(node: ast.AST) -> set[str]:
    return {
        sub.value
        for sub in ast.walk(node)
        if isinstance(sub, ast.Constant) and sub.value in ARCHITECTURES
    }


def _family_branches(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_names_arch(side) for side in sides) and _family_names_in(node):
                found.append(f"{path.name}:{node.lineno} compares arch to a family name")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "isinstance"
            and len(node.args) == 2
        ):
            classes = {
                sub.id if isinstance(sub, ast.Name) else getattr(sub, "attr", "")
                for sub in ast.walk(node.args[1])
            }
            if classes & FAMILY_NETWORKS:
                found.append(f"{path.name}:{node.lineno} tests isinstance on a family network")
    return found


def test_no_family_branches_outside_the_families() -> None:
    branches = [branch for path in _shared_modules() for branch in _family_branches(path)]
    assert branches == []


def test_the_checker_finds_a_family_branch(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "if model.arch_ == 'tabular':\n    pass\nisinstance(network, TabularAutoencoder)\n"
    )
    assert len(_family_branches(sample)) == 2


def test_the_shared_estimator_stays_small() -> None:
    lines = (SOURCE / "estimators" / "_base.py").read_text().count("\n")
    assert lines <= MAX_BASE_LINES


@pytest.mark.parametrize("path", sorted(SOURCE.rglob("*.py")), ids=lambda p: p.name)
def test_no_function_is_longer_than_the_limit(path: Path) -> None:
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []
