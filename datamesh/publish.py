"""Atomic, versioned publish of a data product.

1. Stage: write Parquet parts under a fresh, immutable prefix
   ``data/<run_id>/`` (nothing points at it yet), hashing while writing.
2. Check: read back the footers of exactly those files and run every contract
   rule over them in DuckDB. A failure deletes the staged files and raises.
3. Record: write the side record ``_records/<run_id>.json`` create-only
   (checksums, contract, quality, lineage; invisible until committed).
4. Commit: one Iceberg catalog transaction replaces the table's files with
   exactly the staged ones as a new snapshot tagged ``v<N>``, whose summary
   names the record and its SHA-256. The catalog's compare-and-swap is the
   commit point: a second writer of the same version gets
   :class:`ConflictError` and cleans up. Then the contract's retention rule.

A process killed at any point leaves either the old version or the complete
new one served: staged files and records are invisible until the snapshot exists.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from datamesh.catalog import Catalog, FileEntry, Manifest, run_id_problem
from datamesh.contracts import Contract
from datamesh.duckdb_engine import CHECK_MEMORY_LIMIT, connect
from datamesh.errors import ConflictError, OwnershipError, PlatformError, PublishError, RegistrationError
from datamesh.provenance import RUN_ID_TIME_FORMAT, code_version, new_run_id
from datamesh.quality import (
    RuleResult,
    Run,
    check_files,
    check_schema,
    column_runs,
    enforce,
    read_footers,
    run_rules,
    runs_prove_unique,
    table_sorted_keys,
    unique_key_columns,
)
from datamesh.tables import (
    PROP_ACTOR,
    PROP_CONTRACT_VERSION,
    PROP_INPUTS,
    PROP_LAST_VERSION,
    PROP_QUALITY,
    PROP_RECORD_SHA256,
    PROP_ROWS,
    PROP_RUN_ID,
    PROP_VERSION,
    TableFiles,
    TableState,
)
from datamesh.user_files import decimal_beyond_precision, read_user_file, rows_text

log = logging.getLogger(__name__)

_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mesh-check")


def _check_table(contract: Contract, table: pa.Table) -> list[RuleResult]:
    # One thread: the Parquet encoder has the other core.
    con = connect(threads=1, memory_limit=CHECK_MEMORY_LIMIT)
    try:
        con.register("__mesh_input", table)
        return run_rules(con, contract, "__mesh_input", sorted_keys=table_sorted_keys(contract, table))
    finally:
        con.close()


class Publisher:
    """Stage, check and commit one new version of a product.

    Use as a context manager; leaving the block without :meth:`commit` (or
    with an exception) removes everything staged::

        with Publisher(catalog, contract, inputs={"customers": 3}) as pub:
            for table in batches:
                pub.write(table)
            manifest = pub.commit()
    """

    def __init__(
        self,
        catalog: Catalog,
        contract: Contract,
        *,
        inputs: dict[str, int] | None = None,
        run_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        rows_per_file: int = 2_000_000,
        compression: str = "snappy",
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.catalog = catalog
        self.lake = catalog.lake
        self.contract = contract
        self.paths = catalog.paths_for(contract)
        self.inputs = dict(inputs or {})
        # Refuse before anything is staged: who may publish, under which contract.
        if catalog.identity is not None:
            catalog.identity.authorize_publish(contract.id, contract.domain)
        ensure_registered_contract(catalog, contract)
        self.run_id = run_id or new_run_id(catalog.run_id)
        problem = run_id_problem(self.run_id)
        if problem:
            raise PublishError(f"Product '{contract.id}': {problem}. Pass no run_id to get a generated one.")
        self.metadata = dict(metadata or {})
        self.rows_per_file = rows_per_file
        self.compression = compression
        self.progress = progress
        self.schema = contract.arrow_schema()
        self._files: list[FileEntry] = []
        self._writer: pq.ParquetWriter | None = None
        self._sink: pa.BufferOutputStream | None = None
        self._path: str | None = None
        self._rows_in_file = 0
        self._committed = False
        self._record_written = False
        self._in_doubt = False
        self._rows = 0
        self._early_check: Future[list[RuleResult]] | None = None
        self._early_rows = -1
        # The ordered runs of each one-column unique key, taken from the tables as they are written
        # (quality.column_runs): the proof the commit's check would otherwise re-read from the files.
        # None once a file is staged whose values were never in hand (add_file).
        self._key_runs: dict[str, list[Run | None]] | None = {
            c: [] for c in unique_key_columns(contract) if c in self.schema.names}

    # -- staging ------------------------------------------------------------------------

    @property
    def staging_dir(self) -> str:
        return self.paths.run_dir(self.run_id)

    def write(self, data: pa.Table | pa.RecordBatch, *, check_concurrently: bool = False) -> None:
        """Append rows; the schema must match the contract exactly.

        With ``check_concurrently`` (a single in-memory table), the contract
        rules run in DuckDB over the very Arrow buffers being written, on the
        other core, while Parquet is encoded; :meth:`commit` still verifies the
        written footers (schema, row counts) before using those results.
        """
        if self._committed:
            raise PublishError(f"Product '{self.contract.id}': this publish is already committed.")
        table = data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
        if not table.schema.equals(self.schema):
            check_schema(self.contract, table.schema, "the data being published")
            # Same names and types; only column order or nullability flags differ.
            table = table.select(self.schema.names).cast(self.schema)
        self._check_decimals(table)
        if check_concurrently and self._rows == 0 and self._early_check is None:
            self._early_check = _POOL.submit(_check_table, self.contract, table)
            self._early_rows = table.num_rows
        if self._key_runs is not None:
            for column, runs in self._key_runs.items():
                runs.extend(column_runs(table.column(column)))
        if table.num_rows == 0:
            if self._writer is None and not self._files:
                self._open_part()
                assert self._writer is not None
                self._writer.write_table(table)
            return
        offset = 0
        while offset < table.num_rows:
            if self._writer is None:
                self._open_part()
            assert self._writer is not None
            take = min(table.num_rows - offset, self.rows_per_file - self._rows_in_file)
            self._writer.write_table(table.slice(offset, take), row_group_size=1_000_000)
            self._rows_in_file += take
            self._rows += take
            offset += take
            if self._rows_in_file >= self.rows_per_file:
                self._close_part()

    def _check_decimals(self, table: pa.Table) -> None:
        """Refuse a decimal beyond its column's precision: Arrow holds one (from a cast that was not checked, or a
        Parquet file storing decimals as integers) but Parquet would store it cut to the precision's width, a
        different number, unseen by any check."""
        found = decimal_beyond_precision(table)
        if found is None:
            return
        name, first, last = found
        column = table.column(name)
        value = f"{column[first]}" if first == last else "a value"
        raise PublishError(
            f"Product '{self.contract.id}': column '{name}' ({column.type}) in "
            f"{rows_text(self._rows + first + 1, self._rows + last + 1)} of the data being published holds {value} "
            "beyond its precision. Nothing was published; the previous version is still served. Fix the value, or "
            f"widen the column's type in {self.contract.source_path or 'the contract'} (a breaking change needs a "
            "major version)."
        )

    def _open_part(self) -> None:
        # Each part is encoded into memory (bounded by rows_per_file), then hashed in one
        # call and written to the lake in one stream: no per-page Python callbacks.
        self._path = f"{self.staging_dir}/part-{len(self._files):05d}.parquet"
        self._sink = pa.BufferOutputStream()
        self._writer = pq.ParquetWriter(self._sink, self.schema, compression=self.compression)
        self._rows_in_file = 0

    def _close_part(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        assert self._sink is not None and self._path is not None
        buffer = self._sink.getvalue()
        digest = _POOL.submit(lambda: hashlib.sha256(memoryview(buffer)).hexdigest())  # GIL-free, other core
        with self.lake.open_output(self._path) as out:
            out.write(buffer)
        self._files.append(FileEntry(path=self.lake.relative(self._path), rows=self._rows_in_file,
                                     bytes=buffer.size, sha256=digest.result()))
        self._writer = self._sink = self._path = None
        self._rows_in_file = 0

    def add_file(self, path: str) -> None:
        """Stage an already written Parquet file by copying it under the run prefix."""
        self._close_part()
        self._key_runs = None  # its key values are read from the staged files at commit
        target = f"{self.staging_dir}/part-{len(self._files):05d}.parquet"
        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as src, self.lake.open_output(target) as dst:
            while chunk := src.read(8 << 20):
                digest.update(chunk)
                size += len(chunk)
                dst.write(chunk)
        try:
            rows = pq.ParquetFile(path).metadata.num_rows
        except (pa.ArrowInvalid, OSError) as exc:
            raise PublishError(
                f"Product '{self.contract.id}': file {path} is not a readable Parquet file ({exc}). "
                "Re-export it as Parquet (or use CSV)."
            ) from None
        self._files.append(FileEntry(path=self.lake.relative(target), rows=rows, bytes=size, sha256=digest.hexdigest()))
        self._rows += rows

    # -- commit -------------------------------------------------------------------------

    def _sorted_keys(self) -> list[str] | None:
        """The key columns the written tables proved unique by their order, or None (not every row was in hand)."""
        if self._key_runs is None:
            return None
        return [column for column, runs in self._key_runs.items() if runs_prove_unique(runs)]

    def commit(self, *, apply_retention: bool = True) -> Manifest:
        """Check the staged files against the contract and commit a new version."""
        self._close_part()
        if not self._files:
            self.write(self.schema.empty_table())
            self._close_part()
        paths = [self.lake.path(f.path) for f in self._files]
        self._stamp_staged_files(paths)
        self._say(f"checking {self._rows_text()} against the contract")
        if self._early_check is not None and self._early_rows == self._rows:
            metas = read_footers(self.lake, self.contract, paths)
            footer_rows = sum(m.num_rows for m in metas)
            if footer_rows != self._rows:
                raise PublishError(
                    f"Product '{self.contract.id}': the staged files hold {footer_rows} rows but {self._rows} "
                    "were written; the storage lost data. Nothing was published; retry the publish."
                )
            results = self._early_check.result()
        else:
            con = connect(self.lake, memory_limit=CHECK_MEMORY_LIMIT)  # staged Parquet: no Iceberg needed
            try:
                results = check_files(con, self.lake, self.contract, paths, sorted_keys=self._sorted_keys())
            finally:
                con.close()
        enforce(self.contract, results)
        state = self.catalog.table_state(self.contract.id)
        base = state.table.metadata.current_snapshot() if state is not None else None
        version = self._next_version(state)
        manifest = Manifest(
            product=self.contract.id,
            domain=self.contract.domain,
            version=version,
            contract_version=self.contract.version,
            run_id=self.run_id,
            created_at=datetime.now(UTC),
            row_count=self._rows,
            files=tuple(self._files),
            schema_=tuple({"name": f.name, "type": str(f.type)} for f in self.schema),
            inputs=self.inputs,
            quality=tuple(r.as_dict() for r in results),
            metadata=self.metadata,
            writer=self._writer_info(),
            contract_doc=self.contract.model_dump(mode="json", by_alias=True, exclude={"source_path"}),
        )
        record = manifest.to_json()
        try:
            self.lake.create_only(self.paths.record(self.run_id), record)
        except ConflictError:
            raise PublishError(
                f"Product '{self.contract.id}': run id {self.run_id!r} already published a version; a run id "
                "is used once. Pass no run_id to get a generated one. Nothing was published."
            ) from None
        self._record_written = True
        properties = snapshot_properties(manifest, hashlib.sha256(record).hexdigest(), self.catalog.identity)
        # From here until the catalog answers, the outcome is unknown: an interrupted commit may have
        # landed, so nothing staged is removed unless the catalog said no (retention sweeps orphans).
        self._in_doubt = True
        try:
            snapshot_id, metadata_location = self.catalog.tables.commit(
                self.contract, version, paths, properties, base_snapshot_id=base.snapshot_id if base else None,
                table=state.table if state is not None else None)
        except (ConflictError, PublishError):  # the catalog refused, or nothing was sent to it
            self._in_doubt = False
            raise
        self._in_doubt = False
        self._committed = True
        manifest = manifest.model_copy(update={"snapshot_id": snapshot_id, "metadata_location": metadata_location})
        self._say(f"committed version {version} ({self._rows:,} rows, {len(self._files)} files)")
        hook_errors = []
        for hook in self.catalog.commit_hooks:
            try:
                hook(self.contract, manifest)
            except PlatformError as exc:
                hook_errors.append(str(exc))
        if apply_retention and self.contract.retention_versions:
            try:
                apply_retention_rule(self.catalog, self.contract, keep=self.contract.retention_versions)
            except Exception as exc:  # retention must never fail a committed publish
                log.warning("retention for %s failed: %s", self.contract.id, exc)
        if hook_errors:
            raise RegistrationError(
                f"Product '{self.contract.id}' version {version} is committed in the lake, but registering it "
                f"failed: {'; '.join(hook_errors)}. Readers of the lake and Trino see the new version.",
                manifest=manifest,
            )
        return manifest

    def _writer_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid(), "code_version": code_version()}
        if self.catalog.identity is not None:
            info["actor"] = str(self.catalog.identity)
        if self.catalog.run_id:
            info["orchestrator_run_id"] = self.catalog.run_id
        return info

    def _stamp_staged_files(self, paths: list[str]) -> None:
        """Record each staged file's size check and modification time as the store reports them (one batched call).

        Readers compare against these: same size and mtime is trusted, a
        different mtime (a copied lake, a same-size overwrite) is hashed.
        """
        stamped = []
        for entry, info in zip(self._files, self.lake.file_infos(paths), strict=True):
            if info.size != entry.bytes:
                raise PublishError(
                    f"Product '{self.contract.id}': staged file {self.lake.uri(self.lake.path(entry.path))} holds "
                    f"{info.size} bytes but {entry.bytes} were written; the storage lost data. Nothing was "
                    "published; retry the publish."
                )
            stamped.append(entry.model_copy(update={"mtime_ns": info.mtime_ns}))
        self._files = stamped

    def _rows_text(self) -> str:
        return f"{self._rows:,} rows in {len(self._files)} files"

    def _next_version(self, state: TableState | None) -> int:
        """One more than any version the table ever had (tags, and the last number it recorded)."""
        if state is None:
            return 1
        last = state.table.metadata.properties.get(PROP_LAST_VERSION, "0")
        return max([*state.versions, int(last) if last.isdigit() else 0]) + 1

    def abort(self) -> None:
        """Remove everything staged by this publish (never a committed version)."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - best effort on an aborted write
                pass
            self._writer = self._sink = None
        if not self._committed and not self._in_doubt:
            self.lake.delete_dir_within(self.staging_dir, self.paths.data)
            if self._record_written:
                self.lake.delete_file_within(self.paths.record(self.run_id), self.paths.records)
                self._record_written = False

    def _say(self, message: str) -> None:
        if self.progress:
            self.progress(f"[{self.contract.id}] {message}")

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self._committed:
            try:
                self.abort()
            except (PlatformError, OSError) as cleanup_error:
                if exc is None:
                    raise
                # Keep the original error; staged files are invisible and swept by retention.
                log.warning("could not remove staged files of %s: %s", self.contract.id, cleanup_error)


