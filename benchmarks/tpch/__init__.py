"""TPC-H parity: the eight TPC-H tables as products, the 22 queries in DuckDB and in Trino, the official answers.

* :func:`generate` runs DuckDB's ``dbgen`` (the ``duckdb-extension-tpch`` wheel, never downloaded)
  in an in-memory database and returns the eight tables as Arrow, in the contracts' schemas;
* :func:`contracts` loads ``contracts/tpch/*.yaml`` (optionally under another domain, so that
  runs sharing one Iceberg catalog do not share table identifiers); :func:`tpch_mesh` is a
  :class:`~datamesh.platform.Mesh` whose registry is exactly those eight contracts;
* :func:`publish_all` publishes them through the platform (staging, contract checks, one
  Iceberg commit each), :func:`drop_all` drops their Iceberg tables again;
* :func:`queries` are the 22 queries of ``tpch_queries()``; :func:`trino_sql` is the text Trino
  runs (see :data:`TRINO_ADAPTATIONS`); :func:`answers` are ``tpch_answers()`` for the scale
  factors the extension ships (:func:`answer_scale_factors`: 0.01, 0.1 and 1);
* :func:`run_duckdb` runs a query through a :class:`~datamesh.duckdb_engine.MeshSession`
  (views named by product id: the queries' unqualified ``lineitem`` resolves),
  :func:`run_trino` through a :class:`TpchTrino` client whose default schema is the domain;
* :func:`compare` checks a result against an official answer and names the first difference.

Comparison rules (stricter than TPC-H's 2.1.3.5, which allows $100 on sums and 1% on ratios
and averages): the same number of rows and columns, rows in order (every query has an
ORDER BY or returns one row); numbers equal within ``max(0.01, min(1e-6 x |expected|, 100))``
(0.01, or one part in a million but never more than TPC-H's $100 for sums), integers and counts
exactly; strings equal after trimming; dates as ISO ``YYYY-MM-DD``. Column names
must match, except for an unnamed expression (query 18's ``sum(l_quantity)``, which the answer
calls ``sum``, Trino ``_col5``). An empty answer line is a row of one NULL (query 17 at SF 0.01).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import yaml

from datamesh.contracts import ContractRegistry, parse_contract
from datamesh.duckdb_engine import extension_path
from datamesh.names import sql_string
from datamesh.trino import TrinoClient
from datamesh.types import ColumnType

if TYPE_CHECKING:
    from datamesh.catalog import Manifest
    from datamesh.duckdb_engine import MeshSession
    from datamesh.platform import Mesh
    from datamesh.settings import Settings

#: The eight tables, small to large (the order :func:`publish_all` publishes them in).
TABLES: tuple[str, ...] = ("region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem")
DOMAIN = "tpch"
CONTRACTS_DIR = Path(__file__).parent / "contracts"
QUERY_NUMBERS: tuple[int, ...] = tuple(range(1, 23))

#: Numbers are equal within max(ABS_TOLERANCE, min(REL_TOLERANCE x |expected|, MAX_TOLERANCE)).
ABS_TOLERANCE = Decimal("0.01")
REL_TOLERANCE = Decimal("1e-6")
MAX_TOLERANCE = Decimal(100)  # TPC-H 2.1.3.5 (d): sums within $100

#: What Trino runs differently from DuckDB's query text, per query: (DuckDB's text, Trino's text, why).
#: Besides these, :func:`trino_sql` drops every query's final semicolon (Trino refuses it).
TRINO_ADAPTATIONS: dict[int, tuple[str, str, str]] = {
    15: ("GROUP BY\n        supplier_no\n", "GROUP BY\n        l_suppkey\n",
         "Trino cannot GROUP BY an output alias (COLUMN_NOT_FOUND: 'supplier_no'); group by the column it names"),
}


# -- DuckDB's tpch extension ------------------------------------------------------------------


def tpch_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the tpch extension loaded from its wheel (no INSTALL, no autoload)."""
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                             "autoload_known_extensions": False})
    con.execute(f"LOAD {sql_string(str(extension_path('tpch')))}")
    return con


@cache
def _extension_data() -> tuple[dict[int, str], dict[float, dict[int, str]]]:
    con = tpch_connection()
    try:
        texts = {int(n): str(q) for n, q in con.execute("SELECT query_nr, query FROM tpch_queries()").fetchall()}
        shipped: dict[float, dict[int, str]] = {}
        for sf, n, answer in con.execute("SELECT scale_factor, query_nr, answer FROM tpch_answers()").fetchall():
            shipped.setdefault(float(sf), {})[int(n)] = str(answer)
    finally:
        con.close()
    return texts, shipped


