"""Nothing read back from the lake or the catalog is trusted: tags, the table's head, side records, file lists."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from datamesh.catalog import RUN_ID_PATTERN, run_id_problem
from datamesh.errors import BrokenProductError, TamperedError, VersionNotFoundError
from tests.conftest import widgets_table
from tests.integrity import lake_fingerprint
from tests.unit.datamesh.damaged_files import (
    altered,
    data_files,
    edit_record,
    foreign_delete,
    foreign_insert,
    forge_version,
    iceberg_table,
    position_delete_file,
    record_path,
    retag,
    snapshot_of,
)


def _two_versions(mesh: Any) -> None:
    mesh.publish("widgets", widgets_table(3))
    mesh.publish("widgets", widgets_table(4))


def _assert_broken(mesh: Any, version: int | None, *fragments: str) -> str:
    with pytest.raises(BrokenProductError) as info:
        mesh.catalog.manifest("widgets", version)
    message = str(info.value)
    assert "'widgets'" in message and "mesh repair widgets" in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def _set_file_path(doc: dict[str, Any], path: str) -> None:
    doc["files"][0]["path"] = path


# -- run ids --------------------------------------------------------------------------------


@pytest.mark.parametrize("run_id", ["20240101T000000Z-1a2b3c4d", "a", "run_1.2-x", "A" * 100, "x.y"])
def test_valid_run_ids(run_id: str) -> None:
    assert run_id_problem(run_id) is None


@pytest.mark.parametrize("run_id", [
    "", ".hidden", "..", "a..b", "../x", "a/b", "/abs", "a\\b", "x\n", "x\x00", "A" * 101, "é", "a b", 7, None,
])
def test_invalid_run_ids(run_id: object) -> None:
    assert run_id_problem(run_id) is not None


def test_run_id_pattern_is_whole_string() -> None:
    # `$` would accept a trailing newline; the one platform pattern (datamesh.provenance) ends in \Z.
    assert RUN_ID_PATTERN.match("abc\n") is None and run_id_problem("abc\n") is not None


# -- records ------------------------------------------------------------------------------------

# Each is committed the way only someone holding both the lake and the catalog could: the record is
# rewritten AND a snapshot whose summary carries the new record's SHA-256 replaces the version's.
FORGED_RECORDS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("version", lambda d: d.update(version=1), "its version is 1"),
    ("product", lambda d: d.update(product="widget_orders"), "expected 'widgets'"),
    ("domain", lambda d: d.update(domain="billing"), "expected 'shop'"),
    ("run_id_traversal", lambda d: d.update(run_id="../../../billing/invoices"), "not a plain directory name"),
    ("run_id_slash", lambda d: d.update(run_id="a/b"), "not a plain directory name"),
    ("run_id_dot", lambda d: d.update(run_id=".hidden"), "not a plain directory name"),
    ("run_id_newline", lambda d: d.update(run_id="20240101T000000Z-x\n"), "not a plain directory name"),
    ("run_id_long", lambda d: d.update(run_id="a" * 101), "not a plain directory name"),
    ("file_other_product", lambda d: _set_file_path(d, d["files"][0]["path"].replace("/widgets/", "/widget_orders/")),
     "not a plain *.parquet file directly inside"),
    ("file_dotdot", lambda d: _set_file_path(d, d["files"][0]["path"].replace("part-", "../part-")),
     "not a plain *.parquet file directly inside"),
    ("file_subdir", lambda d: _set_file_path(d, d["files"][0]["path"].replace("part-", "sub/part-")),
     "not a plain *.parquet file directly inside"),
    ("file_not_parquet", lambda d: _set_file_path(d, d["files"][0]["path"] + ".csv"),
     "not a plain *.parquet file directly inside"),
    ("file_absolute", lambda d: _set_file_path(d, "/etc/passwd"), "not a plain *.parquet file directly inside"),
    ("file_twice", lambda d: d.update(files=d["files"] * 2, row_count=d["row_count"] * 2), "listed twice"),
    ("row_count", lambda d: d.update(row_count=d["row_count"] + 1), "row_count"),
    ("sha256", lambda d: d["files"][0].update(sha256="x" * 64), "no valid SHA-256"),
    ("no_files", lambda d: d.update(files=[], row_count=0), "lists no files"),
    ("wrong_type", lambda d: d.update(files="all of them"), "not a valid record"),
]


@pytest.mark.parametrize(("edit", "fragment"), [(e, f) for _, e, f in FORGED_RECORDS],
                         ids=[i for i, _, _ in FORGED_RECORDS])
def test_forged_record_with_matching_hash_is_refused(mesh, edit, fragment: str) -> None:  # noqa: ANN001
    _two_versions(mesh)
    forge_version(mesh, 2, edit=edit)
    before = lake_fingerprint(mesh)
    for version in (2, None):
        _assert_broken(mesh, version, fragment)
    assert mesh.catalog.manifest("widgets", 1).row_count == 3  # an older pin does not depend on the head
    assert lake_fingerprint(mesh) == before


@pytest.mark.parametrize("edit", [
    lambda d: d.update(row_count=d["row_count"] + 1),
    lambda d: d.update(run_id="../../widget_orders"),
    lambda d: _set_file_path(d, "products/shop/widget_orders/data/x/part-00000.parquet"),
    lambda d: d["files"][0].update(sha256="0" * 64),
], ids=["row_count", "run_id", "file_path", "sha256"])
def test_record_edited_after_the_commit_is_refused(mesh, edit) -> None:  # noqa: ANN001
    _two_versions(mesh)
    path = edit_record(mesh, 2, edit)
    before = lake_fingerprint(mesh)
    for version in (2, None):
        _assert_broken(mesh, version, str(path), "changed after the commit")
    assert mesh.catalog.manifest("widgets", 1).version == 1
    assert lake_fingerprint(mesh) == before


@pytest.mark.parametrize("raw", [b"\xff\xfe\x00garbage", b"", b"{", b"[]", b"null", b"[" * 100_000])
def test_garbage_record_is_a_clear_error(mesh, raw: bytes) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    forge_version(mesh, 1, raw=raw)
    assert record_path(mesh, 1).read_bytes() == raw
    before = lake_fingerprint(mesh)
    _assert_broken(mesh, None, "not a valid record", str(record_path(mesh, 1)))
    assert lake_fingerprint(mesh) == before


def test_missing_record_is_a_clear_error(mesh) -> None:  # noqa: ANN001
    _two_versions(mesh)
    path = record_path(mesh, 2)
    path.unlink()
    _assert_broken(mesh, None, "has no record", str(path))
    assert mesh.catalog.manifest("widgets", 1).version == 1


def test_oversized_record_is_refused_unread(mesh, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    import datamesh.catalog as catalog_module

    mesh.publish("widgets", widgets_table(3))
    raw = record_path(mesh, 1).read_bytes()
    assert len(raw) > 101
    # Even a summary whose hash matches what is read (the first limit + 1 bytes) cannot get it parsed.
    forge_version(mesh, 1, summary={"mesh.record-sha256": hashlib.sha256(raw[:101]).hexdigest()})
    monkeypatch.setattr(catalog_module, "MAX_MANIFEST_BYTES", 100)
    sizes: list[int] = []
    original = mesh.lake.read_head
    monkeypatch.setattr(mesh.lake, "read_head", lambda path, size: sizes.append(size) or original(path, size))
    _assert_broken(mesh, None, "larger than 100 bytes")
    assert sizes == [101]


def test_record_without_new_fields_still_loads(mesh) -> None:  # noqa: ANN001
    """Records migrated from manifests older than mtime_ns and contract_doc are read (and their files hashed)."""
    mesh.publish("widgets", widgets_table(3))

    def strip(doc: dict[str, Any]) -> None:
        doc.pop("contract_doc")
        for entry in doc["files"]:
            entry.pop("mtime_ns")

    forge_version(mesh, 1, edit=strip)
    m = mesh.catalog.manifest("widgets")
    assert m.contract_doc == {} and m.files[0].mtime_ns is None
    assert mesh.catalog.verified_file_uris(m) == mesh.catalog.file_uris(m)


def test_publish_records_mtime_and_contract(mesh) -> None:  # noqa: ANN001
    m = mesh.publish("widgets", widgets_table(3))
    path = mesh.catalog.file_paths(m)[0]
    assert m.files[0].mtime_ns == os.stat(path).st_mtime_ns
    contract = mesh.contract("widgets")
    assert m.contract_doc == contract.model_dump(mode="json", by_alias=True, exclude={"source_path"})
    assert m.contract_doc["id"] == "widgets" and "source_path" not in m.contract_doc
    assert mesh.catalog.manifest("widgets") == m


@pytest.mark.parametrize("version", [0, -1, True, "1", 1.0])
def test_version_numbers_are_validated(mesh, version: object) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    with pytest.raises(VersionNotFoundError, match="whole numbers from 1"):
        mesh.catalog.manifest("widgets", version)  # type: ignore[arg-type]


# -- tags ------------------------------------------------------------------------------------------


def test_versions_ignore_refs_that_are_not_version_tags(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    snapshot = snapshot_of(mesh, 1)
    manage = iceberg_table(mesh).manage_snapshots()
    for name in ("v0", "v01", "V2", "x1", "v1.0", "latest"):
        manage = manage.create_tag(snapshot, name)
    manage.create_branch(snapshot, "v3").commit()
    assert {"v0", "v01", "v3", "latest"} <= set(iceberg_table(mesh).metadata.refs)
    assert mesh.catalog.versions("widgets") == [1]
    assert mesh.catalog.manifest("widgets").version == 1


def test_tag_on_another_versions_snapshot_is_refused(mesh) -> None:  # noqa: ANN001
    _two_versions(mesh)
    retag(mesh, 1, snapshot_of(mesh, 2))
    _assert_broken(mesh, 1, "is tagged v1 but its summary says version '2'")
    assert mesh.catalog.manifest("widgets").version == 2


def test_tag_on_another_versions_snapshot_is_refused_after_that_version_was_read(mesh) -> None:  # noqa: ANN001
    _two_versions(mesh)
    retag(mesh, 1, snapshot_of(mesh, 2))
    assert mesh.catalog.manifest("widgets", 2).version == 2
    _assert_broken(mesh, 1, "is tagged v1 but its summary says version '2'")


def test_extra_tag_on_a_published_snapshot_is_refused(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    iceberg_table(mesh).manage_snapshots().create_tag(snapshot_of(mesh, 1), "v7").commit()
    assert mesh.catalog.versions("widgets") == [1, 7]
    _assert_broken(mesh, 7, "is tagged v7 but its summary says version '1'")


# -- the table's head ------------------------------------------------------------------------------


def _untagged_claim(mesh: Any) -> int:
    """An append whose summary copies version 2's, without the tag: claims to be v2, is not."""
    table = iceberg_table(mesh)
    summary = table.metadata.snapshot_by_id(snapshot_of(mesh, 2)).summary.additional_properties
    table.append(widgets_table(1, start=50).cast(table.schema().as_arrow()),
                 snapshot_properties={k: v for k, v in summary.items() if k.startswith("mesh.")})
    head = iceberg_table(mesh).metadata.current_snapshot()
    assert head is not None and head.snapshot_id != snapshot_of(mesh, 2)
    return head.snapshot_id


