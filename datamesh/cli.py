"""``mesh``: the command line over the platform library.

Each command is a few lines over the library; everything here is usable from
Python without the CLI (see :class:`datamesh.platform.Mesh`).
"""

from __future__ import annotations

import json
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from datamesh.errors import PlatformError

app = typer.Typer(
    name="mesh",
    help="Data mesh platform: contracted data products on a lake, queried with DuckDB and Trino.\n\n"
    "Examples:\n\n  mesh demo --customers 5000\n\n  mesh products\n\n"
    "  mesh query \"select plan, count(*) from crm.customers group by 1\"",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
contract_app = typer.Typer(help="Validate and export product contracts.", no_args_is_help=True)
dbt_app = typer.Typer(help="dbt helpers (sources derived from contracts).", no_args_is_help=True)
stack_app = typer.Typer(help="The native stack (S3 server + Trino) as local background processes.",
                        no_args_is_help=True)
trino_app = typer.Typer(help="Trino registration of products (the analysts' view).", no_args_is_help=True)
app.add_typer(contract_app, name="contract")
app.add_typer(dbt_app, name="dbt")
app.add_typer(stack_app, name="stack")
app.add_typer(trino_app, name="trino")

console = Console()
err_console = Console(stderr=True)


class OutputFormat(str, Enum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


class Engine(str, Enum):
    DUCKDB = "duckdb"
    TRINO = "trino"


def _mesh() -> Any:
    from datamesh.platform import Mesh

    return Mesh.from_settings()


def _fail(exc: Exception) -> None:
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


def _progress(message: str) -> None:
    err_console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}", highlight=False)


def _print_rows(columns: list[str], rows: list[tuple[Any, ...]], fmt: OutputFormat, title: str | None = None) -> None:
    if fmt is OutputFormat.JSON:
        typer.echo(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=str, indent=2))
        return
    if fmt is OutputFormat.CSV:
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
        return
    table = Table(title=title, show_lines=False)
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*["" if v is None else str(v) for v in r])
    console.print(table)


@app.command()
def products(fmt: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.TABLE) -> None:
    """List every data product with its owner, latest version, size and freshness.

    Example: `mesh products --format json`
    """
    try:
        rows = _mesh().catalog.status()
    except PlatformError as exc:
        _fail(exc)
    cols = ["domain", "product", "owner", "version", "rows", "published", "fresh"]
    _print_rows(cols, [tuple(r[c] for c in cols) for r in rows], fmt, title="Data products")


@app.command()
def describe(product: Annotated[str, typer.Argument(help="Product id, e.g. customers")]) -> None:
    """Show a product's contract, columns, rules and versions.

    Example: `mesh describe customers`
    """
    try:
        mesh = _mesh()
        c = mesh.contract(product)
        versions = mesh.catalog.versions(c.id)
        latest = mesh.catalog.latest_version(c.id)
    except PlatformError as exc:
        _fail(exc)
    console.print(f"[bold]{c.name}[/]  {c.domain}.{c.id}  contract v{c.version}  ({c.status.value})")
    console.print(f"owner: {c.owner.team} <{c.owner.contact}>")
    console.print(f"purpose: {c.description.purpose}\ngrain: {c.description.grain}")
    if c.lineage.inputs:
        console.print(f"inputs: {', '.join(c.lineage.inputs)}")
    table = Table(title="Columns")
    for col in ("name", "type", "required", "unique", "classification", "description"):
        table.add_column(col)
    for col in c.columns:
        table.add_row(col.name, col.type.value, str(col.required), str(col.unique), col.classification.value,
                      col.description)
    console.print(table)
    console.print("rules: " + ", ".join(f"{r.key} [{r.severity.value}]" for r in c.rules()))
    for s in c.sla_properties:
        console.print(f"service level: {s.property} = {s.value:g} {s.unit}")
    console.print(f"versions: {', '.join(map(str, versions)) or 'none yet'}; latest: {latest}")


