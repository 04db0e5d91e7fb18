"""Products as Iceberg tables: one tagged snapshot per version, no retries, schema evolution, lake-bound paths."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import datamesh.tables as tables_module
from datamesh.errors import ConflictError, PublishError, StorageError
from datamesh.platform import Mesh
from datamesh.publish import apply_retention_rule
from datamesh.settings import Settings
from datamesh.verify import repair, verify
from tests.conftest import WIDGETS_CONTRACT, widgets_table
from tests.integrity import lake_bytes, lake_fingerprint
from tests.unit.datamesh.damaged_files import foreign_insert, iceberg_table, record_path, snapshot_of


def _mesh_with_contract(mesh: Any, contracts_dir: Path, text: str) -> Mesh:
    """The same lake, with the widgets contract replaced by ``text`` (as its owners would change it)."""
    (contracts_dir / "shop" / "widgets.yaml").write_text(text)
    return Mesh.from_settings(mesh.settings)


# -- the table --------------------------------------------------------------------------------


def test_table_carries_the_contracts_comment_and_column_docs(mesh) -> None:  # noqa: ANN001
    contract = mesh.contract("widgets")
    documented = contract.model_copy(update={"columns": [c.model_copy(update={"description": f"The {c.name}."})
                                                         for c in contract.columns]})
    table = mesh.catalog.tables.create(documented)
    assert table.properties["comment"] == "Widgets for sale. Grain: One row per widget. Owner: shop-team."
    assert table.properties["mesh.owner"] == "shop-team"
    assert table.metadata.format_version == 2 and table.location().endswith("/products/shop/widgets")
    fields = table.schema().fields
    assert [(f.name, f.doc) for f in fields] == [(c.name, f"The {c.name}.") for c in contract.columns]
    assert not any(f.required for f in fields)  # `required` is a contract rule, not the format's
    assert [str(f.field_type) for f in fields] == ["long", "string", "double", "timestamp"]


def test_commit_retries_are_off(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    assert iceberg_table(mesh).properties["commit.retry.num-retries"] == "0"


def test_a_publish_is_one_tagged_overwrite_snapshot_naming_its_record(mesh) -> None:  # noqa: ANN001
    m1 = mesh.publish("widgets", widgets_table(3), inputs={"factory": 2})
    m2 = mesh.publish("widgets", widgets_table(4))
    table = iceberg_table(mesh)
    assert snapshot_of(mesh, 2) == m2.snapshot_id == table.metadata.current_snapshot().snapshot_id
    assert snapshot_of(mesh, 1) == m1.snapshot_id and m2.metadata_location == table.metadata_location
    snapshot = table.metadata.snapshot_by_id(m1.snapshot_id)
    summary = snapshot.summary.additional_properties
    assert str(table.metadata.snapshot_by_id(m2.snapshot_id).summary.operation.value) == "overwrite"
    assert summary["mesh.version"] == "1" and summary["mesh.run-id"] == m1.run_id
    assert summary["mesh.record-sha256"] == hashlib.sha256(record_path(mesh, 1).read_bytes()).hexdigest()
    assert summary["mesh.contract-version"] == "1.0.0" and summary["mesh.rows"] == "3"
    assert json.loads(summary["mesh.inputs"]) == {"factory": 2}
    assert summary["mesh.quality"].endswith("rules passed") and summary["mesh.actor"] == "platform"
    assert table.properties["mesh.last-version"] == "2"
    # Each snapshot reads exactly its own version's files.
    for m in (m1, m2):
        files = {mesh.catalog.tables.path_of(f.uri) for f in mesh.catalog.tables.file_infos(table, m.snapshot_id)}
        assert files == set(mesh.catalog.file_paths(m))


def _manifests(table: Any, snapshot_id: int | None = None) -> list[Any]:
    """The manifests a snapshot lists (default: the table's head)."""
    snapshot = table.metadata.current_snapshot() if snapshot_id is None else table.metadata.snapshot_by_id(snapshot_id)
    return snapshot.manifests(io=table.io)


def test_each_snapshot_lists_only_its_own_manifests_however_many_versions(mesh) -> None:  # noqa: ANN001
    """pyiceberg carried every earlier snapshot's manifest of deleted entries forward: the list grew by one per
    publish and every read opened them all. Now each snapshot lists its added and its deleted manifest only,
    and every retained version (the widgets keep 3) still reads exactly its own rows, in pyiceberg and DuckDB."""
    from datamesh.duckdb_engine import connect

    for n in range(1, 8):
        mesh.publish("widgets", widgets_table(n, start=100 * n))
    table = iceberg_table(mesh)
    head = table.metadata.current_snapshot()
    listed = _manifests(table)
    assert len(listed) == 2, [(m.added_files_count, m.existing_files_count, m.deleted_files_count) for m in listed]
    assert {m.added_snapshot_id for m in listed} == {head.snapshot_id}
    assert sorted((m.added_files_count, m.deleted_files_count) for m in listed) == [(0, 1), (1, 0)]
    con = connect(iceberg=True)
    for version in (5, 6, 7):
        m = mesh.catalog.manifest("widgets", version)
        assert len(_manifests(table, m.snapshot_id)) == 2
        ids = con.execute(f"select widget_id from {mesh.catalog.verified_scan(m)} order by 1").fetchall()
        assert [i for (i,) in ids] == list(range(100 * version, 101 * version))
        scanned = table.scan(snapshot_id=m.snapshot_id).to_arrow()
        assert sorted(scanned.column("widget_id").to_pylist()) == list(range(100 * version, 101 * version))


def test_a_publish_after_a_repaired_foreign_write_lists_only_its_own_manifests(mesh) -> None:  # noqa: ANN001
    """An engine appended to the table, repair pointed main back at v2; the next publish replaces v2's files."""
    for n in (3, 4):
        mesh.publish("widgets", widgets_table(n, start=10 * n))
    foreign_insert(mesh)
    repair(mesh.catalog, "widgets")
    m = mesh.publish("widgets", widgets_table(5, start=50))
    table = iceberg_table(mesh)
    assert m.version == 3 and len(_manifests(table, m.snapshot_id)) == 2
    with mesh.session() as s:
        assert s.sql("select min(widget_id), count(*) from widgets").fetchone() == (50, 5)
        assert s.sql("select min(widget_id), count(*) from widgets__v2").fetchone() == (40, 4)


def test_the_commit_keeps_every_parent_manifest_with_a_live_file() -> None:
    """The filter itself, on pyiceberg's overwrite: manifests with added or existing files, unknown counts, or
    written by this very commit stay; only manifests holding nothing but deletions go."""
    from types import SimpleNamespace

    from pyiceberg.table.update.snapshot import _OverwriteFiles

    def manifest(name: str, added: int | None, existing: int | None, deleted: int, by: int = 1) -> Any:
        return SimpleNamespace(name=name, added_files_count=added, existing_files_count=existing,
                               deleted_files_count=deleted, added_snapshot_id=by,
                               has_added_files=lambda: added is None or added > 0,
                               has_existing_files=lambda: existing is None or existing > 0)

    parents = [manifest("added", 1, 0, 0), manifest("existing", 0, 3, 0), manifest("deletes", 0, 0, 1),
               manifest("unknown", None, None, 1), manifest("mine", 0, 0, 1, by=99), manifest("old deletes", 0, 0, 4)]
    producer = _OverwriteFiles.__new__(_OverwriteFiles)
    producer._snapshot_id = 99
    producer._existing_manifests = lambda: parents
    kept = tables_module._without_delete_only_manifests(producer)._existing_manifests()
    assert [m.name for m in kept] == ["added", "existing", "unknown", "mine"]


def test_a_producer_without_the_step_it_wraps_is_a_clear_error() -> None:
    with pytest.raises(StorageError, match="decision 0045.*make install"):
        tables_module._without_delete_only_manifests(object())


def test_a_table_written_before_the_fix_sheds_its_carried_manifests(mesh, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Versions written the old way (every deletion manifest carried forward), then the new way; retention with
    no grace: the carried manifests go once no retained snapshot lists them, nothing still listed is removed,
    and every retained version reads and verifies."""
    with monkeypatch.context() as m:
        m.setattr(tables_module, "_without_delete_only_manifests", lambda producer: producer)
        for n in range(1, 5):
            mesh.publish("widgets", widgets_table(n))
    table = iceberg_table(mesh)
    carried = {f.manifest_path for f in _manifests(table)}
    assert len(carried) == 4  # the old way: v4 listed its file and the deletions of v1, v2 and v3
    for n in range(5, 8):
        mesh.publish("widgets", widgets_table(n))
    apply_retention_rule(mesh.catalog, mesh.contract("widgets"), keep=2, orphan_grace_seconds=0)
    table = iceberg_table(mesh)
    assert sorted(mesh.catalog.versions("widgets")) == [6, 7]
    per_snapshot = [_manifests(table, s.snapshot_id) for s in table.metadata.snapshots]
    assert all(len(listed) == 2 for listed in per_snapshot)
    listed = {f.manifest_path for manifests in per_snapshot for f in manifests}
    for uri in mesh.catalog.tables.table_files(table).metadata:
        assert Path(mesh.catalog.tables.path_of(uri)).exists(), uri
    assert not [p for p in carried - listed if Path(mesh.catalog.tables.path_of(p)).exists()]
    with mesh.session() as s:
        assert s.sql("select count(*) from widgets__v6").fetchone() == (6,)
        assert s.sql("select count(*) from widgets__v7").fetchone() == (7,)
    assert verify(mesh.catalog).ok


def test_retention_reads_each_manifest_once_per_process_and_keeps_no_expired_one(mesh, monkeypatch) -> None:  # noqa: ANN001
    """table_files remembers what the table references now; the next sweep reads only what is new."""
    from pyiceberg.manifest import ManifestFile
    from pyiceberg.table.snapshots import Snapshot

    store = tables_module.TableStore(mesh.lake)  # a process that has read nothing yet
    for n in range(1, 5):
        mesh.publish("widgets", widgets_table(n))
    reads: list[str] = []
    real_entries, real_lists = ManifestFile.fetch_manifest_entry, Snapshot.manifests
    monkeypatch.setattr(ManifestFile, "fetch_manifest_entry",
                        lambda self, *a, **k: reads.append(self.manifest_path) or real_entries(self, *a, **k))
    monkeypatch.setattr(Snapshot, "manifests", lambda self, *a, **k: reads.append(self.manifest_list) or
                        real_lists(self, *a, **k))
    cold = store.table_files(iceberg_table(mesh))
    assert len(reads) == len(cold.metadata) - 1 - len(iceberg_table(mesh).metadata.metadata_log)  # all but JSON
    mesh.publish("widgets", widgets_table(5))
    table = iceberg_table(mesh)
    reads.clear()
    new = table.metadata.current_snapshot()
    warm = store.table_files(table)
    assert set(reads) == {new.manifest_list, *(m.manifest_path for m in real_lists(new, io=table.io))}
    fresh = tables_module.TableStore(mesh.lake).table_files(table)  # a cold store reads every file: same answer
    assert warm.metadata == fresh.metadata
    assert {k: [f.file_path for f in v] for k, v in warm.live.items()} == \
        {k: [f.file_path for f in v] for k, v in fresh.live.items()}
    store = mesh.catalog.tables
    apply_retention_rule(mesh.catalog, mesh.contract("widgets"), keep=1, orphan_grace_seconds=0)
    lists, entries = store._swept[table.metadata.location]
    listed = {s.manifest_list for s in iceberg_table(mesh).metadata.snapshots}
    assert set(lists) == listed  # expired snapshots' lists are forgotten with them
    assert {path for path, _ in entries} <= {m.manifest_path for m in real_lists(
        iceberg_table(mesh).metadata.current_snapshot(), io=table.io)}
    assert all(Path(store.path_of(uri)).exists() for uri in store.table_files(iceberg_table(mesh)).metadata)


def test_a_manifest_of_another_length_is_read_again(mesh) -> None:  # noqa: ANN001
    store = mesh.catalog.tables
    mesh.publish("widgets", widgets_table(3))
    table = iceberg_table(mesh)
    store.table_files(table)
    lists, entries = store._swept[table.metadata.location]
    (path, length), files = next(iter(entries.items()))
    entries.clear()
    entries[(path, length + 1)] = []  # what a same-named manifest of another size would have left
    again = store.table_files(table)
    assert [f.file_path for f in again.live[table.metadata.current_snapshot().snapshot_id]] == \
        [f.file_path for f in files]


# -- the commit point ---------------------------------------------------------------------------


def _commit(mesh: Any, version: int, base: int | None) -> Any:
    paths = mesh.catalog.file_paths(mesh.catalog.manifest("widgets"))
    return mesh.catalog.tables.commit(mesh.contract("widgets"), version, paths, {"mesh.version": str(version)},
                                      base_snapshot_id=base)


@pytest.mark.parametrize(("version", "base"), [(3, 1), (2, 2), (3, None)], ids=["stale_base", "tag_exists", "no_base"])
def test_a_commit_whose_base_moved_is_a_conflict(mesh, version: int, base: int | None) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    mesh.publish("widgets", widgets_table(4))
    before = lake_fingerprint(mesh)
    with pytest.raises(ConflictError, match=f"'widgets': version {version} was committed by another writer"):
        _commit(mesh, version, snapshot_of(mesh, base) if base else None)
    assert lake_fingerprint(mesh) == before


def test_a_concurrent_commit_is_a_conflict_not_a_retry(mesh, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    stale = iceberg_table(mesh)  # a second writer read the table here ...
    mesh.publish("widgets", widgets_table(4))  # ... and the first one committed meanwhile
    assert stale.metadata_location != iceberg_table(mesh).metadata_location
    before = mesh.catalog.tables.state(mesh.contract("widgets"))
    from pyiceberg.table import Transaction

    monkeypatch.setattr(mesh.catalog.tables, "create", lambda contract: stale)
    attempts: list[str] = []
    original = Transaction.commit_transaction
    monkeypatch.setattr(Transaction, "commit_transaction", lambda tx: attempts.append("commit") or original(tx))
    with pytest.raises(ConflictError, match="version 2 was committed by another writer"):
        _commit(mesh, 2, snapshot_of(mesh, 1))
    assert attempts == ["commit"]  # the catalog's compare-and-swap refused it, once, with no retry
    after = mesh.catalog.tables.state(mesh.contract("widgets"))
    assert after.metadata_location == before.metadata_location and after.versions == before.versions


def test_the_commits_transaction_replays_its_updates_once_per_change(mesh, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    import pyiceberg.table as pyiceberg_table

    mesh.publish("widgets", widgets_table(3))
    table = iceberg_table(mesh)
    replays: list[int] = []
    original = pyiceberg_table.update_table_metadata
    monkeypatch.setattr(pyiceberg_table, "update_table_metadata",
                        lambda base, updates, *a, **k: replays.append(len(updates)) or original(base, updates, *a, **k))
    tx = tables_module._transaction(table)
    plain = table.transaction()
    first = tx.table_metadata
    assert tx.table_metadata is first and replays == [0]  # read again, replayed once
    tx.set_properties(**{"mesh.probe": "1"})
    plain.set_properties(**{"mesh.probe": "1"})
    staged = tx.table_metadata
    assert staged is not first and staged.properties["mesh.probe"] == "1" and "mesh.probe" not in first.properties
    assert tx.table_metadata is staged and replays == [0, 1]  # one replay per state of the transaction
    without_clock = {"last_updated_ms"}
    assert staged.model_dump(exclude=without_clock) == plain.table_metadata.model_dump(exclude=without_clock)
    # A commit replaces the table's metadata: the next read replays on the new one, not the old.
    tx.commit_transaction()
    assert table.properties["mesh.probe"] == "1"
    after = tables_module._transaction(table).table_metadata
    assert after.metadata_log and after.metadata_log[-1].metadata_file != first.metadata_log[-1].metadata_file
    tx2 = tables_module._transaction(table)
    tx2.remove_properties("mesh.probe")
    assert "mesh.probe" not in tx2.table_metadata.properties


# -- schema evolution ---------------------------------------------------------------------------

MADE_AT = "  - name: made_at\n    type: timestamp\n"


def test_a_minor_contract_bump_adds_a_column(mesh, contracts_dir: Path) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    text = WIDGETS_CONTRACT.replace("version: 1.0.0", "version: 1.1.0").replace(
        MADE_AT, MADE_AT + "  - name: discount\n    type: double\n    description: Off the list price.\n")
    bumped = _mesh_with_contract(mesh, contracts_dir, text)
    m2 = bumped.publish("widgets", widgets_table(4).append_column("discount", pa.array([0.5] * 4)))
    table = iceberg_table(bumped)
    assert table.schema().find_field("discount").doc == "Off the list price."
    assert table.properties["mesh.contract-version"] == "1.1.0" and m2.contract_version == "1.1.0"
    with bumped.session() as s:
        assert s.sql("select sum(discount) from widgets").fetchone() == (2.0,)
        assert s.sql("select count(*) from widgets__v1").fetchone() == (3,)


WIDGET_ID_INT32 = WIDGETS_CONTRACT.replace("version: 1.0.0", "version: 2.0.0").replace(
    "  - name: widget_id\n    type: int64", "  - name: widget_id\n    type: int32")


def test_an_impossible_type_change_is_refused_without_a_commit(mesh, contracts_dir: Path) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    before = mesh.catalog.tables.state(mesh.contract("widgets")).metadata_location
    changed = _mesh_with_contract(mesh, contracts_dir, WIDGET_ID_INT32)
    data = widgets_table(3).set_column(0, "widget_id", pa.array([1, 2, 3], pa.int32()))
    with pytest.raises(PublishError, match="'widget_id' is int64 in the table and int32 in contract version 2.0.0"):
        changed.publish("widgets", data)
    assert iceberg_table(changed).metadata_location == before
    assert str(iceberg_table(changed).schema().find_field("widget_id").field_type) == "long"


def test_a_refused_schema_change_leaves_nothing_staged(mesh, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    before = lake_fingerprint(mesh)

    def refuse(tx: Any, contract: Any) -> None:
        raise PublishError(f"Product '{contract.id}': its table's schema cannot become this contract's.")

    monkeypatch.setattr(tables_module, "evolve_schema", refuse)
    with pytest.raises(PublishError, match="cannot become"):
        mesh.publish("widgets", widgets_table(4))
    assert lake_fingerprint(mesh) == before


# -- paths are the lake's -------------------------------------------------------------------------


@pytest.mark.parametrize("uri", [
    "file:///etc/passwd",
    "file://{root}",
    "file://{root}x/products/shop/widgets/data/a.parquet",
    "s3://{root}/products/shop/widgets/data/a.parquet",
    "{root}/products/shop/widgets/data/a.parquet",
    "products/shop/widgets/data/a.parquet",
])
def test_path_of_refuses_uris_outside_the_lake(mesh, uri: str) -> None:  # noqa: ANN001
    assert mesh.catalog.tables.path_of(uri.format(root=mesh.lake.root)) is None


def test_path_of_refuses_a_path_that_climbs_out_of_the_lake(mesh) -> None:  # noqa: ANN001
    assert mesh.catalog.tables.path_of(f"file://{mesh.lake.root}/../outside/a.parquet") is None


def test_path_of_a_lake_file(mesh) -> None:  # noqa: ANN001
    path = mesh.lake.path("products", "shop", "widgets", "data", "r", "part-00000.parquet")
    assert mesh.catalog.tables.path_of(mesh.catalog.tables.uri_of(path)) == path


def _copy_of(mesh: Any, tmp_path: Path) -> Mesh:
    copy = tmp_path / "copied-lake"
    shutil.copytree(mesh.lake.root, copy)
    return Mesh.from_settings(Settings(lake_url=str(copy), contracts_dir=mesh.settings.contracts_dir))


def test_a_copied_lake_is_refused_not_read_from_the_original(mesh, tmp_path: Path) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    other = _copy_of(mesh, tmp_path)
    with pytest.raises(StorageError) as info:
        other.catalog.manifest("widgets")
    message = str(info.value)
    assert "'widgets'" in message and f"{mesh.lake.root}/products" in message
    assert "not inside this lake" in message and "Nothing was read or written" in message
    with other.session() as s:
        assert "widgets" in s.broken
    shutil.rmtree(mesh.lake.root)  # without the original, still refused, never read
    with pytest.raises(StorageError, match="'widgets'"):
        other.catalog.manifest("widgets")


def test_repair_in_a_copied_lake_writes_nothing_into_the_original(mesh, tmp_path: Path) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    other = _copy_of(mesh, tmp_path)
    before = lake_bytes(mesh.lake)
    try:
        repair(other.catalog, "widgets")
    except StorageError:
        pass  # refusing is fine; writing into the original is not
    assert lake_bytes(mesh.lake) == before


# -- reading the embedded catalog without SQLAlchemy ---------------------------------------------------


def test_a_read_loads_the_same_table_as_pyiceberg_without_importing_its_sql_catalog(mesh) -> None:  # noqa: ANN001
    import subprocess
    import sys

    mesh.publish("widgets", widgets_table(3))
    mesh.publish("widgets", widgets_table(4))
    raw = mesh.catalog.tables.catalog.load_table(("shop", "widgets"))
    script = (
        "import sys\n"
        "from datamesh.platform import Mesh\n"
        "from datamesh.settings import Settings\n"
        f"mesh = Mesh.from_settings(Settings(lake_url={mesh.settings.lake_url!r}, "
        f"contracts_dir={str(mesh.settings.contracts_dir)!r}))\n"
        "m = mesh.catalog.manifest('widgets')\n"
        "print(m.version, m.metadata_location, mesh.session().sql('select count(*) from widgets').fetchone()[0])\n"
        "print(sorted(n for n in sys.modules if n.startswith(('sqlalchemy', 'pyiceberg.catalog.sql', 'fsspec', 'requests'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == f"2 {raw.metadata_location} 4"
    assert out[1] == "[]"


def test_a_table_read_without_the_sql_catalog_commits_through_it(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    fresh = Mesh.from_settings(mesh.settings)
    table = fresh.catalog.tables.load(fresh.contract("widgets"))
    assert fresh.catalog.tables._catalog is None  # read without opening it
    fresh.publish("widgets", widgets_table(5))
    assert fresh.catalog.manifest("widgets").version == 2 and fresh.catalog.manifest("widgets", 1).row_count == 3
    raw = mesh.catalog.tables.catalog.load_table(("shop", "widgets"))
    assert raw.metadata_location == fresh.catalog.manifest("widgets").metadata_location != table.metadata_location


def test_a_catalog_row_that_is_not_a_table_is_not_read_as_one(mesh) -> None:  # noqa: ANN001
    import sqlite3
    from contextlib import closing

    mesh.publish("widgets", widgets_table(3))
    with closing(sqlite3.connect(mesh.lake.path(tables_module.SQLITE_CATALOG))) as db:
        db.execute("update iceberg_tables set iceberg_type = 'VIEW' where table_name = 'widgets'")
        db.commit()
    fresh = Mesh.from_settings(mesh.settings)
    assert fresh.catalog.tables.load(fresh.contract("widgets")) is None
    assert fresh.catalog.versions("widgets") == []


def test_an_embedded_catalog_that_is_not_sqlite_is_a_clear_error(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    db = Path(mesh.lake.path(tables_module.SQLITE_CATALOG))
    before = lake_bytes(mesh.lake)
    db.write_bytes(b"not a database, " * 100)
    fresh = Mesh.from_settings(mesh.settings)
    with pytest.raises(StorageError, match=r"Cannot read the embedded Iceberg catalog .*iceberg\.db"):
        fresh.catalog.manifest("widgets")
    assert db.read_bytes() == b"not a database, " * 100  # read-only: nothing written
    assert set(lake_bytes(mesh.lake)) == set(before)
