"""Query-latency probes (datamesh/slo.py) over a real DuckDB session: percentiles, probes, verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamesh.errors import TrinoError, VersionNotFoundError
from datamesh.slo import (
    Engine,
    LatencyResult,
    Probe,
    Verdict,
    lookup_sql,
    markdown_table,
    measure,
    measure_all,
    percentile,
    pick_key,
    scan_sql,
)
from tests.conftest import widgets_table
from tests.latency import HUGE_TARGET, orders_table, write_latency_contracts


@pytest.fixture()
def latency_mesh(tmp_path: Path):  # noqa: ANN201
    """widgets (tiny target, 11 rows) and widget_orders (huge target, composite key, 90 rows), published."""
    from datamesh.platform import Mesh
    from datamesh.settings import Settings

    root = write_latency_contracts(tmp_path / "contracts")
    mesh = Mesh.from_settings(Settings(lake_url=str(tmp_path / "lake"), contracts_dir=root))
    mesh.publish("widgets", widgets_table(11, price=3.0))
    mesh.publish("widget_orders", orders_table())
    return mesh


# -- percentiles ------------------------------------------------------------------------------


@pytest.mark.parametrize(("samples", "p", "expected"), [
    ([7, 1, 6, 2, 5, 3, 4], 50, 4),        # rank ceil(3.5) = 4
    ([7, 1, 6, 2, 5, 3, 4], 95, 7),        # rank ceil(6.65) = 7: with fewer than 20 runs, the slowest
    ([7, 1, 6, 2, 5, 3, 4], 100, 7),
    ([7, 1, 6, 2, 5, 3, 4], 1, 1),         # rank ceil(0.07) = 1
    (list(range(1, 21)), 95, 19),          # rank 19 of 20
    (list(range(1, 101)), 95, 95),
    ([1, 2, 3, 4], 50, 2),                 # nearest rank, never interpolated (2.5)
    ([3.5], 50, 3.5),
    ([3.5], 95, 3.5),
])
def test_nearest_rank_percentile(samples: list[float], p: float, expected: float) -> None:
    assert percentile(samples, p) == expected


@pytest.mark.parametrize(("samples", "p", "message"), [
    ([], 50, "at least one sample"), ([1.0], 0, "above 0"), ([1.0], 101, "at most 100")])
def test_percentile_refuses_what_has_none(samples: list[float], p: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        percentile(samples, p)


@pytest.mark.parametrize(("target", "verdict"), [(None, Verdict.NO_TARGET), (7.0, Verdict.MET), (6.99, Verdict.MISSED)])
def test_verdict_compares_the_p95_with_the_target(target: float | None, verdict: Verdict) -> None:
    result = LatencyResult("widgets", 1, Engine.DUCKDB, Probe.SCAN, target, (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0), 11)
    assert (result.runs, result.p50_ms, result.p95_ms, result.verdict) == (7, 4.0, 7.0, verdict)


# -- the probes -------------------------------------------------------------------------------


def test_scan_probe_reads_every_column(latency_mesh) -> None:  # noqa: ANN001
    contract = latency_mesh.contract("widgets")
    sql = scan_sql(contract, "shop.widgets")
    with latency_mesh.session() as s:
        row = s.sql(sql).fetchone()
        plan = "\n".join(str(v) for r in s.sql("EXPLAIN " + sql).fetchall() for v in r)
    # count(*), then count/min/max of widget_id, color, price, made_at
    assert row[0] == 11
    assert row[1:4] == (11, 0, 10) and row[4:7] == (11, "red", "red") and row[7:10] == (11, 3.0, 3.0)
    assert row[10] == 11 and len(row) == 1 + 3 * len(contract.columns)
    for column in contract.column_names:
        assert column in plan, f"the scan's plan does not read {column}:\n{plan}"


def test_lookup_probe_finds_the_middle_key_of_a_composite_key(latency_mesh) -> None:  # noqa: ANN001
    contract = latency_mesh.contract("widget_orders")
    with latency_mesh.session() as s:
        key = pick_key(s, contract, "shop.widget_orders")
        rows = s.sql(lookup_sql(contract, "shop.widget_orders"), list(key)).fetchall()
    assert key == (15, 1)  # the 46th of 90 rows, written in (order_id, line_number) order
    assert rows == [(15, 1, 15 % 7)]
    assert lookup_sql(contract, "x") == 'SELECT * FROM x WHERE "order_id" = ? AND "line_number" = ?'


def test_measure_times_both_probes_and_finds_the_key(latency_mesh) -> None:  # noqa: ANN001
    with latency_mesh.session() as s:
        results = measure(s, latency_mesh.contract("widget_orders"), runs=3)
    assert [(r.engine, r.probe) for r in results] == [(Engine.DUCKDB, Probe.SCAN), (Engine.DUCKDB, Probe.LOOKUP)]
    scan, lookup = results
    assert (scan.rows, lookup.rows) == (90, 1)
    assert all(r.runs == 3 and len(r.samples_ms) == 3 and r.version == 1 for r in results)
    assert all(0 < r.p50_ms <= r.p95_ms == max(r.samples_ms) for r in results)


def test_verdicts_from_the_contracts_targets(latency_mesh) -> None:  # noqa: ANN001
    widgets = latency_mesh.contract("widgets")
    assert widgets.query_latency_ms == pytest.approx(0.000001)
    assert latency_mesh.contract("widget_orders").query_latency_ms == 1e9
    untargeted = widgets.model_copy(update={"sla_properties": ()})
    with latency_mesh.session() as s:
        tiny = measure(s, widgets, runs=2)
        huge = measure(s, latency_mesh.contract("widget_orders"), runs=2)
        none = measure(s, untargeted, runs=2)
    assert {r.verdict for r in tiny} == {Verdict.MISSED}
    assert {r.verdict for r in huge} == {Verdict.MET}
    assert {r.verdict for r in none} == {Verdict.NO_TARGET} and {r.target_ms for r in none} == {None}
    table = markdown_table(tiny + none)
    assert table.splitlines()[0].startswith("| engine | probe | target ms")
    assert "| duckdb | lookup | 1e-06 |" in table and "| no target |" in table


def test_a_product_without_a_primary_key_has_only_the_scan(latency_mesh) -> None:  # noqa: ANN001
    keyless = latency_mesh.contract("widget_orders").model_copy(update={"primary_key": ()})
    with latency_mesh.session() as s:
        assert pick_key(s, keyless, "shop.widget_orders") is None
        assert [r.probe for r in measure(s, keyless, runs=1)] == [Probe.SCAN]
    with pytest.raises(ValueError, match="no primaryKey"):
        lookup_sql(keyless, "x")


def test_unpublished_products_are_skipped_or_refused(tmp_path: Path) -> None:
    from datamesh.platform import Mesh
    from datamesh.settings import Settings

    root = write_latency_contracts(tmp_path / "contracts", widgets=HUGE_TARGET)
    mesh = Mesh.from_settings(Settings(lake_url=str(tmp_path / "lake"), contracts_dir=root))
    mesh.publish("widgets", widgets_table(4))
    with mesh.session() as s:
        results, skipped = measure_all(s, mesh.contracts, runs=1)
        assert skipped == ["widget_orders"] and {r.product for r in results} == {"widgets"}
        with pytest.raises(VersionNotFoundError, match="'widget_orders' has no published version"):
            measure(s, mesh.contract("widget_orders"))


def test_bad_arguments_are_refused(latency_mesh) -> None:  # noqa: ANN001
    with latency_mesh.session() as s:
        with pytest.raises(TrinoError, match="MESH_TRINO_HOST"):
            measure(s, latency_mesh.contract("widgets"), engines=[Engine.TRINO])
        with pytest.raises(ValueError, match="at least 1"):
            measure(s, latency_mesh.contract("widgets"), runs=0)
        with pytest.raises(ValueError, match="positive number of seconds"):
            measure(s, latency_mesh.contract("widgets"), budget_s=0)


# -- the time budget --------------------------------------------------------------------------


class FakeClock:
    """perf_counter for _timed: each run of the probe takes the next duration (seconds)."""

    def __init__(self, durations: list[float]) -> None:
        self.now, self.durations, self.calls = 0.0, list(durations), 0

    def perf_counter(self) -> float:
        return self.now

    def run(self) -> list[tuple[int]]:
        self.now += self.durations[min(self.calls, len(self.durations) - 1)]
        self.calls += 1
        return [(self.calls,)]


@pytest.mark.parametrize(("each_s", "target_ms", "budget_s", "runs", "expected"), [
    (1.0, None, None, 7, 7),         # no budget: every run
    (1.0, 5000.0, 2.0, 7, 3),        # slow, but every run within half the target: settled at 3
    (1.0, 500.0, 2.0, 7, 3),         # slow and missed: more runs cannot undo the miss
    (1.0, None, 2.0, 7, 3),          # slow, no target
    (1.0, 1500.0, 2.0, 7, 7),        # near its target (over half, within it): every run
    (5.0, 6000.0, 2.0, 7, 3),        # ... unless its runs take seconds: 10 budgets spent (1 warm-up + 3 = 20 s)
    (3.0, 5000.0, 2.0, 7, 6),        # ... the cap reached on the 6th run (1 warm-up + 6 = 21 s)
    (5.0, 6000.0, None, 7, 7),       # ... only under a budget
    (5.0, 6000.0, 2.0, 20, 20),      # ... and never for 20 runs or more
    (0.001, None, 2.0, 7, 7),        # fast, no target: the budget is never reached
    (0.06, 500.0, 2.0, 7, 7),        # fast but over a tenth of its target: the budget is never reached
    (0.04, 500.0, 2.0, 7, 3),        # every run within a tenth of its target: settled at 3, budget or not
    (0.04, 500.0, None, 7, 7),       # ... but only under a budget (`mesh slo --runs N` runs N)
    (0.04, 500.0, 2.0, 20, 20),      # ... and never for 20 runs or more
    (1.0, 5000.0, 2.0, 2, 2),        # fewer runs asked than MIN_RUNS
    (0.3, 2000.0, 2.0, 7, 6),        # the budget runs out on the 6th run (1 warm-up + 6 = 2.1 s)
    (1.0, 500.0, 2.0, 20, 20),       # 20 runs or more: the p95 is not the slowest run, every run is made
])
def test_a_slow_probe_with_a_settled_verdict_stops_at_the_budget(
        monkeypatch: pytest.MonkeyPatch, each_s: float, target_ms: float | None, budget_s: float | None, runs: int,
        expected: int) -> None:
    import datamesh.slo as slo

    clock = FakeClock([each_s])
    monkeypatch.setattr(slo.time, "perf_counter", clock.perf_counter)
    samples, rows = slo._timed(clock.run, runs, 1, budget_s, target_ms)
    assert len(samples) == expected and clock.calls == expected + 1
    assert samples == pytest.approx([each_s * 1000.0] * expected)
    assert rows == [(expected + 1,)]  # the rows of the last run


def test_a_miss_after_the_budget_stops_the_probe_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over half the target (not settled) for four runs, then one run misses it: the verdict is settled there."""
    import datamesh.slo as slo

    clock = FakeClock([0.8, 0.8, 0.8, 0.8, 0.8, 3.0, 0.8, 0.8])
    monkeypatch.setattr(slo.time, "perf_counter", clock.perf_counter)
    samples, _ = slo._timed(clock.run, 7, 1, 2.0, 1500.0)
    # 0.8 s is over half of 1.5 s, so runs go on until the 3 s run misses the target.
    assert samples == pytest.approx([800.0, 800.0, 800.0, 800.0, 3000.0])
    assert LatencyResult("p", 1, Engine.DUCKDB, Probe.SCAN, 1500.0, samples, 1).verdict is Verdict.MISSED


