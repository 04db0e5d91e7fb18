"""The dbt asset hands its run's parse back to the project folder, so the next run need not parse it all again."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

import orchestration.assets.dbt as dbt_asset


def test_the_newest_parse_replaces_the_projects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dbt_asset, "dbt_project", SimpleNamespace(project_dir=str(tmp_path)))
    (tmp_path / "target" / "run-1").mkdir(parents=True)
    (tmp_path / "target" / "partial_parse.msgpack").write_bytes(b"old profile")
    (tmp_path / "target" / "run-1" / "partial_parse.msgpack").write_bytes(b"this run's parse")
    dbt_asset.keep_partial_parse(tmp_path / "target" / "run-1")
    assert (tmp_path / "target" / "partial_parse.msgpack").read_bytes() == b"this run's parse"
    assert sorted(p.name for p in (tmp_path / "target").iterdir()) == ["partial_parse.msgpack", "run-1"]


def test_a_run_that_did_not_parse_leaves_the_project_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dbt_asset, "dbt_project", SimpleNamespace(project_dir=str(tmp_path)))
    (tmp_path / "target" / "run-2").mkdir(parents=True)
    (tmp_path / "target" / "partial_parse.msgpack").write_bytes(b"kept")
    dbt_asset.keep_partial_parse(tmp_path / "target" / "run-2")
    assert (tmp_path / "target" / "partial_parse.msgpack").read_bytes() == b"kept"


def test_the_parse_goes_back_where_the_next_run_takes_it_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both ends of the cache name one file: with $DBT_TARGET_PATH set, the run's parse goes back there and the
    next run's target folder starts from it (before, it went back to target/ while runs read $DBT_TARGET_PATH)."""
    from orchestration.resources import keep_parse_of

    monkeypatch.setattr(dbt_asset, "dbt_project", SimpleNamespace(project_dir=str(tmp_path / "project")))
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "shared"))
    (tmp_path / "shared").mkdir()
    (tmp_path / "run-1").mkdir()
    (tmp_path / "run-1" / "partial_parse.msgpack").write_bytes(b"run 1's parse")
    dbt_asset.keep_partial_parse(tmp_path / "run-1")
    keep_parse_of(tmp_path / "project", tmp_path / "run-2")
    assert (tmp_path / "run-2" / "partial_parse.msgpack").read_bytes() == b"run 1's parse"
    assert not (tmp_path / "project").exists()
