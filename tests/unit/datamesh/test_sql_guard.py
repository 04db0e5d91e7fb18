from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datamesh.errors import QueryError, ReadOnlyError
from datamesh.sql_guard import ensure_read_only, ensure_single_select, ensure_trino_read_only, lock_down
from tests.conftest import widgets_table
from tests.integrity import lake_fingerprint


@pytest.mark.parametrize(
    "sql",
    [
        "select 1",
        "SELECT * FROM widgets WHERE price > 1",
        "with a as (select 1 as x) select * from a",
        "from widgets",
        "values (1), (2)",
        "table widgets",
        "describe widgets",
        "describe select 1",
        "show tables",
        "summarize select 1",
        "pragma version",
        "pragma table_info('widgets')",
        "pivot widgets on color in ('red', 'blue') using count(*)",
        "explain select 1",
        "/* plan */ EXPLAIN /* please */ select count(*) from widgets",
        "select 1; select 2",
        "(select 1) union all (select 2)",
        "select 1 -- trailing comment",
    ],
)
def test_queries_are_allowed(sql: str) -> None:
    ensure_read_only(sql)


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("copy (select 1) to '/tmp/x.csv'", "COPY"),
        ("copy widgets from '/etc/passwd'", "COPY"),
        ("export database '/tmp/x'", "EXPORT"),
        ("import database '/tmp'", "IMPORT"),
        ("attach 'other.db'", "ATTACH"),
        ("detach other", "DETACH"),
        ("install httpfs", "LOAD"),
        ("load '/tmp/evil.duckdb_extension'", "LOAD"),
        ("create table t as select 1", "CREATE"),
        ("create or replace view widgets as select 1", "CREATE"),
        ("create secret s (type s3, key_id 'k', secret 's')", "CREATE"),
        ("insert into t values (1)", "INSERT"),
        ("with c as (select 1) insert into t select * from c", "INSERT"),
        ("update t set a = 1", "UPDATE"),
        ("delete from t", "DELETE"),
        ("merge into t using s on true when matched then delete", "MERGE INTO"),
        ("drop view widgets", "DROP"),
        ("alter table t add column b int", "ALTER"),
        ("set enable_external_access = true", "SET"),
        ("reset memory_limit", "SET"),
        ("use shop", "SET"),
        ("pragma threads = 1", "SET"),
        ("pragma enable_profiling", "PRAGMA"),
        ("call pragma_version()", "CALL"),
        ("checkpoint", "CALL"),
        ("vacuum", "VACUUM"),
        ("begin transaction", "TRANSACTION"),
        ("commit", "TRANSACTION"),
        ("explain analyze select 1", "EXPLAIN ANALYZE"),
        ("explain analyze copy (select 1) to '/tmp/x'", "EXPLAIN ANALYZE"),
        ("explain (format json) select 1", "EXPLAIN"),
        ("explain copy (select 1) to '/tmp/x'", "EXPLAIN"),
        ("prepare p as select 1", "PREPARE"),
        ("pivot widgets on color using count(*)", "PIVOT"),
        ("update extensions", "UPDATE"),
    ],
)
def test_statements_that_could_write_are_refused(sql: str, kind: str) -> None:
    with pytest.raises(ReadOnlyError) as info:
        ensure_read_only(sql)
    message = str(info.value)
    assert "read-only" in message
    assert kind in message
    assert "Traceback" not in message


def test_refusal_names_the_statement_and_what_to_do() -> None:
    with pytest.raises(ReadOnlyError) as info:
        ensure_read_only("select 0; COPY (select 1) TO '/tmp/x.csv'; select 0", where="mesh query")
    message = str(info.value)
    assert message.startswith("mesh query is read-only: statement 2 of 3 is COPY")
    assert "COPY (select 1) TO '/tmp/x.csv'" in message
    assert "mesh publish" in message and "--format csv" in message


def test_long_statements_are_cut_in_messages() -> None:
    sql = "copy (select " + ", ".join(f"c{i}" for i in range(100)) + ") to '/tmp/x.csv'"
    with pytest.raises(ReadOnlyError) as info:
        ensure_read_only(sql)
    assert "…" in str(info.value) and len(str(info.value)) < 600


@pytest.mark.parametrize("sql", ["selec 1", "select from where", "copy (select 1 to"])
def test_a_parse_error_is_a_clear_query_error(sql: str) -> None:
    with pytest.raises(QueryError) as info:
        ensure_read_only(sql)
    assert not isinstance(info.value, ReadOnlyError)
    assert "does not parse" in str(info.value) and "Parser Error" in str(info.value)


@pytest.mark.parametrize("sql", ["", "   ", "-- only a comment"])
def test_no_statement_is_an_error(sql: str) -> None:
    with pytest.raises(QueryError, match="no SQL statement"):
        ensure_read_only(sql)


