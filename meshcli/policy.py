"""Commands over the access policy: show it, render its artefacts, check them for drift."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from meshcli.app import handled, policy_app
from meshcli.render import print_table, say


def _policy(governance: Path | None):  # noqa: ANN202
    from datamesh.policy import load_policy

    return load_policy(governance=governance)


GovernanceOption = Annotated[
    Path | None, typer.Option("--governance", help="The governance file (default: governance/governance.yaml)")
]


@policy_app.command("show")
@handled
def policy_show(governance: GovernanceOption = None) -> None:
    """Print the access policy derived from the contracts and the governance file: who may write, read and
    see PII of what, in S3, the catalog and Trino. Everything not shown is denied.

    Example: `mesh policy show`
    """
    from datamesh.policy.render import IDENTITY_COLUMNS, PRODUCT_COLUMNS, summary_rows

    policy = _policy(governance)
    identities, products = summary_rows(policy)
    print_table("Identities (service users: S3 + catalog + Trino; people: Trino only)", IDENTITY_COLUMNS,
                identities)
    print_table("Products", PRODUCT_COLUMNS, products)
    say(f"from {policy.source} and {len(policy.products)} contracts; `mesh policy render` writes the artefacts")


@policy_app.command("render")
@handled
def policy_render(
    governance: GovernanceOption = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: governance/generated)")] = None,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if the files are out of date")] = False,
) -> None:
    """Write every generated artefact of the policy: Trino's access rules and groups, the S3 bucket and user
    policies, the catalog's PostgreSQL roles, and POLICY.md. They hold no secrets.

    Example: `mesh policy render --check` (CI: fails when a contract changed but the policy was not rendered)
    """
    from datamesh.policy import GENERATED_DIR
    from datamesh.policy.render import drift, write_all

    policy = _policy(governance)
    target = out or GENERATED_DIR
    if check:
        problems = drift(policy, target)
        for p in problems:
            say(("out of date: ", "red"), p)
        if problems:
            say("run `mesh policy render` and commit the result")
            raise typer.Exit(code=1)
        say(("up to date", "green"), f": {target}")
        return
    paths = write_all(policy, target)
    say(("rendered", "green"), f" {len(paths)} files into {target}")
