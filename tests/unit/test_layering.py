"""The rooms of the codebase and what each may import (docs/ARCHITECTURE.md), checked on every file."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from datamesh.paths import PROJECT_ROOT

#: room -> top-level packages it must never import (directly or lazily inside a function).
FORBIDDEN: dict[str, set[str]] = {
    "datamesh": {"meshcli", "ml", "orchestration", "demo_sources", "nativestack", "benchmarks", "dagster",
                 "dagster_dbt", "tensorflow", "keras"},
    "ml": {"meshcli", "orchestration", "demo_sources", "nativestack", "benchmarks", "dagster", "dagster_dbt"},
    "demo_sources": {"meshcli", "ml", "orchestration", "nativestack", "benchmarks", "dagster"},
    "nativestack": {"meshcli", "ml", "orchestration", "demo_sources", "benchmarks", "dagster"},
    "orchestration": {"meshcli", "nativestack", "benchmarks"},
}
#: nativestack is a process supervisor: of the platform it may use only the error tree.
# The stack applies the policy derived from the contracts (datamesh.policy and its renderers).
NATIVESTACK_MAY_USE = {"datamesh.errors", "datamesh.policy", "datamesh.policy.render", "datamesh.policy.storage",
                       "datamesh.policy.trino", "datamesh.trino"}


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_room_imports_only_what_it_may(room: str) -> None:
    offenders = []
    for path in sorted((PROJECT_ROOT / room).rglob("*.py")):
        for line, module in imports(path):
            top = module.split(".")[0]
            bad = top in FORBIDDEN[room]
            if room == "nativestack" and top == "datamesh" and module not in NATIVESTACK_MAY_USE:
                bad = True
            if bad:
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{line} imports {module}")
    assert offenders == [], "\n".join(offenders)


def test_the_checker_finds_an_upward_import(tmp_path: Path) -> None:
    planted = tmp_path / "x.py"
    planted.write_text("def f():\n    from orchestration.demo import run_demo\n")
    assert imports(planted) == [(2, "orchestration.demo")]