@app.command()
def versions(product: Annotated[str, typer.Argument(help="Product id")],
             fmt: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.TABLE) -> None:
    """List a product's versions with rows, files, inputs and the run that made each.

    Example: `mesh versions churn_features`
    """
    try:
        mesh = _mesh()
        rows = []
        for v in mesh.catalog.versions(product):
            m = mesh.catalog.manifest(product, v)
            rows.append((m.version, m.created_at.isoformat(timespec="seconds"), m.row_count, len(m.files),
                         m.size_bytes, m.contract_version, json.dumps(m.inputs), m.run_id))
    except PlatformError as exc:
        _fail(exc)
    _print_rows(["version", "created_at", "rows", "files", "bytes", "contract", "inputs", "run_id"], rows, fmt,
                title=f"Versions of {product}")


def _parse_pins(pins: list[str]) -> dict[str, int]:
    out = {}
    for pin in pins:
        name, _, version = pin.partition("=")
        if not version.isdigit():
            raise typer.BadParameter(f"--pin expects PRODUCT=VERSION (e.g. customers=3), got {pin!r}")
        out[name] = int(version)
    return out


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL; products are views named by id (customers, crm.customers); "
                                       "a pinned version is `<product>__v<N>`, e.g. `customers__v2`")],
    pin: Annotated[list[str], typer.Option(help="Pin a product to a version: --pin customers=2")] = [],  # noqa: B006
    engine: Annotated[Engine, typer.Option(help="duckdb (local, default) or trino")] = Engine.DUCKDB,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.TABLE,
    limit: Annotated[int, typer.Option(help="Rows to print at most (table format)")] = 50,
) -> None:
    """Query data products with SQL.

    Examples:

      mesh query "select plan, count(*) from crm.customers group by 1"

      mesh query "select count(*) from customers__v1"

      mesh query --engine trino "select * from retention.churn_predictions limit 5"
    """
    try:
        if engine is Engine.TRINO:
            from datamesh.trino import TrinoClient

            columns, rows = TrinoClient.from_settings().query(sql)
        else:
            mesh = _mesh()
            with mesh.session(pins=_parse_pins(pin)) as session:
                rel = session.sql(sql)
                if rel is None:
                    return
                columns = rel.columns
                rows = rel.fetchmany(limit) if fmt is OutputFormat.TABLE else rel.fetchall()
    except PlatformError as exc:
        _fail(exc)
    _print_rows(columns, rows[:limit] if fmt is OutputFormat.TABLE else rows, fmt)


@app.command()
def publish(
    product: Annotated[str, typer.Argument(help="Product id declared by a contract")],
    file: Annotated[Path, typer.Argument(help="A Parquet or CSV file", exists=False)],
    contract: Annotated[Path | None, typer.Option(help="Contract YAML, if not under data_products/")] = None,
    file_format: Annotated[str | None, typer.Option("--format", help="parquet or csv (default: by suffix)")] = None,
) -> None:
    """Publish your own Parquet or CSV file as a new version of a product.

    The file is checked against the contract; on any violation nothing is
    published and the previous version stays served.

    Example: `mesh publish leads data/leads.csv --contract my_contracts/sales/leads.yaml`
    """
    from datamesh.catalog import Catalog
    from datamesh.contracts import ContractRegistry, load_contract
    from datamesh.publish import publish_file

    try:
        mesh = _mesh()
        registry = mesh.contracts
        if contract is not None:
            extra = load_contract(contract)
            registry = ContractRegistry([c for c in mesh.contracts if c.id != extra.id] + [extra])
        catalog = Catalog(mesh.lake, registry)
        manifest = publish_file(catalog, registry.get(product), file, file_format=file_format, progress=_progress)
    except PlatformError as exc:
        _fail(exc)
    console.print(f"published [bold]{product}[/] version {manifest.version}: {manifest.row_count:,} rows")


