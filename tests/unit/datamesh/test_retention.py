"""Deletes are confined to the product's own prefix: retention, orphan sweep and abort."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from datamesh.errors import BrokenProductError, PublishError, StorageError
from datamesh.publish import Publisher, apply_retention_rule
from tests.conftest import widgets_table
from tests.integrity import lake_fingerprint


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


def _orders_run_id(mesh: Any) -> str:
    return mesh.catalog.manifest("widget_orders").run_id


@pytest.mark.parametrize("target", ["orders", "billing", "lake_root", "absolute"])
def test_tampered_run_id_makes_retention_refuse(mesh, target: str) -> None:  # noqa: ANN001
    _two_products(mesh)
    run_id = {
        "orders": f"../../widget_orders/data/{_orders_run_id(mesh)}",
        "billing": "../../../billing/invoices",
        "lake_root": "../../../..",
        "absolute": "/etc",
    }[target]
    oldest = mesh.catalog.versions("widgets")[0]
    path = Path(mesh.catalog.paths("widgets").manifest(oldest))
    doc = json.loads(path.read_text())
    doc["run_id"] = run_id
    path.write_text(json.dumps(doc))
    before = lake_fingerprint(mesh)
    with pytest.raises(BrokenProductError) as info:
        apply_retention_rule(mesh.catalog, mesh.contract("widgets"), keep=1)
    message = str(info.value)
    assert "'widgets'" in message and str(path) in message and "mesh repair widgets" in message
    assert lake_fingerprint(mesh) == before  # nothing of any product, nor of the lake, was deleted


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


def test_retention_keeps_shared_run_dirs(mesh, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """A doomed version claiming a live version's run dir never deletes the live data."""
    for n in (3, 4, 5):
        mesh.publish("widgets", widgets_table(n))
    versions = mesh.catalog.versions("widgets")
    live = mesh.catalog.manifest("widgets", versions[-1])
    path = Path(mesh.catalog.paths("widgets").manifest(versions[0]))
    doc = json.loads(path.read_text())
    doc["run_id"] = live.run_id
    doc["files"] = [f.model_dump() for f in live.files]
    doc["row_count"] = live.row_count
    path.write_text(json.dumps(doc))
    removed = apply_retention_rule(mesh.catalog, mesh.contract("widgets"), keep=1)
    assert removed == versions[:-1]
    assert all(Path(p).exists() for p in mesh.catalog.file_paths(live))
    with mesh.session() as s:
        assert s.sql("select count(*) from widgets").fetchone()[0] == 5  # type: ignore[index]


def test_orphan_sweep(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    data = Path(mesh.catalog.paths("widgets").data)
    old = datetime.fromtimestamp(time.time() - 7200, UTC).strftime("%Y%m%dT%H%M%SZ") + "-deadbeef"
    young = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-cafecafe"
    for run in (old, young, "not-a-timestamp"):
        (data / run).mkdir()
        (data / run / "part-00000.parquet").write_bytes(b"staged")
    apply_retention_rule(mesh.catalog, mesh.contract("widgets"), keep=3)
    assert not (data / old).exists()
    assert (data / young).exists() and (data / "not-a-timestamp").exists()
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
    for target in (f"{paths.data}/../_latest.json", f"{paths.data}/../../widget_orders/_latest.json"):
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
