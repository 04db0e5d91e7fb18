"""Products as Apache Iceberg tables: one table per product, one snapshot per version.

Each product is the Iceberg table ``<domain>.<product>`` located at
``products/<domain>/<product>/`` of the lake. A published version is one
snapshot that replaces the whole table's content with exactly the files the
publish staged and checked, tagged ``v<N>`` in the same catalog commit. The
catalog's compare-and-swap on the table's metadata pointer is the commit
point: a writer whose base moved meanwhile gets :class:`ConflictError`, and
nothing it staged becomes visible. Retries are off (``commit.retry.num-retries
= 0``): a version number is claimed once, never rebased onto a newer head.

The catalog is pyiceberg's SQL catalog: a SQLite file inside a local lake by
default (no server), PostgreSQL on the full stack (``MESH_ICEBERG_CATALOG_URI``),
which Trino's Iceberg connector reads natively. Nothing here trusts what it
reads back: :mod:`datamesh.catalog` checks every snapshot against the side
record the publish wrote (checksums, contract, quality) before serving it.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from datamesh.errors import BrokenProductError, ConflictError, HostileTableError, PublishError, SettingsError, StorageError
from datamesh.storage import is_access_denied

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import Table

    from datamesh.contracts import Contract
    from datamesh.storage import Lake

#: The catalog's name; Trino's ``iceberg.jdbc-catalog.catalog-name`` must be the same.
CATALOG_NAME = "lake"
#: The embedded catalog of a local lake, relative to its root.
SQLITE_CATALOG = "_catalog/iceberg.db"
VERSION_TAG = re.compile(r"v([1-9][0-9]{0,8})")

#: Snapshot summary keys a publish writes (Trino shows them in ``"<table>$snapshots"``).
PROP_VERSION = "mesh.version"
PROP_RUN_ID = "mesh.run-id"
PROP_RECORD_SHA256 = "mesh.record-sha256"
PROP_CONTRACT_VERSION = "mesh.contract-version"
PROP_ROWS = "mesh.rows"
PROP_INPUTS = "mesh.inputs"
PROP_QUALITY = "mesh.quality"
PROP_ACTOR = "mesh.actor"
#: Table property: the highest version number ever committed (never reused, even after its tag is removed).
PROP_LAST_VERSION = "mesh.last-version"

NAME_MAPPING = "schema.name-mapping.default"
#: Table properties that would redirect Iceberg's writes away from the table's own folder, load code
#: (pyiceberg instantiates the class a location provider or FileIO property names) or delete files.
_LOCATION_PROPERTIES = frozenset({"write.metadata.path", "write.data.path", "write.folder-storage.path",
                                  "write.object-storage.path"})


def _hostile_property(key: str, value: str) -> bool:
    lowered = key.lower()
    return (lowered in _LOCATION_PROPERTIES or lowered.startswith("write.object-storage")
            or "location-provider" in lowered or lowered.endswith("io-impl") or lowered.startswith("py-")
            or (lowered == "write.metadata.delete-after-commit.enabled" and value.strip().lower() != "false"))
#: Properties every product table carries.
TABLE_PROPERTIES = {
    "format-version": "2",
    "commit.retry.num-retries": "0",
    "write.parquet.compression-codec": "snappy",
    # pyiceberg would delete trimmed metadata-log entries through its own I/O, wherever a (possibly
    # forged) log points; the platform's confined sweep removes old metadata files instead.
    "write.metadata.delete-after-commit.enabled": "false",
    "write.metadata.previous-versions-max": "20",
}


@dataclass(frozen=True)
class SnapshotRef:
    """One published version as the catalog records it."""

    version: int
    snapshot_id: int
    timestamp_ms: int
    summary: dict[str, str]


@dataclass(frozen=True)
class TableState:
    """What a product's table looks like now: its tagged versions and its head."""

    metadata_location: str
    versions: dict[int, SnapshotRef]
    #: The version the table's main branch points at (None: the table has no snapshot yet).
    head: SnapshotRef | None
    #: Why the main branch's head is not a published version (someone wrote to the table directly), or None.
    head_problem: str | None
    table: Any = field(repr=False, compare=False)


