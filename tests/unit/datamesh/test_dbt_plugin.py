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
