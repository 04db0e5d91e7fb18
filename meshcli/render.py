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
from rich import box
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


def human_bytes(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def age(seconds: float | None) -> str:
    """A short age: ``45s``, ``12m``, ``3h``, ``2d``."""
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{max(seconds, 0):.0f}s"


def milliseconds(ms: float | None) -> str:
    """A short duration: ``0.35 ms``, ``12.3 ms``, ``450 ms``, ``2.50 s``, ``1,000 s``."""
    if ms is None:
        return ""
    if ms >= 1000:
        seconds = ms / 1000
        return f"{seconds:,.0f} s" if seconds >= 100 else f"{seconds:.2f} s"
    if ms >= 100:
        return f"{ms:.0f} ms"
    return f"{ms:.1f} ms" if ms >= 1 else f"{ms:.2g} ms"


def cell(value: Any) -> str:
    """One value as table text: floats to 6 significant digits, no 16-digit noise; None as empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return format(value, ".6g")
    return clean(value)


def resolve_format(fmt: OutputFormat | None) -> OutputFormat:
    """The output format: as asked, else a table on a terminal and CSV when piped (for other programs)."""
    if fmt is not None:
        return fmt
    return OutputFormat.TABLE if console.is_terminal else OutputFormat.CSV


def print_rows(columns: list[str], rows: list[tuple[Any, ...]], fmt: OutputFormat | None,
               title: str | None = None, *, optional: tuple[str, ...] = ()) -> None:
    """Rows as a table, CSV or JSON.

    A table never splits a value over lines (an id like C00002514 stays whole):
    when it would not fit the terminal, the ``optional`` columns are left out
    (with a note), and if it still does not fit, records print vertically.
    """
    fmt = resolve_format(fmt)
    if fmt is OutputFormat.JSON:
        typer.echo(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=str, indent=2))
        return
    if fmt is OutputFormat.CSV:
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
        return
    cells = [[cell(v) for v in r] for r in rows]
    keep = list(range(len(columns)))

    def width(indices: list[int]) -> int:
        natural = [max([len(clean(columns[i])), *(len(r[i]) for r in cells)]) for i in indices]
        return sum(natural) + 3 * len(indices) - 1  # padding and the gaps of box.SIMPLE_HEAD

    hidden = []
    for name in optional:
        if width(keep) <= console.width or name not in columns:
            break
        keep.remove(columns.index(name))
        hidden.append(name)
    if width(keep) > console.width and len(keep) > 1:
        _print_vertical(columns, cells, title)
        return
    table = Table(title=None if title is None else Text(clean(title)), show_lines=False, box=box.SIMPLE_HEAD,
                  pad_edge=False)
    for i in keep:
        table.add_column(Text(clean(columns[i])), no_wrap=True)
    for r in cells:
        table.add_row(*[Text(r[i]) for i in keep])
    console.print(table)
    if hidden:
        console.print(Text(f"(column {', '.join(hidden)} left out to fit {console.width} characters; "
                           "widen the terminal or use --format csv)", style="dim"))


def _print_vertical(columns: list[str], cells: list[list[str]], title: str | None) -> None:
    """One block per record (``column: value``), like psql's expanded display, for wide results."""
    if title:
        console.print(Text(clean(title), style="italic"))
    width = max(len(clean(c)) for c in columns)
    for i, r in enumerate(cells, 1):
        console.print(Text(f"-[ record {i} ]" + "-" * max(0, min(console.width, 60) - 14), style="dim"))
        for c, v in zip(columns, r, strict=True):
            console.print(Text.assemble((f"{clean(c):<{width}}", "bold"), " | ", v), soft_wrap=True)


def print_table(title: str, columns: list[str], rows: list[list[str]], *, right: set[str] | None = None) -> None:
    """A titled table of already formatted cells (numbers right-aligned when named in ``right``)."""
    table = Table(title=Text(clean(title)))
    for c in columns:
        table.add_column(Text(clean(c)), justify="right" if right and c in right else "left")
    for r in rows:
        table.add_row(*[Text(clean(v)) for v in r])
    console.print(table)


def metric_cells(row: dict[str, Any], metrics: list[str]) -> list[str]:
    return [f"{row[m]:.4f}" if isinstance(row.get(m), int | float) else "" for m in metrics]


class StepLines:
    """A run's progress on a terminal: one line per finished step with its time, warnings as they
    come, and on an interactive terminal a live line with the running step, its latest message
    and the elapsed time (a listener of :mod:`orchestration.progress`)."""

    def __init__(self, out: Console) -> None:
        self.out = out
        self.started: dict[str, float] = {}
        self.status = out.status("starting", spinner="dots") if out.is_terminal else None

    def __enter__(self) -> StepLines:
        if self.status is not None:
            self.status.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.status is not None:
            self.status.stop()

    def say(self, message: str) -> None:
        self.out.print(Text.assemble((time.strftime("%H:%M:%S"), "dim"), " ", clean(message)), soft_wrap=True)

    def _live(self, step: str, text: str = "") -> None:
        if self.status is not None:
            elapsed = time.monotonic() - self.started.get(step, time.monotonic())
            self.status.update(Text(clean(f"{step} {elapsed:4.0f}s {text}"[:self.out.width - 4]), overflow="crop"))

    def step_started(self, step: str) -> None:
        self.started[step] = time.monotonic()
        self._live(step)

    def step_finished(self, step: str, seconds: float, error: str | None) -> None:
        self.started.pop(step, None)
        if error is None:
            self.out.print(Text.assemble((time.strftime("%H:%M:%S"), "dim"), "   ", ("ok", "green"),
                                         f" {clean(step)} ", (f"{seconds:.1f}s", "dim")), soft_wrap=True)
        else:
            first = clean(error).splitlines()[0] if error.strip() else "failed"
            self.out.print(Text.assemble((time.strftime("%H:%M:%S"), "dim"), "   ", ("FAILED", "bold red"),
                                         f" {clean(step)} after {seconds:.1f}s: {first}"), soft_wrap=True)

    def message(self, step: str | None, level: int, text: str) -> None:
        if level >= 30:  # logging.WARNING: a person should see it now
            self.out.print(Text.assemble((time.strftime("%H:%M:%S"), "dim"), "   ", ("warning", "yellow"),
                                         f" {clean(step or '')}: {clean(text)}"), soft_wrap=True)
        elif step is not None:
            self._live(step, text)


def print_demo_summary(summary: dict[str, Any]) -> None:
    """The demo's closing summary: products, the model comparison, the champion, what next (the step
    times were printed as the steps finished)."""
    print_table(f"Data products in {summary['lake']}", ["domain", "product", "version", "rows"],
                [[r["domain"], r["product"], str(r["version"]), f"{r['rows']:,}"] for r in summary["products"]],
                right={"version", "rows"})
    for product, model in summary.get("models", {}).items():
        metrics = model.get("metrics", [model.get("primary_metric", "roc_auc")])
        print_table(f"Model zoo on {product} ({model.get('task', '')}, cross-validated)", ["candidate", *metrics],
                    [[str(row["candidate"]), *metric_cells(row, metrics)]
                     for row in model.get("comparison", []) if row.get("status") == "ok"], right=set(metrics))
        threshold = model.get("threshold")
        decision = f", decision threshold {threshold:.3f}" if isinstance(threshold, int | float) else ""
        say(f"champion of {product}: ", (str(model["candidate"]), "bold"),
            f" (model v{model['champion_version']}){decision}")
    peak = summary["peak_rss_mib"]
    say(("done", "green"), f" in {summary['wall_seconds']:.0f}s for {summary['customers']:,} customers; "
        f"peak memory {peak['this_process']:,} MiB (largest child process {peak['largest_child']:,} MiB)")
    say("next: ", ('mesh query "select * from retention.churn_predictions order by probability desc limit 10"',
                   "bold"), "  or  ", ("make ui", "bold"))
    if summary.get("dagster_home"):
        say(f"the UI (make ui, http://127.0.0.1:3000) shows this run ({summary.get('run_id', '')[:8]}) from "
            f"{summary['dagster_home']}: open Lineage first, then a product's Checks tab and the model's plots.")
