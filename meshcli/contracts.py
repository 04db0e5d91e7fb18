"""Commands over contracts: validate, diff against the published version, export as ODCS; dbt sources."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
    import yaml

    from datamesh.contracts import to_odcs

    doc = to_odcs(mesh_from_settings().contract(product))
    typer.echo(yaml.safe_dump(doc, sort_keys=False))


@contract_app.command("infer")
@handled
def contract_infer(
    file: Annotated[Path, typer.Argument(help="A CSV or Parquet file to draft the contract from")],
    product_id: Annotated[str | None, typer.Option("--id", help="Product id (default: the file name in snake_case)")] = None,
    domain: Annotated[str | None, typer.Option(help="Domain of the product (default: unassigned)")] = None,
    owner_team: Annotated[str | None, typer.Option(help="Owning team (default: unassigned)")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the draft here instead of to stdout")] = None,
    file_format: Annotated[str | None, typer.Option("--format", help="parquet or csv (default: by suffix)")] = None,
    label: Annotated[str | None, typer.Option(help="The label column (file or product name): adds an ml block "
                                               "and drafts the predictions product's contract too")] = None,
    predictions: Annotated[str | None, typer.Option(help="Id of the predictions product (default: "
                                                     "<id>_predictions; with --label)")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite files that exist")] = False,
) -> None:
    """Draft a contract (YAML) from a CSV or Parquet file, with a comment on every guess.

    Guesses snake_case column names (the file's names kept as physicalName),
    types (int64, double, decimal, boolean incl. Yes/No words, date, timestamp,
    timestamptz, string), required columns, a primary-key candidate,
    accepted values and ranges (as warnings), and the csv block (delimiter).
    Large files are sampled (the first 100,000 rows). The draft validates, and
    `mesh publish` of the same file under it succeeds; review it before use.

    With `--label Churn`, the draft is labelled training data (an ml block:
    task, id column, label, the positive class of a two-class text label) and
    the contract of its predictions product is drafted beside it, so that
    publish, `mesh train` and scoring need no edit.

    Example: `mesh contract infer exports/Customers.csv --id customers --domain crm --out data_products/crm/customers.yaml`

    Example: `mesh contract infer telco.csv --id telco --domain crm --label Churn --out data_products/crm/telco.yaml`
    """
    import yaml

    from datamesh.contracts import parse_contract
    from datamesh.infer import infer_contract

    if predictions is not None and label is None:
        raise typer.BadParameter("--predictions names the scores of a label: give --label too")
    draft = infer_contract(file, product_id=product_id, domain=domain, owner_team=owner_team, file_format=file_format,
                           label=label, predictions=predictions)
    documents = [(out, draft.yaml())]
    if draft.ml is not None:
        from ml.drafts import predictions_contract_yaml

        target = predictions or f"{draft.product_id}_predictions"
        if target == draft.product_id:
            raise typer.BadParameter(f"the predictions product needs an id of its own, not '{target}'",
                                     param_hint="--predictions")
        draft.ml["predictionsProduct"] = (target, "the product its scores are published as")
        documents = [(out, draft.yaml()),
                     (None if out is None else out.with_name(f"{target}.yaml"), predictions_contract_yaml(draft, target))]
    for path, text in documents:  # every draft validates, and nothing is overwritten, before anything is written
        parse_contract(yaml.safe_load(text), path or Path(f"{draft.domain}/draft.yaml"))
        if path is not None and path.exists() and not force:
            raise typer.BadParameter(f"{path} exists; choose another --out, or --force to overwrite it",
                                     param_hint="--out")
    for path, text in documents:
        if path is None:
            typer.echo(("---\n" if text is not documents[0][1] else "") + text, nl=False)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        what = (f"{len(draft.columns)} columns guessed from {draft.rows:,} rows of {file.name}"
                + (" (a sample)" if draft.sampled else "")) if text is documents[0][1] else "the predictions product"
        say(("wrote", "green"), f" {path}: {what}")


@dbt_app.command("sources")
@handled
def dbt_sources() -> None:
    """(Re)generate sql/models/sources/_sources.yml from the contracts."""
    from datamesh.dbt_sources import write_sources

    mesh = mesh_from_settings()
    path = write_sources(mesh.contracts, mesh.settings.dbt_project_dir)
    say(f"wrote {path}")
