"""DuckDB sessions over the lake: cheap, in-memory views over product manifests.

No ``.duckdb`` file is shared between processes; every session is a fresh
in-memory database whose views point at the exact files a manifest lists.
On S3 the httpfs extension is loaded from the ``duckdb-extension-httpfs``
PyPI package (never downloaded at run time).
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from datamesh.errors import (
    AccessDeniedError,
    BrokenProductError,
    PlatformError,
    QueryError,
    StorageError,
    VersionNotFoundError,
)
from datamesh.names import quote_ident, sql_string
from datamesh.sql_guard import _parser_connection, ensure_read_only, lock_down

if TYPE_CHECKING:
    from collections.abc import Iterable

    from datamesh.catalog import Catalog, Manifest
    from datamesh.contracts import Contract, ContractRegistry
    from datamesh.storage import Lake


def extension_path(name: str) -> Path:
    """An extension file shipped by its ``duckdb-extension-<name>`` wheel (never downloaded at run time)."""
    import importlib

    try:
        module = importlib.import_module(f"duckdb_extension_{name}")
    except ImportError:
        module = None
    base = Path(module.__file__).parent if module is not None and module.__file__ else Path("/nonexistent")
    path = base / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.exists():
        raise StorageError(
            f"The DuckDB {name} extension for duckdb {duckdb.__version__} is missing at {path}. "
            f"Install duckdb-extension-{name}=={duckdb.__version__} (make install does)."
        )
    return path


def httpfs_extension_path() -> Path:
    """The httpfs extension file shipped by the duckdb-extension-httpfs wheel."""
    return extension_path("httpfs")


#: (path, device, inode, size, mtime_ns, ctime_ns) of extension files whose signature DuckDB checked.
_SIGNATURE_CHECKED: set[tuple[str, int, int, int, int, int]] = set()
_SIGNATURE_LOCK = threading.Lock()
#: Where the identities of checked extension files are remembered between processes.
SIGNATURE_RECORD = "duckdb-extensions-checked.json"
_MAX_RECORD_BYTES = 64 * 1024


def _file_identity(path: Path) -> tuple[str, int, int, int, int, int]:
    """What changes whenever a file's bytes can have: a rewrite, a replacement, a restored mtime (ctime moves)."""
    st = os.stat(path)
    return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def cache_dir() -> Path | None:
    """This user's cache folder for the platform: ``MESH_CACHE_DIR``, else ``$XDG_CACHE_HOME/datamesh``
    (None when neither is set and the user has no home directory, or the folder is not an absolute path)."""
    explicit = os.environ.get("MESH_CACHE_DIR")
    if explicit:
        folder = Path(explicit)
    else:
        try:
            folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "datamesh"
        except (RuntimeError, KeyError, OSError):  # no HOME and no passwd entry (a container's arbitrary uid)
            return None
    return folder if folder.is_absolute() else None


def _private(path: Path) -> bool:
    """Whether only this user can have written ``path`` (owned by them, not writable by group or others)."""
    try:
        st = os.lstat(path)
    except (OSError, ValueError):
        return False
    geteuid = getattr(os, "geteuid", None)
    return (geteuid is not None and st.st_uid == geteuid() and not st.st_mode & 0o022
            and not os.path.islink(path))


def _recorded_identities() -> set[tuple[str, int, int, int, int, int]]:
    """Identities a process of this user checked before (none when the record is missing, foreign or unreadable).

    The record is a cache: whatever is wrong with it (damaged, absurd numbers, too deep to parse) only
    means the files are checked again.
    """
    folder = cache_dir()
    if folder is None:
        return set()
    record = folder / SIGNATURE_RECORD
    if not (_private(folder) and _private(record)):
        return set()
    try:
        with open(record, "rb") as fh:
            data = json.loads(fh.read(_MAX_RECORD_BYTES + 1)[:_MAX_RECORD_BYTES])
        if data.get("duckdb") != duckdb.__version__:
            return set()
        return {(str(e[0]), *map(int, e[1:6])) for e in data["checked"] if len(e) == 6}  # type: ignore[misc]
    except Exception:  # noqa: BLE001 - a cache: any damage means "check again"
        return set()


