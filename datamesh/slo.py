"""Query-latency service levels: two representative probes per product, timed against the contract.

A contract's ``queryLatency`` (``slaProperties``, in ``s`` or ``ms``) is the
p95 target of **each** probe, over the product's latest version:

* ``scan``: one aggregate that reads every column (``count(*)``, then per
  column ``count``, ``min`` and ``max``; a boolean's count of true values),
  the shape of a dashboard or a profile;
* ``lookup``: ``SELECT *`` of one row by its primary key (every key column
  when the key is composite). The key value is picked before timing: the key
  of the version's middle row in file order (not the median in key order:
  sorting every key took 14 s and 3.8 GB at 67 M rows), read from that row's
  row group alone (the middle keyed row of a scan if its key has a null), so
  with more than two rows it is neither the version's first row nor its last.
  A product without a ``primaryKey``, or without rows, has no lookup.

Each probe runs once to warm up (extensions, metadata and file caches), then
``runs`` times (default 7), or fewer under a time ``budget`` (the Dagster
check and ``mesh slo`` without ``--runs`` give 2 s): once a probe has taken
the budget, warm-up included, and has at least :data:`MIN_RUNS` (3) timed
runs, it stops if a run already missed the target (the p95 of fewer than 20
runs is the slowest, so more runs cannot undo a miss) or if every run took at
most half the target. The second is a judgement, not a certainty: a later run
could have taken twice as long, and a probe at half its target is the one
whose remaining runs are least likely to matter. Under a budget, a probe whose
first :data:`MIN_RUNS` timed runs each took at most a tenth of its target
stops there too, whatever its time (the same judgement, with a margin of ten:
at 50,000 customers every demo probe is that far inside its target, and the
runs it no longer makes were half the checks' time). A product whose scan takes
seconds then costs a few scans, not eight. A probe near its target still gets
every run unless its runs take seconds: once it has taken :data:`CAP_FACTOR`
(10) budgets, warm-up included, it stops as soon as it has :data:`MIN_RUNS` timed
runs, settled or not (its verdict then
rests on fewer runs; each result says how many). Any probe asked for 20 runs or
more (or timed with ``mesh slo --runs N``) gets every run. :func:`time.perf_counter` is read around the query
only (sending it through the engine and fetching every row), never around the
session set-up or the key pick. DuckDB runs it in a :class:`MeshSession` (what
``mesh query`` and Python readers use); Trino, when a :class:`TrinoClient` is
given, over the same snapshot (its ``v<N>`` tag), each query a new HTTP
request, as an analyst's would be.

Percentiles are **nearest-rank**: the p-th percentile of n samples is the
``ceil(p / 100 * n)``-th smallest. With fewer than 20 runs the p95 is the
slowest run (with 7 runs, p50 is the 4th of 7), so a target is met only when
every timed run met it: deliberately strict, and why a missed target is a
warning by default. Each result says how many runs it had.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import TYPE_CHECKING, Any

from datamesh.contracts import ColumnType, Contract
from datamesh.errors import BrokenProductError, TrinoError, VersionNotFoundError
from datamesh.names import quote_ident
from datamesh.parity import profile_sql

if TYPE_CHECKING:
    from datamesh.catalog import Catalog, Manifest
    from datamesh.duckdb_engine import MeshSession
    from datamesh.trino import TrinoClient

#: Timed runs of each probe (after one warm-up run).
DEFAULT_RUNS = 7
#: The fewest timed runs of a probe that ran out of its time budget.
MIN_RUNS = 3
#: Seconds a probe may take (warm-up included) before it stops at MIN_RUNS: the Dagster check's and `mesh slo`'s.
DEFAULT_BUDGET_S = 2.0
#: Under a budget, a probe whose every timed run took at most target / FAR_INSIDE stops at MIN_RUNS at once.
FAR_INSIDE = 10
#: Under a budget, a probe that has taken CAP_FACTOR times it (warm-up included) stops once it has MIN_RUNS timed runs.
CAP_FACTOR = 10


class Engine(str, Enum):
    DUCKDB = "duckdb"
    TRINO = "trino"


class Probe(str, Enum):
    SCAN = "scan"
    LOOKUP = "lookup"


class Verdict(str, Enum):
    MET = "met"
    MISSED = "missed"
    NO_TARGET = "no target"


def percentile(samples: Iterable[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile (0 < p <= 100): the ``ceil(p / 100 * n)``-th smallest sample."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("a percentile needs at least one sample")
    if not 0 < p <= 100:
        raise ValueError(f"a percentile is above 0 and at most 100, got {p!r}")
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


@dataclass(frozen=True)
class LatencyResult:
    """The timings of one probe of one product version in one engine, against the contract's target."""

    product: str
    version: int
    engine: Engine
    probe: Probe
    target_ms: float | None
    samples_ms: tuple[float, ...]
    #: Rows the probe saw: the product's row count (scan), the rows the key matched (lookup).
    rows: int

    @property
    def runs(self) -> int:
        return len(self.samples_ms)

    @property
    def p50_ms(self) -> float:
        return percentile(self.samples_ms, 50)

    @property
    def p95_ms(self) -> float:
        return percentile(self.samples_ms, 95)

    @property
    def verdict(self) -> Verdict:
        if self.target_ms is None:
            return Verdict.NO_TARGET
        return Verdict.MET if self.p95_ms <= self.target_ms else Verdict.MISSED


