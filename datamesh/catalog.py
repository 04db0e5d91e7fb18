"""The read side of the lake: product versions, their records and exact file lists.

Each product is an Iceberg table (:mod:`datamesh.tables`). Layout under the lake root::

    products/<domain>/<product>/data/<run_id>/part-00000.parquet   immutable, per publish
    products/<domain>/<product>/metadata/...                       Iceberg metadata (JSON, Avro)
    products/<domain>/<product>/_records/<run_id>.json             create-only side record of one publish
    _catalog/iceberg.db                                            the embedded SQL catalog (local lakes)

A version is the snapshot tagged ``v<N>``; the table's main branch is the
latest. The snapshot summary names the publish's run id and the SHA-256 of
its side record, which carries what Iceberg does not: every file's checksum,
the contract the version was published under, quality results and lineage.
A version is served only if its record is intact and lists exactly the data
files its snapshot reads.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from datamesh.contracts import Contract, ContractRegistry
from datamesh.errors import BrokenProductError, StorageError, TamperedError, VersionNotFoundError
from datamesh.provenance import RUN_ID_PATTERN
from datamesh.storage import Lake
from datamesh.tables import PROP_RECORD_SHA256, PROP_RUN_ID, PROP_VERSION, SnapshotRef, TableState, TableStore, iceberg_scan_sql

if TYPE_CHECKING:
    from datamesh.identity import Identity

#: A data file name inside a run directory; always used with ``fullmatch``.
DATA_FILE_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}\.parquet")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
#: Far above any real record; a bigger file is refused unread.
MAX_MANIFEST_BYTES = 64 << 20


class FileEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str  # relative to the lake root
    rows: int
    bytes: int
    sha256: str
    #: Modification time the store reported right after staging (None in manifests written before it existed).
    mtime_ns: int | None = None


class Manifest(BaseModel):
    """What one committed product version is made of."""

    model_config = ConfigDict(frozen=True)

    product: str
    domain: str
    version: int
    contract_version: str
    run_id: str
    created_at: datetime
    row_count: int
    files: tuple[FileEntry, ...]
    schema_: tuple[dict[str, str], ...] = ()
    inputs: dict[str, int] = {}
    quality: tuple[dict[str, Any], ...] = ()
    metadata: dict[str, Any] = {}
    writer: dict[str, Any] = {}
    #: The contract this version was published under (JSON form, by alias, without its source path).
    contract_doc: dict[str, Any] = {}
    #: Where the version is in its Iceberg table (set when read from, or committed to, the catalog; not stored).
    snapshot_id: int | None = Field(default=None, exclude=True)
    metadata_location: str | None = Field(default=None, exclude=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=2, by_alias=True).encode()

    @property
    def size_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def orchestrator_run_id(self) -> str | None:
        """The run of the orchestrator (Dagster's run id) that published this version, if one did.

        ``run_id`` is the publish's own id (its data folder's name, unique per publish, with the
        orchestrator run's first 8 characters as a tag); this is the whole id to look the run up by."""
        value = self.writer.get("orchestrator_run_id")
        return value if isinstance(value, str) else None


def run_id_problem(run_id: object) -> str | None:
    """Why ``run_id`` is not a safe run directory name, or None if it is."""
    if not isinstance(run_id, str):
        return f"run_id must be a string, got {type(run_id).__name__}"
    if not RUN_ID_PATTERN.fullmatch(run_id) or ".." in run_id:
        return (f"run_id {run_id!r} is not a plain directory name (expected 1-100 letters, digits, '-', '_' "
                "or '.', not starting with '.', without '..' or '/')")
    return None


def manifest_problems(manifest: Manifest, contract: Contract, version: int | None = None) -> list[str]:
    """Everything wrong with a manifest read back from the lake (empty if it is valid).

    ``version`` is the number in the manifest's file name. Every file must lie
    exactly inside ``products/<domain>/<product>/data/<run_id>/`` with a plain
    ``*.parquet`` name, so no manifest can make a reader (or a delete) reach
    another product's files.
    """
    problems: list[str] = []
    if version is not None and manifest.version != version:
        problems.append(f"its version is {manifest.version} but its tag says {version}")
    if manifest.version < 1:
        problems.append(f"its version {manifest.version} is not a whole number >= 1")
    if manifest.product != contract.id:
        problems.append(f"it names product {manifest.product!r}, expected {contract.id!r}")
    if manifest.domain != contract.domain:
        problems.append(f"it names domain {manifest.domain!r}, expected {contract.domain!r}")
    run_problem = run_id_problem(manifest.run_id)
    if run_problem:
        problems.append(run_problem)
        return problems  # file paths cannot be checked against an unsafe run directory
    run_dir = f"products/{contract.domain}/{contract.id}/data/{manifest.run_id}/"
    seen: set[str] = set()
    for entry in manifest.files:
        name = entry.path[len(run_dir):] if entry.path.startswith(run_dir) else None
        if name is None or not DATA_FILE_PATTERN.fullmatch(name) or ".." in name:
            problems.append(f"file {entry.path!r} is not a plain *.parquet file directly inside {run_dir}")
        elif entry.path in seen:
            problems.append(f"file {entry.path!r} is listed twice")
        seen.add(entry.path)
        if entry.rows < 0 or entry.bytes < 0:
            problems.append(f"file {entry.path!r} records negative rows or bytes")
        if not SHA256_PATTERN.fullmatch(entry.sha256):
            problems.append(f"file {entry.path!r} has no valid SHA-256 (expected 64 lowercase hex digits)")
    if not manifest.files:
        problems.append("it lists no files (every version has at least one)")
    if sum(f.rows for f in manifest.files) != manifest.row_count:
        problems.append(f"its row_count {manifest.row_count} differs from the sum over its files")
    return problems


@dataclass(frozen=True)
class ProductPaths:
    lake: Lake
    domain: str
    product: str

    @property
    def prefix(self) -> str:
        return self.lake.path("products", self.domain, self.product)

    @property
    def records(self) -> str:
        return f"{self.prefix}/_records"

    @property
    def metadata(self) -> str:
        return f"{self.prefix}/metadata"

    @property
    def legacy_manifests(self) -> str:
        """Where a lake from before Iceberg kept its manifests (read by `mesh migrate` only)."""
        return f"{self.prefix}/_manifests"

    @property
    def legacy_latest(self) -> str:
        return f"{self.prefix}/_latest.json"

    @property
    def data(self) -> str:
        return f"{self.prefix}/data"

    @property
    def quarantine(self) -> str:
        return f"{self.prefix}/_quarantine"

    def record(self, run_id: str) -> str:
        return f"{self.records}/{run_id}.json"

    def run_dir(self, run_id: str) -> str:
        return f"{self.data}/{run_id}"


class Catalog:
    """Resolves products (latest or pinned) to verified records and Iceberg snapshots.

    Nothing read back from the lake or the catalog is trusted: tags, the
    table's head and each version's side record are validated on every read
    (:class:`BrokenProductError` otherwise), and :meth:`verified_scan` checks
    the files themselves before a reader is given them (:class:`TamperedError`
    otherwise).
    """

    def __init__(self, lake: Lake, contracts: ContractRegistry, tables: TableStore | None = None) -> None:
        self.lake = lake
        self.contracts = contracts
        self.tables = tables if tables is not None else TableStore(lake)
        #: Called with (contract, manifest) after every commit.
        self.commit_hooks: list[Callable[[Contract, Manifest], None]] = []
        #: The acting identity and orchestrator run id, set by the platform facade (None: not given).
        self.identity: Identity | None = None
        self.run_id: str | None = None
        # (path, size, mtime_ns) -> sha256 of files hashed because their mtime differed from the manifest's.
        self._hashed: dict[tuple[str, int, int | None], str] = {}
        # (metadata location, snapshot id) -> the verified record: metadata files are immutable.
        self._records: dict[tuple[str, int, int], Manifest] = {}

    def paths(self, product_id: str) -> ProductPaths:
        contract = self.contracts.get(product_id)
        return ProductPaths(self.lake, contract.domain, contract.id)

    def forget_verified(self) -> None:
        """Drop what this catalog verified before (records, hashes): the next reads check everything again."""
        self._records.clear()
        self._hashed.clear()

    def paths_for(self, contract: Contract) -> ProductPaths:
        return ProductPaths(self.lake, contract.domain, contract.id)

    # -- versions ---------------------------------------------------------------------------

    def table_state(self, product_id: str) -> TableState | None:
        """The product's table now (None if it has none); BrokenProductError for a lake from before Iceberg."""
        contract = self.contracts.get(product_id)
        state = self.tables.state(contract)
        if state is None and self.lake.exists(self.paths_for(contract).legacy_latest):
            raise BrokenProductError(
                f"Product '{contract.id}' was published by a version of the platform from before Iceberg "
                f"tables ({self.lake.uri(self.paths_for(contract).legacy_latest)} exists but the catalog has "
                "no table for it). Run `mesh migrate` once: it adds the existing files to Iceberg tables "
                "without rewriting them."
            )
        return state

    def versions(self, product_id: str) -> list[int]:
        """Published versions still retained (tagged ``v<N>``), oldest first."""
        state = self.table_state(product_id)
        return sorted(state.versions) if state else []

    def latest_version(self, product_id: str) -> int | None:
        """The version the table serves (None if none); BrokenProductError if its head is not a version."""
        contract = self.contracts.get(product_id)
        state = self.table_state(contract.id)
        if state is None:
            return None
        if state.head_problem:
            raise self._broken(contract, self._table_name(contract), state.head_problem, whole_product=True)
        return state.head.version if state.head else None

    # -- records ------------------------------------------------------------------------------

    def manifest(self, product_id: str, version: int | None = None) -> Manifest:
        """The validated record of a version (default: the latest), with its snapshot.

        Raises VersionNotFoundError for a version that was never published (or
        was expired) and BrokenProductError for a table head, tag or record
        that is not what a publish wrote.
        """
        contract = self.contracts.get(product_id)
        if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
            raise VersionNotFoundError(
                f"Product '{contract.id}' has no version {version!r}: versions are whole numbers from 1. "
                f"Available versions: {', '.join(map(str, self.versions(contract.id))) or 'none'}."
            )
        state = self.table_state(contract.id)
        if version is None:
            if state is not None and state.head_problem:
                raise self._broken(contract, self._table_name(contract), state.head_problem, whole_product=True)
            if state is None or state.head is None:
                raise VersionNotFoundError(
                    f"Product '{contract.id}' has no published version yet. Publish one "
                    f"(`mesh publish {contract.id} FILE` or `mesh demo`)."
                )
            ref = state.head
        else:
            ref = state.versions.get(version) if state is not None else None
            if ref is None or state is None:
                known = sorted(state.versions) if state else []
                raise VersionNotFoundError(
                    f"Product '{contract.id}' has no version {version}. Available versions: "
                    f"{', '.join(map(str, known)) or 'none'}."
                )
        return self.record(contract, state, ref)

    def record(self, contract: Contract, state: TableState, ref: SnapshotRef) -> Manifest:
        """The side record of one tagged snapshot, checked against the snapshot (BrokenProductError)."""
        where = f"{self._table_name(contract)} version {ref.version} (snapshot {ref.snapshot_id})"
        claimed = ref.summary.get(PROP_VERSION)
        if claimed != str(ref.version):
            raise self._broken(contract, where, f"is tagged v{ref.version} but its summary says version {claimed!r}")
        key = (state.metadata_location, ref.snapshot_id, ref.version)
        cached = self._records.get(key)
        if cached is not None:
            return cached
        run_id, raw, path = self.record_bytes(contract, ref)
        manifest = self.parse_manifest(contract, ref.version, raw, path)
        if manifest.run_id != run_id:
            raise self._broken(contract, where, f"names run {run_id!r} but its record says {manifest.run_id!r}")
        problems = self._snapshot_problems(state, ref, manifest)
        if problems:
            raise self._broken(contract, where, "does not match its record: " + "; ".join(problems))
        manifest = manifest.model_copy(update={"snapshot_id": ref.snapshot_id,
                                               "metadata_location": state.metadata_location})
        self._records[key] = manifest
        return manifest

    def record_bytes(self, contract: Contract, ref: SnapshotRef) -> tuple[str, bytes, str]:
        """The run id a tagged snapshot names and its record's bytes and path, checked against the
        snapshot's hash of them (BrokenProductError); not parsed, nor compared with the snapshot's files."""
        where = f"{self._table_name(contract)} version {ref.version} (snapshot {ref.snapshot_id})"
        run_id = ref.summary.get(PROP_RUN_ID)
        problem = run_id_problem(run_id)
        if problem:
            raise self._broken(contract, where, f"names no valid publish run: {problem}")
        assert isinstance(run_id, str)
        path = self.paths_for(contract).record(run_id)
        try:
            raw = self.lake.read_head(path, MAX_MANIFEST_BYTES + 1)
        except FileNotFoundError:
            raise self._broken(contract, where, f"has no record: {self.lake.uri(path)} is missing") from None
        if hashlib.sha256(raw).hexdigest() != ref.summary.get(PROP_RECORD_SHA256):
            raise self._broken(contract, where, f"has a record {self.lake.uri(path)} that was changed after "
                                                "the commit (its SHA-256 differs from the snapshot's)")
        return run_id, raw, path

    def _snapshot_problems(self, state: TableState, ref: SnapshotRef, manifest: Manifest) -> list[str]:
        files = self.tables.file_infos(state.table, ref.snapshot_id)
        problems = self._schema_problems(state, ref, manifest)
        deletes = [f.uri for f in files if f.content != 0]
        if deletes:
            problems.append(f"it reads delete files written by another engine ({', '.join(deletes[:3])})")
        recorded = {self.lake.path(f.path): f for f in manifest.files}
        read = {}
        for f in files:
            if f.content != 0:
                continue
            path = self.tables.path_of(f.uri)
            if path is None:
                problems.append(f"it reads {f.uri}, which is not a file of this lake")
            else:
                read[path] = f
        extra = sorted(set(read) - set(recorded))
        missing = sorted(set(recorded) - set(read))
        if extra:
            problems.append(f"it reads files its record does not list ({', '.join(self.lake.uri(p) for p in extra[:3])})")
        if missing:
            problems.append(f"it does not read files its record lists ({', '.join(self.lake.uri(p) for p in missing[:3])})")
        for path, f in read.items():
            entry = recorded.get(path)
            if entry is not None and (entry.rows != f.records or entry.bytes != f.bytes):
                problems.append(f"file {self.lake.uri(path)} has {f.records} rows / {f.bytes} bytes in the "
                                f"snapshot, {entry.rows} / {entry.bytes} in the record")
        return problems

    @staticmethod
    def _schema_problems(state: TableState, ref: SnapshotRef, manifest: Manifest) -> list[str]:
        """The snapshot's Iceberg schema must be the one the record says the version was written with."""
        from datamesh.types import ColumnType

        if not manifest.schema_:
            return []  # records from before schemas were recorded
        metadata = state.table.metadata
        snapshot = metadata.snapshot_by_id(ref.snapshot_id)
        schema_id = getattr(snapshot, "schema_id", None)
        schema = metadata.schema_by_id(schema_id) if schema_id is not None else metadata.schema()
        if schema is None:
            return [f"its schema {schema_id} is missing from the table's metadata"]
        actual = []
        for f in schema.fields:
            try:
                actual.append((f.name, str(ColumnType.from_iceberg(f.field_type).arrow)))
            except ValueError:
                actual.append((f.name, str(f.field_type)))
        recorded = [(c.get("name"), c.get("type")) for c in manifest.schema_]
        if actual != recorded:
            return [f"its table schema {actual} differs from the recorded {recorded}"]
        return []

    def parse_manifest(self, contract: Contract, version: int, raw: bytes, path: str) -> Manifest:
        """Parse and validate the bytes of a record of ``contract``'s version ``version`` (BrokenProductError)."""
        if len(raw) > MAX_MANIFEST_BYTES:
            raise self._broken(contract, self.lake.uri(path), f"is larger than {MAX_MANIFEST_BYTES:,} bytes")
        try:
            manifest = Manifest.model_validate_json(raw)
        except (ValidationError, ValueError, RecursionError) as exc:
            raise self._broken(contract, self.lake.uri(path), f"is not a valid record ({_first_error(exc)})") from None
        problems = manifest_problems(manifest, contract, version)
        if problems:
            raise self._broken(contract, self.lake.uri(path), "is invalid: " + "; ".join(problems))
        return manifest

    @staticmethod
    def _table_name(contract: Contract) -> str:
        return f"table {contract.domain}.{contract.id}"

    def _broken(self, contract: Contract, where: str, what: str, *, whole_product: bool = False) -> BrokenProductError:
        served = ("The product is not served until it is repaired" if whole_product
                  else "That version is not served")
        return BrokenProductError(
            f"Product '{contract.id}' is broken: {where} {what}. {served}: run "
            f"`mesh repair {contract.id}` (it removes the tags of invalid versions, quarantines their records and "
            f"points the table back at the newest valid version), then `mesh verify {contract.id}`."
        )

    # -- files -----------------------------------------------------------------------------

    def file_paths(self, manifest: Manifest) -> list[str]:
        return [self.lake.path(f.path) for f in manifest.files]

    def file_uris(self, manifest: Manifest) -> list[str]:
        """URIs of the manifest's files, unchecked; readers use :meth:`verified_file_uris`."""
        return [self.lake.uri(p) for p in self.file_paths(manifest)]

    def verified_file_uris(self, manifest: Manifest) -> list[str]:
        """URIs of exactly the files a manifest committed, after checking they are still those files.

        One batched ``get_file_info`` for all files. A missing file or a size
        mismatch raises TamperedError. A file whose modification time differs
        from the one recorded at staging (a copied lake, or a same-size
        overwrite), or whose manifest recorded none, is hashed in full and
        refused unless its SHA-256 matches.
        """
        return [self.lake.uri(p) for p in self.verified_file_paths(manifest)]

    def verified_scan(self, manifest: Manifest) -> str:
        """DuckDB SQL reading exactly this version's snapshot (``iceberg_scan``), after verifying its files."""
        self.verified_file_paths(manifest)
        if manifest.snapshot_id is None or not manifest.metadata_location:
            raise StorageError(f"Product '{manifest.product}' version {manifest.version} was not read from the "
                               "catalog, so it has no snapshot to scan.")
        return iceberg_scan_sql(manifest.metadata_location, manifest.snapshot_id)

    def verified_file_paths(self, manifest: Manifest) -> list[str]:
        """Like :meth:`verified_file_uris`, as paths of the lake's file system (for ``pyarrow`` readers)."""
        contract = self.contracts.get(manifest.product)
        problems = manifest_problems(manifest, contract)
        if problems:
            raise self._broken(contract, f"the record of version {manifest.version}", "is invalid: " + "; ".join(problems))
        paths = self.file_paths(manifest)
        for entry, path, info in zip(manifest.files, paths, self.lake.file_infos(paths), strict=True):
            problem = self.file_problem(entry, path, info, full_hash=False)
            if problem:
                raise self._tampered(manifest, path, problem)
        return paths

    def file_problem(self, entry: FileEntry, path: str, info: Any, *, full_hash: bool) -> str | None:
        """What differs between a committed file and its manifest entry, or None.

        ``info`` is the file's ``pyarrow.fs.FileInfo``. With ``full_hash`` the
        file is always hashed; otherwise only when its modification time does
        not match the recorded one.
        """
        import pyarrow.fs as pafs

        if info.type == pafs.FileType.NotFound:
            return f"is missing (the manifest recorded {entry.bytes:,} bytes)"
        if info.type != pafs.FileType.File:
            return "is not a regular file"
        if info.size != entry.bytes:
            return f"has {info.size:,} bytes, the manifest recorded {entry.bytes:,}"
        if not self.lake.is_s3 and os.path.realpath(path) != path:
            return f"is reached through a symbolic link (it resolves to {os.path.realpath(path)})"
        mtime = info.mtime_ns
        if not full_hash and entry.mtime_ns is not None and mtime == entry.mtime_ns:
            return None
        key = (path, info.size, mtime)
        if not full_hash and mtime is not None and self._hashed.get(key) == entry.sha256:
            return None
        try:
            digest = self.lake.sha256(path)
        except FileNotFoundError:
            return f"is missing (the manifest recorded {entry.bytes:,} bytes)"
        if digest != entry.sha256:
            return (f"was overwritten: its SHA-256 is {digest}, the manifest recorded {entry.sha256} "
                    "(same size)")
        self._hashed[key] = digest
        return None

    def _tampered(self, manifest: Manifest, path: str, problem: str) -> TamperedError:
        return TamperedError(
            f"Product '{manifest.product}' version {manifest.version}: file {self.lake.uri(path)} {problem}. "
            "The version is refused, never served. Restore the file from a backup, or run "
            f"`mesh repair {manifest.product}` to quarantine the version; `mesh verify {manifest.product}` "
            "lists every affected version."
        )

    def age_seconds(self, manifest: Manifest) -> float:
        return time.time() - manifest.created_at.timestamp()

    def status(self) -> list[dict[str, Any]]:
        """One row per product: latest version, rows, age, freshness verdict; ``error`` for a broken one."""
        rows = []
        for contract in self.contracts:
            row: dict[str, Any] = {"product": contract.id, "domain": contract.domain, "owner": contract.owner.team,
                                   "version": None, "rows": None, "bytes": None, "published": None, "fresh": None,
                                   "error": None}
            try:
                m = self.manifest(contract.id)
            except VersionNotFoundError:
                rows.append(row)
                continue
            except StorageError as exc:  # BrokenProductError, TamperedError, an unreachable store
                rows.append({**row, "error": str(exc)})
                continue
            limit = contract.freshness_seconds
            rows.append({
                **row,
                "version": m.version, "rows": m.row_count, "bytes": m.size_bytes,
                "published": m.created_at.isoformat(timespec="seconds"),
                "fresh": None if limit is None else self.age_seconds(m) <= limit,
            })
        return rows


def _first_error(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        if errors:
            first = errors[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "document"
            more = f" and {len(errors) - 1} more" if len(errors) > 1 else ""
            return f"{where}: {first.get('msg', 'invalid')}{more}"
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
