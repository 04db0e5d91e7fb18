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
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from datamesh.contracts import Contract, ContractRegistry
from datamesh.errors import StorageError, VersionNotFoundError
from datamesh.storage import Lake

MANIFEST_DIGITS = 8


class FileEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str  # relative to the lake root
    rows: int
    bytes: int
    sha256: str


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

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=2, by_alias=True).encode()

    @property
    def size_bytes(self) -> int:
        return sum(f.bytes for f in self.files)


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

    def manifest(self, version: int) -> str:
        return f"{self.manifests}/{version:0{MANIFEST_DIGITS}d}.json"

    def run_dir(self, run_id: str) -> str:
        return f"{self.data}/{run_id}"


class Catalog:
    """Resolves products (latest or pinned) to manifests and exact file lists."""

    def __init__(self, lake: Lake, contracts: ContractRegistry) -> None:
        self.lake = lake
        self.contracts = contracts
        #: Called with (contract, manifest) after every commit, e.g. Trino registration.
        self.commit_hooks: list[Callable[[Contract, Manifest], None]] = []

    def paths(self, product_id: str) -> ProductPaths:
        contract = self.contracts.get(product_id)
        return ProductPaths(self.lake, contract.domain, contract.id)

    def paths_for(self, contract: Contract) -> ProductPaths:
        return ProductPaths(self.lake, contract.domain, contract.id)

    def versions(self, product_id: str) -> list[int]:
        """Committed versions, oldest first."""
        paths = self.paths(product_id)
        out = []
        for info in self.lake.list_dir(paths.manifests):
            name = info.base_name
            if name.endswith(".json") and name[:-5].isdigit():
                out.append(int(name[:-5]))
        return sorted(out)

    def latest_version(self, product_id: str) -> int | None:
        paths = self.paths(product_id)
        try:
            pointer = json.loads(self.lake.read_bytes(paths.latest))
            version = int(pointer["version"])
        except FileNotFoundError:
            versions = self.versions(product_id)
            return versions[-1] if versions else None
        except (ValueError, KeyError) as exc:
            raise StorageError(f"Latest pointer {self.lake.uri(paths.latest)} is corrupt ({exc}); run `mesh repair`.") from exc
        # Roll forward past a commit whose pointer move did not happen.
        while self.lake.exists(paths.manifest(version + 1)):
            version += 1
        return version

    def manifest(self, product_id: str, version: int | None = None) -> Manifest:
        contract = self.contracts.get(product_id)
        if version is None:
            version = self.latest_version(contract.id)
            if version is None:
                raise VersionNotFoundError(
                    f"Product '{contract.id}' has no published version yet. Publish one "
                    f"(`mesh publish {contract.id} FILE` or `mesh demo`)."
                )
        path = self.paths_for(contract).manifest(version)
        try:
            raw = self.lake.read_bytes(path)
        except FileNotFoundError:
            known = self.versions(contract.id)
            raise VersionNotFoundError(
                f"Product '{contract.id}' has no version {version}. Available versions: "
                f"{', '.join(map(str, known)) or 'none'}."
            ) from None
        try:
            return Manifest.model_validate_json(raw)
        except ValueError as exc:
            raise StorageError(f"Manifest {self.lake.uri(path)} is corrupt: {exc}") from exc

    def file_paths(self, manifest: Manifest) -> list[str]:
        return [self.lake.path(f.path) for f in manifest.files]

    def file_uris(self, manifest: Manifest) -> list[str]:
        return [self.lake.uri(p) for p in self.file_paths(manifest)]

    def age_seconds(self, manifest: Manifest) -> float:
        return time.time() - manifest.created_at.timestamp()

    def status(self) -> list[dict[str, Any]]:
        """One row per product: latest version, rows, age, freshness verdict."""
        rows = []
        for contract in self.contracts:
            try:
                m = self.manifest(contract.id)
            except VersionNotFoundError:
                rows.append({"product": contract.id, "domain": contract.domain, "owner": contract.owner.team,
                             "version": None, "rows": None, "published": None, "fresh": None})
                continue
            limit = contract.freshness_seconds
            rows.append({
                "product": contract.id, "domain": contract.domain, "owner": contract.owner.team,
                "version": m.version, "rows": m.row_count, "published": m.created_at.isoformat(timespec="seconds"),
                "fresh": None if limit is None else self.age_seconds(m) <= limit,
            })
        return rows
