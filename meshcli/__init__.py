"""``mesh``: the command line over the platform, the ML layer and the orchestration.

Each command module registers its commands on the one Typer app; importing
this package builds the whole CLI. Heavy libraries are imported inside the
commands that need them, so ``mesh --help`` stays fast.
"""

from __future__ import annotations

from meshcli import contracts, ml, policy, products, stack  # noqa: F401 - registers the commands
from meshcli.app import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover
    app()
