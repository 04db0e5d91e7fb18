"""Deletes are confined to the product's own prefix: retention, orphan sweep and abort."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from datamesh.errors import BrokenProductError, PublishError, StorageError, VersionNotFoundError
from datamesh.publish import Publisher, apply_retention_rule
from datamesh.verify import repair, verify
from tests.conftest import widgets_table
from tests.integrity import lake_bytes, lake_fingerprint
from tests.unit.datamesh.damaged_files import (
    edit_record,
    foreign_insert,
    forge_version,
    iceberg_table,
    record_path,
    snapshot_of,
)


def _orders(n: int = 2) -> pa.Table:
    return pa.table({"order_id": pa.array(range(n), pa.int64()), "line_number": pa.array([1] * n, pa.int32()),
                     "widget_id": pa.array(range(n), pa.int64())})


def _two_products(mesh: Any) -> None:
    for n in (3, 4, 5):
        mesh.publish("widgets", widgets_table(n))
    mesh.publish("widget_orders", _orders())
    # Something of another domain that a traversal could reach.
    invoices = Path(mesh.lake.path("products", "billing", "invoices"))
    invoices.mkdir(parents=True)
    (invoices / "part-00000.parquet").write_bytes(b"invoices")


def data_files_of(mesh: Any, snapshot_id: int) -> list[str]:
    table = iceberg_table(mesh)
    return [mesh.catalog.tables.path_of(f.file_path) for f in mesh.catalog.tables.live_files(table, snapshot_id)]


def _orders_run_id(mesh: Any) -> str:
    return mesh.catalog.manifest("widget_orders").run_id


def _set_run_id(run_id: Callable[[Any], str]) -> Callable[[Any], Callable[[dict[str, Any]], None]]:
    return lambda mesh: (lambda doc: doc.update(run_id=run_id(mesh)))


def _other_products_file(mesh: Any) -> Callable[[dict[str, Any]], None]:
    orders = mesh.catalog.manifest("widget_orders")
    return lambda doc: doc.update(files=[f.model_dump() for f in orders.files], row_count=orders.row_count)


RETAINED_RECORD_ATTACKS: dict[str, Callable[[Any], Callable[[dict[str, Any]], None]]] = {
    "orders": _set_run_id(lambda mesh: f"../../widget_orders/data/{_orders_run_id(mesh)}"),
    "billing": _set_run_id(lambda mesh: "../../../billing/invoices"),
    "lake_root": _set_run_id(lambda mesh: "../../../.."),
    "absolute": _set_run_id(lambda mesh: "/etc"),
    "other_products_file": _other_products_file,
}


@pytest.mark.parametrize("forged", [True, False], ids=["forged_commit", "edited_record"])
@pytest.mark.parametrize("target", list(RETAINED_RECORD_ATTACKS))
def test_tampered_record_makes_retention_refuse(mesh, target: str, forged: bool) -> None:  # noqa: ANN001
    _two_products(mesh)
    oldest = mesh.catalog.versions("widgets")[0]
    edit = RETAINED_RECORD_ATTACKS[target](mesh)
    if forged:  # the record rewritten AND a snapshot carrying its hash: only validation of the record stops it
        forge_version(mesh, oldest, edit=edit)
    else:
        edit_record(mesh, oldest, edit)
    before = lake_fingerprint(mesh)
    with pytest.raises(BrokenProductError) as info:
        apply_retention_rule(mesh.catalog, mesh.contract("widgets"), keep=1, orphan_grace_seconds=0)
    message = str(info.value)
    assert "'widgets'" in message and "mesh repair widgets" in message
    assert ("not a plain" if forged else "changed after the commit") in message, message
    assert lake_fingerprint(mesh) == before  # nothing of any product, nor of the lake, was deleted


@pytest.mark.parametrize("forged", [True, False], ids=["forged_commit", "edited_record"])
@pytest.mark.parametrize("target", list(RETAINED_RECORD_ATTACKS))
def test_a_tampered_kept_version_deletes_nothing_it_or_another_product_needs(mesh, target: str, forged: bool) -> None:  # noqa: ANN001
    """A kept version's run and record hash are checked, not its files: whatever the attack, retention either
    refuses with nothing changed or removes only the expired version; the kept version's real data stays."""
    _two_products(mesh)
    kept = mesh.catalog.versions("widgets")[1]
    paths = mesh.catalog.paths("widgets")
    real = mesh.catalog.manifest("widgets", kept)
    real_files = mesh.catalog.file_paths(real)
    edit = RETAINED_RECORD_ATTACKS[target](mesh)
    if forged:  # the tag moved to a snapshot consistent with the rewritten record; the real one is untagged
        forge_version(mesh, kept, edit=edit)
    else:
        edit_record(mesh, kept, edit)

    def outside() -> dict[str, str]:
        return {k: v for k, v in lake_bytes(mesh.lake).items() if not k.startswith(("_catalog/", "products/shop/"))}

    before, others = lake_fingerprint(mesh), outside()
    try:
        removed = apply_retention_rule(mesh.catalog, mesh.contract("widgets"), keep=2, orphan_grace_seconds=0)
    except BrokenProductError as exc:
        assert "'widgets'" in str(exc) and "mesh repair widgets" in str(exc)
        assert lake_fingerprint(mesh) == before
        refused = True
    else:
        assert removed == [1] and (forged and target == "other_products_file"), "only a fully consistent forgery"
        refused = False
    assert refused or mesh.catalog.versions("widgets") == [2, 3]
    assert all(Path(p).exists() for p in real_files) and Path(paths.record(real.run_id)).exists()
    assert Path(paths.run_dir(real.run_id)).is_dir()
    assert outside() == others  # nothing of another product or domain
    assert mesh.catalog.manifest("widgets").version == 3