def queries() -> dict[int, str]:
    """The 22 TPC-H queries as DuckDB's extension writes them (query number -> SQL)."""
    texts, _ = _extension_data()
    return dict(sorted(texts.items()))


def answer_scale_factors() -> list[float]:
    """The scale factors the extension ships official answers for, smallest first."""
    _, shipped = _extension_data()
    return sorted(shipped)


def answers(sf: float) -> dict[int, str]:
    """The official answers at scale factor ``sf`` (query number -> pipe-separated text with a header).

    Raises KeyError for a scale factor without shipped answers.
    """
    _, shipped = _extension_data()
    for known, by_query in shipped.items():
        if math.isclose(known, sf, rel_tol=1e-9):
            return dict(sorted(by_query.items()))
    raise KeyError(f"the tpch extension ships answers for scale factors {answer_scale_factors()}, not {sf}")


def has_answers(sf: float) -> bool:
    return any(math.isclose(known, sf, rel_tol=1e-9) for known in answer_scale_factors())


# -- contracts and data -----------------------------------------------------------------------


def contracts(domain: str = DOMAIN) -> ContractRegistry:
    """The eight TPC-H contracts, with ``domain`` in place of ``tpch`` (a run's own Iceberg namespace)."""
    loaded = []
    for table in TABLES:
        path = CONTRACTS_DIR / DOMAIN / f"{table}.yaml"
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw["domain"] = domain
        loaded.append(parse_contract(raw, path))
    return ContractRegistry(loaded)


def tpch_mesh(settings: Settings, domain: str = DOMAIN) -> Mesh:
    """A mesh over ``settings``' lake whose products are exactly the eight TPC-H tables in ``domain``."""
    from datamesh.platform import Mesh

    return Mesh.from_settings(settings, contracts=contracts(domain))


def generate(sf: float, registry: ContractRegistry | None = None) -> dict[str, pa.Table]:
    """The eight tables at scale factor ``sf`` from ``CALL dbgen(sf => ...)``, in the contracts' Arrow schemas.

    Raises ValueError if dbgen's columns or types (``DESCRIBE``, mapped with
    :meth:`ColumnType.from_duckdb`) are not exactly the contract's.
    """
    registry = registry or contracts()
    con = tpch_connection()
    try:
        con.execute(f"CALL dbgen(sf => {float(sf)!r})")
        out: dict[str, pa.Table] = {}
        for table in TABLES:
            contract = registry.get(table)
            described = [(str(name), ColumnType.from_duckdb(str(kind)))
                         for name, kind, *_ in con.execute(f"DESCRIBE {table}").fetchall()]
            declared = [(c.name, c.type) for c in contract.columns]
            if described != declared:
                raise ValueError(f"dbgen's {table} is {described}, its contract {contract.source_path} says {declared}")
            out[table] = con.table(table).to_arrow_table().cast(contract.arrow_schema())
    finally:
        con.close()
    return out


def publish_all(mesh: Mesh, tables: dict[str, pa.Table],
                progress: Callable[[str], None] | None = None) -> dict[str, Manifest]:
    """Publish every table through the platform (one new version each); returns the manifests."""
    manifests: dict[str, Manifest] = {}
    for table in TABLES:
        if table not in tables:
            continue
        t0 = time.perf_counter()
        manifests[table] = mesh.publish(table, tables[table])
        if progress:
            progress(f"published {table} v{manifests[table].version} ({tables[table].num_rows:,} rows) "
                     f"in {time.perf_counter() - t0:.1f}s")
    return manifests


def drop_all(mesh: Mesh) -> None:
    """Drop the TPC-H products' Iceberg tables and their namespace from the catalog (the files stay)."""
    from pyiceberg.exceptions import NamespaceNotEmptyError, NoSuchNamespaceError, NoSuchTableError

    iceberg = mesh.catalog.tables.catalog
    domains = set()
    for contract in mesh.contracts:
        domains.add(contract.domain)
        try:
            iceberg.drop_table((contract.domain, contract.id))
        except NoSuchTableError:
            pass
    for domain in domains:
        try:
            iceberg.drop_namespace(domain)
        except (NoSuchNamespaceError, NamespaceNotEmptyError):
            pass


# -- running -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """The rows of one query run, with the wall time of running it and fetching every row."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    seconds: float


def duckdb_sql(number: int) -> str:
    return queries()[number]


def trino_sql(number: int) -> str:
    """Query ``number`` as Trino runs it: DuckDB's text without the final ``;`` (Trino refuses it),
    plus the adaptations of :data:`TRINO_ADAPTATIONS`."""
    sql = queries()[number]
    if number in TRINO_ADAPTATIONS:
        duck, trino, _ = TRINO_ADAPTATIONS[number]
        if sql.count(duck) != 1:
            raise ValueError(f"query {number}'s text changed: {duck!r} is not in it exactly once")
        sql = sql.replace(duck, trino)
    return sql.strip().rstrip(";").rstrip()


