"""The platform facade: settings, lake, contracts and catalog in one object."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from datamesh.catalog import Catalog, Manifest
from datamesh.contracts import Contract, ContractRegistry
from datamesh.duckdb_engine import MeshSession
from datamesh.publish import publish_file, publish_table
from datamesh.settings import Settings, get_settings
from datamesh.storage import Lake


@dataclass
class Mesh:
    """Everything a caller needs; build it with :meth:`from_settings`."""

    settings: Settings
    lake: Lake
    contracts: ContractRegistry
    catalog: Catalog

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Mesh:
        settings = settings or get_settings()
        lake = Lake.from_settings(settings)
        lake.check()
        contracts = ContractRegistry.from_dir(settings.contracts_dir)
        catalog = Catalog(lake, contracts)
        if settings.trino_host and lake.is_s3:
            from datamesh.trino import Registrar, TrinoClient, commit_hook

            catalog.commit_hooks.append(commit_hook(Registrar(TrinoClient.from_settings(settings), catalog)))
        return cls(settings, lake, contracts, catalog)

    def contract(self, product_id: str) -> Contract:
        return self.contracts.get(product_id)

    def session(self, pins: dict[str, int] | None = None) -> MeshSession:
        return MeshSession(self.catalog, pins=pins, memory_limit=self.settings.duckdb_memory_limit,
                           threads=self.settings.duckdb_threads)

    def publish(self, product_id: str, data: pa.Table | Iterable[pa.Table | pa.RecordBatch], *,
                inputs: dict[str, int] | None = None, metadata: dict[str, Any] | None = None,
                progress: Callable[[str], None] | None = None) -> Manifest:
        return publish_table(self.catalog, self.contract(product_id), data, inputs=inputs,
                             metadata=metadata, progress=progress)

    def publish_file(self, product_id: str, path: Path, *, file_format: str | None = None,
                     progress: Callable[[str], None] | None = None) -> Manifest:
        return publish_file(self.catalog, self.contract(product_id), path, file_format=file_format,
                            progress=progress)

    def input_versions(self, contract: Contract) -> dict[str, int]:
        """Latest versions of a product's lineage inputs (for provenance)."""
        out = {}
        for upstream in contract.lineage.inputs:
            version = self.catalog.latest_version(upstream)
            if version is not None:
                out[upstream] = version
        return out
