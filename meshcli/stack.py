"""Commands for the full stack: the native stack's processes and Trino parity."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from meshcli.app import handled, mesh_from_settings, stack_app, trino_app
from meshcli.render import console, progress, say


@stack_app.command("up")
@handled
def stack_up(
    workers: Annotated[int, typer.Option(help="Trino workers besides the coordinator")] = 0,
    s3_port: Annotated[int | None, typer.Option(help="S3 server port")] = None,
    trino_port: Annotated[int | None, typer.Option(help="Trino coordinator port")] = None,
    postgres_port: Annotated[int | None, typer.Option(help="PostgreSQL port (the Iceberg catalog)")] = None,
) -> None:
    """Fetch (first time: a few minutes) and start versitygw + PostgreSQL + Trino, then print the client settings.

    Example: `mesh stack up --workers 1 && eval "$(python -m nativestack env)"`
    """
    import nativestack as stack

    kwargs: dict[str, Any] = {}
    if s3_port:
        kwargs["s3_port"] = s3_port
    if trino_port:
        kwargs["trino_port"] = trino_port
    if postgres_port:
        kwargs["postgres_port"] = postgres_port
    ep = stack.start(workers, echo=progress, **kwargs)
    say(f"S3 {ep.s3_endpoint} (bucket {ep.bucket}); Trino {ep.trino_url} (catalog {ep.trino_catalog})")
    say("point the platform at it: ", ('eval "$(python -m nativestack env)"', "bold"))


@stack_app.command("down")
@handled
def stack_down() -> None:
    """Stop the native stack (data is kept)."""
    import nativestack as stack

    stack.stop(echo=progress)


@stack_app.command("status")
@handled
def stack_status() -> None:
    """Show each service, its pid, health and log file (exit code 3 if not all healthy)."""
    import nativestack as stack

    report = stack.status()
    console.print(Text(report.describe()))
    if not report.running:
        raise typer.Exit(code=3)


@trino_app.command("parity")
@handled
def trino_parity(products: Annotated[list[str] | None, typer.Argument(help="Products (default: all)")] = None) -> None:
    """Run each version's profile and contract queries in DuckDB and in Trino; fail on any difference.

    Every committed version of each product is compared, not only the latest.

    Example: `mesh trino parity churn_features churn_predictions`
    """
    from datamesh.parity import check_all
    from datamesh.trino import TrinoClient

    mesh = mesh_from_settings()
    for p in products or []:
        mesh.contract(p)
    client = TrinoClient.from_settings(mesh.settings)
    with mesh.session() as session:
        reports = check_all(session, client, mesh.catalog, products=products or None)
    for report in reports:
        mark = ("same", "green") if report.ok else ("DIFFERENT", "red")
        say(f"{report.product} v{report.version}: {report.compared} values compared, ", mark)
        for diff in report.differences:
            say(f"  {diff}")
    if not all(r.ok for r in reports):
        raise typer.Exit(code=1)
