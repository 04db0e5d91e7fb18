"""The read side of the lake: product versions, manifests and exact file lists.

Layout of one product under the lake root::

    products/<domain>/<product>/data/<run_id>/part-00000.parquet   immutable, per publish
    products/<domain>/<product>/_manifests/00000003.json           create-only: the commit
    products/<domain>/<product>/_latest.json                       pointer, moved after commit

The manifest is the commit point. The pointer is a cache: readers roll it
forward to any newer committed manifest, so a publish killed between commit
and pointer move is still served, and one killed before commit never is.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from datamesh.contracts import Contract, ContractRegistry
from datamesh.errors import BrokenProductError, StorageError, TamperedError, VersionNotFoundError
from datamesh.provenance import RUN_ID_PATTERN
from datamesh.storage import Lake

if TYPE_CHECKING:
    from datamesh.identity import Identity

MANIFEST_DIGITS = 8
#: A manifest file name: the version, zero-padded to at least MANIFEST_DIGITS digits.
MANIFEST_NAME = re.compile(rf"[0-9]{{{MANIFEST_DIGITS},}}\.json")
#: A data file name inside a run directory; always used with ``fullmatch``.
DATA_FILE_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}\.parquet")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
#: Far above any real pointer / manifest; a bigger file is refused unread.
MAX_POINTER_BYTES = 4096
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

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=2, by_alias=True).encode()

    @property
    def size_bytes(self) -> int:
        return sum(f.bytes for f in self.files)


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
        problems.append(f"its version is {manifest.version} but its file name says {version}")
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


def parse_pointer(raw: bytes) -> tuple[int, str]:
    """``(version, run_id)`` of a latest pointer; ValueError saying what is wrong otherwise."""
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"it is not JSON ({str(exc)[:80]})") from None
    if not isinstance(doc, dict) or set(doc) != {"version", "run_id"}:
        raise ValueError('expected exactly {"version": <int >= 1>, "run_id": "<run id>"}')
    version, run_id = doc["version"], doc["run_id"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"its version {version!r} is not a whole number >= 1")
    problem = run_id_problem(run_id)
    if problem:
        raise ValueError(f"its {problem}")
    return version, run_id


def pointer_bytes(version: int, run_id: str) -> bytes:
    """The latest pointer's content, exactly as a publish writes it."""
    return json.dumps({"version": version, "run_id": run_id}).encode()


@dataclass(frozen=True)
class ProductPaths:
    lake: Lake
    domain: str
    product: str

    @property
    def prefix(self) -> str:
        return self.lake.path("products", self.domain, self.product)

    @property
    def manifests(self) -> str:
        return f"{self.prefix}/_manifests"

    @property
    def latest(self) -> str:
        return f"{self.prefix}/_latest.json"

    @property
    def data(self) -> str:
        return f"{self.prefix}/data"

    @property
    def quarantine(self) -> str:
        return f"{self.prefix}/_quarantine"

    def manifest(self, version: int) -> str:
        return f"{self.manifests}/{version:0{MANIFEST_DIGITS}d}.json"

    def run_dir(self, run_id: str) -> str:
        return f"{self.data}/{run_id}"