@dataclass(frozen=True)
class TableFiles:
    """What a table's metadata references now (:meth:`TableStore.table_files`)."""

    #: snapshot id → the data and delete files it reads.
    live: dict[int, list[DataFile]]
    #: URIs of every metadata file still needed: JSON files, manifest lists, manifests.
    metadata: set[str]


@dataclass(frozen=True)
class DataFileInfo:
    uri: str
    records: int
    bytes: int
    #: 0 data, 1 position deletes, 2 equality deletes.
    content: int


def _summary(snapshot: Any) -> dict[str, str]:
    summary = snapshot.summary
    if summary is None:
        return {}
    props = dict(summary.additional_properties)
    props["operation"] = str(summary.operation.value if hasattr(summary.operation, "value") else summary.operation)
    return props


def table_state(table: Table) -> TableState:
    """The tagged versions and the head of a loaded table (validated: refs must agree with summaries)."""
    metadata = table.metadata
    by_id = {s.snapshot_id: s for s in metadata.snapshots}
    versions: dict[int, SnapshotRef] = {}
    for name, ref in metadata.refs.items():
        match = VERSION_TAG.fullmatch(name)
        if not match or str(ref.snapshot_ref_type.value if hasattr(ref.snapshot_ref_type, "value")
                                else ref.snapshot_ref_type) != "tag":
            continue
        snapshot = by_id.get(ref.snapshot_id)
        if snapshot is None:
            continue
        summary = _summary(snapshot)
        versions[int(match.group(1))] = SnapshotRef(int(match.group(1)), snapshot.snapshot_id,
                                                    snapshot.timestamp_ms, summary)
    head = None
    problem = None
    main = metadata.refs.get("main")
    if main is not None:
        snapshot = by_id.get(main.snapshot_id)
        summary = _summary(snapshot) if snapshot is not None else {}
        claimed = summary.get(PROP_VERSION, "")
        tagged = versions.get(int(claimed)) if claimed.isdigit() else None
        if snapshot is None:
            problem = f"its main branch points at snapshot {main.snapshot_id}, which the table does not have"
        elif tagged is None or tagged.snapshot_id != snapshot.snapshot_id:
            problem = (f"its current snapshot {snapshot.snapshot_id} ({summary.get('operation', '?')}) is not a "
                       "published version: it was written to the table directly, not by a mesh publish")
        else:
            head = tagged
    return TableState(table.metadata_location, versions, head, problem, table)


class _CatalogOnDemand:
    """The catalog of a table read without it: opens the store's real catalog when the table first uses it."""

    def __init__(self, store: TableStore) -> None:
        self._store = store

    @staticmethod
    def supports_server_side_planning() -> bool:  # a SQL catalog plans no scans (asked by every scan)
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store.catalog, name)


