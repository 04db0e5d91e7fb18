"""`mesh slo`: the latency table, machine formats, and exit code 2 when a target is missed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import widgets_table
from tests.latency import HUGE_TARGET, orders_table, write_latency_contracts


@pytest.fixture()
def contracts_dir(tmp_path: Path) -> Path:
    """widgets with a target no query meets, widget_orders with one any query meets."""
    return write_latency_contracts(tmp_path / "contracts")


def test_table_lists_every_probe_and_a_missed_target_exits_2(cli, mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(5))
    mesh.publish("widget_orders", orders_table())
    result = cli("slo", "--runs", "2", "--format", "table")
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert "Query latency (2 runs per probe, after one warm-up)" in result.output
    header = next(line for line in lines if line.split()[:2] == ["product", "engine"])
    assert header.split() == ["product", "engine", "probe", "target", "p50", "p95", "verdict"]
    rows = {tuple(line.split()[:3]): line for line in lines if line.split()[:1] in (["widgets"], ["widget_orders"])}
    assert set(rows) == {("widgets", "duckdb", "scan"), ("widgets", "duckdb", "lookup"),
                         ("widget_orders", "duckdb", "scan"), ("widget_orders", "duckdb", "lookup")}
    assert all(line.split()[-1] == "MISSED" for key, line in rows.items() if key[0] == "widgets")
    assert all(line.split()[-1] == "met" for key, line in rows.items() if key[0] == "widget_orders")
    assert "1,000,000 s" in rows[("widget_orders", "duckdb", "scan")]
    assert "1e-06 ms" in rows[("widgets", "duckdb", "scan")]


def test_met_targets_exit_0_and_json_has_numbers(cli, mesh) -> None:  # noqa: ANN001
    mesh.publish("widget_orders", orders_table())
    result = cli("slo", "widget_orders", "--engine", "duckdb", "--runs", "3", "-f", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["probe"], r["runs"], r["rows"], r["verdict"]) for r in rows] == [("scan", 3, 90, "met"),
                                                                                 ("lookup", 3, 1, "met")]
    assert all(isinstance(r["p95_ms"], float) and r["p50_ms"] <= r["p95_ms"] for r in rows)
    assert {r["target_ms"] for r in rows} == {1e9}


def test_unpublished_products_are_noted_and_unknown_ones_refused(cli, mesh, tmp_path: Path) -> None:  # noqa: ANN001
    write_latency_contracts(tmp_path / "contracts", widgets=HUGE_TARGET)
    mesh.publish("widgets", widgets_table(5))
    everything = cli("slo", "--runs", "1", "-f", "csv")
    assert everything.exit_code == 0, everything.output
    assert "not measured (no published version yet): widget_orders" in everything.output
    assert cli("slo", "widget_orders").exit_code == 1
    unknown = cli("slo", "widgetz")
    assert unknown.exit_code == 1 and "Did you mean 'widgets'" in unknown.output


def test_trino_needs_a_trino(cli, mesh, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("MESH_TRINO_HOST", raising=False)
    mesh.publish("widgets", widgets_table(5))
    result = cli("slo", "widgets", "--engine", "both")
    assert result.exit_code == 1 and "MESH_TRINO_HOST" in result.output


def test_help_has_an_example(cli) -> None:  # noqa: ANN001
    result = cli("slo", "--help")
    assert result.exit_code == 0
    assert "Example: mesh slo customers" in " ".join(result.output.split()) or "mesh slo customers" in result.output
    assert "--engine" in result.output and "--runs" in result.output