def scan_sql(contract: Contract, relation: str) -> str:
    """One aggregate row that reads every column (portable: DuckDB and Trino)."""
    exprs: list[tuple[str, str]] = [("row_count", "count(*)")]
    for col in contract.columns:
        c = quote_ident(col.name)
        if col.type is ColumnType.BOOLEAN:
            exprs += [(f"{col.name}.count", f"count({c})"), (f"{col.name}.true", f"sum(case when {c} then 1 else 0 end)")]
        else:
            exprs += [(f"{col.name}.count", f"count({c})"), (f"{col.name}.min", f"min({c})"), (f"{col.name}.max", f"max({c})")]
    return profile_sql(exprs, relation)


def lookup_sql(contract: Contract, relation: str) -> str:
    """Every column of the rows whose primary key equals the bound parameters (one ``?`` per key column)."""
    if not contract.primary_key:
        raise ValueError(f"Product '{contract.id}' has no primaryKey: it has no lookup probe.")
    where = " AND ".join(f"{quote_ident(k)} = ?" for k in contract.primary_key)
    return f"SELECT * FROM {relation} WHERE {where}"


def pick_key(session: MeshSession, contract: Contract, relation: str) -> tuple[Any, ...] | None:
    """The primary key of the version's middle row in file order, or None if the product has no key or no
    keyed row.

    The middle row is found from the version's record (each file's rows) and its file's footer (each row
    group's rows), and only that row group's key columns are read (:func:`_middle_row_key`): at 67 M rows a
    scan to the middle took 2.5 s of every check. When that row's key has a null, or the files cannot be read
    so, it is the middle keyed row of a streaming scan (no sort of every key)."""
    if not contract.primary_key:
        return None
    manifest = session.manifests.get(contract.id)
    if manifest is not None:
        found = _middle_row_key(session.catalog, contract, manifest)
        if found is not None:
            return found
    keys = ", ".join(quote_ident(k) for k in contract.primary_key)
    keyed = " AND ".join(f"{quote_ident(k)} IS NOT NULL" for k in contract.primary_key)
    row = session.sql(f"SELECT count(*) FROM {relation} WHERE {keyed}").fetchone()
    count = int(row[0]) if row else 0
    if count == 0:
        return None
    found = session.sql(f"SELECT {keys} FROM {relation} WHERE {keyed} LIMIT 1 OFFSET ?", [count // 2]).fetchone()
    return tuple(found) if found else None


def _middle_row_key(catalog: Catalog, contract: Contract, manifest: Manifest) -> tuple[Any, ...] | None:
    """The key of row ``rows // 2`` of the version's files in their recorded order, reading one row group's
    key columns; None if the version has no rows, that key has a null, or the files do not hold the rows
    their record says (the caller then scans: a product broken so raises its own error there)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    in_file = _position([entry.rows for entry in manifest.files], sum(entry.rows for entry in manifest.files) // 2)
    if in_file is None:
        return None
    file, index = in_file
    keys = list(contract.primary_key)
    try:
        with catalog.lake.fs.open_input_file(catalog.lake.path(manifest.files[file].path)) as f:
            parquet = pq.ParquetFile(f)
            meta = parquet.metadata
            in_group = _position([meta.row_group(g).num_rows for g in range(meta.num_row_groups)], index)
            if in_group is None:
                return None
            group, offset = in_group
            row = parquet.read_row_group(group, columns=keys).slice(offset, 1)
            values = tuple(row.column(k)[0].as_py() for k in keys)
    except (pa.ArrowException, OSError, KeyError):
        return None
    return None if any(v is None for v in values) else values


def _position(sizes: Sequence[int], index: int) -> tuple[int, int] | None:
    """(which part, offset in it) of item ``index`` of parts of these sizes laid end to end; None past the end."""
    for part, size in enumerate(sizes):
        if index < size:
            return part, index
        index -= size
    return None


def _timed(run: Callable[[], list[tuple[Any, ...]]], runs: int, warmup: int, budget_s: float | None = None,
           target_ms: float | None = None) -> tuple[tuple[float, ...], list[tuple[Any, ...]]]:
    """Timed runs of ``run`` after ``warmup`` untimed ones. With a budget it stops early, after at
    least ``min(MIN_RUNS, runs)`` timed runs, once the probe (warm-up included) has taken ``budget_s``
    and its verdict against ``target_ms`` is settled (see the module; no target: settled) or has taken
    ``CAP_FACTOR`` budgets whatever its verdict (:func:`_spent`), or at once when
    every run was far inside the target (:func:`_far_inside`). ``runs`` of 20 or
    more are all run: their p95 is no longer the slowest run, so one slow run does not settle a miss."""
    rows: list[tuple[Any, ...]] = []
    began = time.perf_counter()
    for _ in range(warmup):
        rows = run()
    samples: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        rows = run()
        samples.append((time.perf_counter() - started) * 1000.0)
        if budget_s is not None and runs < 20 and len(samples) >= min(MIN_RUNS, runs) and (
                _far_inside(samples, target_ms) or _spent(time.perf_counter() - began, budget_s, samples, target_ms)):
            break
    return tuple(samples), rows


def _spent(elapsed_s: float, budget_s: float, samples: Sequence[float], target_ms: float | None) -> bool:
    """The budget is spent and the verdict settled (:func:`_settled`), or ``CAP_FACTOR`` budgets are spent: a
    probe near its target whose every run takes seconds (usage_events' scan at 1,000,000 customers: 4.9 s of
    its 5 s target) would otherwise run eight full scans per check, 39 s; it stops after 3 or 4."""
    return elapsed_s >= budget_s * CAP_FACTOR or (elapsed_s >= budget_s and _settled(samples, target_ms))


def _far_inside(samples: Sequence[float], target_ms: float | None) -> bool:
    """Every run took at most a tenth of the target: a later run would have to be ten times slower than each
    before it to miss (a judgement, as :func:`_settled`'s half is; it saves most of the probes' time)."""
    return target_ms is not None and max(samples) <= target_ms / FAR_INSIDE


def _settled(samples: Sequence[float], target_ms: float | None) -> bool:
    """Stop: a run missed (with under 20 runs the p95 is the slowest: a miss is final), or all took at most
    half the target (a judgement: the runs left are the least likely to matter); no target: always."""
    slowest = max(samples)
    return target_ms is None or slowest > target_ms or slowest <= target_ms / 2


def measure(session: MeshSession, contract: Contract, *, trino: TrinoClient | None = None,
            engines: Sequence[Engine] | None = None, runs: int = DEFAULT_RUNS, warmup: int = 1,
            budget_s: float | None = None) -> list[LatencyResult]:
    """Time the scan and lookup probes of a product's latest version; one result per (engine, probe).

    ``engines`` defaults to DuckDB, plus Trino when ``trino`` is given. Each probe
    runs ``runs`` times after ``warmup``; with ``budget_s``, a probe whose verdict is
    settled stops after :data:`MIN_RUNS` timed runs once it has taken that long, and any probe once it has
    taken :data:`CAP_FACTOR` budgets and has :data:`MIN_RUNS` timed runs (see the module). A product
    with no published version raises VersionNotFoundError; a broken one its own
    error (as any read of it does).
    """
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    if budget_s is not None and not budget_s > 0:
        raise ValueError(f"a time budget is a positive number of seconds, got {budget_s!r}")
    chosen = list(engines) if engines is not None else [Engine.DUCKDB, *([Engine.TRINO] if trino else [])]
    if Engine.TRINO in chosen and trino is None:
        raise TrinoError("Timing Trino needs a Trino: set MESH_TRINO_HOST and MESH_TRINO_PORT "
                         "(`mesh stack up` starts one).")
    if contract.id in session.missing:
        raise VersionNotFoundError(f"Product '{contract.id}' has no published version yet, so there is nothing to "
                                   "time. Publish it (or run `mesh demo`).")
    relation = f"{quote_ident(contract.domain)}.{quote_ident(contract.id)}"
    if contract.id not in session.views:  # broken in this session: reading it raises the product's own error
        session.sql(f"SELECT count(*) FROM {relation}").fetchall()
        raise BrokenProductError(session.broken.get(contract.id, f"Product '{contract.id}' cannot be read."))
    version = session.views[contract.id]
    key = pick_key(session, contract, relation)
    results: list[LatencyResult] = []
    for engine in chosen:
        run, rel = _runner(engine, session, trino, contract, version)
        probes: list[tuple[Probe, str, list[Any] | None]] = [(Probe.SCAN, scan_sql(contract, rel), None)]
        if key is not None:
            probes.append((Probe.LOOKUP, lookup_sql(contract, rel), list(key)))
        for probe, sql, params in probes:
            samples, rows = _timed(partial(run, sql, params), runs, warmup, budget_s, contract.query_latency_ms)
            seen = int(rows[0][0]) if probe is Probe.SCAN and rows else len(rows)
            results.append(LatencyResult(contract.id, version, engine, probe, contract.query_latency_ms, samples, seen))
    return results


_Run = Callable[[str, list[Any] | None], list[tuple[Any, ...]]]


def _runner(engine: Engine, session: MeshSession, trino: TrinoClient | None, contract: Contract,
            version: int) -> tuple[_Run, str]:
    """How one engine runs a probe (every row fetched), and the product's relation in that engine."""
    if engine is Engine.DUCKDB:
        def duckdb_rows(sql: str, params: list[Any] | None) -> list[tuple[Any, ...]]:
            return session.sql(sql, params).fetchall()

        return duckdb_rows, f"{quote_ident(contract.domain)}.{quote_ident(contract.id)}"
    from datamesh.trino import version_relation

    assert trino is not None
    client = trino

    def trino_rows(sql: str, params: list[Any] | None) -> list[tuple[Any, ...]]:
        return client.query(sql, params)[1]

    return trino_rows, version_relation(client.catalog, contract, version)


def measure_all(session: MeshSession, contracts: Iterable[Contract], *, trino: TrinoClient | None = None,
                engines: Sequence[Engine] | None = None, runs: int = DEFAULT_RUNS,
                warmup: int = 1, budget_s: float | None = None) -> tuple[list[LatencyResult], list[str]]:
    """:func:`measure` of each product that has a published version; returns (results, ids of those without one)."""
    results: list[LatencyResult] = []
    skipped: list[str] = []
    for contract in contracts:
        if contract.id in session.missing:
            skipped.append(contract.id)
            continue
        results += measure(session, contract, trino=trino, engines=engines, runs=runs, warmup=warmup,
                           budget_s=budget_s)
    return results, skipped


def markdown_table(results: Sequence[LatencyResult]) -> str:
    """The results as a Markdown table (the Dagster check's metadata)."""
    lines = ["| engine | probe | target ms | p50 ms | p95 ms | runs | verdict |", "|---|---|---:|---:|---:|---:|---|"]
    for r in results:
        target = "" if r.target_ms is None else f"{r.target_ms:g}"
        lines.append(f"| {r.engine.value} | {r.probe.value} | {target} | {r.p50_ms:.1f} | {r.p95_ms:.1f} | "
                     f"{r.runs} | {r.verdict.value} |")
    return "\n".join(lines)