class TableStore:
    """The Iceberg catalog of one lake (lazy: nothing connects until first use)."""

    def __init__(self, lake: Lake, uri: str | None = None) -> None:
        self.lake = lake
        if uri is None and lake.is_s3:
            raise SettingsError(
                f"The lake {lake.url} is on S3, so its tables need a shared catalog: set "
                "MESH_ICEBERG_CATALOG_URI (e.g. postgresql+psycopg2://user:password@host:5432/lake; "
                "`python -m nativestack env` prints the native stack's)."
            )
        self._uri = uri or f"sqlite:///{lake.path(SQLITE_CATALOG)}"
        self._catalog: SqlCatalog | None = None
        self._lock = threading.Lock()
        #: table location → what :meth:`table_files` read of it last time (manifest lists, manifests' entries).
        self._swept: dict[str, tuple[dict[str, list[Any]], dict[tuple[str, int], list[DataFile]]]] = {}

    # -- locations --------------------------------------------------------------------

    def uri_of(self, lake_path: str) -> str:
        """The URI Iceberg records for a path of the lake's file system."""
        return f"s3://{lake_path}" if self.lake.is_s3 else f"file://{lake_path}"

    def path_of(self, uri: str) -> str | None:
        """The lake path of a URI Iceberg recorded (None if it is not one of this lake's)."""
        prefix = "s3://" if self.lake.is_s3 else "file://"
        if not uri.startswith(prefix):
            return None
        path = uri[len(prefix):]
        if any(part in ("", ".", "..") for part in path.split("/")[1:]) or "\x00" in path:
            return None
        return path if path.startswith(self.lake.root + "/") else None

    def location(self, contract: Contract) -> str:
        return self.uri_of(self.lake.path("products", contract.domain, contract.id))

    @staticmethod
    def identifier(contract: Contract) -> tuple[str, str]:
        return (contract.domain, contract.id)

    # -- the catalog ------------------------------------------------------------------

    @property
    def catalog(self) -> SqlCatalog:
        with self._lock:
            if self._catalog is None:
                self._catalog = self._open()
            return self._catalog

    def _open(self) -> SqlCatalog:
        from pyiceberg.catalog.sql import SqlCatalog

        if self._uri.startswith("sqlite:///"):
            self.lake.fs.create_dir(self.lake.path("_catalog"), recursive=True)
        props = self._properties()
        try:
            return SqlCatalog(CATALOG_NAME, uri=self._uri, **props)
        except Exception as exc:  # sqlalchemy / driver errors: never echo the URI (it holds a password)
            raise StorageError(
                f"Cannot open the Iceberg catalog ({type(exc).__name__}: {_redact(str(exc), self._uri)}). "
                "Check MESH_ICEBERG_CATALOG_URI and that the catalog database is running "
                "(`python -m nativestack status`)."
            ) from None

    def _properties(self) -> dict[str, str]:
        """The catalog's properties: its warehouse and how it reads and writes files."""
        props: dict[str, str] = {"warehouse": self.uri_of(self.lake.path("products"))}
        if not self.lake.is_s3:
            # Local files through the standard library: Iceberg's default FileIO imports pyarrow.dataset
            # and pandas, its fsspec one requests and its REST catalog's auth (datamesh.iceberg_io).
            props["py-io-impl"] = "datamesh.iceberg_io.LocalFileIO"
        if self.lake.is_s3 and self.lake.s3 is not None:
            s3 = self.lake.s3
            props.update({"s3.region": s3.region, "s3.access-key-id": s3.access_key_id or "",
                          "s3.secret-access-key": s3.secret_access_key or "",
                          "s3.force-virtual-addressing": "false"})
            if s3.endpoint_url:
                props["s3.endpoint"] = s3.endpoint_url
        return props

    def _no_catalog_yet(self) -> bool:
        """A local lake whose embedded catalog was never created (reading must not create it)."""
        if not self._uri.startswith("sqlite:///") or self._catalog is not None:
            return False
        return not self.lake.exists(self.lake.path(SQLITE_CATALOG))

    def load(self, contract: Contract) -> Table | None:
        """The product's table, checked to lie wholly inside its own folder (None if it has none)."""
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

        if self._no_catalog_yet():
            return None
        try:
            embedded = self._embedded_path()
            table = self._read_embedded(contract, embedded) if embedded else \
                self.catalog.load_table(self.identifier(contract))
        except (NoSuchTableError, NoSuchNamespaceError):
            return None
        except (OSError, ValueError) as exc:
            if isinstance(exc, OSError) and is_access_denied(exc):
                # The acting identity may not read this product's files (AccessDeniedError, naming the policy).
                raise self.lake.error_for(exc, f"read product '{contract.id}' (its Iceberg metadata) at",
                                      self.lake.path("products", contract.domain, contract.id)) from None
            raise StorageError(
                f"Product '{contract.id}': its Iceberg table cannot be loaded "
                f"({type(exc).__name__}: {_redact(str(exc), self._uri)[:300]})."
            ) from None
        location = self.location(contract)
        if (table.metadata.location.rstrip("/") != location
                or not self._inside(table.metadata_location, contract, "metadata")):
            raise HostileTableError(
                f"Product '{contract.id}': the catalog's table {contract.domain}.{contract.id} lives at "
                f"{table.metadata.location} (metadata {table.metadata_location}), not inside this lake at {location}. "
                "A copied lake keeps its catalog's absolute paths: point MESH_ICEBERG_CATALOG_URI at this lake's "
                "own catalog, or migrate the copy. Nothing was read or written."
            )
        problems = self._metadata_problems(table, contract)
        if problems:
            raise HostileTableError(
                f"Product '{contract.id}': its Iceberg table {contract.domain}.{contract.id} was changed outside the "
                f"platform: {'; '.join(problems)}. It is refused before anything reads or writes through it; restore "
                "the catalog entry from a backup (or point it at the newest metadata file the platform wrote)."
            )
        return table

    def _embedded_path(self) -> str | None:
        """The file of an embedded SQLite catalog given by a plain path (None for any other catalog)."""
        if not self._uri.startswith("sqlite:///") or "?" in self._uri:
            return None
        return self._uri[len("sqlite:///"):] or None

    def _read_embedded(self, contract: Contract, path: str) -> Table:
        """Load a table from the embedded SQLite catalog with the standard library, read-only.

        The same row pyiceberg's ``SqlCatalog.load_table`` selects, read without
        importing SQLAlchemy and pyiceberg's SQL catalog (a third of a second of
        every CLI call that reads a product). The table commits through the real
        catalog, opened when a write first needs it. Its file I/O is the
        catalog's own: properties in the table's metadata are not trusted to
        choose it (:meth:`_metadata_problems` refuses such a table anyway).
        """
        import sqlite3
        from contextlib import closing
        from urllib.request import pathname2url

        from pyiceberg.exceptions import NoSuchTableError
        from pyiceberg.io import load_file_io
        from pyiceberg.serializers import FromInputFile
        from pyiceberg.table import Table

        try:
            with closing(sqlite3.connect(f"file:{pathname2url(path)}?mode=ro", uri=True, timeout=5)) as db:
                columns = {row[1] for row in db.execute("PRAGMA table_info(iceberg_tables)")}
                if not columns:  # the catalog's tables were never created: no table yet
                    raise NoSuchTableError(f"Table does not exist: {contract.domain}.{contract.id}")
                typed = " AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)" if "iceberg_type" in columns else ""
                row = db.execute(
                    "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? "
                    f"AND table_name = ?{typed}", (CATALOG_NAME, contract.domain, contract.id)).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(
                f"Cannot read the embedded Iceberg catalog {path} ({type(exc).__name__}: {exc}). "
                "Check that the file is a readable SQLite database (`mesh verify` reports every product)."
            ) from None
        if row is None or not row[0]:
            raise NoSuchTableError(f"Table does not exist: {contract.domain}.{contract.id}")
        metadata_location = row[0]
        io = load_file_io(self._properties(), metadata_location)
        metadata = FromInputFile.table_metadata(io.new_input(metadata_location))
        return Table(identifier=self.identifier(contract), metadata=metadata, metadata_location=metadata_location,
                     io=io, catalog=_CatalogOnDemand(self))  # type: ignore[arg-type]

    def _inside(self, uri: str | None, contract: Contract, folder: str) -> bool:
        return self._within(uri, self.lake.path("products", contract.domain, contract.id, folder))

    def _within(self, uri: str | None, folder: str) -> bool:
        """Whether a URI Iceberg recorded is a path of this lake below ``folder`` (a lake path)."""
        path = self.path_of(uri) if uri else None
        return path is not None and path.startswith(folder + "/")

    def _metadata_problems(self, table: Table, contract: Contract) -> list[str]:
        """Paths and properties in the table's metadata that would make Iceberg read or write outside its folder."""
        metadata = table.metadata
        problems = [f"its metadata log names {entry.metadata_file}, outside its metadata/ folder"
                    for entry in metadata.metadata_log if not self._inside(entry.metadata_file, contract, "metadata")]
        problems += [f"snapshot {s.snapshot_id}'s manifest list {s.manifest_list} is outside its metadata/ folder"
                     for s in metadata.snapshots if not self._inside(s.manifest_list, contract, "metadata")]
        problems += [f"it sets {key}={value!r}, which changes where or how Iceberg reads and writes"
                     for key, value in metadata.properties.items() if _hostile_property(key, value)]
        mapping = metadata.properties.get(NAME_MAPPING)
        if mapping is not None and mapping != metadata.schema().name_mapping.model_dump_json():
            problems.append(f"its {NAME_MAPPING} does not match its schema (columns would be read from other fields)")
        head = metadata.current_snapshot()
        if head is not None and head.schema_id is not None and head.schema_id != metadata.current_schema_id:
            problems.append(f"its current schema {metadata.current_schema_id} is not the schema {head.schema_id} its "
                            "current snapshot was written with (a publish changes both in one commit)")
        return problems

    def state(self, contract: Contract) -> TableState | None:
        table = self.load(contract)
        return None if table is None else table_state(table)

    def create(self, contract: Contract) -> Table:
        """The product's table, created (empty, with the contract's schema and comments) if missing."""
        from pyiceberg.exceptions import TableAlreadyExistsError

        table = self.load(contract)
        if table is not None:
            return table
        from sqlalchemy.exc import IntegrityError

        try:
            self.catalog.create_namespace_if_not_exists(contract.domain)
        except IntegrityError:  # a concurrent first publish in the same domain created it
            pass
        try:
            return self.catalog.create_table(self.identifier(contract), iceberg_schema(contract),
                                             location=self.location(contract), properties=_table_properties(contract))
        except (TableAlreadyExistsError, IntegrityError):  # a concurrent first publish created it
            table = self.load(contract)
            assert table is not None
            return table

    # -- writing ----------------------------------------------------------------------

    def commit(self, contract: Contract, version: int, lake_paths: list[str], properties: dict[str, str],
               *, base_snapshot_id: int | None, table: Table | None = None) -> tuple[int, str]:
        """Replace the table's content with exactly these files, as one snapshot tagged ``v<version>``.

        ``base_snapshot_id`` is the head the caller read when it chose
        ``version`` (from ``table``, when given: it is not loaded again); if
        the head moved, or the tag exists, the commit is refused with
        ConflictError and nothing becomes visible. Returns the new snapshot's
        id and the table's new metadata location.
        """
        from pyiceberg.exceptions import CommitFailedException
        from pyiceberg.table.update.snapshot import ManageSnapshots

        table = table if table is not None else self.create(contract)
        head = table.metadata.current_snapshot()
        if (head.snapshot_id if head else None) != base_snapshot_id or f"v{version}" in table.metadata.refs:
            raise self._conflict(contract, version)
        tx = _transaction(table)
        evolve_schema(tx, contract)
        metadata = tx.table_metadata
        mapping = metadata.schema().name_mapping.model_dump_json()
        wanted = {**_table_properties(contract), NAME_MAPPING: mapping, PROP_LAST_VERSION: str(version)}
        changed = {k: v for k, v in wanted.items() if metadata.properties.get(k) != v}
        if changed:
            tx.set_properties(**changed)
        uris = [self.uri_of(p) for p in lake_paths]
        new_files = _data_files(metadata, uris, table.io, contract)
        with _without_delete_only_manifests(tx.update_snapshot(snapshot_properties=properties).overwrite()) \
                as overwrite:
            if head is not None:
                for data_file in self.live_files(table, head.snapshot_id):
                    overwrite.delete_data_file(data_file)
            for data_file in new_files:
                overwrite.append_data_file(data_file)
            snapshot_id = overwrite._snapshot_id
        ManageSnapshots(tx).create_tag(snapshot_id, f"v{version}").commit()
        try:
            committed = tx.commit_transaction()
        except CommitFailedException:
            raise self._conflict(contract, version) from None
        return int(snapshot_id), committed.metadata_location

    def _conflict(self, contract: Contract, version: int) -> ConflictError:
        return ConflictError(
            f"Product '{contract.id}': version {version} was committed by another writer first; "
            "this publish was discarded (its staged files are removed) and the other version is served. "
            "Re-run the publish to create the next version."
        )

    def live_files(self, table: Table, snapshot_id: int,
                   entries_of: dict[tuple[str, int], list[DataFile]] | None = None,
                   lists: dict[str, list[Any]] | None = None) -> list[DataFile]:
        """The data and delete files a snapshot reads (deleted manifest entries excluded).

        ``entries_of`` ((manifest path, length) → its live files) lets one
        caller read a manifest that several snapshots share once: a manifest
        file's entries do not depend on which snapshot lists it. ``lists``
        (manifest list → its manifests) does the same for manifest lists.
        """
        snapshot = table.metadata.snapshot_by_id(snapshot_id)
        if snapshot is None:
            return []
        files = []
        for manifest in self._manifests(table, snapshot, lists):
            key = _manifest_key(manifest)
            known = entries_of.get(key) if entries_of is not None else None
            if known is None:
                try:
                    entries = manifest.fetch_manifest_entry(io=table.io, discard_deleted=True)
                except (OSError, ValueError) as exc:
                    raise BrokenProductError(
                        f"Iceberg table at {table.metadata.location}: manifest {manifest.manifest_path} cannot be "
                        f"read ({type(exc).__name__}: {str(exc)[:200]}). Run `mesh verify` and `mesh repair` on the "
                        "product."
                    ) from None
                known = [entry.data_file for entry in entries]
                if entries_of is not None:
                    entries_of[key] = known
            files += known
        return files

    def table_files(self, table: Table) -> TableFiles:
        """Every snapshot's live files and every metadata file of ``table`` now, for retention's deletes.

        Each manifest list and manifest is read once, and not again by the
        next call for the same table in this process: Iceberg never rewrites
        one (their names are unique; a manifest is also keyed by the length
        its list records), and a stale answer could only keep a file or
        delete one inside this product's own folder that no genuine snapshot
        reads. Readers never use these (they read what they verify).
        """
        metadata = table.metadata
        old_lists, old_entries = self._swept.get(metadata.location, ({}, {}))
        lists, entries_of = dict(old_lists), dict(old_entries)
        files = {s.snapshot_id: self.live_files(table, s.snapshot_id, entries_of, lists) for s in metadata.snapshots}
        # Keep only what the table references now: expired snapshots leave with their files.
        lists = {s.manifest_list: lists[s.manifest_list] for s in metadata.snapshots}
        entries_of = {_manifest_key(m): entries_of[_manifest_key(m)] for listed in lists.values() for m in listed}
        self._swept[metadata.location] = (lists, entries_of)
        referenced = {table.metadata_location, *(entry.metadata_file for entry in metadata.metadata_log),
                      *(name for name in lists if name), *(path for path, _ in entries_of)}
        return TableFiles(files, referenced)

    def file_infos(self, table: Table, snapshot_id: int) -> list[DataFileInfo]:
        return [DataFileInfo(f.file_path, int(f.record_count), int(f.file_size_in_bytes),
                             int(getattr(f.content, "value", f.content)))
                for f in self.live_files(table, snapshot_id)]

    def expire(self, contract: Contract, versions: Iterable[int]) -> set[int]:
        """Remove the tags of ``versions`` and expire every snapshot no remaining ref protects.

        Returns the expired snapshot ids. The caller deletes the files only
        those snapshots referenced, after this commit.
        """
        from pyiceberg.exceptions import CommitFailedException
        from pyiceberg.table.update.snapshot import ExpireSnapshots, ManageSnapshots

        table = self.load(contract)
        if table is None:
            return set()
        tx = _transaction(table)
        tags = _remove_tags(ManageSnapshots(tx), table, versions)
        metadata = tx.table_metadata
        protected = {ref.snapshot_id for ref in metadata.refs.values()}
        doomed = {s.snapshot_id for s in metadata.snapshots} - protected
        if doomed:
            ExpireSnapshots(tx).by_ids(sorted(doomed)).commit()
        if not tags and not doomed:
            return set()
        try:
            tx.commit_transaction()
        except CommitFailedException:
            raise ConflictError(
                f"Product '{contract.id}': another writer changed the table during retention; nothing was "
                "expired. Retention runs again after the next publish."
            ) from None
        return doomed

    def set_head(self, contract: Contract, snapshot_id: int) -> None:
        """Point the table's main branch back at ``snapshot_id`` (repair of a foreign write)."""
        table = self.load(contract)
        if table is None:
            return
        table.manage_snapshots().set_current_snapshot(snapshot_id=snapshot_id).commit()

    def clear_head(self, contract: Contract) -> None:
        """Remove the table's main branch: it serves nothing (repair when no valid version is left)."""
        from pyiceberg.table.update.snapshot import ManageSnapshots

        table = self.load(contract)
        if table is None or "main" not in table.metadata.refs:
            return
        tx = _transaction(table)
        ManageSnapshots(tx)._remove_ref_snapshot("main").commit()
        tx.commit_transaction()

    def remove_tags(self, contract: Contract, versions: Iterable[int]) -> None:
        table = self.load(contract)
        if table is not None:
            _remove_tags(table.manage_snapshots(), table, versions)

    def _manifests(self, table: Table, snapshot: Any, lists: dict[str, list[Any]] | None = None) -> list[Any]:
        """A snapshot's manifests, refused (BrokenProductError) if unreadable or outside the table's metadata/ folder.

        ``lists`` (manifest list → its manifests) is read first and filled.
        """
        try:
            manifests = lists.get(snapshot.manifest_list) if lists is not None else None
            if manifests is None:
                manifests = list(snapshot.manifests(io=table.io))
                if lists is not None:
                    lists[snapshot.manifest_list] = manifests
        except (OSError, ValueError) as exc:
            raise BrokenProductError(
                f"Iceberg table at {table.metadata.location}: snapshot {snapshot.snapshot_id}'s manifest list "
                f"{snapshot.manifest_list} cannot be read ({type(exc).__name__}: {str(exc)[:200]}). Run `mesh verify` "
                "and `mesh repair` on the product."
            ) from None
        folder = f"{self.path_of(table.metadata.location.rstrip('/'))}/metadata"
        for manifest in manifests:
            if not self._within(manifest.manifest_path, folder):
                raise HostileTableError(
                    f"Iceberg table at {table.metadata.location}: snapshot {snapshot.snapshot_id} lists manifest "
                    f"{manifest.manifest_path}, outside its metadata/ folder; it was changed outside the platform."
                )
        return manifests