def snapshot_properties(manifest: Manifest, record_sha256: str, identity: object | None) -> dict[str, str]:
    """The snapshot summary of a version: what Trino's ``$snapshots`` shows and readers check the record with."""
    passed = sum(1 for q in manifest.quality if q.get("passed"))
    props = {
        PROP_VERSION: str(manifest.version),
        PROP_RUN_ID: manifest.run_id,
        PROP_RECORD_SHA256: record_sha256,
        PROP_CONTRACT_VERSION: manifest.contract_version,
        PROP_ROWS: str(manifest.row_count),
        PROP_INPUTS: json.dumps(manifest.inputs, sort_keys=True),
        PROP_QUALITY: f"{passed} of {len(manifest.quality)} rules passed",
    }
    if identity is not None:
        props[PROP_ACTOR] = str(identity)
    return props


def ensure_registered_contract(catalog: Catalog, contract: Contract) -> None:
    """A product is published only under its registered contract, compatible with its last version.

    Raises OwnershipError for a contract object that is not the registered one,
    and BreakingChangeError when the contract breaks consumers of the last
    published version without a major version bump.
    """
    if contract.id not in catalog.contracts:
        raise OwnershipError(
            f"Product '{contract.domain}.{contract.id}' is not declared by any contract this catalog knows; "
            "declare it first (Mesh.with_contract or mesh publish --contract)."
        )
    registered = catalog.contracts.get(contract.id)
    if registered.model_dump(exclude={"source_path"}) != contract.model_dump(exclude={"source_path"}):
        raise OwnershipError(
            f"Product '{registered.domain}.{registered.id}' is registered by {registered.source_path}; a publish "
            f"under another contract ({contract.source_path or 'built in code'}) is refused. Nothing was published."
        )
    version = catalog.latest_version(contract.id)
    if version is not None:
        from datamesh.contract_diff import ensure_compatible, published_doc

        ensure_compatible(published_doc(catalog.manifest(contract.id, version)), contract)


