"""Trino over the products' Iceberg tables.

Trino's ``lake`` catalog is the Iceberg connector over the same SQL catalog
(PostgreSQL on the stack) the platform commits to, so there is nothing to
register: ``lake.<domain>.<product>`` is the product's table, its current
snapshot the latest version, and ``FOR VERSION AS OF 'v<N>'`` reads version
N (the tag each publish creates). Table and column comments come from the
contract through the table's properties and field docs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from datamesh.errors import TrinoError
from datamesh.names import quote_ident, sql_string, validate_name

if TYPE_CHECKING:
    from datamesh.contracts import Contract
    from datamesh.settings import Settings

log = logging.getLogger(__name__)


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


def version_relation(catalog: str, contract: Contract, version: int | None = None) -> str:
    """Trino SQL for a product's table, at tag ``v<version>`` when given (time travel)."""
    table = f"{quote_ident(catalog)}.{quote_ident(contract.domain)}.{quote_ident(contract.id)}"
    return table if version is None else f"{table} FOR VERSION AS OF {sql_string(f'v{int(version)}')}"


def trino_versions(client: TrinoClient, contract: Contract) -> set[int]:
    """The ``v<N>`` tags Trino sees on a product's table (empty if Trino has no such table)."""
    # The product id is a validated identifier; Iceberg's metadata table is "<table>$refs".
    validate_name(contract.id, kind="product id")
    refs = f'{quote_ident(client.catalog)}.{quote_ident(contract.domain)}."{contract.id}$refs"'
    try:
        _, rows = client.query(f"SELECT name FROM {refs} WHERE type = 'TAG'")
    except TrinoError as exc:
        if "does not exist" in str(exc) or "TABLE_NOT_FOUND" in str(exc) or "SCHEMA_NOT_FOUND" in str(exc):
            return set()
        raise
    out = set()
    for (name,) in rows:
        if isinstance(name, str) and name[:1] == "v" and name[1:].isascii() and name[1:].isdigit():
            out.add(int(name[1:]))
    return out