class Catalog:
    """Resolves products (latest or pinned) to manifests and exact file lists.

    Nothing read back from the lake is trusted: pointers and manifests are
    validated on every read (:class:`BrokenProductError` otherwise), and
    :meth:`verified_file_uris` checks the files themselves before a reader
    is given them (:class:`TamperedError` otherwise).
    """

    def __init__(self, lake: Lake, contracts: ContractRegistry) -> None:
        self.lake = lake
        self.contracts = contracts
        #: Called with (contract, manifest) after every commit, e.g. Trino registration.
        self.commit_hooks: list[Callable[[Contract, Manifest], None]] = []
        #: The acting identity and orchestrator run id, set by the platform facade (None: not given).
        self.identity: Identity | None = None
        self.run_id: str | None = None
        # (path, size, mtime_ns) -> sha256 of files hashed because their mtime differed from the manifest's.
        self._hashed: dict[tuple[str, int, int | None], str] = {}

    def paths(self, product_id: str) -> ProductPaths:
        contract = self.contracts.get(product_id)
        return ProductPaths(self.lake, contract.domain, contract.id)

    def paths_for(self, contract: Contract) -> ProductPaths:
        return ProductPaths(self.lake, contract.domain, contract.id)

    # -- versions and the pointer ----------------------------------------------------------

    def versions(self, product_id: str) -> list[int]:
        """Committed versions, oldest first (files named exactly ``<version:08d>.json``)."""
        paths = self.paths(product_id)
        out = []
        for info in self.lake.list_dir(paths.manifests):
            version = manifest_version(info.base_name)
            if version is not None:
                out.append(version)
        return sorted(out)

    def read_pointer(self, product_id: str) -> tuple[int, str] | None:
        """``(version, run_id)`` from the latest pointer; None if there is none; BrokenProductError if invalid."""
        contract = self.contracts.get(product_id)
        path = self.paths_for(contract).latest
        try:
            raw = self.lake.read_head(path, MAX_POINTER_BYTES + 1)
        except FileNotFoundError:
            return None
        if len(raw) > MAX_POINTER_BYTES:
            raise self._broken(contract, path, f"is larger than {MAX_POINTER_BYTES} bytes", whole_product=True)
        try:
            return parse_pointer(raw)
        except ValueError as exc:
            raise self._broken(contract, path, f"is not a valid latest pointer: {exc}", whole_product=True) from None

    def latest_version(self, product_id: str) -> int | None:
        """The newest committed version (None if none); BrokenProductError if the pointer is invalid."""
        return self._latest(product_id, self.read_pointer(product_id))

    def _latest(self, product_id: str, pointer: tuple[int, str] | None) -> int | None:
        if pointer is None:
            versions = self.versions(product_id)
            return versions[-1] if versions else None
        version = pointer[0]
        paths = self.paths(product_id)
        # Roll forward past a commit whose pointer move did not happen.
        while self.lake.exists(paths.manifest(version + 1)):
            version += 1
        return version

    # -- manifests -------------------------------------------------------------------------

    def manifest(self, product_id: str, version: int | None = None) -> Manifest:
        """The validated manifest of a version (default: the latest).

        Raises VersionNotFoundError for a version that was never committed and
        BrokenProductError for an unreadable or invalid pointer or manifest.
        """
        contract = self.contracts.get(product_id)
        paths = self.paths_for(contract)
        pointer: tuple[int, str] | None = None
        if version is None:
            pointer = self.read_pointer(contract.id)
            version = self._latest(contract.id, pointer)
            if version is None:
                raise VersionNotFoundError(
                    f"Product '{contract.id}' has no published version yet. Publish one "
                    f"(`mesh publish {contract.id} FILE` or `mesh demo`)."
                )
        elif not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise VersionNotFoundError(
                f"Product '{contract.id}' has no version {version!r}: versions are whole numbers from 1. "
                f"Available versions: {', '.join(map(str, self.versions(contract.id))) or 'none'}."
            )
        path = paths.manifest(version)
        try:
            raw = self.lake.read_head(path, MAX_MANIFEST_BYTES + 1)
        except FileNotFoundError:
            known = self.versions(contract.id)
            if pointer is not None:
                raise self._broken(
                    contract, paths.latest,
                    f"names version {pointer[0]}, but no manifest {self.lake.uri(path)} exists "
                    f"(committed versions: {', '.join(map(str, known)) or 'none'})",
                    whole_product=True,
                ) from None
            raise VersionNotFoundError(
                f"Product '{contract.id}' has no version {version}. Available versions: "
                f"{', '.join(map(str, known)) or 'none'}."
            ) from None
        manifest = self.parse_manifest(contract, version, raw)
        if pointer is not None and pointer[0] == version and pointer[1] != manifest.run_id:
            raise self._broken(
                contract, paths.latest,
                f"names run {pointer[1]!r} for version {version}, but that version's manifest says "
                f"{manifest.run_id!r}",
                whole_product=True,
            )
        return manifest

    def parse_manifest(self, contract: Contract, version: int, raw: bytes) -> Manifest:
        """Parse and validate the bytes of manifest ``version`` of ``contract``'s product (BrokenProductError)."""
        path = self.paths_for(contract).manifest(version)
        if len(raw) > MAX_MANIFEST_BYTES:
            raise self._broken(contract, path, f"is larger than {MAX_MANIFEST_BYTES:,} bytes")
        try:
            manifest = Manifest.model_validate_json(raw)
        except (ValidationError, ValueError, RecursionError) as exc:
            raise self._broken(contract, path, f"is not a valid manifest ({_first_error(exc)})") from None
        problems = manifest_problems(manifest, contract, version)
        if problems:
            raise self._broken(contract, path, "is invalid: " + "; ".join(problems))
        return manifest

    def _broken(self, contract: Contract, path: str, what: str, *, whole_product: bool = False) -> BrokenProductError:
        served = ("The product is not served until it is repaired" if whole_product
                  else "That version is not served")
        return BrokenProductError(
            f"Product '{contract.id}' is broken: {self.lake.uri(path)} {what}. {served}: run "
            f"`mesh repair {contract.id}` (it moves invalid manifests to _quarantine/ and resets the pointer to "
            f"the newest valid version), then `mesh verify {contract.id}`."
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

    def verified_file_paths(self, manifest: Manifest) -> list[str]:
        """Like :meth:`verified_file_uris`, as paths of the lake's file system (for ``pyarrow`` readers)."""
        contract = self.contracts.get(manifest.product)
        problems = manifest_problems(manifest, contract)
        if problems:
            raise self._broken(contract, self.paths_for(contract).manifest(manifest.version),
                               "is invalid: " + "; ".join(problems))
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


def manifest_version(name: str) -> int | None:
    """The version a manifest file name stands for (``00000003.json`` -> 3), or None for any other name."""
    if not MANIFEST_NAME.fullmatch(name):
        return None
    version = int(name[:-5])
    if version < 1 or name != f"{version:0{MANIFEST_DIGITS}d}.json":
        return None
    return version


def _first_error(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        if errors:
            first = errors[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "document"
            more = f" and {len(errors) - 1} more" if len(errors) > 1 else ""
            return f"{where}: {first.get('msg', 'invalid')}{more}"
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
