"""DuckDB sessions over the lake: cheap, in-memory views over product manifests.

No ``.duckdb`` file is shared between processes; every session is a fresh
in-memory database whose views point at the exact files a manifest lists.
On S3 the httpfs extension is loaded from the ``duckdb-extension-httpfs``
PyPI package (never downloaded at run time).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from datamesh.errors import QueryError, StorageError, VersionNotFoundError
from datamesh.names import quote_ident, sql_string

if TYPE_CHECKING:
    from datamesh.catalog import Catalog
    from datamesh.storage import Lake


def httpfs_extension_path() -> Path:
    """The httpfs extension file shipped by the duckdb-extension-httpfs wheel."""
    import duckdb_extension_httpfs

    base = Path(duckdb_extension_httpfs.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    path = base / "httpfs.duckdb_extension"
    if not path.exists():
        raise StorageError(
            f"The httpfs extension for duckdb {duckdb.__version__} is missing at {path}. "
            f"Install duckdb-extension-httpfs=={duckdb.__version__} (make install does)."
        )
    return path


def _spill_dir() -> Path:
    import tempfile

    path = Path(tempfile.gettempdir()) / "datamesh-duckdb-spill"
    path.mkdir(parents=True, exist_ok=True)
    return path


#: Memory for contract checks during a publish: large keys spill to disk beyond it.
CHECK_MEMORY_LIMIT = "1536MB"


def connect(lake: Lake | None = None, *, memory_limit: str = "3GB", threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB connection able to read the lake's files."""
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    con.execute(f"SET memory_limit = {sql_string(memory_limit)}")
    con.execute(f"SET temp_directory = {sql_string(str(_spill_dir()))}")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if lake is not None and lake.is_s3:
        configure_s3(con, lake)
    return con


def configure_s3(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    assert lake.s3 is not None
    con.execute(f"LOAD {sql_string(str(httpfs_extension_path()))}")
    s3 = lake.s3
    params = {
        "KEY_ID": s3.access_key_id or "",
        "SECRET": s3.secret_access_key or "",
        "REGION": s3.region,
        "URL_STYLE": "path",
        "USE_SSL": "true" if s3.scheme == "https" else "false",
    }
    if s3.endpoint_host:
        params["ENDPOINT"] = s3.endpoint_host
    body = ", ".join(
        f"{k} {v}" if k == "USE_SSL" else f"{k} {sql_string(v)}" for k, v in params.items()
    )
    con.execute(f"CREATE OR REPLACE SECRET mesh_lake (TYPE s3, {body})")


def read_parquet_sql(uris: list[str]) -> str:
    """``read_parquet([...])`` over an exact file list (never a glob)."""
    if not uris:
        raise StorageError("A product version with no files cannot be read.")
    files = ", ".join(sql_string(u) for u in uris)
    return f"read_parquet([{files}])"


_PIN_PATTERN = re.compile(r"\b([a-z][a-z0-9_]*)__v(\d+)\b")


class MeshSession:
    """A DuckDB session where every product is a view named by its id.

    ``customers`` and ``crm.customers`` read the latest version;
    ``crm.customers__v3`` (or ``customers__v3``) reads version 3. Pinned views
    are created on demand when a query mentions them.
    """

    def __init__(self, catalog: Catalog, *, pins: dict[str, int] | None = None,
                 memory_limit: str = "3GB", threads: int | None = None) -> None:
        self.catalog = catalog
        self.con = connect(catalog.lake, memory_limit=memory_limit, threads=threads)
        self.views: dict[str, int] = {}
        self.missing: list[str] = []
        pins = pins or {}
        for product in pins:
            catalog.contracts.get(product)
        for domain in catalog.contracts.domains:
            self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(domain)}")
        for contract in catalog.contracts:
            version = pins.get(contract.id)
            try:
                manifest = catalog.manifest(contract.id, version)
            except VersionNotFoundError:
                if version is not None:
                    raise
                self.missing.append(contract.id)
                continue
            relation = read_parquet_sql(catalog.file_uris(manifest))
            domain, name = quote_ident(contract.domain), quote_ident(contract.id)
            self.con.execute(f"CREATE OR REPLACE VIEW {domain}.{name} AS SELECT * FROM {relation}")
            self.con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {domain}.{name}")
            self.views[contract.id] = manifest.version

    def pin(self, product_id: str, version: int) -> str:
        """Create (if needed) the view of one pinned version; returns its qualified name."""
        contract = self.catalog.contracts.get(product_id)
        manifest = self.catalog.manifest(contract.id, version)
        view = f"{contract.id}__v{version}"
        relation = read_parquet_sql(self.catalog.file_uris(manifest))
        self.con.execute(f"CREATE OR REPLACE VIEW {quote_ident(contract.domain)}.\"{view}\" AS SELECT * FROM {relation}")
        self.con.execute(f"CREATE OR REPLACE VIEW \"{view}\" AS SELECT * FROM {quote_ident(contract.domain)}.\"{view}\"")
        return f"{contract.domain}.{view}"

    def _prepare(self, sql: str) -> None:
        for name, version in set(_PIN_PATTERN.findall(sql)):
            if name in self.catalog.contracts:
                self.pin(name, int(version))

    def sql(self, query: str, params: list[Any] | None = None) -> duckdb.DuckDBPyRelation | None:
        """Run a query; product views and pinned versions resolve automatically."""
        self._prepare(query)
        try:
            return self.con.sql(query, params=params)
        except duckdb.Error as exc:
            hint = ""
            text = str(exc)
            if "does not exist" in text and self.missing:
                hint = f" Products without a published version yet: {', '.join(self.missing)} (run `mesh demo` or publish them)."
            raise QueryError(f"Query failed: {text.splitlines()[0]}{hint}") from exc

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> MeshSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
