"""`mesh migrate`: a lake from before Iceberg becomes Iceberg tables; no data file is rewritten."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from datamesh.catalog import FileEntry, Manifest
from datamesh.errors import BrokenProductError
from datamesh.migrate import migrate
from tests.conftest import widgets_table


def _legacy_version(mesh: Any, version: int, rows: int) -> Path:
    """Write one version the way the platform did before Iceberg: files, manifest, pointer."""
    contract = mesh.contract("widgets")
    paths = mesh.catalog.paths("widgets")
    run_id = f"20250101T00000{version}Z-legacy{version}"
    part = Path(paths.run_dir(run_id)) / "part-00000.parquet"
    part.parent.mkdir(parents=True)
    pq.write_table(widgets_table(rows), part)
    import hashlib

    entry = FileEntry(path=mesh.lake.relative(str(part)), rows=rows, bytes=part.stat().st_size,
                      sha256=hashlib.sha256(part.read_bytes()).hexdigest(), mtime_ns=part.stat().st_mtime_ns)
    manifest = Manifest(product="widgets", domain="shop", version=version, contract_version=contract.version,
                        run_id=run_id, created_at=datetime.now(UTC), row_count=rows, files=(entry,),
                        contract_doc=contract.model_dump(mode="json", by_alias=True, exclude={"source_path"}))
    manifests = Path(paths.legacy_manifests)
    manifests.mkdir(parents=True, exist_ok=True)
    (manifests / f"{version:08d}.json").write_bytes(manifest.to_json())
    Path(paths.legacy_latest).write_text(json.dumps({"version": version, "run_id": run_id}))
    return part


def test_legacy_lake_is_refused_until_migrated(mesh) -> None:  # noqa: ANN001
    _legacy_version(mesh, 1, 4)
    with pytest.raises(BrokenProductError, match="mesh migrate"):
        mesh.catalog.manifest("widgets")


def test_migrate_adds_files_in_place_and_keeps_version_numbers(mesh) -> None:  # noqa: ANN001
    parts = [_legacy_version(mesh, v, rows) for v, rows in ((1, 4), (2, 6))]
    before = [(p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in parts]
    dry = migrate(mesh.catalog, ["widgets"], dry_run=True)
    assert dry.products[0].migrated == [1, 2] and mesh.catalog.tables.state(mesh.contract("widgets")) is None
    report = migrate(mesh.catalog)
    text = "\n".join(report.lines())
    assert "shop.widgets: added versions 1, 2" in text and "none rewritten" in text
    assert mesh.catalog.versions("widgets") == [1, 2]
    assert mesh.catalog.latest_version("widgets") == 2
    with mesh.session() as s:
        assert s.sql("select count(*) from widgets").fetchone() == (6,)
        assert s.sql("select count(*) from widgets__v1").fetchone() == (4,)
    assert [(p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in parts] == before
    paths = mesh.catalog.paths("widgets")
    assert not Path(paths.legacy_latest).exists() and not any(Path(paths.legacy_manifests).glob("*.json"))
    assert (Path(paths.prefix) / "_legacy" / "_latest.json").exists()
    # again: nothing to do, nothing changes
    assert "nothing to migrate" in "\n".join(migrate(mesh.catalog).lines())
    assert mesh.catalog.versions("widgets") == [1, 2]
    # and the next publish continues the numbering
    assert mesh.publish("widgets", widgets_table(2)).version == 3


def test_a_tampered_legacy_version_is_skipped_and_reported(mesh) -> None:  # noqa: ANN001
    _legacy_version(mesh, 1, 4)
    part = _legacy_version(mesh, 2, 6)
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    os.utime(part, ns=(1, 1))
    report = migrate(mesh.catalog, ["widgets"])
    assert not report.ok
    assert report.products[0].migrated == [1]
    assert "skipped v2" in "\n".join(report.lines()) and "overwritten" in "\n".join(report.lines())
    assert mesh.catalog.versions("widgets") == [1]
