"""Mesh sessions: one broken product never breaks the others; reads serve exactly the committed files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datamesh.errors import BrokenProductError, QueryError, ReadOnlyError, TamperedError, VersionNotFoundError
from tests.conftest import widgets_table
from tests.integrity import lake_fingerprint
from tests.unit.datamesh.damaged_files import edit_record, foreign_insert, forge_version


def _orders(n: int = 2) -> pa.Table:
    return pa.table({"order_id": pa.array(range(n), pa.int64()), "line_number": pa.array([1] * n, pa.int32()),
                     "widget_id": pa.array(range(n), pa.int64())})


def _publish_both(mesh: Any) -> None:
    mesh.publish("widgets", widgets_table(5))
    mesh.publish("widget_orders", _orders(2))


def _foreign_insert(mesh: Any) -> None:
    foreign_insert(mesh)


def _edit_record(mesh: Any) -> None:
    edit_record(mesh, 1, lambda d: d.update(run_id="../../../billing/invoices"))


def _forge_record(mesh: Any) -> None:
    forge_version(mesh, 1, edit=lambda d: d["files"][0].update(
        path=d["files"][0]["path"].replace("/widgets/", "/widget_orders/")))


def _tamper_file(mesh: Any) -> None:
    m = mesh.catalog.manifest("widgets")
    pq.write_table(widgets_table(5, color="blue"), mesh.catalog.file_paths(m)[0])


def _delete_file(mesh: Any) -> None:
    m = mesh.catalog.manifest("widgets")
    os.remove(mesh.catalog.file_paths(m)[0])


BREAKS = [
    (_foreign_insert, BrokenProductError, "is not a published version"),
    (_edit_record, BrokenProductError, "changed after the commit"),
    (_forge_record, BrokenProductError, "not a plain *.parquet file"),
    (_tamper_file, TamperedError, "part-00000.parquet"),
    (_delete_file, TamperedError, "is missing"),
]


@pytest.mark.parametrize(("damage", "error", "fragment"), BREAKS,
                         ids=["foreign_insert", "edited_record", "forged_record", "tampered_file", "deleted_file"])
def test_one_broken_product_never_breaks_the_others(mesh, damage, error: type, fragment: str) -> None:  # noqa: ANN001
    _publish_both(mesh)
    damage(mesh)
    before = lake_fingerprint(mesh)
    with mesh.session() as s:
        assert set(s.broken) == {"widgets"} and "mesh repair widgets" in s.broken["widgets"]
        assert s.views == {"widget_orders": 1}
        assert s.sql("select 1").fetchone() == (1,)
        assert s.sql("select count(*) from widget_orders").fetchone() == (2,)
        assert s.sql("select count(*) from shop.widget_orders").fetchone() == (2,)
        for query in ("select count(*) from widgets", "select color from shop.widgets",
                      "with w as (select * from widgets) select count(*) from w",
                      "select count(*) from widget_orders o join widgets w using (widget_id)",
                      'select 1 from (select 1) where exists (select 1 from "Widgets")'):
            with pytest.raises(error) as info:
                s.sql(query)
            message = str(info.value)
            assert "'widgets'" in message and fragment in message and "mesh repair widgets" in message
        # A CTE that merely shares the name is not a read of the product.
        assert s.sql("with widgets as (select 7 as n) select n from widgets").fetchone() == (7,)
    assert lake_fingerprint(mesh) == before


def test_broken_view_raises_its_message_when_read(mesh) -> None:  # noqa: ANN001
    """The view itself raises (DuckDB error()), even for a read the pre-check cannot see."""
    _publish_both(mesh)
    _foreign_insert(mesh)
    with mesh.session() as s:
        with pytest.raises(duckdb.Error, match="mesh repair widgets"):
            s._con.sql("select count(*) from widgets").fetchall()
        with pytest.raises(duckdb.Error, match="mesh repair widgets"):
            s._con.sql("select color from shop.widgets").fetchall()
        # It keeps the contract's columns, so DESCRIBE and column lists still work.
        assert [c[0] for c in s._con.sql("describe widgets").fetchall()] == ["widget_id", "color", "price", "made_at"]


def test_broken_product_keeps_older_pins_readable(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(5))
    mesh.publish("widgets", widgets_table(6))
    _tamper_file(mesh)  # version 2
    with mesh.session() as s:
        assert "widgets" in s.broken
        assert s.sql("select count(*) from widgets__v1").fetchone() == (5,)
        with pytest.raises(TamperedError, match="version 2"):
            s.sql("select count(*) from widgets__v2")


def test_foreign_insert_keeps_pins_readable_and_its_rows_unserved(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(5))
    foreign_insert(mesh, rows=3)
    with mesh.session() as s:
        assert "is not a published version" in s.broken["widgets"]
        assert s.sql("select count(*), count(*) filter (where color = 'green') from widgets__v1").fetchone() == (5, 0)


def test_pinned_version_with_deleted_file(mesh) -> None:  # noqa: ANN001
    m1 = mesh.publish("widgets", widgets_table(5))
    mesh.publish("widgets", widgets_table(6))
    path = mesh.catalog.file_paths(m1)[0]
    os.remove(path)
    before = lake_fingerprint(mesh)
    with mesh.session() as s:
        assert s.sql("select count(*) from widgets").fetchone() == (6,)
        with pytest.raises(TamperedError) as info:
            s.sql("select count(*) from shop.widgets__v1")
        assert path in str(info.value) and "version 1" in str(info.value)
        with pytest.raises(TamperedError, match="is missing"):
            s.pin("widgets", 1)
    with pytest.raises(TamperedError, match="is missing"):
        mesh.session(pins={"widgets": 1}).sql("select count(*) from widgets")
    assert lake_fingerprint(mesh) == before


@pytest.mark.parametrize("version", [0, -3, True, "1", 1.5])
def test_pin_validates_version(mesh, version: object) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(5))
    with mesh.session() as s:
        with pytest.raises(VersionNotFoundError, match="whole numbers from 1"):
            s.pin("widgets", version)  # type: ignore[arg-type]
    with pytest.raises(VersionNotFoundError, match="whole numbers from 1"):
        mesh.session(pins={"widgets": version})  # type: ignore[dict-item]


def test_pin_of_unknown_version(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(5))
    with mesh.session() as s:
        with pytest.raises(VersionNotFoundError, match="no version 9"):
            s.sql("select * from widgets__v9")
        assert s.sql("select count(*) from widgets__v1").fetchone() == (5,)


def test_pins_by_qualified_name(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(5))
    mesh.publish("widgets", widgets_table(6))
    with mesh.session(pins={"shop.widgets": 1}) as s:
        assert s.views["widgets"] == 1
        assert s.sql("select count(*) from shop.widgets").fetchone() == (5,)


# -- read-only ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("statement", [
    "copy (select 1) to '{lake}/products/shop/widgets/x.csv'",
    "create table t as select 1",
    "attach '{lake}/x.duckdb'",
    "set enable_external_access = true",
    "select 1; drop view widgets",
])
def test_session_is_read_only(mesh, statement: str) -> None:  # noqa: ANN001
    _publish_both(mesh)
    before = lake_fingerprint(mesh)
    with mesh.session() as s:
        with pytest.raises(ReadOnlyError):
            s.sql(statement.format(lake=mesh.lake.root))
        assert s.sql("select count(*) from widgets").fetchone() == (5,)
    assert lake_fingerprint(mesh) == before


def test_session_reads_nothing_outside_the_lake(mesh, tmp_path: Path) -> None:  # noqa: ANN001
    _publish_both(mesh)
    outside = tmp_path / "secret.csv"
    outside.write_text("a\n1\n")
    with mesh.session() as s:
        with pytest.raises(QueryError, match="Permission Error"):
            s.sql(f"select * from read_csv('{outside}')")
        # Inside the lake's products, and views created after the lock (pins), still work.
        assert s.sql("select count(*) from widgets__v1").fetchone() == (5,)
        with pytest.raises(duckdb.Error):
            s._con.execute("SET memory_limit = '10GB'")


def test_views_use_verified_scans(mesh, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    import datamesh.duckdb_engine as engine

    _publish_both(mesh)
    seen: list[str] = []
    original = mesh.catalog.verified_scan
    monkeypatch.setattr(mesh.catalog, "verified_scan", lambda m: seen.append(m.product) or original(m))
    monkeypatch.setattr(mesh.catalog, "file_uris", lambda m: pytest.fail("unverified file list used"))
    monkeypatch.setattr(engine, "read_parquet_sql", lambda uris: pytest.fail("a raw file list was read"))
    with mesh.session() as s:
        assert s.sql("select count(*) from widgets__v1").fetchone() == (5,)
    assert sorted(seen) == ["widget_orders", "widgets", "widgets"]


# -- sessions over some products ------------------------------------------------------------------------


def test_a_session_over_some_products_opens_and_verifies_only_those(mesh, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    _publish_both(mesh)
    mesh.publish("widgets", widgets_table(6))
    seen: list[str] = []
    original = mesh.catalog.verified_scan
    monkeypatch.setattr(mesh.catalog, "verified_scan", lambda m: seen.append(m.product) or original(m))
    with mesh.session(products=["widget_orders"]) as s:
        assert s.views == {"widget_orders": 1} and s.missing == []
        assert s.sql("select count(*) from shop.widget_orders").fetchone() == (2,)
        with pytest.raises(QueryError):
            s.sql("select count(*) from shop.widgets").fetchall()
        assert s.sql("select count(*) from widgets__v1").fetchone() == (5,)  # a pin is still opened on demand
    assert seen == ["widget_orders", "widgets"]
    with mesh.session(pins={"widgets": 1}, products=[]) as s:  # a pinned product is always opened
        assert s.views == {"widgets": 1}


def test_a_broken_product_a_query_names_still_raises_its_own_error(mesh) -> None:  # noqa: ANN001
    from datamesh.duckdb_engine import referenced_products

    _publish_both(mesh)
    _tamper_file(mesh)
    sql = "select count(*) from widgets"
    with mesh.session(products=referenced_products(sql, mesh.contracts)) as s:
        assert set(s.broken) == {"widgets"}
        with pytest.raises(TamperedError, match="part-00000.parquet"):
            s.sql(sql).fetchall()
    with mesh.session(products=referenced_products("select count(*) from widget_orders", mesh.contracts)) as s:
        assert s.broken == {} and s.sql("select count(*) from widget_orders").fetchone() == (2,)


@pytest.mark.parametrize(("sql", "expected"), [
    ("select * from widgets", {"widgets"}),
    ("select * from shop.widgets w join shop.widget_orders o using (widget_id)", {"widgets", "widget_orders"}),
    ("select count(*) from widgets__v2", {"widgets"}),
    ("with w as (select * from widget_orders) select * from w", {"widget_orders"}),
    ("select * from (select widget_id from widgets) where widget_id in (select widget_id from widget_orders)",
     {"widgets", "widget_orders"}),
    ("select 1", set()),
    ("", set()),
    ("select 'it''s', '); drop view widgets; --' from widgets", {"widgets"}),  # quotes stay inside the literal
    ("describe widgets", {"widgets"}),
    ("summarize shop.widget_orders", {"widget_orders"}),
    # None: the session opens every product
    ("select * from not_a_product", None),       # its error suggests the products' names
    ("select * from other.widgets", None),       # not the product's domain
    ("selec * from widgets", None),              # not parsed: the query fails as usual
    ("show tables", None),                       # lists the views
    ("select * from duckdb_views()", None),
    ("select * from information_schema.tables", None),
    ("pragma show_tables", None),
])
def test_referenced_products(mesh, sql: str, expected: set[str] | None) -> None:  # noqa: ANN001
    from datamesh.duckdb_engine import referenced_products

    assert referenced_products(sql, mesh.contracts) == expected


def test_show_tables_through_mesh_query_still_lists_every_product(mesh) -> None:  # noqa: ANN001
    from datamesh.duckdb_engine import referenced_products

    _publish_both(mesh)
    sql = "show tables"
    with mesh.session(products=referenced_products(sql, mesh.contracts)) as s:
        names = {row[0] for row in s.sql(sql).fetchall()}
    assert {"widgets", "widget_orders"} <= names


# -- extensions: signatures checked once per process and file -----------------------------------------------


@pytest.fixture()
def copied_extensions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Path], list[str]]:
    """Copies of the avro and iceberg wheels' files that connect() loads, and the databases that checked a signature."""
    import shutil

    import datamesh.duckdb_engine as engine

    real_path, real_connect = engine.extension_path, engine.duckdb.connect
    copies = {}
    for name in ("avro", "iceberg"):
        copies[name] = tmp_path / f"{name}.duckdb_extension"
        shutil.copyfile(real_path(name), copies[name])
    checked: list[str] = []

    def connect(database: str = ":memory:", config: dict[str, Any] | None = None, **kw: Any) -> Any:  # noqa: ANN401
        if not (config or {}).get("allow_unsigned_extensions"):
            checked.append(database)
        return real_connect(database, config=config or {}, **kw)

    monkeypatch.setattr(engine, "_SIGNATURE_CHECKED", set())
    monkeypatch.setenv("MESH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(engine, "extension_path", lambda name: copies[name])
    monkeypatch.setattr(engine.duckdb, "connect", connect)
    return copies, checked


def _loaded(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("select extension_name from duckdb_extensions() where loaded").fetchall()}


def test_an_extensions_signature_is_checked_once_per_process(copied_extensions) -> None:  # noqa: ANN001
    from datamesh.duckdb_engine import connect

    _, checked = copied_extensions
    first, second, third = (connect(iceberg=True) for _ in range(3))
    assert len(checked) == 1  # one signature-checking database, for all three
    assert all({"avro", "iceberg"} <= _loaded(con) for con in (first, second, third))


def test_a_changed_extension_file_is_checked_again(copied_extensions) -> None:  # noqa: ANN001
    from datamesh.duckdb_engine import connect

    copies, checked = copied_extensions
    connect(iceberg=True)
    os.utime(copies["iceberg"], ns=(1, 1))  # same bytes, another file identity
    assert {"iceberg"} <= _loaded(connect(iceberg=True)) and len(checked) == 2


def test_a_tampered_extension_is_refused_before_any_connection_loads_it(copied_extensions) -> None:  # noqa: ANN001
    from datamesh.duckdb_engine import connect
    from datamesh.errors import StorageError

    copies, checked = copied_extensions
    connect(iceberg=True)
    data = bytearray(copies["iceberg"].read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: code that DuckDB did not sign
    tampered = copies["iceberg"].with_suffix(".new")
    tampered.write_bytes(bytes(data))
    os.replace(tampered, copies["iceberg"])  # a new file: the loaded one stays mapped as it was (never write in place)
    with pytest.raises(StorageError, match=r"iceberg\.duckdb_extension does not load with its signature checked"):
        connect(iceberg=True)
    assert len(checked) == 2


def _new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget what this process checked, as a new process would (the user's record stays)."""
    import datamesh.duckdb_engine as engine

    monkeypatch.setattr(engine, "_SIGNATURE_CHECKED", set())


def test_a_later_process_trusts_the_users_record_of_a_checked_file(copied_extensions, monkeypatch) -> None:  # noqa: ANN001
    from datamesh.duckdb_engine import SIGNATURE_RECORD, cache_dir, connect

    _, checked = copied_extensions
    connect(iceberg=True)
    record = cache_dir() / SIGNATURE_RECORD
    assert record.stat().st_mode & 0o077 == 0  # private to the user
    _new_process(monkeypatch)
    assert {"avro", "iceberg"} <= _loaded(connect(iceberg=True))
    assert len(checked) == 1  # the second process did not check the signatures again


def test_a_file_changed_in_place_with_its_mtime_restored_is_checked_again(copied_extensions, monkeypatch) -> None:  # noqa: ANN001
    """Same path, inode, size and mtime, other bytes: the change time moved, so the record does not cover it."""
    import datamesh.duckdb_engine as engine
    from datamesh.errors import StorageError

    copies, checked = copied_extensions
    fresh = copies["iceberg"].with_name("unloaded.duckdb_extension")
    fresh.write_bytes(copies["iceberg"].read_bytes())  # never loaded by this process: safe to write in place
    monkeypatch.setattr(engine, "extension_path", lambda name: copies["avro"] if name == "avro" else fresh)
    engine._remember({engine._file_identity(copies["avro"]), engine._file_identity(fresh)})  # as if checked
    before = os.stat(fresh)
    with open(fresh, "r+b") as fh:
        fh.seek(before.st_size // 2)
        byte = fh.read(1)
        fh.seek(before.st_size // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    os.utime(fresh, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(fresh)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    _new_process(monkeypatch)
    with pytest.raises(StorageError, match=r"unloaded\.duckdb_extension does not load with its signature checked"):
        connect_iceberg()
    assert len(checked) == 1


def connect_iceberg() -> duckdb.DuckDBPyConnection:
    from datamesh.duckdb_engine import connect

    return connect(iceberg=True)


@pytest.mark.parametrize("loose", ["folder", "record"])
def test_a_record_others_can_write_is_ignored(copied_extensions, monkeypatch, loose: str) -> None:  # noqa: ANN001
    from datamesh.duckdb_engine import SIGNATURE_RECORD, cache_dir

    _, checked = copied_extensions
    connect_iceberg()
    target = cache_dir() if loose == "folder" else cache_dir() / SIGNATURE_RECORD
    target.chmod(0o777 if loose == "folder" else 0o666)
    _new_process(monkeypatch)
    assert {"avro", "iceberg"} <= _loaded(connect_iceberg())
    assert len(checked) == 2  # checked again: the record could have been written by someone else


_V = duckdb.__version__
_DAMAGED_RECORDS = {
    "not_json": b"{not json", "other_duckdb": b'{"duckdb": "0.0.1", "checked": []}', "a_list": b"[]",
    "short_entry": b'{"duckdb": "%s", "checked": [["x", "y"]]}' % _V.encode(), "nul_bytes": b"\0" * 70000,
    "huge_number": b'{"duckdb": "%s", "checked": [["/x", 1, 2, 3, 4, 1e400]]}' % _V.encode(),
    "nul_in_path": b'{"duckdb": "%s", "checked": [["a\\u0000b", 1, 2, 3, 4, 5]]}' % _V.encode(),
    "too_deep": b"[" * 60000,
}


@pytest.mark.parametrize("content", list(_DAMAGED_RECORDS.values()), ids=list(_DAMAGED_RECORDS))
def test_a_damaged_record_only_costs_a_check(copied_extensions, monkeypatch, content: bytes) -> None:  # noqa: ANN001
    from datamesh.duckdb_engine import SIGNATURE_RECORD, cache_dir

    _, checked = copied_extensions
    connect_iceberg()
    (cache_dir() / SIGNATURE_RECORD).write_bytes(content)
    _new_process(monkeypatch)
    assert {"avro", "iceberg"} <= _loaded(connect_iceberg())
    assert len(checked) == 2
    _new_process(monkeypatch)
    connect_iceberg()
    assert len(checked) == 2  # the check rewrote a valid record


def test_no_home_directory_means_no_record_not_an_error(copied_extensions, monkeypatch) -> None:  # noqa: ANN001
    """A container's arbitrary uid: no HOME, no passwd entry. Sessions still open; each process checks."""
    from datamesh.duckdb_engine import cache_dir

    _, checked = copied_extensions
    for name in ("MESH_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert cache_dir() is None
    assert {"avro", "iceberg"} <= _loaded(connect_iceberg())
    _new_process(monkeypatch)
    connect_iceberg()
    assert len(checked) == 2
    monkeypatch.setenv("MESH_CACHE_DIR", "relative/cache")  # would depend on the working directory
    assert cache_dir() is None


def test_the_files_just_checked_always_fit_the_record(copied_extensions, monkeypatch) -> None:  # noqa: ANN001
    import datamesh.duckdb_engine as engine

    copies, checked = copied_extensions
    others = []
    for i in range(80):  # many other environments' files, whose paths sort first
        other = copies["avro"].with_name(f"0-{i:02d}.duckdb_extension")
        other.write_bytes(b"x")
        others.append(engine._file_identity(other))
    engine._remember(set(others))
    connect_iceberg()
    _new_process(monkeypatch)
    connect_iceberg()
    assert len(checked) == 1


def test_a_locked_session_loads_no_extension_file(mesh, tmp_path: Path) -> None:  # noqa: ANN001
    """Sessions may load unsigned files (once checked): after the lock-down, no LOAD of any file works."""
    mesh.publish("widgets", widgets_table(3))
    fake = Path(mesh.lake.path("products")) / "fake.duckdb_extension"
    fake.write_bytes(b"\0" * 4096)
    with mesh.session() as session:
        con = session._con
        assert con.execute("select current_setting('allow_unsigned_extensions')").fetchone()[0]
        for path in (fake, tmp_path / "elsewhere.duckdb_extension"):
            with pytest.raises(duckdb.PermissionException, match="Loading external extensions is disabled"):
                con.execute(f"LOAD '{path}'")
        with pytest.raises(ReadOnlyError):
            session.sql(f"LOAD '{fake}'")


class _Terminal:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize(("stdout", "bar"), [(_Terminal(True), True), (_Terminal(False), False), (None, False)])
def test_the_progress_bar_is_drawn_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch, stdout: Any, bar: bool) -> None:
    """DuckDB's progress bar goes to standard output: on a terminal it helps, in a Dagster compute log, a pipe or a
    file it is noise (a line per redraw), so a connection made there has it off."""
    from datamesh import duckdb_engine

    monkeypatch.setattr(duckdb_engine.sys, "stdout", stdout)
    con = duckdb_engine.connect()
    assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone() == (bar,)
