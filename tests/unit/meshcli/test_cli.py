"""The `mesh` CLI as a hostile or careless user meets it: clear errors, no tracebacks, nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import widgets_table
from tests.integrity import lake_fingerprint
from tests.unit.datamesh.damaged_files import foreign_insert, forge_version

ROGUE_CONTRACT = """
apiVersion: datamesh/v1
kind: DataProduct
id: widgets
name: Rogue widgets
domain: shop
version: 9.0.0
description: {purpose: mine now, grain: whatever}
owner: {team: rogue, contact: rogue@example.com}
columns:
  - name: widget_id
    type: int64
"""


def test_publish_under_a_rogue_contract_is_refused(cli, mesh, tmp_path: Path) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(5))
    rogue = tmp_path / "rogue.yaml"
    rogue.write_text(ROGUE_CONTRACT)
    data = tmp_path / "rogue.csv"
    data.write_text("widget_id\n1\n1\n")
    before = lake_fingerprint(mesh)
    result = cli("publish", "widgets", str(data), "--contract", str(rogue))
    assert result.exit_code == 1
    assert "registered by" in result.output and "never replace" in result.output
    assert lake_fingerprint(mesh) == before


def test_contract_option_may_declare_a_new_product(cli, mesh, tmp_path: Path) -> None:  # noqa: ANN001
    new = tmp_path / "gadgets.yaml"
    new.write_text(ROGUE_CONTRACT.replace("id: widgets", "id: gadgets"))
    data = tmp_path / "gadgets.csv"
    data.write_text("widget_id\n1\n2\n")
    result = cli("publish", "gadgets", str(data), "--contract", str(new))
    assert result.exit_code == 0, result.output
    assert "published gadgets version 1: 2 rows" in result.output


@pytest.mark.parametrize("statement", [
    "COPY (select * from widgets limit 1) TO '{target}'",
    "select 1; COPY (select 1) TO '{target}'",
    "ATTACH '{target}.db' AS x",
    "INSTALL httpfs",
    "CREATE TABLE t AS SELECT 1",
    "SET enable_external_access = true",
])
def test_query_cannot_write(cli, mesh, statement: str) -> None:  # noqa: ANN001
    m = mesh.publish("widgets", widgets_table(5))
    target = mesh.catalog.file_paths(m)[0]
    before = lake_fingerprint(mesh)
    result = cli("query", statement.format(target=target))
    assert result.exit_code == 1
    assert "read-only" in result.output
    assert lake_fingerprint(mesh) == before
    assert cli("query", "-f", "json", "select count(*) as n from widgets").output.count('"n": 5') == 1


@pytest.mark.parametrize(("pin", "fragment"), [
    ("widgets=²", "whole number"),
    ("widgets", "PRODUCT=VERSION"),
    ("widgetz=1", "Did you mean 'widgets'"),
    ("widgets=7", "no version 7"),
])
def test_bad_pins_are_clear(cli, mesh, pin: str, fragment: str) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(5))
    result = cli("query", "--pin", pin, "select count(*) from widgets")
    assert result.exit_code == 1
    assert fragment in result.output


def test_pin_accepts_domain_and_product(cli, mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(5))
    mesh.publish("widgets", widgets_table(8))
    result = cli("query", "-f", "json", "--pin", "shop.widgets=1", "select count(*) as n from shop.widgets")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"n": 5}]


def test_foreign_insert_breaks_only_its_product_until_repaired(cli, mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(5))
    mesh.publish("widget_orders", pa.table({"order_id": pa.array([1], pa.int64()),
                                            "line_number": pa.array([1], pa.int32()),
                                            "widget_id": pa.array([1], pa.int64())}))
    foreign_insert(mesh, rows=2)
    assert cli("query", "-f", "json", "select 1 as one").exit_code == 0
    ok = cli("query", "-f", "json", "select count(*) as n from widget_orders")
    assert ok.exit_code == 0 and json.loads(ok.output) == [{"n": 1}]
    broken = cli("query", "select count(*) from widgets")
    assert broken.exit_code == 1
    assert "not a published version" in broken.output and "mesh repair widgets" in broken.output
    products = cli("products", "-f", "json")
    assert products.exit_code == 0, products.output
    repaired = cli("repair", "widgets")
    assert repaired.exit_code == 0, repaired.output
    assert "table head not a published version -> v1" in repaired.output
    again = cli("query", "-f", "json", "select count(*) as n from widgets")
    assert again.exit_code == 0 and json.loads(again.output) == [{"n": 5}]  # the foreign rows are gone


def test_output_is_text_not_markup(cli, mesh, tmp_path: Path) -> None:  # noqa: ANN001
    # A value that looks like a closing markup tag, in an accepted-values error and in a table cell.
    bad = tmp_path / "bad.csv"
    bad.write_text("widget_id,color,price,made_at\n1,[/x],1.0,2026-01-01T00:00:00\n")
    result = cli("publish", "widgets", str(bad))
    assert result.exit_code == 1
    assert "[/x]" in result.output
    # A type with brackets in a schema error (a zoned time for a timestamp column; nanoseconds are now read).
    pq.write_table(pa.table({"widget_id": pa.array([1], pa.int64()), "color": ["red"], "price": [1.0],
                             "made_at": pa.array([0], pa.timestamp("us", tz="UTC"))}), tmp_path / "tz.parquet")
    result = cli("publish", "widgets", str(tmp_path / "tz.parquet"))
    assert result.exit_code == 1
    assert "timestamp[us, tz=UTC]" in result.output
    mesh.publish("widgets", widgets_table(1, color="red"))
    shown = cli("query", "select '[bold]x[/bold]' as v, '[/x]' as w")
    assert shown.exit_code == 0 and "[bold]x[/bold]" in shown.output and "[/x]" in shown.output


def test_retention_refuses_a_record_pointing_outside(cli, mesh) -> None:  # noqa: ANN001
    for n in (3, 4, 5, 6):
        mesh.publish("widgets", widgets_table(n))
    mesh.publish("widget_orders", pa.table({"order_id": pa.array([1], pa.int64()),
                                            "line_number": pa.array([1], pa.int32()),
                                            "widget_id": pa.array([1], pa.int64())}))
    oldest = mesh.catalog.versions("widgets")[0]
    forge_version(mesh, oldest, edit=lambda doc: doc.update(run_id="../../widget_orders"))
    before = lake_fingerprint(mesh)
    result = cli("retention", "widgets", "--keep", "1")
    assert result.exit_code == 1
    assert "'widgets'" in result.output and "not a plain directory name" in result.output
    assert "mesh repair widgets" in result.output
    assert lake_fingerprint(mesh) == before


def test_tampered_version_is_refused_and_verify_reports_it(cli, mesh) -> None:  # noqa: ANN001
    m = mesh.publish("widgets", widgets_table(5))
    path = mesh.catalog.file_paths(m)[0]
    pq.write_table(widgets_table(5, color="blue"), path)  # same rows, different bytes, new mtime
    result = cli("query", "select count(*) from widgets")
    assert result.exit_code == 1
    assert Path(path).name in result.output
    verified = cli("verify")
    assert verified.exit_code == 2
    assert "widgets" in verified.output and Path(path).name in verified.output


def test_publisher_of_another_domain_is_refused(cli, mesh, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(5))
    data = tmp_path / "w.csv"
    data.write_text("widget_id,color,price,made_at\n1,red,1.0,2026-01-01T00:00:00\n")
    before = lake_fingerprint(mesh)
    monkeypatch.setenv("MESH_ACTOR", "publisher:billing")
    result = cli("publish", "widgets", str(data))
    assert result.exit_code == 1 and "publisher:shop" in result.output
    monkeypatch.setenv("MESH_ACTOR", "analyst")
    result = cli("publish", "widgets", str(data))
    assert result.exit_code == 1 and "analysts read products" in result.output
    assert lake_fingerprint(mesh) == before
    monkeypatch.setenv("MESH_ACTOR", "publisher:shop")
    assert cli("publish", "widgets", str(data)).exit_code == 0


def test_bad_settings_are_clear(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("MESH_ACTOR", "root")
    result = cli("products")
    assert result.exit_code == 1 and "MESH_ACTOR" in result.output


def test_control_characters_never_reach_the_terminal(cli, mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(1))
    shown = cli("query", "-f", "table", "select chr(27) || '[2J' || 'x' as v")
    assert shown.exit_code == 0
    assert "\x1b" not in shown.output and "\\x1b[2J" in shown.output
    failed = cli("query", "select error(chr(27) || '[2J')")
    assert failed.exit_code == 1 and "\x1b" not in failed.output


def test_errors_while_rows_are_fetched_are_query_errors(cli, mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(2))
    result = cli("query", "select cast(color as int) from shop.widgets")
    assert result.exit_code == 1
    assert "Query failed" in result.output and "internal error" not in result.output


def test_session_results_cannot_write(mesh) -> None:  # noqa: ANN001
    m = mesh.publish("widgets", widgets_table(2))
    before = lake_fingerprint(mesh)
    with mesh.session() as s:
        result = s.sql("select * from widgets")
        assert not hasattr(result, "write_parquet") and not hasattr(result, "query")
        assert not hasattr(s, "con")
        assert result.fetchall()
    assert lake_fingerprint(mesh) == before
    assert m.version == 1


def test_analyst_may_not_apply_retention_or_repair(cli, mesh, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    for n in (1, 2, 3):
        mesh.publish("widgets", widgets_table(n))
    before = lake_fingerprint(mesh)
    for actor in ("analyst", "publisher:billing"):
        monkeypatch.setenv("MESH_ACTOR", actor)
        assert cli("retention", "widgets", "--keep", "1").exit_code == 1
        assert cli("repair", "widgets").exit_code == 1
    assert lake_fingerprint(mesh) == before
    monkeypatch.setenv("MESH_ACTOR", "publisher:shop")
    kept = cli("retention", "widgets", "--keep", "1")
    assert kept.exit_code == 0 and "kept 3" in kept.output


def test_retention_never_follows_a_symbolic_link_out_of_the_lake(cli, mesh, tmp_path: Path) -> None:  # noqa: ANN001
    import os
    import shutil

    mesh.publish("widgets", widgets_table(2))
    data = Path(mesh.catalog.paths("widgets").data)
    victim = tmp_path / "victim"
    shutil.copytree(data, victim)
    (victim / "20200101T000000Z-deadbeef").mkdir()
    (victim / "20200101T000000Z-deadbeef" / "keep.txt").write_text("precious")
    shutil.rmtree(data)
    os.symlink(victim, data)
    result = cli("retention", "widgets", "--keep", "1")
    assert result.exit_code == 1 and "symbolic link" in result.output
    assert (victim / "20200101T000000Z-deadbeef" / "keep.txt").read_text() == "precious"
    refused = cli("query", "select count(*) from widgets")
    assert refused.exit_code == 1 and "symbolic link" in refused.output


def test_tables_never_split_a_value_and_fit_80_columns(mesh) -> None:  # noqa: ANN001
    from rich.console import Console

    from meshcli import render

    wide = [("C00002514", 0.12345678901234, "a-rather-long-model-name/with-a-version", "2026-12-01 08:52:39.940485",
             "another-fairly-long-value", 1)]
    columns = ["customer_id", "probability", "model_name", "scored_at", "segment", "n"]
    original = render.console
    render.console = Console(width=80, markup=False, highlight=False, record=True, force_terminal=False)
    try:
        render.print_rows(columns, wide, render.OutputFormat.TABLE)
        text = render.console.export_text()
    finally:
        render.console = original
    assert "C00002514" in text and "0.123457" in text and "0.12345678901234" not in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_demo_summary_renders_as_text() -> None:
    from rich.console import Console

    from meshcli import render

    summary = {
        "step_seconds": {"demo_sources": 1.25}, "lake": "/tmp/[lake]",
        "products": [{"domain": "crm", "product": "customers", "version": 1, "rows": 3000}],
        "models": {"churn_features": {"metrics": ["roc_auc"], "task": "classification", "threshold": 0.2,
                                      "candidate": "soft_voting", "champion_version": 1,
                                      "comparison": [{"candidate": "soft_voting", "status": "ok", "roc_auc": 0.8512}]}},
        "peak_rss_mib": {"this_process": 900, "largest_child": 400}, "wall_seconds": 12.0, "customers": 3000,
    }
    original = render.console
    render.console = Console(width=100, markup=False, highlight=False, record=True)
    try:
        render.print_demo_summary(summary)
        text = render.console.export_text()
    finally:
        render.console = original
    assert "/tmp/[lake]" in text and "3,000" in text and "0.8512" in text and "soft_voting" in text