def test_the_checks_budget_stops_a_product_far_inside_its_target_at_min_runs(latency_mesh) -> None:  # noqa: ANN001
    from datamesh.slo import DEFAULT_BUDGET_S, DEFAULT_RUNS, MIN_RUNS

    contract = latency_mesh.contract("widget_orders")
    with latency_mesh.session() as s:
        results = measure(s, contract, budget_s=DEFAULT_BUDGET_S)
        exact = measure(s, contract, runs=DEFAULT_RUNS)
    assert all(max(r.samples_ms) <= contract.query_latency_ms / 10 for r in results)  # ms-scale probes, a 1 s+ target
    assert {r.runs for r in results} == {MIN_RUNS} and all(r.verdict is Verdict.MET for r in results)
    assert {r.runs for r in exact} == {DEFAULT_RUNS}  # without a budget, every run asked for


def test_the_lookup_key_is_the_middle_row_in_file_order_not_a_sort_of_every_key(latency_mesh) -> None:  # noqa: ANN001
    """Sorting every key to find the median took 14 s and 3.8 GB at 67 M rows: the key is the version's
    middle keyed row as its files hold them (a scan's order, the same on every run), here not the median."""
    import pyarrow as pa

    from tests.latency import orders_table

    table = orders_table()
    order = [(i * 37 + 11) % table.num_rows for i in range(table.num_rows)]  # a fixed shuffle (37 is prime to 90)
    shuffled = table.take(pa.array(order))
    latency_mesh.publish("widget_orders", shuffled)
    contract = latency_mesh.contract("widget_orders")
    middle = shuffled.slice(table.num_rows // 2, 1).to_pylist()[0]
    with latency_mesh.session() as s:
        for _ in range(3):
            assert pick_key(s, contract, "shop.widget_orders") == (middle["order_id"], middle["line_number"])
    assert (middle["order_id"], middle["line_number"]) != (15, 1)


def test_the_lookup_key_comes_from_one_row_group_and_equals_the_scans_middle_keyed_row(latency_mesh) -> None:  # noqa: ANN001
    """The key is read from the middle row's row group (its record and footer say where), not by a scan to
    the middle: the same key the scan finds, across files."""
    from datamesh.publish import Publisher

    table = orders_table()
    contract = latency_mesh.contract("widget_orders")
    with Publisher(latency_mesh.catalog, contract, rows_per_file=17) as pub:  # 90 rows: 6 files
        pub.write(table)
        manifest = pub.commit()
    assert len(manifest.files) == 6
    with latency_mesh.session() as s:
        fast = pick_key(s, contract, "shop.widget_orders")
        s.manifests.clear()  # without the record: the streaming scan
        scanned = pick_key(s, contract, "shop.widget_orders")
    middle = table.slice(table.num_rows // 2, 1).to_pylist()[0]
    assert fast == scanned == (middle["order_id"], middle["line_number"])

    with latency_mesh.session() as s:
        def no_scan(*_a: object, **_k: object) -> None:
            raise AssertionError("the key was picked by a query")
        s.sql = no_scan  # type: ignore[method-assign]
        assert pick_key(s, contract, "shop.widget_orders") == fast
