"""Trino registration: every product version an external table, every product one view.

In the ``lake`` catalog (Hive connector over the same storage):

* schema ``<domain>`` per domain;
* table ``<domain>.<product>__v<N>`` per committed version, an external table
  over exactly that version's prefix ``data/<run_id>/`` (a publish writes only
  its own files there), with table and column comments from the contract;
* view ``<domain>.<product>`` = ``SELECT * FROM <domain>.<product>__v<latest>``,
  swapped with ``CREATE OR REPLACE VIEW`` — an atomic switch for analysts.

Registration happens after every publish (a commit hook) and can be rebuilt
from the manifests with :func:`sync` (``mesh trino sync``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from datamesh.errors import BrokenProductError, TamperedError, TrinoError, VersionNotFoundError
from datamesh.names import quote_ident, sql_string

if TYPE_CHECKING:
    from datamesh.catalog import Catalog, Manifest
    from datamesh.contracts import Contract
    from datamesh.settings import Settings

log = logging.getLogger(__name__)


def version_table(product: str, version: int) -> str:
    return f"{product}__v{version}"


class TrinoClient:
    """A thin client over the ``trino`` DB-API with platform errors."""

    def __init__(self, host: str, port: int, user: str = "mesh", catalog: str = "lake",
                 request_timeout: float = 120.0) -> None:
        self.host, self.port, self.user, self.catalog = host, port, user, catalog
        self.request_timeout = request_timeout

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> TrinoClient:
        from datamesh.settings import get_settings

        settings = settings or get_settings()
        if not settings.trino_host:
            raise TrinoError("No Trino configured: set MESH_TRINO_HOST and MESH_TRINO_PORT "
                             "(`mesh stack up` starts a local Trino and prints them).")
        return cls(settings.trino_host, settings.trino_port, settings.trino_user, settings.trino_catalog)

    def connect(self) -> Any:
        import trino

        return trino.dbapi.connect(host=self.host, port=self.port, user=self.user, catalog=self.catalog,
                                   http_scheme="http", request_timeout=self.request_timeout)

    def query(self, sql: str, params: list[Any] | None = None, *, retries: int = 5) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one statement; returns (column names, rows).

        A freshly (re)started Trino answers NO_NODES_AVAILABLE for a few seconds;
        such queries are retried with a short backoff.
        """
        import time

        import trino

        for attempt in range(retries + 1):
            try:
                return self._query_once(sql, params)
            except trino.exceptions.TrinoQueryError as exc:
                if exc.error_name != "NO_NODES_AVAILABLE" or attempt == retries:
                    raise TrinoError(f"Trino query failed: {exc.error_name}: {exc.message}") from None
                time.sleep(2.0)
        raise AssertionError("unreachable")

    def _query_once(self, sql: str, params: list[Any] | None) -> tuple[list[str], list[tuple[Any, ...]]]:
        import trino

        try:
            conn = self.connect()
            try:
                cur = conn.cursor()
                cur.execute(sql, params) if params else cur.execute(sql)
                rows = [tuple(r) for r in cur.fetchall()]
                cols = [d[0] for d in cur.description] if cur.description else []
                return cols, rows
            finally:
                conn.close()
        except trino.exceptions.TrinoQueryError:
            raise
        except (OSError, trino.exceptions.TrinoConnectionError) as exc:  # type: ignore[attr-defined]
            raise TrinoError(f"Cannot reach Trino at {self.host}:{self.port} ({exc}). "
                             "Is it running? (`mesh stack status`)") from None
        except Exception as exc:
            if "Connection" in type(exc).__name__ or "Max retries" in str(exc):
                raise TrinoError(f"Cannot reach Trino at {self.host}:{self.port} ({exc}). "
                                 "Is it running? (`mesh stack status`)") from None
            raise

    def execute(self, sql: str) -> None:
        self.query(sql)