@app.command()
def demo(
    customers: Annotated[int, typer.Option(help="Scale: number of customers")] = 50_000,
    seed: Annotated[int, typer.Option(help="Random seed of the generator and the models")] = 42,
    lake: Annotated[str | None, typer.Option(help="Lake URL (default: MESH_LAKE_URL or ./lake)")] = None,
    profile: Annotated[str, typer.Option(help="Model zoo: fast (5 candidates) or full (every family, Keras)")] = "fast",
    max_training_rows: Annotated[int, typer.Option(help="Cross-validate on a stratified sample of at most this many rows")] = 100_000,
) -> None:
    """Run the whole pipeline on the embedded default: generate, publish, dbt, train, score.

    Runs the Dagster asset graph in-process (no servers) and prints a summary.

    Example: `mesh demo --customers 5000`
    """
    from orchestration.demo import run_demo

    try:
        summary = run_demo(customers=customers, seed=seed, lake_url=lake, progress=_progress, profile=profile,
                           max_training_rows=max_training_rows)
    except PlatformError as exc:
        _fail(exc)
    _print_demo_summary(summary)


def _print_demo_summary(summary: dict[str, Any]) -> None:
    steps = Table(title="Stages (Dagster steps)")
    steps.add_column("step")
    steps.add_column("seconds", justify="right")
    for step, seconds in summary["step_seconds"].items():
        steps.add_row(step, f"{seconds:.1f}")
    console.print(steps)
    prods = Table(title=f"Data products in {summary['lake']}")
    for col in ("domain", "product", "version", "rows"):
        prods.add_column(col, justify="right" if col in ("version", "rows") else "left")
    for row in summary["products"]:
        prods.add_row(row["domain"], row["product"], str(row["version"]), f"{row['rows']:,}")
    console.print(prods)
    for product, model in summary.get("models", {}).items():
        metrics = model.get("metrics", [model.get("primary_metric", "roc_auc")])
        table = Table(title=f"Model zoo on {product} ({model.get('task', '')}, cross-validated)")
        table.add_column("candidate")
        for metric in metrics:
            table.add_column(metric, justify="right")
        for row in model.get("comparison", []):
            if row.get("status") == "ok":
                table.add_row(str(row["candidate"]), *[
                    f"{row[m]:.4f}" if isinstance(row.get(m), int | float) else "" for m in metrics])
        console.print(table)
        threshold = model.get("threshold")
        decision = f", decision threshold {threshold:.3f}" if isinstance(threshold, int | float) else ""
        console.print(f"champion of {product}: [bold]{model['candidate']}[/] (model v{model['champion_version']}){decision}")
    peak = summary["peak_rss_mib"]
    console.print(f"[green]done[/] in {summary['wall_seconds']:.0f}s for {summary['customers']:,} customers; "
                  f"peak memory {peak['this_process']:,} MiB (largest child process {peak['largest_child']:,} MiB)")
    console.print('next: [bold]mesh query "select * from retention.churn_predictions order by probability desc '
                  'limit 10"[/]  or  [bold]make ui[/]')


@app.command()
def retention(
    product: Annotated[str, typer.Argument(help="Product id")],
    keep: Annotated[int | None, typer.Option(help="Versions to keep (default: the contract's retention)")] = None,
) -> None:
    """Delete old versions of a product (and orphaned staged files).

    Example: `mesh retention usage_events --keep 3`
    """
    from datamesh.publish import apply_retention_rule

    try:
        mesh = _mesh()
        c = mesh.contract(product)
        n = keep or c.retention_versions or 5
        removed = apply_retention_rule(mesh.catalog, c, keep=n)
    except PlatformError as exc:
        _fail(exc)
    console.print(f"{product}: removed versions {removed or 'none'}; kept the newest {n}")