def _still(identity: tuple[str, int, int, int, int, int]) -> bool:
    """Whether a recorded file is still there unchanged (records of replaced files are dropped)."""
    try:
        return _file_identity(Path(identity[0])) == identity
    except (OSError, ValueError):
        return False


def _remember(identities: set[tuple[str, int, int, int, int, int]]) -> None:
    """Add checked identities to this user's record (best effort: a cache that cannot be written is skipped)."""
    import tempfile

    folder = cache_dir()
    if folder is None:
        return
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(folder):
            return
        older = sorted(e for e in _recorded_identities() - identities if _still(e))
        entries = [*sorted(identities), *older][:64]  # what was just checked always fits
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".ext-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump({"duckdb": duckdb.__version__, "checked": [list(e) for e in entries]}, fh)
            os.replace(tmp, folder / SIGNATURE_RECORD)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except (OSError, ValueError):
        return


def load_extensions(con: duckdb.DuckDBPyConnection, names: Sequence[str]) -> None:
    """LOAD extensions from their wheels, in order; their signatures checked by DuckDB once per file.

    DuckDB checks a signed extension's signature on every LOAD, in every new
    database: it hashes the whole file (48 MiB for iceberg), 0.3 s of every
    CLI call, and every mesh session is a new database. A connection opened
    with ``allow_unsigned_extensions`` (:func:`connect`) loads files only
    once a connection of DuckDB's default, signature-checking configuration
    has loaded the same unchanged files (same device, inode, size,
    modification and change time) in this process, or in an earlier process
    of this user that recorded them in its private cache folder
    (:func:`cache_dir`, a record only trusted when this user owns it and no
    one else can write it). A changed file is checked again: rewriting or
    replacing a file moves its change time, which no one but root can set
    back. A connection without that option (dbt-duckdb's) is checked by
    DuckDB itself, as before.
    """
    paths = [extension_path(name) for name in names]
    unsigned_allowed = bool(con.execute("SELECT current_setting('allow_unsigned_extensions')").fetchone()[0])  # type: ignore[index]
    if unsigned_allowed:
        identities = [_file_identity(path) for path in paths]
        with _SIGNATURE_LOCK:
            if not _SIGNATURE_CHECKED.issuperset(identities):
                _SIGNATURE_CHECKED.update(set(identities) & _recorded_identities())
            if not _SIGNATURE_CHECKED.issuperset(identities):
                checker = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                                              "autoload_known_extensions": False})
                try:  # in order: iceberg needs avro loaded first
                    for path in paths:
                        checker.execute(f"LOAD {sql_string(str(path))}")  # raises unless DuckDB's signature holds
                except duckdb.Error as exc:
                    raise StorageError(
                        f"The DuckDB extension {path} does not load with its signature checked "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0][:300]}). It was not loaded; reinstall the "
                        f"extensions for duckdb {duckdb.__version__} (`make install`)."
                    ) from None
                finally:
                    checker.close()
                if [_file_identity(path) for path in paths] != identities:
                    raise StorageError(f"A DuckDB extension file ({', '.join(map(str, paths))}) changed while it was "
                                       "being loaded; reinstall the extensions (`make install`) and try again.")
                _SIGNATURE_CHECKED.update(identities)
                _remember(set(identities))
    for path in paths:
        con.execute(f"LOAD {sql_string(str(path))}")


def load_iceberg(con: duckdb.DuckDBPyConnection) -> None:
    """Load ``avro`` then ``iceberg`` (for ``iceberg_scan``) from their wheels."""
    load_extensions(con, ("avro", "iceberg"))


def _spill_dir() -> Path:
    import tempfile

    path = Path(tempfile.gettempdir()) / "datamesh-duckdb-spill"
    path.mkdir(parents=True, exist_ok=True)
    return path


#: Memory for contract checks during a publish: large keys spill to disk beyond it.
CHECK_MEMORY_LIMIT = "1536MB"