@dataclass
class Registrar:
    """Registers product versions of one lake in one Trino catalog."""

    client: TrinoClient
    catalog: Catalog
    _schemas: set[str] = field(default_factory=set)

    def _fq(self, domain: str, name: str) -> str:
        return f"{quote_ident(self.client.catalog)}.{quote_ident(domain)}.\"{name}\""

    def ensure_schema(self, domain: str) -> None:
        if domain in self._schemas:
            return
        location = self.catalog.lake.uri(self.catalog.lake.path("products", domain))
        try:
            self.client.execute(
                f"CREATE SCHEMA IF NOT EXISTS {quote_ident(self.client.catalog)}.{quote_ident(domain)} "
                f"WITH (location = {sql_string(location)})"
            )
        except TrinoError as exc:
            if "ALREADY_EXISTS" not in str(exc):  # a concurrent registration created it first
                raise
        self._schemas.add(domain)

    def _create_table(self, contract: Contract, manifest: Manifest) -> None:
        try:
            self.client.execute(self.table_ddl(contract, manifest))
        except TrinoError as exc:
            if "ALREADY_EXISTS" not in str(exc):
                raise

    def table_ddl(self, contract: Contract, manifest: Manifest) -> str:
        prefix = self.catalog.paths_for(contract).run_dir(manifest.run_id)
        cols = ",\n  ".join(
            f"{quote_ident(c.name)} {c.type.trino} COMMENT {sql_string(c.description or c.name)}" for c in contract.columns
        )
        comment = (f"{contract.name} v{manifest.version} (contract {manifest.contract_version}). "
                   f"{contract.description.purpose} Grain: {contract.description.grain}")
        return (
            f"CREATE TABLE IF NOT EXISTS {self._fq(contract.domain, version_table(contract.id, manifest.version))} (\n  {cols}\n)"
            f" COMMENT {sql_string(comment)}"
            f" WITH (external_location = {sql_string(self.catalog.lake.uri(prefix))}, format = 'PARQUET')"
        )

    def register(self, contract: Contract, manifest: Manifest, *, move_view: bool = True) -> None:
        """Create the version's table and (by default) point the product view at the newest version.

        Concurrent publishers may register out of order; the view only ever
        moves to the newest committed version, so it never goes backwards.
        """
        self.ensure_schema(contract.domain)
        self._create_table(contract, manifest)
        if not move_view:
            return
        target = manifest.version
        for _ in range(5):
            self.point_view(contract, target)
            latest = self.catalog.latest_version(contract.id) or target
            if latest <= target:
                return
            # A newer version was committed meanwhile: make sure its table exists and point there.
            target = latest
            self._create_table(contract, self.catalog.manifest(contract.id, target))

    def point_view(self, contract: Contract, version: int) -> None:
        comment = f"{contract.name}: latest version of data product {contract.domain}.{contract.id}"
        self.client.execute(
            f"CREATE OR REPLACE VIEW {self._fq(contract.domain, contract.id)} COMMENT {sql_string(comment)} "
            f"SECURITY INVOKER AS SELECT * FROM {self._fq(contract.domain, version_table(contract.id, version))}"
        )

    def registered_versions(self, contract: Contract) -> set[int]:
        _, rows = self.client.query(
            f"SELECT table_name FROM {quote_ident(self.client.catalog)}.information_schema.tables "
            f"WHERE table_schema = {sql_string(contract.domain)} AND table_name LIKE {sql_string(contract.id + '__v%')}"
        )
        out = set()
        prefix = contract.id + "__v"
        for (name,) in rows:
            # LIKE treats '_' as a wildcard: keep only this product's exact version tables.
            suffix = name[len(prefix):] if name.startswith(prefix) else ""
            if suffix.isascii() and suffix.isdigit():
                out.add(int(suffix))
        return out

    def drop_version(self, contract: Contract, version: int) -> None:
        self.client.execute(f"DROP TABLE IF EXISTS {self._fq(contract.domain, version_table(contract.id, version))}")


@dataclass
class SyncReport:
    registered: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    views: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"view {p} -> v{v}" for p, v in sorted(self.views.items())]
        out += [f"registered {t}" for t in self.registered]
        out += [f"dropped {t} (version no longer in the lake)" for t in self.dropped]
        out += [f"BROKEN {b}" for b in self.broken]
        return out


def version_problem(catalog: Catalog, manifest: Manifest) -> str | None:
    """Why a version must not be served (a file missing, resized or overwritten), or None.

    The same check every reader makes (:meth:`Catalog.verified_file_uris`):
    size and modification time, and the SHA-256 when the time differs.
    """
    try:
        catalog.verified_file_uris(manifest)
    except (TamperedError, BrokenProductError) as exc:
        return str(exc)
    return None


def version_is_complete(catalog: Catalog, manifest: Manifest) -> bool:
    """Every file the manifest lists is exactly the committed one (see :func:`version_problem`)."""
    return version_problem(catalog, manifest) is None


def sync(registrar: Registrar, *, products: list[str] | None = None) -> SyncReport:
    """Rebuild Trino registration from the manifests; repair what drifted.

    Versions whose manifest is invalid or whose files were deleted or changed
    out of band (the readers' check: size, modification time, SHA-256) are
    dropped from Trino and reported as broken; the product view points at the
    newest intact version.
    """
    catalog = registrar.catalog
    report = SyncReport()
    for contract in catalog.contracts:
        if products and contract.id not in products:
            continue
        versions = catalog.versions(contract.id)
        if not versions:
            continue
        registrar.ensure_schema(contract.domain)
        existing = registrar.registered_versions(contract)
        good: list[int] = []
        for version in versions:
            try:
                manifest = catalog.manifest(contract.id, version)  # validated: BrokenProductError otherwise
            except VersionNotFoundError:
                continue
            except BrokenProductError as exc:
                problem: str | None = f"manifest invalid: {exc}"
            else:
                found = version_problem(catalog, manifest)
                problem = None if found is None else f"files missing or changed in the lake: {found}"
            if problem:
                if version in existing:
                    registrar.drop_version(contract, version)
                    problem += f" Its table {contract.domain}.{version_table(contract.id, version)} was dropped."
                report.broken.append(f"{contract.domain}.{contract.id} v{version}: {problem}")
                continue
            if version not in existing:
                registrar.register(contract, manifest, move_view=False)
                report.registered.append(f"{contract.domain}.{version_table(contract.id, version)}")
            good.append(version)
        for version in sorted(existing - set(versions)):
            registrar.drop_version(contract, version)
            report.dropped.append(f"{contract.domain}.{version_table(contract.id, version)}")
        if good:
            registrar.point_view(contract, good[-1])
            report.views[f"{contract.domain}.{contract.id}"] = good[-1]
        else:
            report.broken.append(f"{contract.domain}.{contract.id}: no complete version left; view not changed")
    return report


def commit_hook(registrar: Registrar):  # noqa: ANN201
    """A publish commit hook that registers each new version in Trino."""

    def hook(contract: Contract, manifest: Manifest) -> None:
        try:
            registrar.register(contract, manifest)
        except TrinoError as exc:
            # The version is committed in the lake; Trino catches up with `mesh trino sync`.
            log.warning("Trino registration of %s v%s failed: %s (run `mesh trino sync`)",
                        contract.id, manifest.version, exc)
            raise

    return hook