@app.command()
def train(
    product: Annotated[str, typer.Argument(help="A labelled product (its contract has an `ml:` block)")],
    profile: Annotated[str, typer.Option(help="fast (quick set) or full (the whole zoo)")] = "fast",
    candidate: Annotated[list[str], typer.Option(help="Run only these candidates (repeatable)")] = [],  # noqa: B006
    keras: Annotated[bool, typer.Option(help="Include the Keras models")] = True,
    seed: Annotated[int, typer.Option(help="Random seed (same data + seed = same metrics)")] = 42,
    score: Annotated[bool, typer.Option(help="Publish predictions if the contract names a predictions product")] = True,
) -> None:
    """Run the model zoo on a labelled product, register the best model and maybe promote it.

    Examples:

      mesh train churn_features

      mesh train leads --profile full --candidate logistic_regression --candidate random_forest
    """
    from ml.errors import MLError
    from ml.products import score_product, train_product

    try:
        mesh = _mesh()
        outcome = train_product(mesh, product, candidates=candidate or None, profile=profile, include_keras=keras,
                                seed=seed, progress=_progress)
        console.print(outcome.report.comparison_markdown)
        c = mesh.contract(product)
        if score and c.ml is not None and c.ml.predictions_product and c.ml.predictions_product in mesh.contracts:
            manifest = score_product(mesh, product, progress=_progress)
            console.print(f"published {c.ml.predictions_product} version {manifest.version} ({manifest.row_count:,} rows)")
    except (PlatformError, MLError) as exc:
        _fail(exc)
    status = "promoted to champion" if outcome.promoted else "registered (champion unchanged)"
    console.print(f"model {product} v{outcome.model_version.version}: {outcome.report.best.name} {status}")


@app.command()
def models(
    product: Annotated[str, typer.Argument(help="A labelled product, e.g. churn_features")],
    comparison: Annotated[bool, typer.Option(help="Also print the candidate comparison of the champion")] = True,
) -> None:
    """List the registered models of a product (versions, candidate, metric, champion).

    Example: `mesh models churn_features`
    """
    from ml.products import registry

    try:
        mesh = _mesh()
        mesh.contract(product)
        reg = registry(mesh)
        champion = reg.champion(product)
        rows = []
        for v in reg.list_versions(product):
            card = reg.get(product, v).card
            rows.append((v, "*" if champion and champion.version == v else "", card.candidate,
                         f"{card.primary_metric}={card.score:.4f}", json.dumps(card.training_data),
                         "" if card.threshold is None else f"{card.threshold:.3f}", card.created_at))
    except PlatformError as exc:
        _fail(exc)
    _print_rows(["version", "champion", "candidate", "cv metric", "trained on", "threshold", "created_at"], rows,
                OutputFormat.TABLE, title=f"Models of {product}")
    if comparison and champion is not None:
        card = champion.card
        metrics = [m for m in (card.primary_metric, "pr_auc", "f1", "log_loss", "brier", "mae", "r2")
                   if any(m in row for row in card.comparison)]
        table = Table(title=f"Candidates of model v{champion.version} (cross-validated on {card.n_training_rows:,} rows)")
        table.add_column("candidate")
        table.add_column("status")
        for m in metrics:
            table.add_column(m, justify="right")
        for row in card.comparison:
            table.add_row(str(row.get("candidate")), str(row.get("status", "")),
                          *[f"{row[m]:.4f}" if isinstance(row.get(m), int | float) else "" for m in metrics])
        console.print(table)


@contract_app.command("validate")
def contract_validate(paths: Annotated[list[Path] | None, typer.Argument(help="Contract files (default: all)")] = None) -> None:
    """Validate contract files; errors name the file, the field and what was expected.

    Example: `mesh contract validate data_products/crm/customers.yaml`
    """
    from datamesh.contracts import ContractRegistry, load_contract
    from datamesh.settings import get_settings

    try:
        if paths:
            for p in paths:
                c = load_contract(p)
                console.print(f"[green]ok[/] {p}: {c.domain}.{c.id} v{c.version}")
        else:
            reg = ContractRegistry.from_dir(get_settings().contracts_dir)
            console.print(f"[green]ok[/] {len(reg)} contracts in {len(reg.domains)} domains")
    except PlatformError as exc:
        _fail(exc)


@contract_app.command("export")
def contract_export(product: Annotated[str, typer.Argument(help="Product id")]) -> None:
    """Print a product's contract as an ODCS v3 document (YAML).

    Example: `mesh contract export customers > customers.odcs.yaml`
    """
    from datamesh.contracts import to_odcs

    try:
        doc = to_odcs(_mesh().contract(product))
    except PlatformError as exc:
        _fail(exc)
    typer.echo(yaml.safe_dump(doc, sort_keys=False))