HEAD_ATTACKS = [
    ("foreign_insert", foreign_insert),
    ("foreign_delete", foreign_delete),
    ("untagged_claim", _untagged_claim),
    ("tag_moved_off_the_head", lambda mesh: retag(mesh, 2, snapshot_of(mesh, 1))),
]


@pytest.mark.parametrize("attack", [a for _, a in HEAD_ATTACKS], ids=[i for i, _ in HEAD_ATTACKS])
def test_head_that_is_not_a_published_version_is_refused(mesh, attack) -> None:  # noqa: ANN001
    _two_versions(mesh)
    attack(mesh)
    before = lake_fingerprint(mesh)
    for call in (lambda: mesh.catalog.manifest("widgets"), lambda: mesh.catalog.latest_version("widgets")):
        with pytest.raises(BrokenProductError) as info:
            call()
        message = str(info.value)
        assert "'widgets'" in message and "table shop.widgets" in message and "mesh repair widgets" in message
        assert "is not a published version" in message and "not served until it is repaired" in message
    assert mesh.catalog.manifest("widgets", 1).row_count == 3  # pinned versions do not depend on the head
    assert lake_fingerprint(mesh) == before


def test_a_lake_from_before_iceberg_points_at_migrate(mesh) -> None:  # noqa: ANN001
    paths = mesh.catalog.paths("widgets")
    Path(paths.prefix).mkdir(parents=True)
    Path(paths.legacy_latest).write_text('{"version": 1, "run_id": "a"}')
    with pytest.raises(BrokenProductError, match="mesh migrate") as info:
        mesh.catalog.versions("widgets")
    assert "'widgets'" in str(info.value) and paths.legacy_latest in str(info.value)


