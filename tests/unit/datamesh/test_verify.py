"""`verify` checks every committed version in full; `repair` quarantines what is broken and resets the pointer."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from datamesh.errors import BrokenProductError, UnknownProductError
from datamesh.verify import repair, verify
from tests.conftest import widgets_table
from tests.integrity import lake_bytes, lake_fingerprint


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
    manifest2 = Path(mesh.catalog.paths("widgets").manifest(2))
    manifest2.write_bytes(b"garbage")
    before = lake_fingerprint(mesh)
    report = verify(mesh.catalog, products=["widgets", "widget_orders"])
    assert not report.ok
    by_version = {v.version: v for p in report.products if p.product == "widgets" for v in p.versions}
    assert "was overwritten" in by_version[1].problems[0] and overwritten in by_version[1].problems[0]
    assert "not a valid manifest" in by_version[2].problems[0] and str(manifest2) in by_version[2].problems[0]
    assert "is missing" in by_version[3].problems[0] and deleted in by_version[3].problems[0]
    orders = next(p for p in report.products if p.product == "widget_orders")
    assert orders.ok
    text = "\n".join(report.lines())
    assert "run `mesh repair widgets`" in text and "3 problems" in text
    assert len(report.problems) == 3
    assert lake_fingerprint(mesh) == before


def test_verify_reports_a_broken_pointer(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    Path(mesh.catalog.paths("widgets").latest).write_bytes(b"\xff")
    report = verify(mesh.catalog, ["widgets"])
    assert not report.ok and "not a valid latest pointer" in report.products[0].problems[0]
    assert report.products[0].versions[0].ok


def test_verify_reports_pointer_to_nothing(mesh) -> None:  # noqa: ANN001
    m = mesh.publish("widgets", widgets_table(3))
    Path(mesh.catalog.paths("widgets").latest).write_text(json.dumps({"version": 5, "run_id": m.run_id}))
    report = verify(mesh.catalog, ["widgets"])
    assert not report.ok and "names version 5, which has no manifest" in report.products[0].problems[0]


def test_verify_unknown_product(mesh) -> None:  # noqa: ANN001
    with pytest.raises(UnknownProductError, match="Did you mean 'widgets'"):
        verify(mesh.catalog, ["widgetz"])


# -- repair -----------------------------------------------------------------------------------------


def test_repair_corrupt_pointer_and_manifest(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    mesh.publish("widgets", widgets_table(4))
    mesh.publish("widgets", widgets_table(5))
    mesh.publish("widget_orders", _orders())
    paths = mesh.catalog.paths("widgets")
    Path(paths.latest).write_bytes(b"\x00\xff\xfe garbage")
    Path(paths.manifest(3)).write_bytes(b"{ not a manifest")
    corrupt_manifest, corrupt_pointer = Path(paths.manifest(3)).read_bytes(), Path(paths.latest).read_bytes()
    orders_before = _product_bytes(mesh, "widget_orders")
    with pytest.raises(BrokenProductError):
        mesh.catalog.manifest("widgets")

    report = repair(mesh.catalog, "widgets")

    assert report.changed and report.valid_versions == [1, 2]
    assert report.pointer_before is None and report.pointer_after == 2
    assert [Path(src).name for src, _, _ in report.quarantined] == ["00000003.json", "_latest.json"]
    quarantine = Path(paths.quarantine)
    moved = {p.name.split("-", 1)[1]: p.read_bytes() for p in quarantine.iterdir()}
    assert moved == {"00000003.json": corrupt_manifest, "_latest.json": corrupt_pointer}  # moved, not deleted
    assert not Path(paths.manifest(3)).exists()
    assert json.loads(Path(paths.latest).read_text())["version"] == 2
    text = "\n".join(report.lines())
    assert "latest pointer unreadable -> v2" in text and "00000003.json" in text
    # readable again, and nothing of the other product changed
    assert mesh.catalog.manifest("widgets").row_count == 4
    with mesh.session() as s:
        assert not s.broken
        assert s.sql("select count(*) from widgets").fetchone() == (4,)
    assert _product_bytes(mesh, "widget_orders") == orders_before
    assert verify(mesh.catalog).ok
    # a second repair changes nothing
    before = lake_fingerprint(mesh)
    again = repair(mesh.catalog, "widgets")
    assert not again.changed and "nothing to repair" in "\n".join(again.lines())
    assert lake_fingerprint(mesh) == before
    # and the next publish takes the freed version number
    assert mesh.publish("widgets", widgets_table(6)).version == 3


def test_repair_quarantines_tampered_versions(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    m2 = mesh.publish("widgets", widgets_table(4))
    mesh.publish("widget_orders", _orders())
    os.remove(mesh.catalog.file_paths(m2)[0])
    orders_before = _product_bytes(mesh, "widget_orders")
    report = repair(mesh.catalog, "widgets")
    assert report.valid_versions == [1] and report.pointer_after == 1
    assert "is missing" in report.quarantined[0][2]
    with mesh.session() as s:
        assert s.sql("select count(*) from widgets").fetchone() == (3,)
    assert _product_bytes(mesh, "widget_orders") == orders_before


def test_repair_with_no_valid_version_removes_the_pointer(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    paths = mesh.catalog.paths("widgets")
    doc = json.loads(Path(paths.manifest(1)).read_text())
    doc["run_id"] = "../../../billing/invoices"
    Path(paths.manifest(1)).write_text(json.dumps(doc))
    report = repair(mesh.catalog, "widgets")
    assert report.pointer_after is None and report.valid_versions == []
    assert not Path(paths.latest).exists()
    assert "not a plain directory name" in report.quarantined[0][2]
    assert "removed (no valid version left)" in "\n".join(report.lines())
    with mesh.session() as s:
        assert "widgets" in s.missing and not s.broken


def test_repair_healthy_product_changes_nothing(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    before = lake_fingerprint(mesh)
    report = repair(mesh.catalog, "widgets")
    assert not report.changed and report.pointer_after == 1
    assert lake_fingerprint(mesh) == before
    empty = repair(mesh.catalog, "widget_orders")
    assert not empty.changed and empty.pointer_after is None
    assert lake_fingerprint(mesh) == before