def connect(lake: Lake | None = None, *, memory_limit: str = "3GB", threads: int | None = None,
            iceberg: bool = False) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB connection able to read the lake's files (and its tables, with ``iceberg``).

    Extensions (iceberg and avro here, httpfs on S3) load from their wheels
    with their signatures checked once per process (:func:`load_extensions`);
    no other extension can load once a session is locked down
    (:func:`~datamesh.sql_guard.lock_down`), and a query that names LOAD is
    refused before it runs.
    """
    loads = iceberg or (lake is not None and lake.is_s3)
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False, "autoload_known_extensions": False,
                                             "allow_unsigned_extensions": loads})
    con.execute(f"SET memory_limit = {sql_string(memory_limit)}")
    con.execute(f"SET temp_directory = {sql_string(str(_spill_dir()))}")
    # DuckDB's bar for queries over 2 s: on a terminal, never in Dagster compute logs, pipes or files
    con.execute(f"SET enable_progress_bar = {'true' if _on_terminal() else 'false'}")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if lake is not None and lake.is_s3:
        configure_s3(con, lake)
    if iceberg:
        load_iceberg(con)
    return con


def _on_terminal() -> bool:
    """Standard output is a terminal: DuckDB's progress bar (printed to it for queries over 2 s) is wanted."""
    try:
        return sys.stdout is not None and sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def configure_s3(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    assert lake.s3 is not None
    load_extensions(con, ("httpfs",))
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


_PIN_PATTERN = re.compile(r"\b([a-z][a-z0-9_]*)__v([0-9]{1,9})\b")


def check_version_number(product_id: str, version: object) -> int:
    """``version`` if it is a whole number >= 1; VersionNotFoundError otherwise."""
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise VersionNotFoundError(
            f"Product '{product_id}' has no version {version!r}: versions are whole numbers from 1 "
            f"(e.g. {product_id}__v1, or --pin {product_id}=1)."
        )
    return version


def error_relation(contract: Contract, message: str) -> str:
    """A relation with the product's columns that raises ``message`` whenever it is read."""
    columns = ", ".join(f"CAST(NULL AS {c.type.duckdb}) AS {quote_ident(c.name)}" for c in contract.columns)
    return f"(SELECT {columns} WHERE error({sql_string(message)}))"


def _base_tables(node: Any) -> tuple[list[tuple[str, str]], set[str]]:
    """(schema, table) of every table a serialized query reads, and every CTE name it defines."""
    tables: list[tuple[str, str]] = []
    ctes: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("type") == "BASE_TABLE":
                tables.append((str(item.get("schema_name") or "").lower(), str(item.get("table_name") or "").lower()))
            cte_map = item.get("cte_map")
            if isinstance(cte_map, dict):
                ctes.update(str(e.get("key", "")).lower() for e in cte_map.get("map", []) if isinstance(e, dict))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return tables, ctes


def referenced_products(sql: str, contracts: ContractRegistry) -> set[str] | None:
    """The ids of the products a query reads (``customers``, ``crm.customers``, ``customers__v2``), from
    DuckDB's parse tree (nothing is run).

    None, meaning "open every product", unless the query reads products (and its own CTEs) only: when it
    cannot be parsed that way (not a SELECT, a syntax error), lists tables (``SHOW TABLES``, a table
    function such as ``duckdb_views()``, ``information_schema``) or names a table that is no product (its
    error then suggests the products' names, as before).
    """
    try:
        # The locked-down parser connection; a literal, not a bound parameter: binding one imports pandas (0.5 s).
        row = _parser_connection().execute(f"SELECT json_serialize_sql({sql_string(sql)})").fetchone()
        tree = json.loads(row[0]) if row else None
    except (duckdb.Error, ValueError, TypeError):
        return None
    if not isinstance(tree, dict) or tree.get("error"):
        return None
    stack: list[Any] = [tree.get("statements", [])]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("type") == "TABLE_FUNCTION" or (item.get("type") == "SHOW_REF" and not item.get("query")):
                return None
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    tables, ctes = _base_tables(tree.get("statements", []))
    found: set[str] = set()
    for schema, table in tables:
        pinned = _PIN_PATTERN.fullmatch(table)
        name = pinned.group(1) if pinned else table
        if name in contracts and schema in ("", contracts.get(name).domain):
            found.add(contracts.get(name).id)
        elif not (schema == "" and table in ctes):
            return None
    return found


class QueryResult:
    """The rows of one read-only query: reading methods only, errors as platform errors.

    DuckDB relations can write (``write_parquet``, ``query``) and run lazily,
    so a session never hands one out: this wrapper exposes the ways to read a
    result and turns an error raised while rows are produced (a bad cast, a
    broken product's view) into a :class:`QueryError` or the product's own
    error.
    """

    def __init__(self, relation: duckdb.DuckDBPyRelation, session: MeshSession) -> None:
        self._relation = relation
        self._session = session

    @property
    def columns(self) -> list[str]:
        return list(self._relation.columns)

    @property
    def types(self) -> list[str]:
        return [str(t) for t in self._relation.types]

    def _run(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._relation, method)(*args)
        except duckdb.Error as exc:
            raise self._session.query_error(exc) from None

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._run("fetchone")

    def fetchmany(self, size: int = 1) -> list[tuple[Any, ...]]:
        return self._run("fetchmany", size)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._run("fetchall")

    def df(self) -> Any:
        """The result as a pandas DataFrame."""
        return self._run("df")

    def arrow(self) -> Any:
        """The result as a pyarrow Table."""
        return self._run("to_arrow_table")

    def __repr__(self) -> str:
        return f"QueryResult(columns={self.columns})"


class MeshSession:
    """A DuckDB session where every product is a view named by its id.

    ``customers`` and ``crm.customers`` read the latest version;
    ``crm.customers__v3`` (or ``customers__v3``) reads version 3. Pinned views
    are created on demand when a query mentions them.

    Every view reads exactly the files its manifest committed, checked with
    :meth:`Catalog.verified_scan`. A product whose table, record or
    files are broken does not break the session: it is listed in
    :attr:`broken` and its views raise that product's error when read, so
    queries over the other products keep working. ``products`` limits the
    views (and the checks) to those products and any pinned ones, for a
    caller that knows what it will read. The session is read-only:
    :meth:`sql` runs queries only, and after set-up the connection can read
    nothing outside the lake's products and its settings are locked.
    """

    def __init__(self, catalog: Catalog, *, pins: dict[str, int] | None = None,
                 memory_limit: str = "3GB", threads: int | None = None,
                 products: Iterable[str] | None = None) -> None:
        self.catalog = catalog
        self._con = connect(catalog.lake, memory_limit=memory_limit, threads=threads, iceberg=True)
        #: Product id -> the record of the version its view reads (verified when the view was made).
        self.manifests: dict[str, Manifest] = {}
        self.missing: list[str] = []
        #: Product id -> why it cannot be read in this session (its views raise this message).
        self.broken: dict[str, str] = {}
        self._broken_errors: dict[str, StorageError] = {}
        self._pinned: dict[tuple[str, int], str] = {}
        resolved_pins: dict[str, int] = {}
        for product, version in (pins or {}).items():
            contract = catalog.contracts.get(product)
            resolved_pins[contract.id] = check_version_number(contract.id, version)
        for domain in catalog.contracts.domains:
            self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(domain)}")
        # Only these products get views (and have their records and files verified): a query that
        # names its products need not pay for the others. Default: every product.
        wanted = None if products is None else {catalog.contracts.get(p).id for p in products} | set(resolved_pins)
        for contract in catalog.contracts:
            if wanted is not None and contract.id not in wanted:
                continue
            version = resolved_pins.get(contract.id)
            try:
                manifest = catalog.manifest(contract.id, version)
                self._create_views(contract, contract.id, catalog.verified_scan(manifest))
            except VersionNotFoundError:
                if version is not None:
                    raise
                self.missing.append(contract.id)
                continue
            except StorageError as exc:  # BrokenProductError, TamperedError, an unreadable store
                self._mark_broken(contract, exc)
                continue
            except duckdb.Error as exc:
                self._mark_broken(contract, BrokenProductError(
                    f"Product '{contract.id}' version {manifest.version}: DuckDB cannot read its files "
                    f"({str(exc).splitlines()[0]}). Run `mesh verify {contract.id}`, then "
                    f"`mesh repair {contract.id}`."
                ))
                continue
            self.manifests[contract.id] = manifest
        lake = catalog.lake
        lock_down(self._con, [lake.uri(lake.path("products"))])

    @property
    def views(self) -> dict[str, int]:
        """Product id -> the version its view reads (the products this session can read)."""
        return {product: manifest.version for product, manifest in self.manifests.items()}

    def _create_views(self, contract: Contract, view: str, relation: str) -> None:
        domain = quote_ident(contract.domain)
        self._con.execute(f'CREATE OR REPLACE VIEW {domain}."{view}" AS SELECT * FROM {relation}')
        self._con.execute(f'CREATE OR REPLACE VIEW "{view}" AS SELECT * FROM {domain}."{view}"')

    def _mark_broken(self, contract: Contract, exc: StorageError) -> None:
        message = str(exc)
        if f"'{contract.id}'" not in message:
            message = f"Product '{contract.id}' is unavailable in this session: {message}"
        if f"mesh repair {contract.id}" not in message and not isinstance(exc, AccessDeniedError):
            message += f" Once the lake is reachable, `mesh verify {contract.id}` / `mesh repair {contract.id}`."
        self.broken[contract.id] = message
        self._broken_errors[contract.id] = exc
        self._create_views(contract, contract.id, error_relation(contract, message))

    def pin(self, product_id: str, version: int) -> str:
        """Create (if needed) the view of one pinned version; returns its qualified name.

        The version's manifest and files are verified first: a missing or
        changed file raises TamperedError naming it.
        """
        contract = self.catalog.contracts.get(product_id)
        check_version_number(contract.id, version)
        key = (contract.id, version)
        if key in self._pinned:
            return self._pinned[key]
        manifest = self.catalog.manifest(contract.id, version)
        relation = self.catalog.verified_scan(manifest)
        view = f"{contract.id}__v{version}"
        try:
            self._create_views(contract, view, relation)
        except duckdb.Error as exc:
            raise QueryError(
                f"Product '{contract.id}' version {version}: DuckDB cannot read its files "
                f"({str(exc).splitlines()[0]}). Run `mesh verify {contract.id}`."
            ) from None
        self._pinned[key] = f"{contract.domain}.{view}"
        return self._pinned[key]

    def _prepare(self, sql: str) -> None:
        for name, version in set(_PIN_PATTERN.findall(sql)):
            if name in self.catalog.contracts:
                self.pin(name, int(version))

    def _refuse_broken(self, sql: str) -> None:
        """Raise a broken product's own error before running a query that reads it.

        Best effort (DuckDB's parse tree; nothing is executed): when it cannot
        tell, the product's view still raises the same message when read.
        """
        if not self.broken:
            return
        try:
            row = self._con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
            tree = json.loads(row[0]) if row else {}
        except (duckdb.Error, ValueError, TypeError):
            return
        if not isinstance(tree, dict) or tree.get("error"):
            return
        tables, ctes = _base_tables(tree.get("statements", []))
        for schema, table in tables:
            if table not in self.broken or (not schema and table in ctes):
                continue
            if schema in ("", self.catalog.contracts.get(table).domain):
                raise type(self._broken_errors[table])(self.broken[table])

    def sql(self, query: str, params: list[Any] | None = None) -> QueryResult:
        """Run a read-only query; product views and pinned versions resolve automatically.

        Statements that could write (COPY, ATTACH, CREATE, SET, ...) raise
        ReadOnlyError; a query reading a broken product raises that product's
        error (BrokenProductError / TamperedError) naming ``mesh repair``.
        """
        ensure_read_only(query)
        self._prepare(query)
        self._refuse_broken(query)
        try:
            relation = self._con.sql(query, params=params)
        except duckdb.Error as exc:
            raise self.query_error(exc) from None
        if relation is None:  # pragma: no cover - every allowed statement is a query
            raise QueryError("The statement returned no result; send a query (SELECT ...).")
        return QueryResult(relation, self)

    def query_error(self, exc: duckdb.Error) -> PlatformError:
        """A DuckDB error as the platform error the user should see (a broken product's own, or QueryError)."""
        text = str(exc)
        for product, message in self.broken.items():
            if message in text:
                return type(self._broken_errors[product])(message)
        hint = ""
        if "does not exist" in text and self.missing:
            hint = (f" Products without a published version yet: {', '.join(self.missing)} "
                    "(run `mesh demo` or publish them).")
        return QueryError(f"Query failed: {text.splitlines()[0] if text else type(exc).__name__}{hint}")

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> MeshSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
