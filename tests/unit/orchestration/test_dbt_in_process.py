"""dbt run inside this process behaves, to dagster-dbt, as the dbt subprocess did (decision 0042)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import orjson
import pytest
import yaml

from orchestration.dbt_in_process import ERROR, FAILURE, SUCCESS, InProcessDbt

DEADLINE_S = 300  # a generous bound on one tiny dbt build on a busy machine, not a timing


def _project(root: Path, models: dict[str, str]) -> Path:
    """A one-profile dbt-duckdb project whose DuckDB file is a path relative to the project folder."""
    project = root / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(yaml.safe_dump({
        "name": "tiny", "version": "1.0.0", "profile": "tiny", "model-paths": ["models"],
        "models": {"tiny": {"+materialized": "table"}}}))
    (project / "profiles.yml").write_text(yaml.safe_dump({"tiny": {"target": "t", "outputs": {"t": {
        "type": "duckdb", "path": "relative.duckdb", "threads": 1}}}}))
    for name, sql in models.items():
        (project / "models" / f"{name}.sql").write_text(sql)
    return project


def _build(project: Path, *extra: str) -> tuple[InProcessDbt, list[dict]]:
    target = project / "target" / "run"
    process = InProcessDbt(["build", "--project-dir", str(project), "--profiles-dir", str(project),
                            "--target-path", str(target), "--log-path", str(target), "--log-level", "none",
                            "--no-send-anonymous-usage-stats", *extra], cwd=project)
    with process.stdout as lines:
        events = [orjson.loads(line) for line in lines]
    assert process.wait(DEADLINE_S) is not None, "the dbt thread did not end"
    return process, events


def test_a_build_streams_dbts_json_events_and_releases_its_database(tmp_path: Path) -> None:
    import duckdb

    project = _project(tmp_path, {"one": "select 1 as x"})
    before = os.getcwd()
    process, events = _build(project)
    assert process.returncode == SUCCESS, events
    assert os.getcwd() == before
    names = [e["info"]["name"] for e in events]
    assert "LogModelResult" in names and "MainReportVersion" in names
    assert {e["info"]["level"] for e in events} <= {"info", "warn", "error"}  # no debug flood
    finished = next(e for e in events if e["info"]["name"] == "LogModelResult")
    assert finished["data"]["node_info"]["unique_id"] == "model.tiny.one"
    # The profile's relative path is the project's (dbt ran there), and dbt let go of the file.
    assert (project / "relative.duckdb").is_file() and not (tmp_path / "relative.duckdb").exists()
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    assert DuckDBConnectionManager._ENV is None
    with duckdb.connect(str(project / "relative.duckdb")) as conn:  # read-write: nobody else holds it
        assert conn.sql("select x from main.one").fetchall() == [(1,)]


def test_each_build_opens_its_own_duckdb_environment(tmp_path: Path) -> None:
    """A second build in the same process starts dbt-duckdb (and its plugins, which read the run's context)
    afresh: it sees the model the first build did not have."""
    project = _project(tmp_path, {"one": "select 1 as x"})
    assert _build(project)[0].returncode == SUCCESS
    (project / "models" / "two.sql").write_text("select x + 1 as y from {{ ref('one') }}")
    process, events = _build(project)
    assert process.returncode == SUCCESS, events
    import duckdb

    with duckdb.connect(str(project / "relative.duckdb"), read_only=True) as conn:
        assert conn.sql("select y from main.two").fetchall() == [(2,)]


def test_a_failing_model_is_a_failed_build_with_its_error(tmp_path: Path) -> None:
    project = _project(tmp_path, {"broken": "select * from no_such_table"})
    process, events = _build(project)
    assert process.returncode == FAILURE
    errors = [e["info"]["msg"] for e in events if e["info"]["level"] == "error"]
    assert any("no_such_table" in m for m in errors), errors


def test_a_bad_command_is_dbts_error_not_an_exception(tmp_path: Path) -> None:
    project = _project(tmp_path, {"one": "select 1 as x"})
    process, events = _build(project, "--no-such-flag")
    assert process.returncode == ERROR
    assert any(e["info"]["level"] == "error" and "no-such-flag" in e["info"]["msg"] for e in events), events
    assert not (project / "relative.duckdb").exists()


def test_secret_values_are_scrubbed_as_dbts_own_loggers_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_ENV_SECRET_TOKEN", "s3cr3t-value-42")
    project = _project(tmp_path, {"one": "{{ log('token is s3cr3t-value-42', info=True) }} select 1 as x"})
    process, events = _build(project)
    assert process.returncode == SUCCESS
    text = b"\n".join(orjson.dumps(e) for e in events).decode()
    assert "s3cr3t-value-42" not in text and "token is *****" in text


def test_an_interrupt_stops_the_build_before_it_writes(tmp_path: Path) -> None:
    """dagster-dbt forwards a run's termination as SIGINT: dbt stops at its next event, as on ^C."""
    project = _project(tmp_path, {"one": "select 1 as x"})
    target = project / "target" / "run"
    process = InProcessDbt(["build", "--project-dir", str(project), "--profiles-dir", str(project),
                            "--target-path", str(target), "--log-level", "none"], cwd=project)
    process.send_signal(signal.SIGINT)
    list(process.stdout)
    assert process.wait(DEADLINE_S) == ERROR
    import duckdb

    if (project / "relative.duckdb").exists():
        with duckdb.connect(str(project / "relative.duckdb"), read_only=True) as conn:
            assert conn.sql("select count(*) from information_schema.tables where table_name = 'one'").fetchone() == (0,)


def test_the_platforms_resource_runs_its_own_dbt_in_process_and_another_as_a_subprocess(tmp_path: Path) -> None:
    from orchestration.resources import MeshDbtCliResource, dbt_project, dbt_resource

    elsewhere = tmp_path / "bin" / "dbt"
    elsewhere.parent.mkdir()
    elsewhere.write_text("#!/bin/sh\nexit 0\n")
    elsewhere.chmod(0o755)
    assert dbt_resource()._own_dbt
    assert not MeshDbtCliResource(project_dir=dbt_project, dbt_executable=str(elsewhere))._own_dbt


def test_the_resource_streams_an_in_process_build_through_dagster_dbt(tmp_path: Path) -> None:
    """dagster-dbt reads the in-process build as it reads a subprocess: events, success, the command."""
    from dagster_dbt import DbtCliResource

    from orchestration.dbt_in_process import InProcessDbt as Process
    from orchestration.resources import MeshDbtCliResource, dbt_executable

    project = _project(tmp_path, {"one": "select 1 as x"})
    resource = MeshDbtCliResource(project_dir=str(project), profiles_dir=str(project), dbt_executable=dbt_executable())
    assert isinstance(resource, DbtCliResource)
    invocation = resource.cli(["build"], target_path=project / "target" / "run-x")
    assert isinstance(invocation.process, Process)
    events = list(invocation.stream_raw_events())
    assert invocation.get_error() is None
    assert any(e.raw_event["info"]["name"] == "LogModelResult" for e in events)
    assert invocation.dbt_command.startswith("dbt build")
    assert "--target-path" in invocation.dbt_command and (project / "target" / "run-x" / "run_results.json").is_file()
