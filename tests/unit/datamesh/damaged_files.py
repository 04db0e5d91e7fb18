"""Damage the way it happens: Parquet exports with corrupt pages or bad UTF-8, and attacked products.

The second half attacks a product's commit structure (its Iceberg table and
side records) the ways another engine or a hostile writer could.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import widgets_table


def write_corrupt_pages(path: Path, rows: int = 5000) -> Path:
    """A Parquet file whose footer is intact but whose ``color`` data pages are overwritten mid-way."""
    table = widgets_table(rows).set_column(1, "color", pa.array([f"red{i}" for i in range(rows)]))
    pq.write_table(table, path)
    data = bytearray(path.read_bytes())
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(1)
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    middle = start + chunk.total_compressed_size // 2
    data[middle:middle + 64] = b"\xab" * 64
    path.write_bytes(bytes(data))
    assert pq.ParquetFile(path).metadata.num_rows == rows  # the footer still reads
    return path


def bad_utf8_strings() -> pa.Array:
    """A string array whose second value is the bytes ff fe (not UTF-8), relabelled without validation."""
    return pa.array([b"red", b"\xff\xfe", b"red"], pa.binary()).view(pa.string())


def write_bad_utf8(path: Path) -> Path:
    pq.write_table(widgets_table(3).set_column(1, "color", bad_utf8_strings()), path)
    return path


# -- products attacked through their Iceberg table and side records ------------------------------------
#
# Each helper changes the lake the way a hostile or careless writer could (another engine's INSERT, a
# hand-edited record, a forged commit) and asserts that the change really happened, so no test can pass
# because its attack silently did nothing.


def iceberg_table(mesh: Any, product: str = "widgets") -> Any:
    """The product's pyiceberg Table, freshly loaded from the catalog."""
    table = mesh.catalog.tables.load(mesh.contract(product))
    assert table is not None, f"{product} has no table"
    return table


def snapshot_of(mesh: Any, version: int, product: str = "widgets") -> int:
    """The snapshot id the tag ``v<version>`` points at."""
    return iceberg_table(mesh, product).metadata.refs[f"v{version}"].snapshot_id


def head_snapshot(mesh: Any, product: str = "widgets") -> int | None:
    current = iceberg_table(mesh, product).metadata.current_snapshot()
    return current.snapshot_id if current else None


def record_path(mesh: Any, version: int, product: str = "widgets") -> Path:
    """The side record ``_records/<run_id>.json`` the snapshot tagged ``v<version>`` names."""
    snapshot = iceberg_table(mesh, product).metadata.snapshot_by_id(snapshot_of(mesh, version, product))
    return Path(mesh.catalog.paths(product).record(snapshot.summary.additional_properties["mesh.run-id"]))


def edit_record(mesh: Any, version: int, edit: Callable[[dict[str, Any]], None], product: str = "widgets") -> Path:
    """Rewrite a record's JSON on disk (its SHA-256 no longer matches the snapshot's)."""
    path = record_path(mesh, version, product)
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    return path


def foreign_insert(mesh: Any, rows: int = 2, product: str = "widgets") -> int:
    """Append rows straight to the table, as Trino's INSERT would; returns the new (untagged) head snapshot."""
    before = head_snapshot(mesh, product)
    table = iceberg_table(mesh, product)
    data = widgets_table(rows, color="green", start=1000) if product == "widgets" else None
    assert data is not None
    table.append(data.cast(table.schema().as_arrow()))
    after = head_snapshot(mesh, product)
    assert after is not None and after != before
    assert not any(ref.snapshot_id == after for name, ref in iceberg_table(mesh, product).metadata.refs.items()
                   if name != "main")
    return after


def foreign_delete(mesh: Any, predicate: str = "widget_id = 0", product: str = "widgets") -> int:
    """Delete rows straight in the table, as Trino's DELETE would (pyiceberg rewrites the files)."""
    before = head_snapshot(mesh, product)
    iceberg_table(mesh, product).delete(predicate)
    after = head_snapshot(mesh, product)
    assert after is not None and after != before
    return after


def retag(mesh: Any, version: int, snapshot_id: int, product: str = "widgets") -> None:
    """Point the tag ``v<version>`` at another snapshot."""
    iceberg_table(mesh, product).manage_snapshots().remove_tag(f"v{version}").create_tag(
        snapshot_id, f"v{version}").commit()
    assert snapshot_of(mesh, version, product) == snapshot_id


