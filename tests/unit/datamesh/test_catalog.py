"""Nothing read back from the lake is trusted: pointer and manifest validation, verified file lists."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from datamesh.catalog import RUN_ID_PATTERN, manifest_version, parse_pointer, run_id_problem
from datamesh.errors import BrokenProductError, TamperedError, VersionNotFoundError
from datamesh.platform import Mesh
from datamesh.settings import Settings
from tests.conftest import widgets_table
from tests.integrity import lake_fingerprint


def _manifest_path(mesh: Any, version: int) -> Path:
    return Path(mesh.catalog.paths("widgets").manifest(version))


def _edit_manifest(mesh: Any, version: int, edit: Callable[[dict[str, Any]], None]) -> Path:
    path = _manifest_path(mesh, version)
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    return path


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


@pytest.mark.parametrize(("name", "version"), [
    ("00000003.json", 3), ("123456789.json", 123456789), ("3.json", None), ("00000000.json", None),
    ("000000003.json", None), (".00000003.json.x.tmp", None), ("0000000\u0663.json", None), ("00000003.JSON", None),
])
def test_manifest_file_names(name: str, version: int | None) -> None:
    assert manifest_version(name) == version


# -- manifests --------------------------------------------------------------------------------


MANIFEST_ATTACKS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("version", lambda d: d.update(version=2), "file name says 1"),
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
    ("wrong_type", lambda d: d.update(files="all of them"), "not a valid manifest"),
]


@pytest.mark.parametrize(("edit", "fragment"), [(e, f) for _, e, f in MANIFEST_ATTACKS],
                         ids=[i for i, _, _ in MANIFEST_ATTACKS])
def test_invalid_manifest_is_a_clear_error(mesh, edit, fragment: str) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    path = _edit_manifest(mesh, 1, edit)
    before = lake_fingerprint(mesh)
    for version in (1, None):
        with pytest.raises(BrokenProductError) as info:
            mesh.catalog.manifest("widgets", version)
        message = str(info.value)
        assert "'widgets'" in message and str(path) in message and fragment in message
        assert "mesh repair widgets" in message
    assert lake_fingerprint(mesh) == before


@pytest.mark.parametrize("raw", [b"\xff\xfe\x00garbage", b"", b"{", b"[]", b"null", b"[" * 100_000])
def test_garbage_manifest_is_a_clear_error(mesh, raw: bytes) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    _manifest_path(mesh, 1).write_bytes(raw)
    before = lake_fingerprint(mesh)
    with pytest.raises(BrokenProductError, match="not a valid manifest") as info:
        mesh.catalog.manifest("widgets")
    assert "mesh repair widgets" in str(info.value)
    assert lake_fingerprint(mesh) == before


def test_oversized_manifest_is_refused_unread(mesh, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    import datamesh.catalog as catalog_module

    mesh.publish("widgets", widgets_table(3))
    monkeypatch.setattr(catalog_module, "MAX_MANIFEST_BYTES", 100)
    with pytest.raises(BrokenProductError, match="larger than 100 bytes"):
        mesh.catalog.manifest("widgets")


def test_manifest_without_new_fields_still_loads(mesh) -> None:  # noqa: ANN001
    """Manifests written before mtime_ns and contract_doc existed are read (and their files hashed)."""
    mesh.publish("widgets", widgets_table(3))

    def strip(doc: dict[str, Any]) -> None:
        doc.pop("contract_doc")
        for entry in doc["files"]:
            entry.pop("mtime_ns")

    _edit_manifest(mesh, 1, strip)
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


def test_versions_ignore_foreign_file_names(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    manifests = _manifest_path(mesh, 1).parent
    for name in ("3.json", ".00000002.json.abc.tmp", "00000000.json", "notes.txt"):
        (manifests / name).write_text("{}")
    assert mesh.catalog.versions("widgets") == [1]
    assert mesh.catalog.manifest("widgets").version == 1


@pytest.mark.parametrize("version", [0, -1, True, "1", 1.0])
def test_version_numbers_are_validated(mesh, version: object) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    with pytest.raises(VersionNotFoundError, match="whole numbers from 1"):
        mesh.catalog.manifest("widgets", version)  # type: ignore[arg-type]


# -- the latest pointer ------------------------------------------------------------------------------


POINTER_ATTACKS: list[tuple[str, bytes, str]] = [
    ("garbage", b"\x00\xff\xfe not json", "not JSON"),
    ("empty", b"", "not JSON"),
    ("list", b"[1]", "expected exactly"),
    ("missing_run_id", b'{"version": 1}', "expected exactly"),
    ("extra_key", b'{"version": 1, "run_id": "a", "files": []}', "expected exactly"),
    ("zero", b'{"version": 0, "run_id": "a"}', "not a whole number >= 1"),
    ("string_version", b'{"version": "1", "run_id": "a"}', "not a whole number >= 1"),
    ("bool_version", b'{"version": true, "run_id": "a"}', "not a whole number >= 1"),
    ("float_version", b'{"version": 1.0, "run_id": "a"}', "not a whole number >= 1"),
    ("run_id", b'{"version": 1, "run_id": "../../x"}', "not a plain directory name"),
    ("deep", b"[" * 4000, "not JSON"),
]


@pytest.mark.parametrize(("raw", "fragment"), [(r, f) for _, r, f in POINTER_ATTACKS],
                         ids=[i for i, _, _ in POINTER_ATTACKS])
def test_invalid_pointer_is_a_clear_error(mesh, raw: bytes, fragment: str) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    latest = Path(mesh.catalog.paths("widgets").latest)
    latest.write_bytes(raw)
    before = lake_fingerprint(mesh)
    for call in (lambda: mesh.catalog.manifest("widgets"), lambda: mesh.catalog.latest_version("widgets")):
        with pytest.raises(BrokenProductError) as info:
            call()
        message = str(info.value)
        assert "'widgets'" in message and str(latest) in message and fragment in message
        assert "mesh repair widgets" in message
    # pinned versions do not depend on the pointer
    assert mesh.catalog.manifest("widgets", 1).version == 1
    assert lake_fingerprint(mesh) == before


def test_oversized_pointer_is_refused(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    Path(mesh.catalog.paths("widgets").latest).write_bytes(b" " * 10_000)
    with pytest.raises(BrokenProductError, match="larger than 4096 bytes"):
        mesh.catalog.manifest("widgets")


def test_pointer_to_missing_version(mesh) -> None:  # noqa: ANN001
    m = mesh.publish("widgets", widgets_table(3))
    Path(mesh.catalog.paths("widgets").latest).write_text(json.dumps({"version": 9, "run_id": m.run_id}))
    with pytest.raises(BrokenProductError, match="names version 9, but no manifest") as info:
        mesh.catalog.manifest("widgets")
    assert "committed versions: 1" in str(info.value)


def test_pointer_run_id_must_match_manifest(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    Path(mesh.catalog.paths("widgets").latest).write_text(json.dumps({"version": 1, "run_id": "other-run"}))
    with pytest.raises(BrokenProductError, match="names run 'other-run' for version 1"):
        mesh.catalog.manifest("widgets")


def test_pointer_roll_forward_still_works(mesh) -> None:  # noqa: ANN001
    m1 = mesh.publish("widgets", widgets_table(3))
    mesh.publish("widgets", widgets_table(4))
    Path(mesh.catalog.paths("widgets").latest).write_text(json.dumps({"version": 1, "run_id": m1.run_id}))
    assert mesh.catalog.manifest("widgets").version == 2


def test_parse_pointer_round_trip() -> None:
    from datamesh.catalog import pointer_bytes

    assert parse_pointer(pointer_bytes(3, "r-1")) == (3, "r-1")
    assert pointer_bytes(3, "r-1") == b'{"version": 3, "run_id": "r-1"}'


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


def test_missing_file_is_tampered(mesh) -> None:  # noqa: ANN001
    m = mesh.publish("widgets", widgets_table(3))
    path = mesh.catalog.file_paths(m)[0]
    os.remove(path)
    with pytest.raises(TamperedError) as info:
        mesh.catalog.verified_file_uris(m)
    message = str(info.value)
    assert "'widgets' version 1" in message and path in message and "is missing" in message


def test_resized_file_is_tampered(mesh) -> None:  # noqa: ANN001
    m = mesh.publish("widgets", widgets_table(3))
    path = mesh.catalog.file_paths(m)[0]
    pq.write_table(widgets_table(300), path)
    with pytest.raises(TamperedError, match=f"has [0-9,]+ bytes, the manifest recorded {m.files[0].bytes:,}"):
        mesh.catalog.verified_file_uris(m)


def _same_size_overwrite(path: str, *, keep_mtime: bool) -> None:
    data = bytearray(Path(path).read_bytes())
    stat = os.stat(path)
    data[len(data) // 2] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    if keep_mtime:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    else:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_same_size_overwrite_is_tampered(mesh) -> None:  # noqa: ANN001
    m = mesh.publish("widgets", widgets_table(3))
    path = mesh.catalog.file_paths(m)[0]
    _same_size_overwrite(path, keep_mtime=False)
    with pytest.raises(TamperedError, match="was overwritten: its SHA-256 is") as info:
        mesh.catalog.verified_file_uris(m)
    assert path in str(info.value) and "mesh repair widgets" in str(info.value)


def test_copied_lake_stays_readable(mesh, tmp_path: Path, contracts_dir: Path) -> None:  # noqa: ANN001
    """A copy has new modification times: the files are hashed once, and they match."""
    m = mesh.publish("widgets", widgets_table(3))
    copy = tmp_path / "copied-lake"
    shutil.copytree(mesh.lake.root, copy, copy_function=shutil.copy)  # copy, not copy2: new mtimes
    other = Mesh.from_settings(Settings(lake_url=str(copy), contracts_dir=contracts_dir))
    m2 = other.catalog.manifest("widgets")
    assert os.stat(other.catalog.file_paths(m2)[0]).st_mtime_ns != m.files[0].mtime_ns
    assert other.catalog.verified_file_uris(m2) == other.catalog.file_uris(m2)
    with other.session() as s:
        assert s.sql("select count(*) from widgets").fetchone()[0] == 3  # type: ignore[index]


# -- status --------------------------------------------------------------------------------------------


def test_status_survives_a_broken_product(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    mesh.publish("widget_orders", _orders())
    Path(mesh.catalog.paths("widgets").latest).write_bytes(b"\xff garbage")
    rows = {r["product"]: r for r in mesh.catalog.status()}
    assert rows["widget_orders"]["version"] == 1 and rows["widget_orders"]["error"] is None
    assert rows["widgets"]["version"] is None and "mesh repair widgets" in rows["widgets"]["error"]


def _orders() -> Any:
    import pyarrow as pa

    return pa.table({"order_id": pa.array([1], pa.int64()), "line_number": pa.array([1], pa.int32()),
                     "widget_id": pa.array([1], pa.int64())})