# -- the snapshot must read exactly its record's files --------------------------------------------


def _outside(uri: str) -> Callable[[Any], list[Any]]:
    return lambda mesh: [altered(f, file_path=uri.format(root=mesh.lake.root)) for f in data_files(mesh, 2)]


def _miscounted(mesh: Any) -> list[Any]:
    return [altered(f, record_count=99) for f in data_files(mesh, 2)]


SNAPSHOT_ATTACKS: list[tuple[str, Callable[[Any], list[Any]], str]] = [
    ("extra_file", lambda mesh: data_files(mesh, 2) + data_files(mesh, 1), "reads files its record does not list"),
    ("other_file", lambda mesh: data_files(mesh, 1), "does not read files its record lists"),
    ("delete_file", lambda mesh: data_files(mesh, 2) + [position_delete_file(mesh, 2)],
     "reads delete files written by another engine"),
    ("outside_the_lake", _outside("file:///etc/passwd.parquet"), "which is not a file of this lake"),
    ("other_scheme", _outside("s3:/{root}/products/shop/widgets/data/x.parquet"), "which is not a file of this lake"),
    ("row_count", _miscounted, "has 99 rows"),
]


@pytest.mark.parametrize(("files", "fragment"), [(f, m) for _, f, m in SNAPSHOT_ATTACKS],
                         ids=[i for i, _, _ in SNAPSHOT_ATTACKS])