def _transaction(table: Table) -> Any:
    """A pyiceberg transaction on ``table`` that replays its staged updates once per change."""
    return _replay_once_transaction()(table)


@functools.cache
def _replay_once_transaction() -> type:
    """pyiceberg's Transaction, with ``table_metadata`` kept while nothing it is made from changes.

    pyiceberg's ``Transaction.table_metadata`` applies every staged update to
    the table's metadata and deep-copies the result on each read, and one
    overwrite reads it about twenty times: a quarter of a publish's commit.
    Staging replaces the updates tuple (``+=`` on a tuple) and a commit
    replaces the table's metadata, so a replay is reused only while both are
    the very objects it was made from. Every reader in pyiceberg 0.12 only
    reads the (frozen) metadata it is given.
    """
    from pyiceberg.table import Transaction

    class ReplayOnceTransaction(Transaction):
        _replayed: tuple[Any, Any, Any] | None = None

        @property
        def table_metadata(self) -> Any:
            base, updates = self._table.metadata, self._updates
            replayed = self._replayed
            if replayed is None or replayed[0] is not base or replayed[1] is not updates:
                replayed = self._replayed = (base, updates, super().table_metadata)
            return replayed[2]

    return ReplayOnceTransaction


def _manifest_key(manifest: Any) -> tuple[str, int]:
    """A manifest's entry in a table_files memo: its path and the length its manifest list records."""
    return (manifest.manifest_path, int(manifest.manifest_length))