def test_import_database_reads_nothing_while_parsing(tmp_path: Path) -> None:
    (tmp_path / "schema.sql").write_text("create table t (a int);")
    (tmp_path / "load.sql").write_text("")
    with pytest.raises(ReadOnlyError, match="read files outside the mesh"):
        ensure_read_only(f"import database '{tmp_path}'")


# -- ensure_single_select ---------------------------------------------------------------


def test_single_select() -> None:
    ensure_single_select("select count(*) from t where x > 1", where="SQL rule 'r'")
    with pytest.raises(QueryError, match="exactly one SELECT statement, but .* has 2"):
        ensure_single_select("select 1; select 2", where="SQL rule 'r'")
    with pytest.raises(ReadOnlyError, match="statement 2 of 3 is COPY") as info:
        ensure_single_select("select 0; COPY (select 1) TO '/tmp/x.csv'; select 0", where="SQL rule 'r'",
                             hint="Write one query.")
    assert str(info.value).startswith("SQL rule 'r' must be exactly one SELECT")
    assert str(info.value).endswith("Write one query.")
    with pytest.raises(ReadOnlyError, match="EXPLAIN"):
        ensure_single_select("explain select 1", where="SQL rule 'r'")


# -- lock_down (what DuckDB's sandbox does; see the module docs) ------------------------


@pytest.fixture()
def lake_dir(tmp_path: Path) -> Path:
    lake = tmp_path / "lake"
    (lake / "p").mkdir(parents=True)
    pq.write_table(pa.table({"a": [1, 2]}), lake / "p" / "a.parquet")
    pq.write_table(pa.table({"a": [3]}), lake / "p" / "b.parquet")
    outside = tmp_path / "lakehouse"
    outside.mkdir()
    pq.write_table(pa.table({"a": [9]}), outside / "c.parquet")
    return lake


@pytest.fixture()
def locked(lake_dir: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                              "autoload_known_extensions": False})
    con.execute(f"CREATE VIEW before_lock AS SELECT * FROM read_parquet(['{lake_dir}/p/a.parquet'])")
    lock_down(con, [str(lake_dir)])
    return con


def test_views_inside_the_lake_still_read(locked: duckdb.DuckDBPyConnection, lake_dir: Path) -> None:
    assert locked.execute("select sum(a) from before_lock").fetchone() == (3,)
    # sessions create pinned-version views on demand, after the lock
    locked.execute(f"CREATE VIEW after_lock AS SELECT * FROM read_parquet(['{lake_dir}/p/b.parquet'])")
    assert locked.execute("select sum(a) from after_lock").fetchone() == (3,)
    locked.register("arrow_table", pa.table({"x": [1]}))
    assert locked.execute("select count(*) from arrow_table").fetchone() == (1,)


@pytest.mark.parametrize(
    "sql",
    [
        "select * from read_csv('/etc/passwd')",
        "select * from read_text('/etc/hostname')",
        "select * from glob('/etc/*')",
        "select * from read_parquet('{outside}/c.parquet')",
        "select * from read_parquet('{lake}/../lakehouse/c.parquet')",
        "select * from read_parquet('https://example.com/x.parquet')",
        "copy (select 1) to '{outside}/x.csv'",
        "attach '{outside}/x.db'",
        "load '{outside}/evil.duckdb_extension'",
    ],
)
def test_files_outside_the_lake_are_refused(locked: duckdb.DuckDBPyConnection, lake_dir: Path, sql: str) -> None:
    outside = lake_dir.parent / "lakehouse"
    with pytest.raises(duckdb.PermissionException):
        locked.execute(sql.format(outside=outside, lake=lake_dir))
    assert not (outside / "x.csv").exists() and not (outside / "x.db").exists()


@pytest.mark.parametrize(
    "sql",
    ["SET enable_external_access = true", "SET lock_configuration = false", "RESET allowed_directories",
     "SET allowed_directories = ['/']", "SET memory_limit = '100GB'", "SET allow_unredacted_secrets = true"],
)
def test_settings_cannot_be_changed_after_the_lock(locked: duckdb.DuckDBPyConnection, sql: str) -> None:
    with pytest.raises(duckdb.InvalidInputException, match="configuration has been locked"):
        locked.execute(sql)


def test_lock_down_does_not_make_the_lake_read_only(locked: duckdb.DuckDBPyConnection, lake_dir: Path) -> None:
    """Why ensure_read_only is needed too: DuckDB's allowed folders are writable."""
    locked.execute(f"copy (select 1) to '{lake_dir}/written.csv'")
    assert (lake_dir / "written.csv").exists()


