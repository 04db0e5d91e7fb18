"""Run progress for a terminal: step events of an in-process run, handed to a listener.

Dagster's own console logger prints every engine event with the run id; a person
at a terminal wants one line per step with its time, and the full log in a file.
``progress_logger`` is a Dagster logger every job of the code location has; it
does nothing unless a listener is installed with :func:`listening` in the same
process (``mesh demo`` does), so UI and daemon runs are unaffected.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Protocol

import dagster as dg


class RunListener(Protocol):
    def step_started(self, step: str) -> None: ...

    def step_finished(self, step: str, seconds: float, error: str | None) -> None: ...

    def message(self, step: str | None, level: int, text: str) -> None: ...


_listener: RunListener | None = None


@contextlib.contextmanager
def listening(listener: RunListener) -> Iterator[None]:
    """Hand this process's run events to ``listener`` while the block runs."""
    global _listener  # noqa: PLW0603 (one in-process run at a time; the logger has no other way in)
    previous, _listener = _listener, listener
    try:
        yield
    finally:
        _listener = previous


def _error_message(event: object) -> str:
    data = getattr(event, "event_specific_data", None)
    error = getattr(data, "error", None)
    cause = error.cause if error is not None and error.cause is not None else error
    return cause.message.strip() if cause is not None else "failed"


class _Forward(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        listener = _listener
        meta = getattr(record, "dagster_meta", None)
        if listener is None or not isinstance(meta, dict):
            return
        event = meta.get("dagster_event")
        step = meta.get("step_key")
        if event is None:
            listener.message(step, record.levelno, str(meta.get("orig_message", record.getMessage())))
            return
        kind = event.event_type_value
        if kind == "STEP_START":
            listener.step_started(event.step_key or "?")
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
            duration = getattr(event.event_specific_data, "duration_ms", None) or 0
            listener.step_finished(event.step_key or "?", duration / 1000,
                                   None if kind == "STEP_SUCCESS" else _error_message(event))


@dg.logger(description="Step progress for `mesh demo`'s terminal (does nothing in UI and daemon runs).")
def progress_logger(_init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger("mesh.progress", level=logging.DEBUG)  # step events are DEBUG records
    logger.addHandler(_Forward())
    return logger


@contextlib.contextmanager
def output_to(log_path: Path) -> Iterator[IO[str]]:
    """Send this process's stdout and stderr (file descriptors 1 and 2, so subprocesses, Dagster's
    log capture and dbt's output too) to ``log_path`` while the block runs; yields a stream to the
    original stderr for the lines a person should see."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    with log_path.open("a") as log:  # opened first: a log that cannot be opened leaks no descriptor
        saved = {fd: os.dup(fd) for fd in (1, 2)}
        terminal = os.fdopen(os.dup(saved[2]), "w", buffering=1)
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield terminal
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            terminal.close()
