"""``mesh``: the command line over the platform library.

Each command is a few lines over the library; everything here is usable from
Python without the CLI (see :class:`datamesh.platform.Mesh`).
"""

from __future__ import annotations

import functools
import json
import os

import sys
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from datamesh.errors import PlatformError, UnknownProductError

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

# Anything printed may carry user data (names, types like timestamp[ns], values like [/x]):
# it is text, never rich markup. Styling goes through Text objects, not markup strings.
console = Console(markup=False, highlight=False)
err_console = Console(stderr=True, markup=False, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])

# Control characters (ANSI escapes, NUL, C1 codes) in data or names would drive the terminal: shown escaped.
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)] if chr(c) not in "\n\t"}


def clean(text: object) -> str:
    """``text`` safe for a terminal: control characters other than newline and tab are shown as ``\\xNN``."""
    return str(text).translate(_CONTROL)


def handled(fn: F) -> F:
    """One error handler for every command: a PlatformError is a clear message and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PlatformError as exc:
            _fail(exc)
        except KeyboardInterrupt:
            err_console.print("interrupted", style="yellow")
            raise typer.Exit(code=130) from None
        except (typer.Exit, typer.Abort, click.exceptions.ClickException):
            raise
        except Exception as exc:
            if os.environ.get("MESH_DEBUG"):
                raise
            # A bug, not bad input: still no traceback on the user's terminal.
            err_console.print(Text.assemble(
                ("internal error: ", "bold red"), f"{type(exc).__name__}: {exc}. This is a bug in mesh, not in "
                "your input; re-run with MESH_DEBUG=1 to see the traceback and report it."), soft_wrap=True)
            raise typer.Exit(code=70) from None

    return wrapper  # type: ignore[return-value]


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
    err_console.print(Text.assemble(("error: ", "bold red"), clean(exc)), soft_wrap=True)
    raise typer.Exit(code=1)


def _progress(message: str) -> None:
    err_console.print(Text.assemble((time.strftime("%H:%M:%S"), "dim"), " ", clean(message)))


def _say(*parts: str | tuple[str, str]) -> None:
    """Print one line; plain strings are text, ``(text, style)`` pairs are styled text."""
    console.print(Text.assemble(*[clean(p) if isinstance(p, str) else (clean(p[0]), p[1]) for p in parts]),
                  soft_wrap=True)


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
    table = Table(title=None if title is None else Text(clean(title)), show_lines=False)
    for c in columns:
        table.add_column(Text(clean(c)), overflow="fold")
    for r in rows:
        table.add_row(*[Text("" if v is None else clean(v)) for v in r])
    console.print(table)


@app.command()
@handled
def products(fmt: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.TABLE) -> None:
    """List every data product with its owner, latest version, rows and freshness.

    Example: `mesh products --format json`
    """
    rows = _mesh().catalog.status()
    cols = ["domain", "product", "owner", "version", "rows", "published", "fresh"]
    if any(r.get("error") for r in rows):
        cols.append("error")
    _print_rows(cols, [tuple(r.get(c) for c in cols) for r in rows], fmt, title="Data products")


@app.command()
@handled
def describe(product: Annotated[str, typer.Argument(help="Product id, e.g. customers")]) -> None:
    """Show a product's contract, columns, rules and versions.

    Example: `mesh describe customers`
    """
    mesh = _mesh()
    c = mesh.contract(product)
    versions = mesh.catalog.versions(c.id)
    latest = mesh.catalog.latest_version(c.id)
    _say((c.name, "bold"), f"  {c.domain}.{c.id}  contract v{c.version}  ({c.status.value})")
    _say(f"owner: {c.owner.team} <{c.owner.contact}>")
    _say(f"purpose: {c.description.purpose}\ngrain: {c.description.grain}")
    if c.lineage.inputs:
        _say(f"inputs: {', '.join(c.lineage.inputs)}")
    table = Table(title="Columns")
    for col in ("name", "type", "required", "unique", "classification", "description"):
        table.add_column(col)
    for col in c.columns:
        table.add_row(*[Text(v) for v in (col.name, col.type.value, str(col.required), str(col.unique),
                                          col.classification.value, col.description)])
    console.print(table)
    _say("rules: " + ", ".join(f"{r.key} ({r.severity.value})" for r in c.rules()))
    for s in c.sla_properties:
        _say(f"service level: {s.property} = {s.value:g} {s.unit}")
    _say(f"versions: {', '.join(map(str, versions)) or 'none yet'}; latest: {latest}")


@app.command()
@handled
def versions(product: Annotated[str, typer.Argument(help="Product id")],
             fmt: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.TABLE) -> None:
    """List a product's versions with rows, files, inputs and the run that made each.

    Example: `mesh versions churn_features`
    """
    mesh = _mesh()
    rows = []
    for v in mesh.catalog.versions(product):
        m = mesh.catalog.manifest(product, v)
        rows.append((m.version, m.created_at.isoformat(timespec="seconds"), m.row_count, len(m.files),
                     m.size_bytes, m.contract_version, json.dumps(m.inputs), m.run_id))
    _print_rows(["version", "created_at", "rows", "files", "bytes", "contract", "inputs", "run_id"], rows, fmt,
                title=f"Versions of {product}")


@app.command()
@handled
def query(
    sql: Annotated[str, typer.Argument(help="SQL; products are views named by id (customers, crm.customers); "
                                       "a pinned version is `<product>__v<N>`, e.g. `customers__v2`")],
    pin: Annotated[list[str], typer.Option(help="Pin a product to a version: --pin customers=2 "
                                           "(or crm.customers=2); repeatable")] = [],  # noqa: B006
    engine: Annotated[Engine, typer.Option(help="duckdb (local, default) or trino")] = Engine.DUCKDB,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.TABLE,
    limit: Annotated[int, typer.Option(help="Rows to print at most (table format)")] = 50,
) -> None:
    """Query data products with SQL (read-only: statements that could write are refused).

    Examples:

      mesh query "select plan, count(*) from crm.customers group by 1"

      mesh query "select count(*) from customers__v1"

      mesh query --pin crm.customers=1 "select count(*) from crm.customers"

      mesh query --engine trino "select * from retention.churn_predictions limit 5"
    """
    from datamesh.pins import parse_pins

    mesh = _mesh()
    pins = parse_pins(pin, mesh.contracts)
    if engine is Engine.TRINO:
        from datamesh.pins import pin_trino_sql
        from datamesh.sql_guard import ensure_trino_read_only
        from datamesh.trino import TrinoClient

        ensure_trino_read_only(sql)
        client = TrinoClient.from_settings(mesh.settings)
        columns, rows = client.query(pin_trino_sql(sql, pins, mesh.contracts, client.catalog))
    else:
        with mesh.session(pins=pins) as session:
            rel = session.sql(sql)
            columns = rel.columns
            rows = rel.fetchmany(limit) if fmt is OutputFormat.TABLE else rel.fetchall()
    _print_rows(columns, rows[:limit] if fmt is OutputFormat.TABLE else rows, fmt)


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

    mesh = _mesh()
    if contract is not None:
        mesh = mesh.with_contract(load_contract(contract))
    manifest = mesh.publish_file(product, file, file_format=file_format, progress=_progress)
    _say("published ", (manifest.product, "bold"), f" version {manifest.version}: {manifest.row_count:,} rows")


@app.command()
@handled
def demo(
    customers: Annotated[int, typer.Option(help="Scale: number of customers", min=100)] = 50_000,
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

    summary = run_demo(customers=customers, seed=seed, lake_url=lake, progress=_progress, profile=profile,
                       max_training_rows=max_training_rows)
    _print_demo_summary(summary)


def _print_demo_summary(summary: dict[str, Any]) -> None:
    steps = Table(title="Stages (Dagster steps)")
    steps.add_column("step")
    steps.add_column("seconds", justify="right")
    for step, seconds in summary["step_seconds"].items():
        steps.add_row(Text(step), f"{seconds:.1f}")
    console.print(steps)
    prods = Table(title=Text(f"Data products in {summary['lake']}"))
    for col in ("domain", "product", "version", "rows"):
        prods.add_column(col, justify="right" if col in ("version", "rows") else "left")
    for row in summary["products"]:
        prods.add_row(Text(row["domain"]), Text(row["product"]), str(row["version"]), f"{row['rows']:,}")
    console.print(prods)
    for product, model in summary.get("models", {}).items():
        metrics = model.get("metrics", [model.get("primary_metric", "roc_auc")])
        table = Table(title=Text(f"Model zoo on {product} ({model.get('task', '')}, cross-validated)"))
        table.add_column("candidate")
        for metric in metrics:
            table.add_column(Text(metric), justify="right")
        for row in model.get("comparison", []):
            if row.get("status") == "ok":
                table.add_row(Text(str(row["candidate"])), *[
                    f"{row[m]:.4f}" if isinstance(row.get(m), int | float) else "" for m in metrics])
        console.print(table)
        threshold = model.get("threshold")
        decision = f", decision threshold {threshold:.3f}" if isinstance(threshold, int | float) else ""
        _say(f"champion of {product}: ", (str(model["candidate"]), "bold"),
             f" (model v{model['champion_version']}){decision}")
    peak = summary["peak_rss_mib"]
    _say(("done", "green"), f" in {summary['wall_seconds']:.0f}s for {summary['customers']:,} customers; "
         f"peak memory {peak['this_process']:,} MiB (largest child process {peak['largest_child']:,} MiB)")
    _say("next: ", ('mesh query "select * from retention.churn_predictions order by probability desc limit 10"',
                    "bold"), "  or  ", ("make ui", "bold"))


@app.command()
@handled
def retention(
    product: Annotated[str, typer.Argument(help="Product id")],
    keep: Annotated[int | None, typer.Option(help="Versions to keep (default: the contract's retention)", min=1)] = None,
) -> None:
    """Delete old versions of a product (and orphaned staged files), only inside its own prefix.

    Example: `mesh retention usage_events --keep 3`
    """
    from datamesh.publish import apply_retention_rule

    mesh = _mesh()
    c = mesh.contract(product)
    n = keep or c.retention_versions or 5
    removed = apply_retention_rule(mesh.catalog, c, keep=n)
    kept = mesh.catalog.versions(c.id)
    _say(f"{c.domain}.{c.id}: removed versions {', '.join(map(str, removed)) or 'none'}; kept "
         f"{', '.join(map(str, kept)) or 'none'} (at most the newest {n})")


@app.command()
@handled
def verify(
    products: Annotated[list[str] | None, typer.Argument(help="Products (default: all)")] = None,
) -> None:
    """Check every committed version of each product: manifest, file sizes and SHA-256 checksums.

    Exit code 2 when any version is damaged or tampered with.

    Example: `mesh verify customers`
    """
    from datamesh.verify import verify as verify_lake

    mesh = _mesh()
    for p in products or []:
        mesh.contract(p)
    report = verify_lake(mesh.catalog, products=products or None)
    for line in report.lines():
        _say(line)
    if not report.ok:
        raise typer.Exit(code=2)


@app.command()
@handled
def repair(product: Annotated[str, typer.Argument(help="The product to repair")]) -> None:
    """Make a product with a corrupt pointer or manifest servable again.

    Corrupt manifests are moved to the product's `_quarantine/` folder (never
    deleted) and the latest pointer is rewritten to the newest valid version.
    Nothing outside the product's own prefix is touched.

    Example: `mesh repair customers`
    """
    from datamesh.verify import repair as repair_product

    mesh = _mesh()
    report = repair_product(mesh.catalog, mesh.contract(product).id)
    for line in report.lines():
        _say(line)
    if report.changed and mesh.settings.trino_host:
        _say("Trino: run ", ("mesh trino sync", "bold"), " so its tables follow the repaired versions.")


@app.command()
@handled
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
    from ml.products import score_product, train_product

    mesh = _mesh()
    outcome = train_product(mesh, product, candidates=candidate or None, profile=profile, include_keras=keras,
                            seed=seed, progress=_progress)
    console.print(Text(outcome.report.comparison_markdown))
    c = mesh.contract(product)
    if score and c.ml is not None and c.ml.predictions_product and c.ml.predictions_product in mesh.contracts:
        manifest = score_product(mesh, product, progress=_progress)
        _say(f"published {c.ml.predictions_product} version {manifest.version} ({manifest.row_count:,} rows)")
    status = "promoted to champion" if outcome.promoted else "registered (champion unchanged)"
    _say(f"model {product} v{outcome.model_version.version}: {outcome.report.best.name} {status}")


@app.command()
@handled
def models(
    product: Annotated[str, typer.Argument(help="A labelled product, e.g. churn_features")],
    comparison: Annotated[bool, typer.Option(help="Also print the candidate comparison of the champion")] = True,
) -> None:
    """List the registered models of a product (versions, candidate, metric, champion).

    Example: `mesh models churn_features`
    """
    from ml.products import registry

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
    _print_rows(["version", "champion", "candidate", "cv metric", "trained on", "threshold", "created_at"], rows,
                OutputFormat.TABLE, title=f"Models of {product}")
    if comparison and champion is not None:
        card = champion.card
        metrics = [m for m in (card.primary_metric, "pr_auc", "f1", "log_loss", "brier", "mae", "r2")
                   if any(m in row for row in card.comparison)]
        table = Table(title=Text(f"Candidates of model v{champion.version} (cross-validated on "
                                 f"{card.n_training_rows:,} rows)"))
        table.add_column("candidate")
        table.add_column("status")
        for m in metrics:
            table.add_column(Text(m), justify="right")
        for row in card.comparison:
            table.add_row(Text(str(row.get("candidate"))), Text(str(row.get("status", ""))),
                          *[f"{row[m]:.4f}" if isinstance(row.get(m), int | float) else "" for m in metrics])
        console.print(table)


@contract_app.command("validate")
@handled
def contract_validate(paths: Annotated[list[Path] | None, typer.Argument(help="Contract files (default: all)")] = None) -> None:
    """Validate contract files; errors name the file, the field and what was expected.

    Example: `mesh contract validate data_products/crm/customers.yaml`
    """
    from datamesh.contracts import ContractRegistry, load_contract
    from datamesh.settings import get_settings

    if paths:
        for p in paths:
            c = load_contract(p)
            _say(("ok", "green"), f" {p}: {c.domain}.{c.id} v{c.version}")
    else:
        reg = ContractRegistry.from_dir(get_settings().contracts_dir)
        _say(("ok", "green"), f" {len(reg)} contracts in {len(reg.domains)} domains")


@contract_app.command("diff")
@handled
def contract_diff(product: Annotated[str, typer.Argument(help="Product id")]) -> None:
    """Show how a product's registered contract differs from the one its last version was published under.

    Marks each change breaking or not; a breaking change (a column removed or
    renamed, a type narrowed, a column made required, a rule dropped) needs a
    major version bump before the next publish. Exit code 2 when a breaking
    change lacks that bump.

    Example: `mesh contract diff customers`
    """
    from datamesh.contract_diff import diff_published

    mesh = _mesh()
    c = mesh.contract(product)
    version = mesh.catalog.latest_version(c.id)
    if version is None:
        _say(f"{c.domain}.{c.id}: no published version yet; nothing to compare with.")
        return
    manifest = mesh.catalog.manifest(c.id, version)
    diff = diff_published(manifest, c)
    _say(f"{c.domain}.{c.id}: registered contract vs the one version {version} was published under")
    for line in diff.lines():
        _say("  ", line)
    if diff.blocking:
        raise typer.Exit(code=2)


@contract_app.command("export")
@handled
def contract_export(product: Annotated[str, typer.Argument(help="Product id")]) -> None:
    """Print a product's contract as an ODCS v3 document (YAML).

    Example: `mesh contract export customers > customers.odcs.yaml`
    """
    from datamesh.contracts import to_odcs

    doc = to_odcs(_mesh().contract(product))
    typer.echo(yaml.safe_dump(doc, sort_keys=False))


@dbt_app.command("sources")
@handled
def dbt_sources() -> None:
    """(Re)generate sql/models/sources/_sources.yml from the contracts."""
    from datamesh.dbt_sources import write_sources

    mesh = _mesh()
    path = write_sources(mesh.contracts, mesh.settings.dbt_project_dir)
    _say(f"wrote {path}")


@stack_app.command("up")
@handled
def stack_up(
    workers: Annotated[int, typer.Option(help="Trino workers besides the coordinator")] = 0,
    s3_port: Annotated[int | None, typer.Option(help="S3 server port")] = None,
    trino_port: Annotated[int | None, typer.Option(help="Trino coordinator port")] = None,
) -> None:
    """Fetch (first time: a few minutes) and start versitygw + Trino, then print the client settings.

    Example: `mesh stack up --workers 1 && eval "$(python -m nativestack env)"`
    """
    import nativestack as stack

    kwargs: dict[str, Any] = {}
    if s3_port:
        kwargs["s3_port"] = s3_port
    if trino_port:
        kwargs["trino_port"] = trino_port
    ep = stack.start(workers, echo=_progress, **kwargs)
    _say(f"S3 {ep.s3_endpoint} (bucket {ep.bucket}); Trino {ep.trino_url} (catalog {ep.trino_catalog})")
    _say("point the platform at it: ", ('eval "$(python -m nativestack env)"', "bold"))


@stack_app.command("down")
@handled
def stack_down() -> None:
    """Stop the native stack (data is kept)."""
    import nativestack as stack

    stack.stop(echo=_progress)


@stack_app.command("status")
@handled
def stack_status() -> None:
    """Show each service, its pid, health and log file (exit code 3 if not all healthy)."""
    import nativestack as stack

    report = stack.status()
    console.print(Text(report.describe()))
    if not report.running:
        raise typer.Exit(code=3)


@trino_app.command("sync")
@handled
def trino_sync(products: Annotated[list[str] | None, typer.Argument(help="Products (default: all)")] = None) -> None:
    """Rebuild Trino registration from the manifests; repair or report what drifted.

    Looks at every committed version: registers missing ones, drops tables of
    versions removed by retention, reports (and drops from Trino) versions whose
    files were deleted or changed out of band, and points every product view at
    its newest intact version.

    Example: `mesh trino sync`
    """
    from datamesh.trino import Registrar, TrinoClient, sync

    mesh = _mesh()
    for p in products or []:
        mesh.contract(p)
    report = sync(Registrar(TrinoClient.from_settings(mesh.settings), mesh.catalog), products=products or None)
    for line in report.lines():
        _say(line)
    if report.broken:
        raise typer.Exit(code=2)


@trino_app.command("parity")
@handled
def trino_parity(products: Annotated[list[str] | None, typer.Argument(help="Products (default: all)")] = None) -> None:
    """Run each version's profile and contract queries in DuckDB and in Trino; fail on any difference.

    Every committed version of each product is compared, not only the latest.

    Example: `mesh trino parity churn_features churn_predictions`
    """
    from datamesh.parity import check_all
    from datamesh.trino import TrinoClient

    mesh = _mesh()
    for p in products or []:
        mesh.contract(p)
    client = TrinoClient.from_settings(mesh.settings)
    with mesh.session() as session:
        reports = check_all(session, client, mesh.catalog, products=products or None)
    for report in reports:
        mark = ("same", "green") if report.ok else ("DIFFERENT", "red")
        _say(f"{report.product} v{report.version}: {report.compared} values compared, ", mark)
        for diff in report.differences:
            _say(f"  {diff}")
    if not all(r.ok for r in reports):
        raise typer.Exit(code=1)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
