"""dbt run inside this process behaves, to dagster-dbt, as the dbt subprocess did (decision 0042)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import orjson
import pytest
import yaml

from orchestration.dbt_in_process import ERROR, FAILURE, SUCCESS, InProcessDbt, console_level, dbt_flags, shown_levels
from tests.unit.orchestration import recording_dbt_plugin

DEADLINE_S = 300  # a generous bound on one tiny dbt build on a busy machine, not a timing


def _project(root: Path, models: dict[str, str], *, plugin: bool = False) -> Path:
    """A one-profile dbt-duckdb project whose DuckDB file is a path relative to the project folder
    (with ``plugin``, the recording plugin: it notes every start of dbt-duckdb's environment)."""
    project = root / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(yaml.safe_dump({
        "name": "tiny", "version": "1.0.0", "profile": "tiny", "model-paths": ["models"],
        "models": {"tiny": {"+materialized": "table"}}}))
    output: dict = {"type": "duckdb", "path": "relative.duckdb", "threads": 1}
    if plugin:
        output["plugins"] = [{"module": recording_dbt_plugin.__name__, "alias": "rec", "config": {"k": "v"}}]
    (project / "profiles.yml").write_text(yaml.safe_dump({"tiny": {"target": "t", "outputs": {"t": output}}}))
    for name, sql in models.items():
        (project / "models" / f"{name}.sql").write_text(sql)
    return project


def _build(project: Path, *extra: str, run: str = "run") -> tuple[InProcessDbt, list[dict]]:
    target = project / "target" / run
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
    """dbt-duckdb keeps its environment (and its plugins) for the life of a process and reuses it for the
    same profile: each in-process build starts its own, so the plugin starts again and sees that build's
    target folder (where the orchestrator put that run's context)."""
    recording_dbt_plugin.STARTS.clear()
    project = _project(tmp_path, {"one": "select 1 as x"}, plugin=True)
    assert _build(project, run="run-1")[0].returncode == SUCCESS
    assert _build(project, run="run-2")[0].returncode == SUCCESS
    assert [s["target_path"] for s in recording_dbt_plugin.STARTS] == [
        str(project / "target" / "run-1"), str(project / "target" / "run-2")]
    assert all(s["config"] == {"k": "v"} for s in recording_dbt_plugin.STARTS)


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


def test_an_interrupt_stops_a_running_query_and_the_build(tmp_path: Path) -> None:
    """dagster-dbt forwards a run's termination as SIGINT while a node runs: its query is cancelled, dbt
    stops (no later node runs), the thread ends, and this process's folder is its own again."""
    project = _project(tmp_path, {
        "slow": "select sum(i * i % 7) as s from range(100000000000) t(i)",  # minutes of work
        "after": "select * from {{ ref('slow') }}"})
    target = project / "target" / "run"
    before = os.getcwd()
    process = InProcessDbt(["build", "--project-dir", str(project), "--profiles-dir", str(project),
                            "--target-path", str(target), "--log-level", "none", "--threads", "1"], cwd=project)
    seen: list[dict] = []
    for line in process.stdout:
        event = orjson.loads(line)
        seen.append(event)
        if event["info"]["name"] == "LogStartLine" and "slow" in event["info"]["msg"]:
            process.send_signal(signal.SIGINT)
    assert process.wait(DEADLINE_S) != SUCCESS
    assert os.getcwd() == before
    names = [e["info"]["name"] for e in seen]
    assert "LogStartLine" in names, names
    assert not any(e["info"]["name"] == "LogModelResult" and "after" in e["info"]["msg"] and
                   e["data"].get("status") == "success" for e in seen)
    import duckdb
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    assert DuckDBConnectionManager._ENV is None
    with duckdb.connect(str(project / "relative.duckdb"), read_only=True) as conn:
        assert conn.sql("select count(*) from information_schema.tables where table_name in ('slow', 'after')"
                        ).fetchone() == (0,)
    # The next build in this process is not held up by the stopped one.
    (project / "models" / "slow.sql").write_text("select 1 as s")
    assert _build(project, run="again")[0].returncode == SUCCESS


def test_wait_with_a_timeout_raises_as_popens_does(tmp_path: Path) -> None:
    import subprocess

    project = _project(tmp_path, {"slow": "select sum(i * i % 7) as s from range(100000000000) t(i)"})
    process = InProcessDbt(["build", "--project-dir", str(project), "--profiles-dir", str(project),
                            "--target-path", str(project / "target" / "run"), "--log-level", "none"], cwd=project)
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(0.01)
    process.send_signal(signal.SIGINT)
    list(process.stdout)
    assert process.wait(DEADLINE_S) != SUCCESS


def test_the_callers_own_flags_win_and_a_subcommand_gets_only_flags_it_has(tmp_path: Path) -> None:
    """As dagster-dbt's DBT_* variables lost to a caller's flags, the flags that replace them do; `dbt deps`
    has no --target-path. The console is always off, after any --log-level of the caller's."""
    common = {"target_path": tmp_path / "t", "project_dir": tmp_path, "profiles_dir": str(tmp_path),
              "indirect_selection": "empty"}
    build = dbt_flags(["build", "--indirect-selection", "cautious", "--target-path", "mine"], **common)
    assert "--indirect-selection" not in build and "--target-path" not in build
    assert build[build.index("--log-path") + 1] == str(tmp_path / "t") and build[-2:] == ["--log-level", "none"]
    assert dbt_flags(["build", "--send-anonymous-usage-stats"], **common).count("--no-send-anonymous-usage-stats") == 0
    deps = dbt_flags(["deps"], **common)
    assert "--target-path" not in deps and "--project-dir" in deps and deps[-2:] == ["--log-level", "none"]


@pytest.mark.parametrize(("args", "env", "level"), [
    (["build"], None, "info"), (["--debug", "build"], None, "debug"), (["build", "-q"], None, "error"),
    (["build", "--log-level", "warn"], None, "warn"), (["build", "--log-level=debug"], None, "debug"),
    (["build"], "warn", "warn"), (["build"], "nonsense", "info")])
def test_the_events_passed_on_are_those_dbts_console_would_print(monkeypatch: pytest.MonkeyPatch, args: list[str],
                                                                 env: str | None, level: str) -> None:
    if env is None:
        monkeypatch.delenv("DBT_LOG_LEVEL", raising=False)
    else:
        monkeypatch.setenv("DBT_LOG_LEVEL", env)
    assert console_level(args) == level
    assert "error" in shown_levels(level) and ("debug" in shown_levels(level)) == (level == "debug")


def test_a_usage_error_is_one_scrubbed_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_ENV_SECRET_FLAG", "s3cr3t-flag-77")
    project = _project(tmp_path, {"one": "select 1 as x"})
    process, events = _build(project, "--s3cr3t-flag-77")
    assert process.returncode == ERROR
    errors = [e["info"]["msg"] for e in events if e["info"]["level"] == "error"]
    assert len(errors) == 1 and "*****" in errors[0] and "s3cr3t-flag-77" not in errors[0], errors


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