def _without_delete_only_manifests(producer: Any) -> Any:
    """``producer`` (pyiceberg's overwrite) leaving out the parent's manifests that hold no live file.

    pyiceberg 0.12 carries every earlier snapshot's manifest of DELETED entries
    forward into each new snapshot, so a table's manifest list grew by one per
    publish and every read of a snapshot (verify, retention, the next commit)
    opened all of them: after 25 versions, 26 manifests to find one file. A
    manifest with no added or existing file contributes nothing to the new
    snapshot (its deletions belong to the snapshot that added it, which keeps
    listing it). Iceberg's Java writer keeps the same manifests only (live data
    files, or written by this commit), as pyiceberg's own fast append does
    (decision 0045).
    """
    from pyiceberg.table.update.snapshot import _OverwriteFiles

    carried = getattr(producer, "_existing_manifests", None)
    if not isinstance(producer, _OverwriteFiles) or carried is None:
        raise StorageError(
            f"pyiceberg's overwrite is now {type(producer).__name__} without the `_existing_manifests` step the "
            "platform relies on (decision 0045): this pyiceberg is not the pinned one. Run `make install`."
        )

    def live_manifests() -> list[Any]:
        return [m for m in carried() if m.has_added_files() or m.has_existing_files()
                or m.added_snapshot_id == producer._snapshot_id]

    producer._existing_manifests = live_manifests
    return producer


