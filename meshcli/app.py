"""The `mesh` Typer application: sub-apps, the one error handler and the edge where settings are built.

Every command is a few lines over the library (``datamesh``, ``ml``,
``orchestration``); this package sits above them all and nothing below
imports it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar

import click
import typer
from rich.text import Text

from datamesh.errors import PlatformError
from meshcli.render import clean, err_console, fail

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
policy_app = typer.Typer(help="The access policy derived from the contracts and governance/governance.yaml.",
                         no_args_is_help=True)
trino_app = typer.Typer(help="Trino registration of products (the analysts' view).", no_args_is_help=True)
app.add_typer(contract_app, name="contract")
app.add_typer(dbt_app, name="dbt")
app.add_typer(stack_app, name="stack")
app.add_typer(trino_app, name="trino")
app.add_typer(policy_app, name="policy")

# Anything printed may carry user data (names, types like timestamp[ns], values like [/x]):
# it is text, never rich markup. Styling goes through Text objects, not markup strings.

F = TypeVar("F", bound=Callable[..., Any])


def handled(fn: F) -> F:
    """One error handler for every command: a PlatformError is a clear message and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PlatformError as exc:
            fail(exc)
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
                ("internal error: ", "bold red"), f"{type(exc).__name__}: {clean(exc)}. This is a bug in mesh, not in "
                "your input; re-run with MESH_DEBUG=1 to see the traceback and report it."), soft_wrap=True)
            raise typer.Exit(code=70) from None

    return wrapper  # type: ignore[return-value]


class Engine(str, Enum):
    DUCKDB = "duckdb"
    TRINO = "trino"


def mesh_from_settings(actor: str | None = None) -> Any:
    """The platform, from the settings of this process (the CLI is an edge), optionally acting as ``actor``
    (with that identity's credentials when a credentials file is configured)."""
    from datamesh.platform import Mesh
    from datamesh.settings import get_settings

    settings = get_settings()
    return Mesh.from_settings(settings if actor is None or actor == settings.actor else settings.as_actor(actor))
