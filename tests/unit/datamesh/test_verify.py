"""`verify` checks every committed version in full; `repair` untags what is broken and points the table back."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from datamesh.errors import BrokenProductError, OwnershipError, UnknownProductError
from datamesh.identity import Identity
from datamesh.platform import Mesh
from datamesh.verify import repair, verify
from tests.conftest import widgets_table
from tests.integrity import lake_bytes, lake_fingerprint
from tests.unit.datamesh.damaged_files import (
    data_files,
    edit_record,
    foreign_insert,
    forge_version,
    head_snapshot,
    iceberg_table,
    position_delete_file,
    record_path,
    retag,
    snapshot_of,
)


def _orders(n: int = 2) -> pa.Table:
    return pa.table({"order_id": pa.array(range(n), pa.int64()), "line_number": pa.array([1] * n, pa.int32()),
                     "widget_id": pa.array(range(n), pa.int64())})


def _product_bytes(mesh: Any, product: str) -> dict[str, str]:
    return {k: v for k, v in lake_bytes(mesh.lake).items() if f"/{product}/" in k}


def _same_size_overwrite(path: str) -> None:
    """Flip one byte and restore the modification time: only a full hash notices."""
    stat = os.stat(path)
    data = bytearray(Path(path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


# -- verify -----------------------------------------------------------------------------------------


def test_verify_healthy_lake(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    mesh.publish("widgets", widgets_table(4))
    before = lake_fingerprint(mesh)
    report = verify(mesh.catalog)
    assert report.ok and report.problems == []
    lines = report.lines()
    assert any(line.startswith("shop.widgets v1: ok (1 files") for line in lines)
    assert any(line.startswith("shop.widgets v2: ok") for line in lines)
    assert "shop.widget_orders: no published version" in lines
    assert lines[-1] == "verified 2 versions of 2 products: all ok"
    assert lake_fingerprint(mesh) == before


def test_verify_checks_every_version_in_full(mesh) -> None:  # noqa: ANN001
    m1 = mesh.publish("widgets", widgets_table(3))
    mesh.publish("widgets", widgets_table(4))
    m3 = mesh.publish("widgets", widgets_table(5))
    mesh.publish("widget_orders", _orders())
    overwritten = mesh.catalog.file_paths(m1)[0]
    _same_size_overwrite(overwritten)  # the readers' mtime shortcut cannot see this one
    deleted = mesh.catalog.file_paths(m3)[0]
    os.remove(deleted)
    record2 = record_path(mesh, 2)
    record2.write_bytes(b"garbage")
    before = lake_fingerprint(mesh)
    report = verify(mesh.catalog, products=["widgets", "widget_orders"])
    assert not report.ok
    by_version = {v.version: v for p in report.products if p.product == "widgets" for v in p.versions}
    assert "was overwritten" in by_version[1].problems[0] and overwritten in by_version[1].problems[0]
    assert "changed after the commit" in by_version[2].problems[0] and str(record2) in by_version[2].problems[0]
    assert "is missing" in by_version[3].problems[0] and deleted in by_version[3].problems[0]
    orders = next(p for p in report.products if p.product == "widget_orders")
    assert orders.ok
    text = "\n".join(report.lines())
    assert "run `mesh repair widgets`" in text and "3 problems" in text
    assert len(report.problems) == 3
    assert lake_fingerprint(mesh) == before


def test_verify_reports_a_foreign_write_to_the_table(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    foreign_insert(mesh)
    before = lake_fingerprint(mesh)
    report = verify(mesh.catalog, ["widgets"])
    [problem] = report.products[0].problems
    assert "table shop.widgets" in problem and "is not a published version" in problem
    assert report.products[0].versions[0].ok  # the published version itself is intact
    assert "shop.widgets: BROKEN table shop.widgets" in "\n".join(report.lines())
    assert lake_fingerprint(mesh) == before


COMMIT_ATTACKS = [
    ("extra_file", lambda mesh: forge_version(mesh, 1, files=data_files(mesh, 1) + data_files(mesh, 2)), 1,
     "reads files its record does not list"),
    ("delete_file", lambda mesh: forge_version(mesh, 1, files=data_files(mesh, 1) + [position_delete_file(mesh, 1)]),
     1, "reads delete files"),
    ("missing_record", lambda mesh: record_path(mesh, 1).unlink(), 1, "has no record"),
    ("record_outside", lambda mesh: forge_version(mesh, 1, edit=lambda d: d["files"][0].update(
        path=d["files"][0]["path"].replace("/widgets/", "/widget_orders/"))), 1, "not a plain *.parquet file"),
]


@pytest.mark.parametrize(("attack", "version", "fragment"), [a[1:] for a in COMMIT_ATTACKS],
                         ids=[a[0] for a in COMMIT_ATTACKS])
def test_verify_reports_each_commit_attack(mesh, attack, version: int, fragment: str) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    mesh.publish("widgets", widgets_table(4))
    attack(mesh)
    before = lake_fingerprint(mesh)
    report = verify(mesh.catalog, ["widgets"])
    bad = [v for v in report.products[0].versions if not v.ok]
    assert [v.version for v in bad] == [version] and fragment in bad[0].problems[0], report.problems
    assert f"shop.widgets v{version}: BROKEN" in "\n".join(report.lines())
    assert lake_fingerprint(mesh) == before


def test_verify_reports_a_tag_on_another_versions_snapshot(mesh) -> None:  # noqa: ANN001
    for n in (3, 4, 5):
        mesh.publish("widgets", widgets_table(n))
    retag(mesh, 2, snapshot_of(mesh, 1))
    fresh = Mesh.from_settings(mesh.settings, contracts=mesh.contracts)
    report = verify(fresh.catalog, ["widgets"])
    bad = [v for v in report.products[0].versions if not v.ok]
    assert [v.version for v in bad] == [2] and "summary says version '1'" in bad[0].problems[0], report.lines()


def test_verify_unknown_product(mesh) -> None:  # noqa: ANN001
    with pytest.raises(UnknownProductError, match="Did you mean 'widgets'"):
        verify(mesh.catalog, ["widgetz"])


# -- repair -----------------------------------------------------------------------------------------


def _rows(mesh: Any, sql: str = "select count(*), count(*) filter (where color = 'green') from widgets") -> Any:
    with mesh.session() as s:
        assert not s.broken, s.broken
        return s.sql(sql).fetchone()


def test_repair_points_the_head_back_after_a_foreign_insert(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    mesh.publish("widgets", widgets_table(4))
    mesh.publish("widget_orders", _orders())
    foreign = foreign_insert(mesh)
    orders_before = _product_bytes(mesh, "widget_orders")
    with pytest.raises(BrokenProductError, match="is not a published version"):
        mesh.catalog.manifest("widgets")

    report = repair(mesh.catalog, "widgets")

    assert report.head_changed and report.head_before is None and report.head_after == 2
    assert report.untagged == [] and report.quarantined == [] and report.valid_versions == [1, 2]
    assert "shop.widgets: table head not a published version -> v2" in report.lines()
    assert head_snapshot(mesh) == snapshot_of(mesh, 2) != foreign
    assert _rows(mesh) == (4, 0)  # the foreign rows are no longer served
    assert _product_bytes(mesh, "widget_orders") == orders_before
    assert verify(mesh.catalog).ok
    before = lake_fingerprint(mesh)
    again = repair(mesh.catalog, "widgets")
    assert not again.changed and "shop.widgets: nothing to repair" in again.lines()
    assert lake_fingerprint(mesh) == before
    assert mesh.publish("widgets", widgets_table(6)).version == 3


def test_repair_untags_invalid_versions_and_quarantines_their_records(mesh) -> None:  # noqa: ANN001
    for n in (3, 4, 5):
        mesh.publish("widgets", widgets_table(n))
    record3 = edit_record(mesh, 3, lambda d: d.update(row_count=99))
    corrupt = record3.read_bytes()
    foreign_insert(mesh)

    report = repair(mesh.catalog, "widgets")

    assert [v for v, _ in report.untagged] == [3] and "changed after the commit" in report.untagged[0][1]
    assert report.valid_versions == [1, 2] and report.head_after == 2 and report.head_changed
    [(src, dst, why)] = report.quarantined
    assert src == str(record3) and Path(dst).parent == Path(mesh.catalog.paths("widgets").quarantine)
    assert Path(dst).read_bytes() == corrupt and not record3.exists()  # moved, not deleted
    assert "v3" not in iceberg_table(mesh).metadata.refs
    text = "\n".join(report.lines())
    assert "untagged v3" in text and "table head not a published version -> v2" in text and record3.name in text
    assert mesh.catalog.versions("widgets") == [1, 2] and _rows(mesh) == (4, 0)
    assert verify(mesh.catalog).ok
    assert mesh.publish("widgets", widgets_table(6)).version == 4  # a version number is never reused


def test_repair_quarantines_tampered_versions(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    m2 = mesh.publish("widgets", widgets_table(4))
    mesh.publish("widget_orders", _orders())
    os.remove(mesh.catalog.file_paths(m2)[0])
    orders_before = _product_bytes(mesh, "widget_orders")
    report = repair(mesh.catalog, "widgets")
    assert report.valid_versions == [1] and report.head_after == 1 and report.head_before == 2
    assert report.untagged[0][0] == 2 and "is missing" in report.quarantined[0][2]
    assert _rows(mesh) == (3, 0)
    assert _product_bytes(mesh, "widget_orders") == orders_before


def test_repair_with_no_valid_version_clears_the_head(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    edit_record(mesh, 1, lambda d: d.update(run_id="../../../billing/invoices"))
    report = repair(mesh.catalog, "widgets")
    assert report.head_after is None and report.valid_versions == [] and report.head_changed
    assert "changed after the commit" in report.quarantined[0][2]
    assert "table head v1 -> no snapshot (no valid version left)" in "\n".join(report.lines())
    assert head_snapshot(mesh) is None and mesh.catalog.versions("widgets") == []
    with mesh.session() as s:
        assert "widgets" in s.missing and not s.broken
    assert mesh.publish("widgets", widgets_table(2)).version == 2


def test_repair_healthy_product_changes_nothing(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    before = lake_fingerprint(mesh)
    report = repair(mesh.catalog, "widgets")
    assert not report.changed and report.head_after == 1
    assert lake_fingerprint(mesh) == before
    empty = repair(mesh.catalog, "widget_orders")
    assert not empty.changed and empty.head_after is None
    assert lake_fingerprint(mesh) == before


@pytest.mark.parametrize(("actor", "fragment"), [("analyst", "analysts read products"),
                                                 ("publisher:billing", "only products of domain 'billing'")])
def test_only_the_owning_domain_may_repair(mesh, actor: str, fragment: str) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    foreign_insert(mesh)
    before = lake_fingerprint(mesh)
    mesh.catalog.identity = Identity.parse(actor)
    with pytest.raises(OwnershipError, match=fragment):
        repair(mesh.catalog, "widgets")
    assert lake_fingerprint(mesh) == before
    mesh.catalog.identity = Identity.parse("publisher:shop")
    assert repair(mesh.catalog, "widgets").head_after == 1