def publish_table(
    catalog: Catalog,
    contract: Contract,
    data: pa.Table | Iterable[pa.Table | pa.RecordBatch],
    *,
    inputs: dict[str, int] | None = None,
    metadata: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Manifest:
    """Publish a table or a stream of tables/batches as a new product version."""
    with Publisher(catalog, contract, inputs=inputs, metadata=metadata, progress=progress) as pub:
        if isinstance(data, pa.Table | pa.RecordBatch):
            pub.write(data, check_concurrently=True)
        else:
            for chunk in data:
                pub.write(chunk)
        return pub.commit()


def publish_file(
    catalog: Catalog,
    contract: Contract,
    path: Path,
    *,
    file_format: str | None = None,
    inputs: dict[str, int] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Manifest:
    """Publish a user's Parquet or CSV file as a new version of ``contract``'s product."""
    path = Path(path)
    data = read_user_file(contract, path, file_format)
    return publish_table(catalog, contract, data, inputs=inputs, progress=progress,
                         metadata={"source_file": path.name})


#: Versions a product keeps when its contract declares no retention service level.
DEFAULT_KEEP_VERSIONS = 5


def versions_to_keep(contract: Contract, keep: int | None = None) -> int:
    """How many versions retention keeps: ``keep`` if given, else the contract's retention, else the default."""
    return keep or contract.retention_versions or DEFAULT_KEEP_VERSIONS


def apply_retention_rule(catalog: Catalog, contract: Contract, *, keep: int, orphan_grace_seconds: float = 3600) -> list[int]:
    """Expire all but the newest ``keep`` versions, then remove the files nothing references any more.

    The record of every version to remove is read and validated first (a
    kept version's run id and record hash are checked against its
    snapshot; nothing it references is deleted) and every path to delete is
    checked to lie inside this product's own prefix; on any problem the
    rule refuses (BrokenProductError / StorageError) before changing
    anything. The versions' tags are removed and their snapshots expired in
    one catalog commit (so they stop being resolvable), then their data and
    records are deleted. Staged data, records and Iceberg metadata
    files nothing references are removed once older than
    ``orphan_grace_seconds`` (younger ones may belong to a running publish).
    """
    if keep < 1:
        raise PublishError(f"Product '{contract.id}': retention must keep at least 1 version, got {keep}.")
    if catalog.identity is not None:
        catalog.identity.authorize_publish(contract.id, contract.domain, action="apply retention to")
    lake = catalog.lake
    paths = catalog.paths_for(contract)
    state = catalog.table_state(contract.id)
    if state is None:
        return []
    versions = sorted(state.versions)
    run_dirs = lake.list_dir(paths.data)
    records = lake.list_dir(paths.records)
    if (len(versions) <= keep and len(run_dirs) <= len(versions) and len(records) <= len(versions)
            and len(state.table.metadata.snapshots) <= len(versions)):
        return []  # nothing to remove and no orphans: skip reading records (cheap on S3)
    latest = catalog.latest_version(contract.id)
    doomed = [v for v in versions[:-keep] if v != latest]
    # Plan: read (and so validate) the record of every version to remove before changing anything. A
    # kept version's run and record are checked against its snapshot (a forged tag naming no valid run
    # would leave the real run unprotected); its files are not compared: nothing it reads is deleted.
    doomed_manifests = [catalog.manifest(contract.id, v) for v in doomed]
    live_runs = {catalog.record_bytes(contract, state.versions[v])[0] for v in versions if v not in doomed}
    doomed_runs = {m.run_id for m in doomed_manifests} - live_runs
    now = time.time()

    def orphaned(run_id: str, mtime_ns: int | None) -> bool:
        if run_id in live_runs or run_id in doomed_runs:
            return False
        try:
            started = datetime.strptime(run_id.split("-")[0], RUN_ID_TIME_FORMAT).replace(tzinfo=UTC).timestamp()
        except ValueError:
            return False
        return now - started > orphan_grace_seconds and (mtime_ns is None or now - mtime_ns / 1e9 > orphan_grace_seconds)

    for info in [*run_dirs, *records]:  # refuse before changing anything: no symlinks, nothing outside
        lake.check_within(info.path, paths.data if info in run_dirs else paths.records)
    for run in sorted(doomed_runs):
        lake.check_within(paths.run_dir(run), paths.data)
        lake.check_within(paths.record(run), paths.records)
    catalog.tables.expire(contract, doomed)  # the commit point of retention
    # Decide what to delete from the table as it is now: a publish that committed while this
    # retention ran (or a run shared by a retained version) keeps its files.
    table = catalog.tables.load(contract)
    files = catalog.tables.table_files(table) if table is not None else None
    referenced = _referenced_runs(catalog, table, files)
    deletes = [(paths.run_dir(run), paths.data, True) for run in sorted(doomed_runs - referenced)]
    deletes += [(paths.record(run), paths.records, False) for run in sorted(doomed_runs - referenced)]
    deletes += [(info.path, paths.data, True) for info in run_dirs
                if info.type == pafs.FileType.Directory and info.base_name not in referenced
                and orphaned(info.base_name, _newest_mtime_ns(lake, info.path))]
    deletes += [(info.path, paths.records, False) for info in records
                if info.base_name.endswith(".json") and info.base_name[:-5] not in referenced
                and orphaned(info.base_name[:-5], info.mtime_ns)]
    for path, prefix, _ in deletes:
        lake.check_within(path, prefix)
    for path, prefix, is_dir in deletes:
        if is_dir:
            lake.delete_dir_within(path, prefix)
        else:
            lake.delete_file_within(path, prefix)
    _remove_unreferenced_files(catalog, contract, table, files, now - orphan_grace_seconds)
    return doomed


def _referenced_runs(catalog: Catalog, table: Any, files: TableFiles | None) -> set[str]:
    """Run ids whose directory or record any snapshot of ``table`` still needs."""
    if table is None or files is None:
        return set()
    data = catalog.tables.path_of(table.metadata.location.rstrip("/")) + "/data/"
    runs = set()
    for snapshot in table.metadata.snapshots:
        if snapshot.summary is not None and snapshot.summary.get(PROP_RUN_ID):
            runs.add(snapshot.summary.get(PROP_RUN_ID))
        for data_file in files.live[snapshot.snapshot_id]:
            path = catalog.tables.path_of(data_file.file_path) or ""
            if path.startswith(data) and "/" in path[len(data):]:
                runs.add(path[len(data):].split("/", 1)[0])
    return runs


def _newest_mtime_ns(lake: Any, directory: str) -> int | None:
    times = [i.mtime_ns for i in lake.list_files(directory) if i.mtime_ns is not None]
    return max(times) if times else None


def _remove_unreferenced_files(catalog: Catalog, contract: Contract, table: Any, files: TableFiles | None,
                               older_than: float) -> None:
    """Delete Iceberg metadata files (manifests, manifest lists, old JSON) and loose data files nothing needs.

    Loose data files are those another engine wrote directly into ``data/``
    (a foreign INSERT that repair rolled back); run directories are handled
    by the orphan sweep above.
    """
    if table is None or files is None:
        return
    paths = catalog.paths_for(contract)
    tables = catalog.tables
    keep = {tables.path_of(uri) for uri in files.metadata}
    for live in files.live.values():
        keep |= {tables.path_of(f.file_path) for f in live}
    loose = [i for i in catalog.lake.list_dir(paths.data) if i.type == pafs.FileType.File]
    for info, prefix in [*((i, paths.metadata) for i in catalog.lake.list_files(paths.metadata)),
                         *((i, paths.data) for i in loose)]:
        if info.path in keep or info.mtime_ns is None or info.mtime_ns / 1e9 > older_than:
            continue
        catalog.lake.delete_file_within(info.path, prefix)
