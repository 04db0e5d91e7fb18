"""TPC-H parity on the native stack: the eight tables published as products on S3, the 22 queries in
DuckDB (MeshSession) and in Trino (``lake.<domain>``), every result equal to the official answer.

The scale factor is the smallest the tpch extension ships answers for (0.01). The products live in a
domain of their own (``tpch_<hex>``, from the contracts in benchmarks/tpch/contracts) under a lake
prefix of their own, so nothing clashes with another run in the stack's shared Iceberg catalog; the
tables are dropped from the catalog at the end.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import benchmarks.tpch as tpch
import nativestack
from datamesh.duckdb_engine import MeshSession
from datamesh.platform import Mesh
from datamesh.types import ColumnType
from nativestack import StackEndpoints
from tests.integration.test_lake_s3 import s3_settings

pytestmark = pytest.mark.integration

SF = tpch.answer_scale_factors()[0]
ENGINES = ("duckdb", "trino")


@dataclass
class TpchRun:
    mesh: Mesh
    session: MeshSession
    trino: tpch.TpchTrino
    domain: str
    rows: dict[str, int]
    publish_s: float
    seconds: dict[tuple[int, str], float] = field(default_factory=dict)


@pytest.fixture(scope="module")
def run(native_stack: StackEndpoints, native_stack_home: Path, request: pytest.FixtureRequest) -> Iterator[TpchRun]:
    ep = native_stack
    domain = f"tpch_{uuid.uuid4().hex[:8]}"
    nativestack.grant_lake_root(native_stack_home, f"tests/{domain}")
    settings = s3_settings(ep, tpch.CONTRACTS_DIR, f"tests/{domain}")
    mesh = tpch.tpch_mesh(settings, domain)
    tables = tpch.generate(SF, mesh.contracts)
    t0 = time.perf_counter()
    try:
        tpch.publish_all(mesh, tables)
        publish_s = time.perf_counter() - t0
        session = mesh.session()
        try:
            state = TpchRun(mesh, session, tpch.TpchTrino.for_mesh(mesh), domain,
                            {t: tables[t].num_rows for t in tpch.TABLES}, publish_s)
            yield state
        finally:
            session.close()
        _report_timings(request, state)
    finally:
        tpch.drop_all(mesh)


def _report_timings(request: pytest.FixtureRequest, state: TpchRun) -> None:
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        _write_timings(reporter, state)


def _write_timings(reporter: Any, state: TpchRun) -> None:
    reporter.write_line("")
    reporter.write_line(f"TPC-H SF {SF}: published 8 products in {state.publish_s:.1f}s; seconds per query "
                        "(first run, S3 lake):")
    reporter.write_line(f"{'query':>5} {'duckdb':>8} {'trino':>8}")
    for number in tpch.QUERY_NUMBERS:
        cells = [state.seconds.get((number, engine)) for engine in ENGINES]
        shown = [f"{c:8.3f}" if c is not None else f"{'-':>8}" for c in cells]
        reporter.write_line(f"{'Q' + str(number):>5} {shown[0]} {shown[1]}")
    totals = [sum(s for (_, e), s in state.seconds.items() if e == engine) for engine in ENGINES]
    reporter.write_line(f"{'total':>5} {totals[0]:8.3f} {totals[1]:8.3f}")


def test_products_published_with_the_contracts_types(run: TpchRun) -> None:
    assert run.session.views == dict.fromkeys(tpch.TABLES, 1)
    assert not run.session.missing and not run.session.broken
    assert run.rows["region"] == 5 and run.rows["nation"] == 25 and run.rows["lineitem"] == 60_175
    for table in tpch.TABLES:
        contract = run.mesh.contract(table)
        manifest = run.mesh.catalog.manifest(table)
        assert manifest.row_count == run.rows[table]
        assert len(manifest.quality) == len(contract.rules()) >= 3
        assert all(r["passed"] for r in manifest.quality), [r for r in manifest.quality if not r["passed"]]
        assert run.session.sql(f"select count(*) from {run.domain}.{table}").fetchone() == (run.rows[table],)
        _, described = run.trino.query(f"describe {table}")
        assert [(row[0], ColumnType.from_trino(row[1])) for row in described] == \
            [(c.name, c.type) for c in contract.columns], table


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("number", tpch.QUERY_NUMBERS, ids=[f"q{n:02d}" for n in tpch.QUERY_NUMBERS])
def test_query_equals_the_official_answer(run: TpchRun, number: int, engine: str) -> None:
    if engine == "duckdb":
        result = tpch.run_duckdb(run.session, tpch.duckdb_sql(number))
    else:
        result = tpch.run_trino(run.trino, tpch.trino_sql(number))
    run.seconds[(number, engine)] = result.seconds
    outcome = tpch.compare(tpch.answers(SF)[number], result.columns, result.rows)
    assert outcome.same, f"Q{number} in {engine}: {outcome.detail}"


def test_compare_names_the_first_difference() -> None:
    answer = tpch.answers(SF)[1]
    header, rows = tpch.parse_answer(answer)
    typed = [tuple(Decimal(v) if i >= 2 else v for i, v in enumerate(row)) for row in rows]
    assert tpch.compare(answer, header, typed).same
    changed = list(typed)
    changed[2] = (*changed[2][:6], changed[2][6] + Decimal("0.02"), *changed[2][7:])  # avg_qty: 0.02 is too far
    outcome = tpch.compare(answer, header, changed)
    assert not outcome.same and (outcome.row, outcome.column) == (3, "avg_qty")
    changed[2] = (*typed[2][:3], typed[2][3] + Decimal("0.02"), *typed[2][4:])  # sum_base_price ~1e9: within 1e-6
    assert tpch.compare(answer, header, changed).same
    changed[2] = (*typed[2][:3], typed[2][3] + Decimal("100.01"), *typed[2][4:])  # never more than TPC-H's $100
    assert tpch.compare(answer, header, changed).column == "sum_base_price"
    assert tpch.compare(answer, header, typed[:-1]).detail.startswith("3 rows, the answer has 4")
    assert not tpch.compare(answer, header[:-1] + ["n"], typed).same
    q17 = tpch.answers(SF)[17]
    assert tpch.compare(q17, ["avg_yearly"], [(None,)]).same  # SF 0.01: the sum over no rows is NULL
