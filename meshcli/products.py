"""Commands over data products: list, describe, query, publish, retention, verify, repair, migrate, slo."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from meshcli.app import Engine, app, handled, mesh_from_settings
from meshcli.render import (
    OutputFormat,
    age,
    clean,
    console,
    err_console,
    human_bytes,
    milliseconds,
    print_rows,
    progress,
    resolve_format,
    say,
)


@app.command()
@handled
def products(fmt: Annotated[OutputFormat | None, typer.Option(
        "--format", "-f", help="table, csv or json (default: table on a terminal, csv when piped)")] = None) -> None:
    """List every data product with its owner, latest version, rows, size and freshness.

    Example: `mesh products --format json`
    """
    import time
    from datetime import datetime

    rows = mesh_from_settings().catalog.status()
    broken = any(r.get("error") for r in rows)
    if resolve_format(fmt) is not OutputFormat.TABLE:
        cols = ["domain", "product", "owner", "version", "rows", "bytes", "published", "fresh", "error"]
        print_rows(cols, [tuple(r.get(c) for c in cols) for r in rows], fmt)
        return
    cols = ["product", "owner", "version", "rows", "size", "age", "fresh"] + (["error"] if broken else [])
    out = []
    for r in rows:
        published = r.get("published")
        seconds = time.time() - datetime.fromisoformat(published).timestamp() if published else None
        out.append((f"{r['domain']}.{r['product']}", r["owner"], r.get("version"),
                    f"{r['rows']:,}" if isinstance(r.get("rows"), int) else "", human_bytes(r.get("bytes")),
                    age(seconds), "" if r.get("fresh") is None else ("yes" if r["fresh"] else "STALE"),
                    *([r.get("error") or ""] if broken else [])))
    print_rows(cols, out, fmt, title="Data products", optional=("owner",))


@app.command()
@handled
def describe(product: Annotated[str, typer.Argument(help="Product id, e.g. customers")]) -> None:
    """Show a product's contract, columns, rules and versions.

    Example: `mesh describe customers`
    """
    mesh = mesh_from_settings()
    c = mesh.contract(product)
    versions = mesh.catalog.versions(c.id)
    latest = mesh.catalog.latest_version(c.id)
    say((c.name, "bold"), f"  {c.domain}.{c.id}  contract v{c.version}  ({c.status.value})")
    say(f"owner: {c.owner.team} <{c.owner.contact}>")
    say(f"purpose: {c.description.purpose}\ngrain: {c.description.grain}")
    if c.lineage.inputs:
        say(f"inputs: {', '.join(c.lineage.inputs)}")
    table = Table(title="Columns")
    for col in ("name", "type", "required", "unique", "classification", "description"):
        table.add_column(col)
    for col in c.columns:
        table.add_row(*[Text(v) for v in (col.name, col.type.value, str(col.required), str(col.unique),
                                          col.classification.value, col.description)])
    console.print(table)
    say("rules: " + ", ".join(f"{r.key} ({r.severity.value})" for r in c.rules()))
    for s in c.sla_properties:
        say(f"service level: {s.property} = {s.value:g} {s.unit}")
    say(f"versions: {', '.join(map(str, versions)) or 'none yet'}; latest: {latest}")


@app.command()
@handled
def versions(product: Annotated[str, typer.Argument(help="Product id")],
             fmt: Annotated[OutputFormat | None, typer.Option(
                 "--format", "-f", help="table, csv or json (default: table on a terminal, csv when piped)")] = None,
             ) -> None:
    """List a product's versions with rows, files, inputs and the run that made each.

    Example: `mesh versions churn_features`
    """
    mesh = mesh_from_settings()
    rows = []
    for v in mesh.catalog.versions(product):
        m = mesh.catalog.manifest(product, v)
        rows.append((m.version, m.created_at.isoformat(timespec="seconds"), m.row_count, len(m.files),
                     m.size_bytes, m.contract_version, json.dumps(m.inputs), m.run_id,
                     m.orchestrator_run_id or ""))
    print_rows(["version", "created_at", "rows", "files", "bytes", "contract", "inputs", "run_id", "dagster_run"],
               rows, fmt,
               title=f"Versions of {product}")


@app.command()
@handled
def query(
    sql: Annotated[str, typer.Argument(help="SQL; products are views named by id (customers, crm.customers); "
                                       "a pinned version is `<product>__v<N>`, e.g. `customers__v2`")],
    pin: Annotated[list[str], typer.Option(help="Pin a product to a version: --pin customers=2 "
                                           "(or crm.customers=2); repeatable")] = [],  # noqa: B006
    engine: Annotated[Engine, typer.Option(help="duckdb (local, default) or trino")] = Engine.DUCKDB,
    fmt: Annotated[OutputFormat | None, typer.Option(
        "--format", "-f", help="table, csv or json (default: table on a terminal, csv when piped)")] = None,
    limit: Annotated[int, typer.Option(help="Rows to print at most (table format)", min=1)] = 50,
    actor: Annotated[str, typer.Option("--as", help="Identity to query as: analyst (default), platform or "
                                       "publisher:<domain>; with MESH_CREDENTIALS_FILE its own credentials")] = "analyst",
) -> None:
    """Query data products with SQL (read-only: statements that could write are refused).

    Runs as the analyst identity unless `--as` says otherwise: in Trino, PII columns are masked for it.

    Examples:

      mesh query "select plan, count(*) from crm.customers group by 1"

      mesh query "select count(*) from customers__v1"

      mesh query --pin crm.customers=1 "select count(*) from crm.customers"

      mesh query --engine trino "select * from retention.churn_predictions limit 5"
    """
    from datamesh.pins import parse_pins

    mesh = mesh_from_settings(actor)
    pins = parse_pins(pin, mesh.contracts)
    if engine is Engine.TRINO:
        from datamesh.pins import pin_trino_sql
        from datamesh.sql_guard import ensure_trino_read_only
        from datamesh.trino import TrinoClient

        ensure_trino_read_only(sql)
        client = TrinoClient.from_settings(mesh.settings)
        columns, rows = client.query(pin_trino_sql(sql, pins, mesh.contracts, client.catalog))
    else:
        from datamesh.duckdb_engine import referenced_products

        # Only the products the query names are opened and verified (all of them when it cannot tell).
        with mesh.session(pins=pins, products=referenced_products(sql, mesh.contracts)) as session:
            rel = session.sql(sql)
            columns = rel.columns
            rows = rel.fetchmany(limit + 1) if resolve_format(fmt) is OutputFormat.TABLE else rel.fetchall()
    table = resolve_format(fmt) is OutputFormat.TABLE
    print_rows(columns, rows[:limit] if table else rows, fmt)
    if table and len(rows) > limit:
        say((f"(first {limit} rows; --limit N for more, --format csv for all)", "dim"))


@app.command()
@handled
def publish(
    product: Annotated[str, typer.Argument(help="Product id declared by a contract")],
    file: Annotated[Path, typer.Argument(help="A Parquet or CSV file", exists=False)],
    contract: Annotated[Path | None, typer.Option(help="Contract YAML declaring a NEW product (never replaces "
                                                  "a registered one)")] = None,
    file_format: Annotated[str | None, typer.Option("--format", help="parquet or csv (default: by suffix)")] = None,
) -> None:
    """Publish your own Parquet or CSV file as a new version of a product.

    The file is checked against the product's registered contract; on any
    violation nothing is published and the previous version stays served.
    `--contract` declares a product that no registered contract declares yet.

    Example: `mesh publish leads data/leads.csv --contract my_contracts/sales/leads.yaml`
    """
    from datamesh.contracts import load_contract

    mesh = mesh_from_settings()
    if contract is not None:
        mesh = mesh.with_contract(load_contract(contract))
    manifest = mesh.publish_file(product, file, file_format=file_format, progress=progress)
    say("published ", (manifest.product, "bold"), f" version {manifest.version}: {manifest.row_count:,} rows")


@app.command()
@handled
def retention(
    product: Annotated[str, typer.Argument(help="Product id")],
    keep: Annotated[int | None, typer.Option(help="Versions to keep (default: the contract's retention, else 5)",
                                             min=1)] = None,
) -> None:
    """Delete old versions of a product (and orphaned staged files), only inside its own prefix.

    Example: `mesh retention usage_events --keep 3`
    """
    from datamesh.publish import apply_retention_rule, versions_to_keep

    mesh = mesh_from_settings()
    c = mesh.contract(product)
    n = versions_to_keep(c, keep)
    removed = apply_retention_rule(mesh.catalog, c, keep=n)
    kept = mesh.catalog.versions(c.id)
    say(f"{c.domain}.{c.id}: removed versions {', '.join(map(str, removed)) or 'none'}; kept "
         f"{', '.join(map(str, kept)) or 'none'} (at most the newest {n})")


@app.command()
@handled
def verify(
    products: Annotated[list[str] | None, typer.Argument(help="Products (default: all)")] = None,
) -> None:
    """Check every published version of each product: table head, record, file sizes and SHA-256 checksums.

    Exit code 2 when any version is damaged or tampered with.

    Example: `mesh verify customers`
    """
    from datamesh.verify import verify as verify_lake

    mesh = mesh_from_settings()
    for p in products or []:
        mesh.contract(p)
    report = verify_lake(mesh.catalog, products=products or None)
    for line in report.lines():
        say(line)
    if not report.ok:
        raise typer.Exit(code=2)


@app.command()
@handled
def repair(product: Annotated[str, typer.Argument(help="The product to repair")]) -> None:
    """Make a broken product servable again (a foreign write, a corrupt record, tampered files).

    Invalid versions lose their `v<N>` tag and their records move to the
    product's `_quarantine/` folder (never deleted); the table is pointed back
    at the newest valid version. Nothing outside the product's own table and
    prefix is touched.

    Example: `mesh repair customers`
    """
    from datamesh.verify import repair as repair_product

    mesh = mesh_from_settings()
    report = repair_product(mesh.catalog, mesh.contract(product).id)
    for line in report.lines():
        say(line)


@app.command()
@handled
def migrate(
    products: Annotated[list[str] | None, typer.Argument(help="Products (default: all)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be migrated")] = False,
) -> None:
    """Turn products of a lake from before Iceberg into Iceberg tables, without rewriting any data.

    Every old manifest is validated and its files checked; valid versions are
    added, oldest first and keeping their numbers, as snapshots tagged
    `v<N>`. Invalid versions are skipped and listed (exit code 2). The old
    manifests and pointer move to `_legacy/`. Running it again does nothing.

    Example: `mesh migrate --dry-run`, then `mesh migrate`
    """
    from datamesh.migrate import migrate as migrate_lake

    mesh = mesh_from_settings()
    for p in products or []:
        mesh.contract(p)
    report = migrate_lake(mesh.catalog, products=products or None, dry_run=dry_run)
    for line in report.lines():
        say(line)
    if not report.ok:
        raise typer.Exit(code=2)


class LatencyEngines(str, Enum):
    DUCKDB = "duckdb"
    TRINO = "trino"
    BOTH = "both"


def runs_title(results: list, asked: int) -> str:  # noqa: ANN001
    """"7 runs", or "3-7 runs" when a time budget cut some probes short."""
    counts = {r.runs for r in results} or {asked}
    low, high = min(counts), max(counts)
    return f"{high} runs" if low == high else f"{low}-{high} runs"


@app.command()
@handled
def slo(
    products: Annotated[list[str] | None, typer.Argument(help="Products (default: every published one)")] = None,
    engine: Annotated[LatencyEngines | None, typer.Option(
        help="duckdb, trino or both (default: duckdb, and trino too when MESH_TRINO_HOST is set)")] = None,
    runs: Annotated[int | None, typer.Option(
        help="Timed runs of each probe, after one warm-up, all of them (default: 7, or at least 3 for a probe "
             "that has taken 2 s and whose verdict is settled)", min=1)] = None,
    fmt: Annotated[OutputFormat | None, typer.Option(
        "--format", "-f", help="table, csv or json (default: table on a terminal, csv when piped)")] = None,
) -> None:
    """Time each product's query-latency probes against the queryLatency target of its contract.

    Two probes over the latest version: a scan reading every column and a
    lookup of one row by primary key. Each runs once to warm up, then 7
    times; a probe that has taken 2 s stops after 3 when a run missed the
    target (final: with under 20 runs the p95 is the slowest) or all took
    at most half of it (a judgement: later runs could be slower).
    --runs N times every probe exactly N times. p50 and p95 are nearest-rank
    (with under 20 runs the p95 is the slowest). A target is met when the
    p95 of each probe is at most it.
    Exit code 2 when any target is missed.

    Example: `mesh slo customers churn_features --engine both --runs 11`
    """
    from datamesh.slo import DEFAULT_BUDGET_S, DEFAULT_RUNS, Engine, Verdict, measure, measure_all
    from datamesh.trino import TrinoClient

    mesh = mesh_from_settings()
    contracts = [mesh.contract(p) for p in products or []]
    engines = None if engine is None else {LatencyEngines.DUCKDB: [Engine.DUCKDB], LatencyEngines.TRINO: [Engine.TRINO],
                                           LatencyEngines.BOTH: [Engine.DUCKDB, Engine.TRINO]}[engine]
    wants_trino = Engine.TRINO in engines if engines else bool(mesh.settings.trino_host)
    trino = TrinoClient.from_settings(mesh.settings) if wants_trino else None
    n = runs or DEFAULT_RUNS
    budget = None if runs else DEFAULT_BUDGET_S
    skipped: list[str] = []
    with mesh.session(products=[c.id for c in contracts] if contracts else None) as session:
        if contracts:
            results = [r for c in contracts for r in measure(session, c, trino=trino, engines=engines, runs=n,
                                                              budget_s=budget)]
        else:
            results, skipped = measure_all(session, mesh.contracts, trino=trino, engines=engines, runs=n,
                                             budget_s=budget)
    if resolve_format(fmt) is OutputFormat.TABLE:
        rows = [(r.product, r.engine.value, r.probe.value, milliseconds(r.target_ms), milliseconds(r.p50_ms),
                 milliseconds(r.p95_ms),
                 "MISSED" if r.verdict is Verdict.MISSED else r.verdict.value) for r in results]
        print_rows(["product", "engine", "probe", "target", "p50", "p95", "verdict"], rows, fmt,
                   title=f"Query latency ({runs_title(results, n)} per probe, after one warm-up)")
    else:
        print_rows(["product", "version", "engine", "probe", "target_ms", "p50_ms", "p95_ms", "runs", "rows", "verdict"],
                   [(r.product, r.version, r.engine.value, r.probe.value, r.target_ms, round(r.p50_ms, 3),
                     round(r.p95_ms, 3), r.runs, r.rows, r.verdict.value) for r in results], fmt)
    if skipped:
        err_console.print(Text(clean(f"not measured (no published version yet): {', '.join(skipped)}"), style="dim"))
    if any(r.verdict is Verdict.MISSED for r in results):
        raise typer.Exit(code=2)