def _remove_tags(manage: Any, table: Table, versions: Iterable[int]) -> list[str]:
    """Stage the removal of the existing ``v<N>`` tags of ``versions`` on ``manage``; returns the tags removed."""
    tags = [f"v{v}" for v in versions if f"v{v}" in table.metadata.refs]
    for tag in tags:
        manage.remove_tag(tag)
    if tags:
        manage.commit()
    return tags


# -- schemas ---------------------------------------------------------------------------


def iceberg_schema(contract: Contract) -> Any:
    """The Iceberg schema of a contract: its columns in order, with their descriptions as docs.

    Every field is optional in Iceberg: ``required`` is a contract rule,
    checked by the publish with a message naming the rows, not by the format.
    """
    from pyiceberg.schema import Schema
    from pyiceberg.types import NestedField

    return Schema(*(NestedField(field_id=i + 1, name=c.name, field_type=c.type.iceberg, required=False,
                                doc=c.description or None)
                    for i, c in enumerate(contract.columns)))


def evolve_schema(tx: Any, contract: Contract) -> None:
    """Bring the table's schema to the contract's (in the same transaction as the publish).

    Columns are added, dropped, documented and promoted by name; a type
    Iceberg cannot change in place (say ``long`` to ``int``) is refused with
    PublishError before anything is committed.
    """
    from pyiceberg.exceptions import ValidationError as IcebergValidationError

    from datamesh.types import ColumnType, is_widening

    current = tx.table_metadata.schema()
    have = {f.name: f for f in current.fields}
    want = {c.name: c for c in contract.columns}
    if list(have) == list(want) and all(
        have[n].field_type == c.type.iceberg and not have[n].required and (have[n].doc or "") == (c.description or "")
        for n, c in want.items()
    ):
        return
    for name, col in want.items():
        old = have.get(name)
        if old is None or old.field_type == col.type.iceberg:
            continue
        try:
            old_type = ColumnType.from_iceberg(old.field_type)
        except ValueError:
            old_type = None
        if old_type is None or not is_widening(old_type, col.type):
            raise PublishError(
                f"Product '{contract.id}': column '{name}' is {old_type.value if old_type else old.field_type} in the "
                f"table and {col.type.value} in contract version {contract.version}. Iceberg changes a column's type "
                "only by widening (int32 to int64, decimal precision up), because older versions' files keep "
                "their type. Keep the type, or publish the new shape as a new product. Nothing was published."
            )
    try:
        with tx.update_schema(allow_incompatible_changes=True) as update:
            for name in have:
                if name not in want:
                    update.delete_column(name)
            for name, col in want.items():
                old = have.get(name)
                if old is None:
                    update.add_column(name, col.type.iceberg, doc=col.description or None)
                    continue
                if old.field_type != col.type.iceberg or (old.doc or "") != (col.description or ""):
                    update.update_column(name, field_type=col.type.iceberg, doc=col.description or None)
                if old.required:
                    update.make_column_optional(name)
    except (IcebergValidationError, ValueError) as exc:
        raise PublishError(
            f"Product '{contract.id}': its table's schema cannot become contract version {contract.version}'s "
            f"({str(exc).splitlines()[0]}). Iceberg changes column types only by widening (int32 to int64, "
            "decimal precision up); publish the new shape as a new product, or keep the type."
        ) from None