def data_files(mesh: Any, version: int, product: str = "widgets") -> list[Any]:
    """The pyiceberg DataFiles the snapshot tagged ``v<version>`` reads."""
    table = iceberg_table(mesh, product)
    return mesh.catalog.tables.live_files(table, snapshot_of(mesh, version, product))


_DATA_FILE_FIELDS = ("content", "file_path", "file_format", "partition", "record_count", "file_size_in_bytes",
                     "column_sizes", "value_counts", "null_value_counts", "nan_value_counts", "lower_bounds",
                     "upper_bounds", "key_metadata", "split_offsets", "equality_ids", "sort_order_id")


def altered(data_file: Any, **changes: Any) -> Any:
    """A copy of a pyiceberg DataFile with some fields changed (its fields are read-only)."""
    from pyiceberg.manifest import DataFile

    copy = DataFile.from_args(**{**{name: getattr(data_file, name) for name in _DATA_FILE_FIELDS}, **changes})
    copy.spec_id = data_file.spec_id
    return copy


def position_delete_file(mesh: Any, version: int, product: str = "widgets") -> Any:
    """A position-delete file (another engine's merge-on-read DELETE) removing row 0 of the version's first file."""
    from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
    from pyiceberg.typedef import Record

    target = data_files(mesh, version, product)[0].file_path
    path = Path(mesh.catalog.paths(product).data) / "00000-deletes.parquet"
    pq.write_table(pa.table({"file_path": [target], "pos": pa.array([0], pa.int64())}), path)
    delete = DataFile.from_args(
        content=DataFileContent.POSITION_DELETES, file_path=f"file://{path}", file_format=FileFormat.PARQUET,
        partition=Record(), record_count=1, file_size_in_bytes=path.stat().st_size, column_sizes={},
        value_counts={}, null_value_counts={}, nan_value_counts={}, lower_bounds={}, upper_bounds={},
        split_offsets=None, equality_ids=None, sort_order_id=None)
    delete.spec_id = 0
    return delete


def forge_version(mesh: Any, version: int, *, edit: Callable[[dict[str, Any]], None] | None = None,
                  raw: bytes | None = None, files: list[Any] | None = None, summary: dict[str, str] | None = None,
                  product: str = "widgets") -> int:
    """Commit a new snapshot in place of ``v<version>``, carrying a summary consistent with a rewritten record.

    The attacker who can write both the lake and the catalog: the record is
    rewritten (``edit`` of its JSON, or ``raw`` bytes), a snapshot reading
    ``files`` (default: the version's own) is committed with the version's
    ``mesh.*`` summary plus the new record's run id and SHA-256 (then
    ``summary``), and the tag ``v<version>`` (and the main branch, if it
    served that version) is moved to it. Returns the forged snapshot's id.
    """
    from datamesh.catalog import run_id_problem

    table = iceberg_table(mesh, product)
    old_id = snapshot_of(mesh, version, product)
    props = {k: v for k, v in table.metadata.snapshot_by_id(old_id).summary.additional_properties.items()
             if k.startswith("mesh.")}
    if edit is not None or raw is not None:
        original = record_path(mesh, version, product)
        if raw is None:
            doc = json.loads(original.read_text())
            assert edit is not None
            edit(doc)
            run_id = doc["run_id"] if isinstance(doc.get("run_id"), str) else props["mesh.run-id"]
            raw = json.dumps(doc).encode()
        else:
            run_id = props["mesh.run-id"]
        unsafe = run_id_problem(run_id) is not None
        (original if unsafe else Path(mesh.catalog.paths(product).record(run_id))).write_bytes(raw)
        props.update({"mesh.run-id": run_id, "mesh.record-sha256": hashlib.sha256(raw).hexdigest()})
    props.update(summary or {})
    files = data_files(mesh, version, product) if files is None else files
    was_head = head_snapshot(mesh, product) == old_id
    with table.transaction() as tx:
        with tx.update_snapshot(snapshot_properties=props, branch="forge").fast_append() as append:
            for data_file in files:
                append.append_data_file(data_file)
            forged = append._snapshot_id
    manage = iceberg_table(mesh, product).manage_snapshots().remove_tag(f"v{version}")
    manage = manage.create_tag(forged, f"v{version}").remove_branch("forge")
    if was_head:
        manage = manage.set_current_snapshot(forged)
    manage.commit()
    assert snapshot_of(mesh, version, product) == forged != old_id
    return int(forged)