def run_duckdb(session: MeshSession, sql: str) -> Result:
    t0 = time.perf_counter()
    result = session.sql(sql)
    rows = result.fetchall()
    return Result(result.columns, rows, time.perf_counter() - t0)


class TpchTrino(TrinoClient):
    """A Trino client whose default schema is the TPC-H domain (the queries name tables unqualified)."""

    @classmethod
    def for_mesh(cls, mesh: Mesh) -> TrinoClient:
        settings = mesh.settings
        domains = mesh.contracts.domains
        if not settings.trino_host:
            raise ValueError("no Trino configured (MESH_TRINO_HOST)")
        if len(domains) != 1:
            raise ValueError(f"a TPC-H mesh has one domain, not {domains}")
        return cls.from_settings(settings, schema=domains[0], request_timeout=600.0)


def run_trino(client: TrinoClient, sql: str) -> Result:
    t0 = time.perf_counter()
    columns, rows = client.query(sql)
    return Result(columns, rows, time.perf_counter() - t0)


# -- comparing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """``same``, or where the result first differs from the official answer."""

    same: bool
    detail: str = ""
    row: int | None = None  # 1-based, as in the answer's data lines
    column: str | None = None
    expected: str | None = None
    actual: Any = None

    def __str__(self) -> str:
        return "same" if self.same else f"different: {self.detail}"


def parse_answer(text: str) -> tuple[list[str], list[list[str]]]:
    """An official answer as (header, rows of field texts): pipe-separated, one header line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline; an empty line before it is a row of one NULL (query 17 at SF 0.01)
    if not lines or not lines[0]:
        raise ValueError("an empty answer (no header line)")
    header = lines[0].split("|")
    rows = [line.split("|") for line in lines[1:]]
    for i, row in enumerate(rows, start=1):
        if len(row) != len(header):
            raise ValueError(f"answer row {i} has {len(row)} fields, the header {len(header)}")
    return header, rows


def _number(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def tolerance(expected: Decimal) -> Decimal:
    """How far a number may be from the answer's ``expected``."""
    return max(ABS_TOLERANCE, min(REL_TOLERANCE * abs(expected), MAX_TOLERANCE))


def value_matches(expected: str, actual: Any) -> bool:
    """One field: ``expected`` as the answer writes it, ``actual`` as the engine's driver returns it."""
    text = expected.strip()
    if actual is None:
        return text in ("", "NULL")
    if isinstance(actual, bool):
        return text.lower() == str(actual).lower()
    if isinstance(actual, int | float | Decimal):
        want = _number(text)
        if want is None:
            return False
        if isinstance(actual, int) and want == want.to_integral_value():
            return Decimal(actual) == want  # keys and counts: exactly
        got = Decimal(str(actual)) if isinstance(actual, float) else Decimal(actual)
        return abs(got - want) <= tolerance(want)
    if isinstance(actual, datetime):
        return text == actual.isoformat(sep=" ")
    if isinstance(actual, date):
        return text == actual.isoformat()
    return text == str(actual).strip()


def _same_name(expected: str, actual: str) -> bool:
    """The answer's column name, or an unnamed expression's: Trino's ``_colN``, DuckDB's ``sum(l_quantity)``
    where the answer writes ``sum`` (query 18)."""
    want, got = expected.strip().lower(), actual.strip().lower()
    return want == got or re.fullmatch(r"_col\d+", got) is not None or got.startswith(want + "(")


def compare(answer: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Comparison:
    """``rows`` (with ``columns``) against the official ``answer`` text: the first difference, or same."""
    header, expected_rows = parse_answer(answer)
    actual_rows = [tuple(r) for r in rows]
    if len(columns) != len(header):
        return Comparison(False, f"{len(columns)} columns {list(columns)}, the answer has {len(header)} {header}")
    for want, got in zip(header, columns, strict=True):
        if not _same_name(want, got):
            return Comparison(False, f"column {got!r} where the answer has {want!r}", column=got)
    for i, (want_row, got_row) in enumerate(zip(expected_rows, actual_rows, strict=False), start=1):
        for name, want, got in zip(header, want_row, got_row, strict=True):
            if not value_matches(want, got):
                return Comparison(False, f"row {i}, column {name}: expected {want.strip()!r}, got {got!r}",
                                  row=i, column=name, expected=want, actual=got)
    if len(actual_rows) != len(expected_rows):
        n = min(len(actual_rows), len(expected_rows)) + 1
        return Comparison(False, f"{len(actual_rows)} rows, the answer has {len(expected_rows)} "
                                 f"(first row {n} only on one side)", row=n)
    return Comparison(True)