def _data_files(metadata: Any, uris: list[str], io: Any, contract: Contract) -> list[DataFile]:
    from pyiceberg.io.pyarrow import parquet_file_to_data_file

    try:
        return [parquet_file_to_data_file(io, metadata, uri) for uri in uris]
    except (ValueError, TypeError) as exc:
        raise PublishError(
            f"Product '{contract.id}': the staged files do not match the table's schema "
            f"({str(exc).splitlines()[0][:300]}). Nothing was published."
        ) from None


def _comment(contract: Contract) -> str:
    return f"{contract.description.purpose.strip()} Grain: {contract.description.grain.strip()} Owner: {contract.owner.team}."


def _table_properties(contract: Contract) -> dict[str, str]:
    return {**TABLE_PROPERTIES, "comment": _comment(contract), "mesh.owner": contract.owner.team,
            "mesh.contract-version": contract.version}


def _redact(text: str, uri: str) -> str:
    """``text`` without the catalog URI's password."""
    match = re.match(r"^[a-z0-9+]+://[^:/@]*:([^@]*)@", uri)
    if match and match.group(1):
        text = text.replace(match.group(1), "***")
    return text


def iceberg_scan_sql(metadata_location: str, snapshot_id: int) -> str:
    """DuckDB's ``iceberg_scan`` of one snapshot of a table (never a raw file list)."""
    from datamesh.names import sql_string

    return f"iceberg_scan({sql_string(metadata_location)}, snapshot_from_id => {int(snapshot_id)})"
