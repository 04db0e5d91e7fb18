"""The instance's event log (orchestration/event_log.py): Dagster's SQLite event log, its connections kept open."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from orchestration import event_log
from orchestration.event_log import PooledSqliteEventLogStorage
from orchestration.instance import persistent_instance


@dg.asset(check_specs=[dg.AssetCheckSpec(f"rule_{i}", asset="widgets") for i in range(20)])
def widgets():  # noqa: ANN201
    yield dg.MaterializeResult(metadata={"rows": 3})
    for i in range(20):
        yield dg.AssetCheckResult(check_name=f"rule_{i}", passed=i != 7)


def _connects(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQLite databases the pooled storage opens a connection to, in order (from its engines' connect events)."""
    opened: list[str] = []
    real = sa.create_engine

    def counting(url: str, **kwargs: object) -> sa.Engine:
        engine = real(url, **kwargs)
        shard = Path(str(engine.url.database)).stem
        sa.event.listen(engine, "connect", lambda *_: opened.append(shard))
        return engine

    monkeypatch.setattr(sa, "create_engine", counting)  # event_log.py imports sqlalchemy when it makes an engine
    return opened


def test_the_demo_instance_stores_events_through_the_pooled_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened = _connects(monkeypatch)
    instance = persistent_instance(tmp_path / "home")
    assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
    assert Path(instance.event_log_storage._base_dir) == (tmp_path / "home" / "history" / "runs").resolve()
    result = dg.materialize([widgets], instance=instance, raise_on_error=False)
    run_id = result.run_id
    # dozens of events (20 check results, planned events, step events), each several statements:
    # one connection per database, kept open
    assert len(instance.all_logs(run_id)) > 40
    # one or two per database (Dagster's own class opens one per statement)
    assert sorted(set(opened)) == sorted(["index", run_id])
    assert opened.count("index") <= 2 and opened.count(run_id) <= 2, opened
    checks = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("widgets"), "rule_7"), limit=5)
    assert [c.status.value for c in checks] == ["FAILED"]
    instance.dispose()


def test_what_it_stores_is_what_dagsters_own_class_reads(tmp_path: Path) -> None:
    """Same files, same schema: Dagster's default storage on the same folder reads every event back."""
    instance = persistent_instance(tmp_path / "home")
    run_id = dg.materialize([widgets], instance=instance, raise_on_error=False).run_id
    ours = [(e.dagster_event_type, e.step_key, e.message) for e in instance.all_logs(run_id)]
    instance.dispose()
    theirs_storage = SqliteEventLogStorage(str(tmp_path / "home" / "history" / "runs"))
    theirs = [(e.dagster_event_type, e.step_key, e.message) for e in theirs_storage.get_logs_for_run(run_id)]
    theirs_storage.dispose()
    assert ours == theirs and len(ours) > 40


def test_each_commit_still_changes_the_run_database_so_a_watcher_sees_it(tmp_path: Path) -> None:
    """The UI's live view of a run watches the run's .db file: events written through open connections
    must still reach that file at each write (Dagster's WAL is checkpointed) and wake the watcher."""
    instance = persistent_instance(tmp_path / "home")
    run_id = dg.materialize([widgets], instance=instance, raise_on_error=False).run_id
    watcher = SqliteEventLogStorage(str(tmp_path / "home" / "history" / "runs"))
    seen: list[str] = []
    arrived = threading.Event()

    def callback(entry: object, cursor: str) -> None:
        event = getattr(entry, "dagster_event", None)
        seen.append(str(getattr(event, "message", None) or getattr(entry, "user_message", "")))
        if "hello from the test" in seen[-1]:
            arrived.set()

    count = len(instance.all_logs(run_id))
    watcher.watch(run_id, None, callback)
    try:
        time.sleep(0.2)  # let the observer thread start watching (it reads from the start, so nothing is missed)
        instance.report_engine_event("hello from the test", instance.get_run_by_id(run_id))
        assert arrived.wait(timeout=60), f"the watcher saw {len(seen)} of {count + 1} events, not the new one"
    finally:
        watcher.dispose()
        instance.dispose()


def test_least_recently_used_databases_are_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_log, "MAX_OPEN_DATABASES", 3)
    storage = PooledSqliteEventLogStorage(str(tmp_path / "runs"))
    for shard in ["a", "b", "c", "d", "a"]:
        with storage.run_connection(shard) as conn:
            conn.execute(sa.text("select 1"))
    assert [shard for _pid, shard in storage._engines] == ["c", "d", "a"]
    kept = dict(storage._engines)
    disposed: list[str] = []
    for (_pid, shard), engine in kept.items():
        sa.event.listen(engine.pool, "close", lambda *_a, shard=shard: disposed.append(shard))
    storage.wipe()
    assert storage._engines == {} and set(disposed) == {"a", "c", "d"}  # closed, then the files deleted
    assert not (tmp_path / "runs" / "a.db").exists() and (tmp_path / "runs" / "index.db").exists()
    with storage.run_connection("b") as conn:  # a new database after the wipe works as before
        assert conn.execute(sa.text("select count(*) from event_logs")).scalar() == 0
    storage.dispose()
    assert storage._engines == {}


def test_a_moved_instance_folder_gets_its_own_event_log(tmp_path: Path) -> None:
    import shutil

    first = tmp_path / "first"
    persistent_instance(first).dispose()
    moved = tmp_path / "moved"
    shutil.copytree(first, moved)
    instance = persistent_instance(moved)
    assert Path(instance.event_log_storage._base_dir) == (moved / "history" / "runs").resolve()
    assert str(first) not in (moved / "dagster.yaml").read_text()
    instance.dispose()


def test_a_home_with_any_characters_round_trips(tmp_path: Path) -> None:
    home = tmp_path / "we'ird \"hôme\" 😀 # : x"
    instance = persistent_instance(home)
    assert Path(instance.event_log_storage._base_dir) == (home / "history" / "runs").resolve()
    instance.dispose()
    again = persistent_instance(home)  # not rewritten: it names this folder
    again.dispose()


def test_has_table_asks_the_open_index_and_remembers_only_present_tables(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Dagster asks before every asset-check event whether the index has the checks table; the answer
    comes through the open engine (no new connection), a present table is remembered, an absent one is asked again."""
    instance = persistent_instance(tmp_path / "home")
    storage = instance.event_log_storage
    assert isinstance(storage, PooledSqliteEventLogStorage)
    assert storage.has_table("asset_check_executions") and storage.supports_asset_checks
    opened = _connects(monkeypatch)
    dagster_engines: list[str] = []
    import dagster._core.storage.event_log.sqlite.sqlite_event_log as dagster_sqlite

    real = dagster_sqlite.create_engine
    monkeypatch.setattr(dagster_sqlite, "create_engine", lambda *a, **k: dagster_engines.append("x") or real(*a, **k))
    for _ in range(50):
        assert storage.supports_asset_checks
    assert opened == [] and dagster_engines == []
    assert not storage.has_table("mesh_not_yet")
    with storage.index_connection() as conn:
        conn.execute(sa.text("CREATE TABLE mesh_not_yet (x INTEGER)"))
    assert storage.has_table("mesh_not_yet")  # the absent answer was not kept
    storage.wipe()  # empties the index (its tables stay), deletes the run databases
    assert storage.has_table("asset_check_executions") and not storage.has_table("mesh_never")
    instance.dispose()