def test_lock_down_is_idempotent(locked: duckdb.DuckDBPyConnection) -> None:
    lock_down(locked, ["/"])  # already locked: left as it is, no error
    assert "/" not in locked.execute("select current_setting('allowed_directories')").fetchone()[0]


def test_secrets_do_not_leak(lake_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datamesh.duckdb_engine import httpfs_extension_path
    from datamesh.errors import StorageError

    try:
        extension = httpfs_extension_path()
    except (StorageError, ImportError):
        pytest.skip("httpfs extension not installed")
    monkeypatch.setenv("MESH_TEST_SECRET", "hunter2")
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                              "autoload_known_extensions": False})
    con.execute(f"LOAD '{extension}'")
    con.execute("CREATE SECRET mesh_lake (TYPE s3, KEY_ID 'AKIDEXAMPLE', SECRET 'topsecretvalue')")
    lock_down(con, [str(lake_dir), "s3://bucket/lake/"])
    with pytest.raises(duckdb.CatalogException):
        con.execute("select getenv('MESH_TEST_SECRET')")
    shown = str(con.execute("select * from duckdb_secrets()").fetchall())
    assert "topsecretvalue" not in shown and "redacted" in shown
    assert os.environ["MESH_TEST_SECRET"] not in shown
    # S3 prefixes work as allowed folders: another bucket or prefix is refused before any request
    for uri in ("s3://other/x.parquet", "s3://bucket/lakehouse/x.parquet", "s3://bucket/x.parquet"):
        with pytest.raises(duckdb.PermissionException):
            con.execute(f"select * from read_parquet('{uri}')")


# -- attacks on a mesh: refused, and not one byte of the lake changes -------------------


@pytest.mark.parametrize(
    "attack",
    [
        "COPY (select 1 as widget_id) TO '{file}' (FORMAT parquet)",
        "select 0; COPY (select 1) TO '{file}'; select 0",
        "EXPORT DATABASE '{lake}/exported'",
        "CREATE OR REPLACE VIEW widgets AS SELECT 1",
        "ATTACH '{lake}/evil.db'",
        "SET enable_external_access = true",
    ],
)
def test_attacks_on_a_session_change_nothing(mesh, attack: str) -> None:  # noqa: ANN001
    manifest = mesh.publish("widgets", widgets_table(5))
    committed = mesh.catalog.file_paths(manifest)[0]
    before = lake_fingerprint(mesh)
    with mesh.session() as session:
        lock_down(session._con, [mesh.lake.root])
        sql = attack.format(file=committed, lake=mesh.lake.root)
        with pytest.raises(ReadOnlyError, match="read-only"):
            ensure_read_only(sql)
        assert session.sql("select count(*) from widgets").fetchone() == (5,)
    assert lake_fingerprint(mesh) == before


def test_a_locked_session_cannot_read_outside_the_lake(mesh, tmp_path: Path) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(5))
    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n")
    before = lake_fingerprint(mesh)
    with mesh.session() as session:
        lock_down(session._con, [mesh.lake.root])
        sql = f"select * from read_csv('{secret}')"
        ensure_read_only(sql)  # a SELECT: the statement check lets it through, the lock does not
        with pytest.raises(duckdb.PermissionException):
            session._con.execute(sql)
        assert session.sql("select count(*) from shop.widgets").fetchone() == (5,)
    assert lake_fingerprint(mesh) == before


# -- Trino (not parsed: one statement, first keyword a query) ---------------------------


@pytest.mark.parametrize(
    "sql",
    ["select 1", "select 1;", " -- note\n WITH a AS (select 1) select * from a", "(select 1)", "show catalogs",
     "describe lake.crm.customers", "values 1", "table lake.crm.customers", "explain select 1",
     "explain (type io) select 1", "select ';' as semicolon", 'select * from "odd;name"'],
)
def test_trino_queries_are_allowed(sql: str) -> None:
    ensure_trino_read_only(sql)


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("insert into t values (1)", "starts with 'INSERT'"),
        ("CREATE TABLE t AS SELECT 1", "starts with 'CREATE'"),
        ("delete from lake.crm.customers", "starts with 'DELETE'"),
        ("call system.sync_partition_metadata('a', 'b', 'FULL')", "starts with 'CALL'"),
        ("/* hi */ drop table x", "starts with 'DROP'"),
        ("explain analyze select 1", "EXPLAIN ANALYZE runs the statement"),
        ("select 1; drop table x", "one statement at a time"),
    ],
)
def test_trino_statements_that_could_write_are_refused(sql: str, fragment: str) -> None:
    with pytest.raises(ReadOnlyError, match=re.escape(fragment)):
        ensure_trino_read_only(sql)


def test_trino_empty_query() -> None:
    with pytest.raises(QueryError, match="no SQL statement"):
        ensure_trino_read_only("  -- nothing")
