"""The dbt plugin's edge: its settings come from the run context file, or the environment alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datamesh.dbt_plugin import read_context
from datamesh.dbt_sources import CONTEXT_FILE
from datamesh.errors import SettingsError


def test_no_context_file_means_the_environment(tmp_path: Path) -> None:
    assert read_context(None) == {}
    assert read_context(str(tmp_path / CONTEXT_FILE)) == {}


def test_context_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / CONTEXT_FILE
    path.write_text(json.dumps({"lake_url": "/x/lake", "actor": "platform", "run_id": "abc", "contracts_dir": None,
                                "secret": "never copied"}))
    assert read_context(str(path)) == {"lake_url": "/x/lake", "actor": "platform", "run_id": "abc"}


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", json.dumps({"lake_url": 3})])
def test_a_malformed_context_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / CONTEXT_FILE
    path.write_text(content)
    with pytest.raises(SettingsError, match="context"):
        read_context(str(path))


def test_the_context_file_is_in_dbts_target_folder_not_in_the_profile(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    """The profile names no per-run path (dbt would re-parse the project on every run): the plugin finds
    the run's context in $DBT_TARGET_PATH, dbt's default target folder without it, or its explicit config."""
    from datamesh.dbt_plugin import context_file
    from datamesh.paths import DBT_PROJECT_DIR

    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "run-1"))
    assert context_file({}) == str(tmp_path / "run-1" / CONTEXT_FILE)
    assert context_file({"context_file": "/elsewhere/c.json"}) == "/elsewhere/c.json"
    monkeypatch.delenv("DBT_TARGET_PATH")
    assert context_file({}) == str(Path("target") / CONTEXT_FILE)
    profile = (DBT_PROJECT_DIR / "profiles.yml").read_text()
    assert "env_var('DBT_TARGET_PATH'" not in profile


def test_the_invocations_own_target_folder_comes_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """dbt run inside the orchestrator's process has its target folder as a flag only (decision 0042):
    that folder wins over a $DBT_TARGET_PATH the process happens to have; the plugin config still wins over both."""
    from datamesh.dbt_plugin import context_file

    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "stale"))
    assert context_file({}, str(tmp_path / "run-2")) == str(tmp_path / "run-2" / CONTEXT_FILE)
    assert context_file({"context_file": "/elsewhere/c.json"}, str(tmp_path / "run-2")) == "/elsewhere/c.json"