@dbt_app.command("sources")
def dbt_sources() -> None:
    """(Re)generate sql/models/sources/_sources.yml from the contracts."""
    from datamesh.dbt_sources import write_sources

    try:
        mesh = _mesh()
        path = write_sources(mesh.contracts, mesh.settings.dbt_project_dir)
    except PlatformError as exc:
        _fail(exc)
    console.print(f"wrote {path}")


@stack_app.command("up")
def stack_up(
    workers: Annotated[int, typer.Option(help="Trino workers besides the coordinator")] = 0,
    s3_port: Annotated[int | None, typer.Option(help="S3 server port")] = None,
    trino_port: Annotated[int | None, typer.Option(help="Trino coordinator port")] = None,
) -> None:
    """Fetch (first time: a few minutes) and start versitygw + Trino, then print the client settings.

    Example: `mesh stack up --workers 1 && eval "$(python -m datamesh.stack env)"`
    """
    from datamesh import stack

    kwargs: dict[str, Any] = {}
    if s3_port:
        kwargs["s3_port"] = s3_port
    if trino_port:
        kwargs["trino_port"] = trino_port
    try:
        ep = stack.start(workers, echo=_progress, **kwargs)
    except PlatformError as exc:
        _fail(exc)
    console.print(f"S3 {ep.s3_endpoint} (bucket {ep.bucket}); Trino {ep.trino_url} (catalog {ep.trino_catalog})")
    console.print('point the platform at it: [bold]eval "$(python -m datamesh.stack env)"[/]')


@stack_app.command("down")
def stack_down() -> None:
    """Stop the native stack (data is kept)."""
    from datamesh import stack

    try:
        stack.stop(echo=_progress)
    except PlatformError as exc:
        _fail(exc)


@stack_app.command("status")
def stack_status() -> None:
    """Show each service, its pid, health and log file (exit code 3 if not all healthy)."""
    from datamesh import stack

    report = stack.status()
    console.print(report.describe())
    if not report.running:
        raise typer.Exit(code=3)


@trino_app.command("sync")
def trino_sync(products: Annotated[list[str] | None, typer.Argument(help="Products (default: all)")] = None) -> None:
    """Rebuild Trino registration from the manifests; repair or report what drifted.

    Registers missing versions, drops tables of versions removed by retention,
    reports versions whose files were deleted out of band, and points every
    product view at its newest complete version.

    Example: `mesh trino sync`
    """
    from datamesh.trino import Registrar, TrinoClient, sync

    try:
        mesh = _mesh()
        report = sync(Registrar(TrinoClient.from_settings(mesh.settings), mesh.catalog), products=products or None)
    except PlatformError as exc:
        _fail(exc)
    for line in report.lines():
        console.print(line)
    if report.broken:
        raise typer.Exit(code=2)


@trino_app.command("parity")
def trino_parity(products: Annotated[list[str] | None, typer.Argument(help="Products (default: all)")] = None) -> None:
    """Run each product's contract queries in DuckDB and in Trino; fail on any difference.

    Example: `mesh trino parity churn_features churn_predictions`
    """
    from datamesh.parity import check_product
    from datamesh.trino import TrinoClient

    failed = False
    try:
        mesh = _mesh()
        client = TrinoClient.from_settings(mesh.settings)
        with mesh.session() as session:
            for contract in mesh.contracts:
                if products and contract.id not in products:
                    continue
                version = mesh.catalog.latest_version(contract.id)
                if version is None:
                    continue
                report = check_product(session, client, contract, version)
                mark = "[green]same[/]" if report.ok else "[red]DIFFERENT[/]"
                console.print(f"{contract.domain}.{contract.id} v{version}: {report.compared} values compared, {mark}")
                for diff in report.differences:
                    console.print(f"  {diff}")
                failed |= not report.ok
    except PlatformError as exc:
        _fail(exc)
    if failed:
        raise typer.Exit(code=1)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