def test_snapshot_must_read_exactly_its_records_files(mesh, files, fragment: str) -> None:  # noqa: ANN001
    _two_versions(mesh)
    forge_version(mesh, 2, files=files(mesh))  # record and summary untouched: the hash still matches
    before = lake_fingerprint(mesh)
    for version in (2, None):
        _assert_broken(mesh, version, "does not match its record", fragment)
    assert mesh.catalog.manifest("widgets", 1).row_count == 3
    assert lake_fingerprint(mesh) == before


# -- verified file lists ------------------------------------------------------------------------------


def test_verified_file_uris_of_intact_version(mesh, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    from datamesh.publish import Publisher

    with Publisher(mesh.catalog, mesh.contract("widgets"), rows_per_file=2) as pub:
        pub.write(widgets_table(7))
        m = pub.commit()
    assert len(m.files) == 4
    calls: list[list[str]] = []
    original = mesh.lake.file_infos
    monkeypatch.setattr(mesh.lake, "file_infos", lambda paths: calls.append(paths) or original(paths))
    hashed: list[str] = []
    monkeypatch.setattr(mesh.lake, "sha256", lambda path: hashed.append(path) or "")
    assert mesh.catalog.verified_file_uris(m) == mesh.catalog.file_uris(m)
    assert len(calls) == 1 and len(calls[0]) == 4  # one batched call for every file
    assert hashed == []  # size and mtime match: nothing is hashed


def test_verified_scan_reads_the_tagged_snapshot(mesh) -> None:  # noqa: ANN001
    _two_versions(mesh)
    m = mesh.catalog.manifest("widgets", 1)
    scan = mesh.catalog.verified_scan(m)
    assert scan.startswith("iceberg_scan(") and f"snapshot_from_id => {snapshot_of(mesh, 1)})" in scan
    assert m.metadata_location in scan


def test_missing_file_is_tampered(mesh) -> None:  # noqa: ANN001
    m = mesh.publish("widgets", widgets_table(3))
    path = mesh.catalog.file_paths(m)[0]
    os.remove(path)
    for call in (mesh.catalog.verified_file_uris, mesh.catalog.verified_scan):
        with pytest.raises(TamperedError) as info:
            call(m)
        message = str(info.value)
        assert "'widgets' version 1" in message and path in message and "is missing" in message
        assert "mesh repair widgets" in message


def test_resized_file_is_tampered(mesh) -> None:  # noqa: ANN001
    m = mesh.publish("widgets", widgets_table(3))
    path = mesh.catalog.file_paths(m)[0]
    pq.write_table(widgets_table(300), path)
    with pytest.raises(TamperedError, match=f"has [0-9,]+ bytes, the manifest recorded {m.files[0].bytes:,}"):
        mesh.catalog.verified_scan(m)


def _same_size_overwrite(path: str) -> None:
    data = bytearray(Path(path).read_bytes())
    stat = os.stat(path)
    data[len(data) // 2] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_same_size_overwrite_is_tampered(mesh) -> None:  # noqa: ANN001
    m = mesh.publish("widgets", widgets_table(3))
    path = mesh.catalog.file_paths(m)[0]
    _same_size_overwrite(path)
    with pytest.raises(TamperedError, match="was overwritten: its SHA-256 is") as info:
        mesh.catalog.verified_scan(m)
    assert path in str(info.value) and "mesh repair widgets" in str(info.value)


# -- status --------------------------------------------------------------------------------------------


def test_status_survives_a_broken_product(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    mesh.publish("widget_orders", _orders())
    foreign_insert(mesh)
    rows = {r["product"]: r for r in mesh.catalog.status()}
    assert rows["widget_orders"]["version"] == 1 and rows["widget_orders"]["error"] is None
    assert rows["widgets"]["version"] is None and "mesh repair widgets" in rows["widgets"]["error"]


def _orders() -> Any:
    import pyarrow as pa

    return pa.table({"order_id": pa.array([1], pa.int64()), "line_number": pa.array([1], pa.int32()),
                     "widget_id": pa.array([1], pa.int64())})
