"""The demo generator is a producer of source products outside the platform core."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from datamesh.paths import PROJECT_ROOT


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_the_platform_core_does_not_import_the_demo_generator() -> None:
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}:{line} imports {module}"
        for path in sorted((PROJECT_ROOT / "datamesh").rglob("*.py"))
        for line, module in _imported_modules(path)
        if module.split(".")[0] == "demo_sources"
    ]
    assert offenders == []


def test_the_demo_generator_lives_outside_the_core() -> None:
    assert importlib.util.find_spec("datamesh.demo") is None
    assert importlib.util.find_spec("demo_sources.generator") is not None
