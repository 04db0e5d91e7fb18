"""Commands over contracts: validate, diff against the published version, export as ODCS; dbt sources."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from meshcli.app import contract_app, dbt_app, handled, mesh_from_settings
from meshcli.render import say


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
            say(("ok", "green"), f" {p}: {c.domain}.{c.id} v{c.version}")
    else:
        reg = ContractRegistry.from_dir(get_settings().contracts_dir)
        say(("ok", "green"), f" {len(reg)} contracts in {len(reg.domains)} domains")


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

    mesh = mesh_from_settings()
    c = mesh.contract(product)
    version = mesh.catalog.latest_version(c.id)
    if version is None:
        say(f"{c.domain}.{c.id}: no published version yet; nothing to compare with.")
        return
    manifest = mesh.catalog.manifest(c.id, version)
    diff = diff_published(manifest, c)
    say(f"{c.domain}.{c.id}: registered contract vs the one version {version} was published under")
    for line in diff.lines():
        say("  ", line)
    if diff.blocking:
        raise typer.Exit(code=2)


@contract_app.command("export")
@handled
def contract_export(product: Annotated[str, typer.Argument(help="Product id")]) -> None:
    """Print a product's contract as an ODCS v3 document (YAML).

    Example: `mesh contract export customers > customers.odcs.yaml`
    """
    from datamesh.contracts import to_odcs

    doc = to_odcs(mesh_from_settings().contract(product))
    typer.echo(yaml.safe_dump(doc, sort_keys=False))


@dbt_app.command("sources")
@handled
def dbt_sources() -> None:
    """(Re)generate sql/models/sources/_sources.yml from the contracts."""
    from datamesh.dbt_sources import write_sources

    mesh = mesh_from_settings()
    path = write_sources(mesh.contracts, mesh.settings.dbt_project_dir)
    say(f"wrote {path}")