def test_retention_refuses_unsafe_paths_even_past_validation(mesh, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Second line of defence: with manifest validation bypassed, the confined delete still refuses."""
    _two_products(mesh)
    real_manifest = mesh.catalog.manifest
    oldest = mesh.catalog.versions("widgets")[0]
    evil = f"../../widget_orders/data/{_orders_run_id(mesh)}"

    def unvalidated(product_id: str, version: int | None = None) -> Any:
        m = real_manifest(product_id, version)
        return m.model_copy(update={"run_id": evil}) if version == oldest else m

    monkeypatch.setattr(mesh.catalog, "manifest", unvalidated)
    before = lake_fingerprint(mesh)
    with pytest.raises(StorageError, match="Refused to delete .*not strictly inside"):
        apply_retention_rule(mesh.catalog, mesh.contract("widgets"), keep=1)
    monkeypatch.undo()
    assert lake_fingerprint(mesh) == before  # every path is checked before the first delete


def test_a_version_cannot_claim_a_live_versions_run(mesh) -> None:  # noqa: ANN001
    for n in (3, 4, 5):
        mesh.publish("widgets", widgets_table(n))
    live = mesh.catalog.manifest("widgets")
    # v1's snapshot now names v3's run and record (with its true hash): the record says version 3.
    forge_version(mesh, 1, summary={"mesh.run-id": live.run_id,
                                    "mesh.record-sha256": hashlib.sha256(record_path(mesh, 3).read_bytes()).hexdigest()})
    before = lake_fingerprint(mesh)
    with pytest.raises(BrokenProductError, match="its version is 3"):
        apply_retention_rule(mesh.catalog, mesh.contract("widgets"), keep=1)
    assert lake_fingerprint(mesh) == before


def test_retention_keeps_shared_run_dirs(mesh, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Second line of defence: a doomed version claiming a live version's run dir never deletes the live data."""
    for n in (3, 4, 5):
        mesh.publish("widgets", widgets_table(n))
    versions = mesh.catalog.versions("widgets")
    live = mesh.catalog.manifest("widgets", versions[-1])
    real_manifest = mesh.catalog.manifest

    def unvalidated(product_id: str, version: int | None = None) -> Any:
        m = real_manifest(product_id, version)
        return m.model_copy(update={"run_id": live.run_id, "files": live.files}) if version == versions[0] else m

    monkeypatch.setattr(mesh.catalog, "manifest", unvalidated)
    removed = apply_retention_rule(mesh.catalog, mesh.contract("widgets"), keep=1)
    monkeypatch.undo()
    assert removed == versions[:-1]
    assert all(Path(p).exists() for p in mesh.catalog.file_paths(live))
    assert record_path(mesh, versions[-1]).exists()
    with mesh.session() as s:
        assert s.sql("select count(*) from widgets").fetchone()[0] == 5  # type: ignore[index]


def test_retention_keeps_the_newest_versions_and_removes_the_rest(mesh) -> None:  # noqa: ANN001
    manifests = [mesh.publish("widgets", widgets_table(n)) for n in (3, 4, 5)]
    paths = mesh.catalog.paths("widgets")
    expired = [snapshot_of(mesh, 1), snapshot_of(mesh, 2)]
    assert apply_retention_rule(mesh.catalog, mesh.contract("widgets"), keep=1) == [1, 2]
    assert mesh.catalog.versions("widgets") == [3]
    table = iceberg_table(mesh)
    assert {"v1", "v2"}.isdisjoint(table.metadata.refs)
    assert not {s.snapshot_id for s in table.metadata.snapshots} & set(expired)
    for m in manifests[:2]:
        assert not Path(paths.run_dir(m.run_id)).exists() and not Path(paths.record(m.run_id)).exists()
    assert Path(paths.run_dir(manifests[2].run_id)).exists() and Path(paths.record(manifests[2].run_id)).exists()
    with pytest.raises(VersionNotFoundError, match="Available versions: 3"):
        mesh.catalog.manifest("widgets", 1)
    with mesh.session() as s:
        assert s.sql("select count(*) from widgets").fetchone() == (5,)


def test_orphan_sweep_removes_whatever_nothing_references(mesh) -> None:  # noqa: ANN001
    for n in (3, 4, 5):
        mesh.publish("widgets", widgets_table(n))
    paths = mesh.catalog.paths("widgets")
    old = datetime.fromtimestamp(time.time() - 60, UTC).strftime("%Y%m%dT%H%M%SZ")
    stray_run = Path(paths.run_dir(f"{old}-deadbeef"))
    stray_run.mkdir()
    (stray_run / "part-00000.parquet").write_bytes(b"staged")
    stray_record = Path(paths.record(f"{old}-cafecafe"))
    stray_record.write_text("{}")
    stray_metadata = Path(paths.metadata) / "00000-stray.metadata.json"
    stray_metadata.write_text("{}")
    expired_list = Path(iceberg_table(mesh).metadata.snapshot_by_id(snapshot_of(mesh, 1)).manifest_list[len("file://"):])
    assert expired_list.exists()
    time.sleep(0.01)

    assert apply_retention_rule(mesh.catalog, mesh.contract("widgets"), keep=2, orphan_grace_seconds=0) == [1]

    assert not stray_run.exists() and not stray_record.exists() and not stray_metadata.exists()
    assert not expired_list.exists()  # the expired snapshot's manifest list was unreferenced
    table = iceberg_table(mesh)
    for uri in mesh.catalog.tables.table_files(table).metadata:
        assert Path(mesh.catalog.tables.path_of(uri)).exists(), uri
    with mesh.session() as s:  # every retained version still reads
        assert s.sql("select count(*) from widgets").fetchone() == (5,)
        assert s.sql("select count(*) from widgets__v2").fetchone() == (4,)
        assert s.sql("select count(*) from widgets__v3").fetchone() == (5,)
    assert verify(mesh.catalog).ok


def test_orphan_sweep_removes_the_files_of_a_repaired_foreign_write(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    foreign = foreign_insert(mesh)
    [foreign_file] = [f for f in data_files_of(mesh, foreign) if "/data/00000-" in f]
    repair(mesh.catalog, "widgets")
    apply_retention_rule(mesh.catalog, mesh.contract("widgets"), keep=3, orphan_grace_seconds=0)
    assert foreign not in {s.snapshot_id for s in iceberg_table(mesh).metadata.snapshots}
    assert not Path(foreign_file).exists()


def test_orphan_sweep(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    data = Path(mesh.catalog.paths("widgets").data)
    old = datetime.fromtimestamp(time.time() - 7200, UTC).strftime("%Y%m%dT%H%M%SZ") + "-deadbeef"
    young = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-cafecafe"
    stale = time.time() - 7200
    for run in (old, young, "not-a-timestamp"):
        (data / run).mkdir()
        (data / run / "part-00000.parquet").write_bytes(b"staged")
        os.utime(data / run / "part-00000.parquet", (stale, stale))
    # an old run id whose files are still being written (a long publish) is kept
    (data / f"{old}x").mkdir()
    (data / f"{old}x" / "part-00000.parquet").write_bytes(b"staging now")
    apply_retention_rule(mesh.catalog, mesh.contract("widgets"), keep=3)
    assert not (data / old).exists()
    assert (data / young).exists() and (data / "not-a-timestamp").exists() and (data / f"{old}x").exists()
    assert mesh.catalog.manifest("widgets").row_count == 3


def test_orphan_sweep_does_not_follow_symlinks(mesh, tmp_path: Path) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    mesh.publish("widget_orders", _orders())
    orders_data = Path(mesh.catalog.paths("widget_orders").data)
    old = datetime.fromtimestamp(time.time() - 7200, UTC).strftime("%Y%m%dT%H%M%SZ") + "-deadbeef"
    os.symlink(orders_data, Path(mesh.catalog.paths("widgets").data) / old)
    before = lake_fingerprint(mesh)
    with pytest.raises(StorageError, match="symbolic link"):
        apply_retention_rule(mesh.catalog, mesh.contract("widgets"), keep=3)
    assert lake_fingerprint(mesh) == before


# -- the confined delete itself -------------------------------------------------------------------


@pytest.mark.parametrize("relative", [
    "../widget_orders/data/x",
    "data/../../widget_orders",
    "data/..",
    "data",
    "data/",
    "../../../..",
    "data/x/../../../widget_orders/data/y",
])
def test_check_within_refuses_paths_outside(mesh, relative: str) -> None:  # noqa: ANN001
    paths = mesh.catalog.paths("widgets")
    with pytest.raises(StorageError, match="Refused to delete"):
        mesh.lake.check_within(f"{paths.prefix}/{relative}", paths.data)


def test_check_within_refuses_prefix_outside_the_lake(mesh) -> None:  # noqa: ANN001
    with pytest.raises(StorageError, match="not inside the lake root"):
        mesh.lake.check_within("/etc/passwd", "/etc")


@pytest.mark.parametrize("relative", ["data/20240101T000000Z-x", "data/a/b", "data/./x", "data//x"])
def test_check_within_accepts_paths_inside(mesh, relative: str) -> None:  # noqa: ANN001
    paths = mesh.catalog.paths("widgets")
    assert mesh.lake.check_within(f"{paths.prefix}/{relative}", paths.data).startswith(paths.data + "/")


def test_delete_dir_within_deletes_nothing_outside(mesh) -> None:  # noqa: ANN001
    _two_products(mesh)
    paths = mesh.catalog.paths("widgets")
    before = lake_fingerprint(mesh)
    for target in (f"{paths.data}/../../widget_orders", paths.data, mesh.lake.root):
        with pytest.raises(StorageError):
            mesh.lake.delete_dir_within(target, paths.data)
    orders_record = mesh.catalog.paths("widget_orders").record(_orders_run_id(mesh))
    for target in (f"{paths.data}/../_records", f"{paths.data}/../../widget_orders/_records/x.json", orders_record):
        with pytest.raises(StorageError):
            mesh.lake.delete_file_within(target, paths.data)
    assert lake_fingerprint(mesh) == before


# -- abort ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("run_id", ["../../widget_orders", "../x", ".hidden", "a/b", ""])
def test_publisher_refuses_unsafe_run_id(mesh, run_id: str) -> None:  # noqa: ANN001
    mesh.publish("widget_orders", _orders())
    before = lake_fingerprint(mesh)
    if not run_id:
        # An empty run id means "generate one".
        with Publisher(mesh.catalog, mesh.contract("widgets"), run_id=run_id) as pub:
            assert pub.run_id
        assert lake_fingerprint(mesh) == before
        return
    with pytest.raises(PublishError, match="not a plain directory name"):
        Publisher(mesh.catalog, mesh.contract("widgets"), run_id=run_id)
    assert lake_fingerprint(mesh) == before


def test_abort_removes_only_its_staging(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    mesh.publish("widget_orders", _orders())
    before = lake_fingerprint(mesh)
    with pytest.raises(RuntimeError):
        with Publisher(mesh.catalog, mesh.contract("widgets")) as pub:
            pub.write(widgets_table(4))
            pub._close_part()
            assert Path(pub.staging_dir).exists()
            raise RuntimeError("stop")
    assert not Path(pub.staging_dir).exists()
    assert lake_fingerprint(mesh) == before


def test_new_run_id_carries_orchestrator_tag() -> None:
    from datamesh.catalog import run_id_problem
    from datamesh.publish import new_run_id

    tagged = new_run_id("3f2a9c1e-77aa-4bbb-9ccc-1234567890ab")
    assert tagged.endswith("-3f2a9c1e") and run_id_problem(tagged) is None
    assert run_id_problem(new_run_id("../../x")) is None
    datetime.strptime(tagged.split("-")[0], "%Y%m%dT%H%M%SZ")  # the orphan sweep reads this
