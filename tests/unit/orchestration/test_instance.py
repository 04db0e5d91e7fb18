"""The demo, its log and `mesh ui` share one Dagster instance folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestration.instance import DEFAULT_DAGSTER_HOME, dagster_home


def test_the_instance_folder_is_explicit_else_dagster_home_else_the_projects(monkeypatch: pytest.MonkeyPatch,
                                                                             tmp_path: Path) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert dagster_home() == DEFAULT_DAGSTER_HOME.resolve()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "env-home"))
    assert dagster_home() == (tmp_path / "env-home").resolve()  # `mesh demo` no longer ignores it
    assert dagster_home(tmp_path / "given") == (tmp_path / "given").resolve()
