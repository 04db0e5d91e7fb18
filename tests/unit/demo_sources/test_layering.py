"""The demo generator is a producer of source products outside the platform core."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_the_demo_generator_lives_outside_the_core() -> None:
    assert importlib.util.find_spec("datamesh.demo") is None
    assert importlib.util.find_spec("demo_sources.generator") is not None
