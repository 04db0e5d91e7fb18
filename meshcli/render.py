"""Terminal output of the `mesh` CLI: text, never markup; tables; machine formats when asked.

Anything printed may carry user data (names, types like ``timestamp[ns]``,
values like ``[/x]``, control characters): it is printed as text with control
characters escaped. Styling goes through ``Text`` objects, never markup strings.
"""

from __future__ import annotations

import json
import sys
import time
from enum import Enum
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console(markup=False, highlight=False)
err_console = Console(stderr=True, markup=False, highlight=False)

# Control characters (ANSI escapes, NUL, C1 codes) in data or names would drive the terminal: shown escaped.
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)] if chr(c) not in "\n\t"}


def clean(text: object) -> str:
    """``text`` safe for a terminal: control characters other than newline and tab are shown as ``\\xNN``."""
    return str(text).translate(_CONTROL)


class OutputFormat(str, Enum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def fail(exc: Exception) -> None:
    err_console.print(Text.assemble(("error: ", "bold red"), clean(exc)), soft_wrap=True)
    raise typer.Exit(code=1)


def progress(message: str) -> None:
    err_console.print(Text.assemble((time.strftime("%H:%M:%S"), "dim"), " ", clean(message)))


def say(*parts: str | tuple[str, str]) -> None:
    """Print one line; plain strings are text, ``(text, style)`` pairs are styled text."""
    console.print(Text.assemble(*[clean(p) if isinstance(p, str) else (clean(p[0]), p[1]) for p in parts]),
                  soft_wrap=True)


def print_rows(columns: list[str], rows: list[tuple[Any, ...]], fmt: OutputFormat, title: str | None = None) -> None:
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


def print_table(title: str, columns: list[str], rows: list[list[str]], *, right: set[str] | None = None) -> None:
    """A titled table of already formatted cells (numbers right-aligned when named in ``right``)."""
    table = Table(title=Text(clean(title)))
    for c in columns:
        table.add_column(Text(clean(c)), justify="right" if right and c in right else "left")
    for r in rows:
        table.add_row(*[Text(clean(v)) for v in r])
    console.print(table)
