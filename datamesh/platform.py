"""The platform facade: settings, lake, contracts and catalog in one object.

Every publish path (CLI, dbt marts, ML products, the demo, Python) goes
through a :class:`Mesh`'s catalog, so the one Trino registration hook and the
acting identity apply to all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datamesh.catalog import Catalog, Manifest
from datamesh.contracts import Contract, ContractRegistry
from datamesh.errors import OwnershipError
from datamesh.identity import Identity, Role
from datamesh.settings import Settings, get_settings
from datamesh.storage import Lake
from datamesh.tables import TableStore

if TYPE_CHECKING:  # imported where used: reading a product's status needs neither DuckDB nor the publisher
    import pyarrow as pa

    from datamesh.duckdb_engine import MeshSession


@dataclass
class Mesh:
    """Everything a caller needs; build it with :meth:`from_settings`."""

    settings: Settings
    lake: Lake
    contracts: ContractRegistry
    catalog: Catalog

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, contracts: ContractRegistry | None = None) -> Mesh:
        settings = settings or get_settings()
        lake = Lake.from_settings(settings)
        lake.check()
        contracts = contracts if contracts is not None else ContractRegistry.from_dir(settings.contracts_dir)
        return cls(settings, lake, contracts, _catalog(settings, lake, contracts))

    @property
    def identity(self) -> Identity:
        return self.settings.identity

    def contract(self, product_id: str) -> Contract:
        return self.contracts.get(product_id)

    def with_contract(self, contract: Contract) -> Mesh:
        """This mesh plus one new product declared by a contract outside the registry.

        A contract given this way may only *declare* a product: it never replaces
        the registered contract of an existing product (that would let any caller
        publish someone else's product under rules of their own).
        """
        if contract.id in self.contracts:
            registered = self.contracts.get(contract.id)
            raise OwnershipError(
                f"Product '{registered.domain}.{registered.id}' is registered by {registered.source_path}; "
                f"the contract {contract.source_path} may only declare a new product, never replace a "
                "registered one. Nothing was published. Publish without --contract, or change the registered "
                "contract through its owners (a breaking change needs a major version bump)."
            )
        contracts = ContractRegistry([*self.contracts, contract])
        return replace(self, contracts=contracts, catalog=_catalog(self.settings, self.lake, contracts))

    def acting_for(self, domain: str) -> Mesh:
        """This mesh acting as ``domain``'s publisher, when the platform holds that identity's credentials.

        The orchestrator runs every domain's steps; with a credentials file (``MESH_CREDENTIALS_FILE``) each
        step publishes with its owning domain's own credentials, so the storage layer (S3 policies, catalog
        roles) also refuses a step that writes outside its domain. Without one, or when already acting as a
        publisher or analyst, this mesh is returned unchanged (the identity checks still apply).
        """
        if self.settings.credentials_file is None or self.identity.role is not Role.PLATFORM:
            return self
        settings = self.settings.as_actor(f"publisher:{domain}")
        lake = Lake.from_settings(settings)
        return Mesh(settings, lake, self.contracts, _catalog(settings, lake, self.contracts))

    def session(self, pins: dict[str, int] | None = None, products: Iterable[str] | None = None) -> MeshSession:
        """A read-only DuckDB session over the products (``products``: only those, and any pinned)."""
        from datamesh.duckdb_engine import MeshSession

        return MeshSession(self.catalog, pins=pins, memory_limit=self.settings.duckdb_memory_limit,
                           threads=self.settings.duckdb_threads, products=products)

    def publish(self, product_id: str, data: pa.Table | Iterable[pa.Table | pa.RecordBatch], *,
                inputs: dict[str, int] | None = None, metadata: dict[str, Any] | None = None,
                progress: Callable[[str], None] | None = None) -> Manifest:
        from datamesh.publish import publish_table

        return publish_table(self.catalog, self.contract(product_id), data, inputs=inputs,
                             metadata=metadata, progress=progress)

    def publish_file(self, product_id: str, path: Path, *, file_format: str | None = None,
                     progress: Callable[[str], None] | None = None) -> Manifest:
        from datamesh.publish import publish_file

        return publish_file(self.catalog, self.contract(product_id), path, file_format=file_format,
                            progress=progress)


def _catalog(settings: Settings, lake: Lake, contracts: ContractRegistry) -> Catalog:
    """The catalog every publish goes through, with the Trino registration hook when Trino is configured."""
    uri = settings.iceberg_catalog_uri.get_secret_value() if settings.iceberg_catalog_uri else None
    catalog = Catalog(lake, contracts, TableStore(lake, uri))
    catalog.identity = settings.identity
    catalog.run_id = settings.run_id
    return catalog
