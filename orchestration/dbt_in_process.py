"""dbt inside the Dagster step's own process, behind dagster-dbt's subprocess interface.

dagster-dbt starts ``dbt`` as a subprocess and reads dbt's JSON log lines from
its stdout. That subprocess pays, on every build, a Python start-up, dbt's
imports and the dbt plugin's imports of pyiceberg and SQLAlchemy: about 3 s
of a 7 s build at demo scale, all of it already in memory in the Dagster
process (the code location imports dbt; the source assets imported the
catalog). :class:`InProcessDbt` runs the same command through dbt's
programmatic entry point (``dbtRunner``) on a thread of this process and hands
dagster-dbt what a ``subprocess.Popen`` would: ``args``, a ``stdout`` of JSON
log lines (each event as dbt's own JSON logger writes it, secrets scrubbed),
``wait``, ``returncode`` and ``send_signal``. dagster-dbt turns those lines
into Dagster events exactly as it does for the subprocess.

What the subprocess had for free and is done here instead (decision 0042):

* **Its working folder.** dbt resolves the profile's relative paths (its
  DuckDB file, the staging folder) against the current folder: the build
  runs with the project folder as the process's current folder, restored after.
  One in-process build runs at a time (a lock).
* **Its settings.** dagster-dbt's ``DBT_*`` environment for the subprocess
  becomes command-line flags (``--target-path``, ``--log-path``, ...);
  nothing is written to this process's environment.
* **Its end.** dbt-duckdb keeps its DuckDB environment (the database and the
  plugins, which read the run's context when they start) in a class attribute
  for the life of the process. Each build closes it, so the next build opens
  its own with its own run context, and the DuckDB file is released for the
  asset to read the views' column types, as it was when the subprocess exited.
* **Its console.** dbt's console logger is off (dagster-dbt re-emits every
  event into the compute log); dbt's debug log file still goes to the run's
  target folder. Events are passed on from the level dbt's console would
  print (info; ``--debug``, ``--quiet``, ``--log-level`` or ``$DBT_LOG_LEVEL``
  change it, as they would for the subprocess).
* **Its ^C.** dagster-dbt forwards a run's termination as SIGINT:
  :meth:`InProcessDbt.send_signal` cancels the queries dbt has open (dbt's
  own adapter call, as on ^C) and raises KeyboardInterrupt once in dbt's main
  thread, which then stops its nodes and cleans up as the CLI does.
  ``wait(timeout)`` raises ``subprocess.TimeoutExpired`` as ``Popen`` does.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

#: Exit codes of the dbt CLI: success, a node failed, dbt itself failed.
SUCCESS, FAILURE, ERROR = 0, 1, 2
_LEVELS = ("debug", "info", "warn", "error")
_ONE_BUILD_AT_A_TIME = threading.Lock()
#: How long a build waits for an earlier one in this process (one still stopping after an interrupt).
LOCK_WAIT_S = 120.0
_END = object()


def console_level(args: Sequence[str]) -> str:
    """The lowest level dbt's console would print for these arguments: ``--debug``/``-d``, ``--quiet``/``-q``,
    ``--log-level X`` (or ``--log-level=X``), else ``$DBT_LOG_LEVEL``, else info."""
    level = os.environ.get("DBT_LOG_LEVEL", "info").lower()
    for i, arg in enumerate(args):
        if arg == "--log-level" and i + 1 < len(args):
            level = args[i + 1].lower()
        elif arg.startswith("--log-level="):
            level = arg.split("=", 1)[1].lower()
    if any(a in ("--debug", "-d") for a in args):
        level = "debug"
    if any(a in ("--quiet", "-q") for a in args):
        level = "error"
    return level if level in (*_LEVELS, "none") else "info"


def shown_levels(level: str) -> frozenset[str]:
    return frozenset() if level == "none" else frozenset(_LEVELS[_LEVELS.index(level):])


class _Lines:
    """The ``stdout`` of an in-process dbt: its JSON log lines (bytes), until the build ends."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self.closed = False

    def put(self, line: bytes) -> None:
        self._queue.put(line)

    def end(self) -> None:
        self._queue.put(_END)

    def __iter__(self) -> Iterator[bytes]:
        while not self.closed:
            line = self._queue.get()
            if line is _END:
                self.closed = True
                return
            yield line

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True


class InProcessDbt:
    """One dbt command run by ``dbtRunner`` on a thread of this process, seen as a ``subprocess.Popen``.

    ``args`` are dbt's arguments without the executable (``["build", ...]``);
    ``cwd`` is the folder dbt runs in (the project folder); ``levels`` the event
    levels passed on (default info and above; see :func:`console_level`). Errors always are.
    """

    def __init__(self, args: Sequence[str], cwd: Path, levels: frozenset[str] | None = None) -> None:
        self.args = ["dbt", *args]
        self.cwd = Path(cwd)
        self.returncode: int | None = None
        self.exception: BaseException | None = None
        self.stdout = _Lines()
        self._levels = shown_levels("info") if levels is None else levels
        self._secrets: list[str] = []
        self._errors_seen = False
        self._cancelled = threading.Event()
        self._interrupted = False
        self._in_dbt = False
        self._signal_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, args=(list(args),), name="dbt-in-process", daemon=True)
        self._thread.start()

    def _run(self, args: list[str]) -> None:
        code = ERROR
        try:
            if not _ONE_BUILD_AT_A_TIME.acquire(timeout=LOCK_WAIT_S):
                raise RuntimeError(f"another dbt build in this process has not ended after {LOCK_WAIT_S:g} s "
                                   "(one stopping after an interrupt?); try again when it has")
            try:
                previous = os.getcwd()
                os.chdir(self.cwd)
                try:
                    close_dbt_duckdb_environment()  # one left by a dbtRunner call of someone else's
                    with self._signal_lock:
                        self._in_dbt = True
                    try:
                        code = self._invoke(args)
                    finally:
                        with self._signal_lock:
                            self._in_dbt = False
                            if self._interrupted:  # one sent too late for dbt must not hit the clean-up
                                _async_raise(threading.get_ident(), None)
                finally:
                    try:
                        close_dbt_duckdb_environment()
                        release_dbt_event_manager()
                    finally:
                        os.chdir(previous)  # dbt itself moves to the project folder and stays there
            finally:
                _ONE_BUILD_AT_A_TIME.release()
        except BaseException as exc:  # noqa: BLE001 (reported as dbt's own failure, never lost on a thread)
            self.exception = exc
            self._error(f"dbt could not run in-process: {type(exc).__name__}: {exc}")
        finally:
            self.returncode = code
            self.stdout.end()

    def _invoke(self, args: list[str]) -> int:
        from dbt.cli.main import dbtRunner
        from dbt_common.events.functions import msg_to_json
        from dbt_common.exceptions.base import env_secrets

        self._secrets = env_secrets()  # DBT_ENV_SECRET_* values, as dbt's own loggers scrub them

        def forward(msg: Any) -> None:  # noqa: ANN401 (dbt's EventMsg)
            if self._cancelled.is_set() and threading.current_thread() is self._thread:
                with self._signal_lock:  # once, shared with send_signal: dbt's own clean-up fires events too
                    raise_now, self._interrupted = not self._interrupted, True
                if raise_now:
                    raise KeyboardInterrupt
            if msg.info.level == "error":
                self._errors_seen = True
            if msg.info.level in self._levels or msg.info.level == "error":
                self.stdout.put(self._scrubbed(msg_to_json(msg)).encode())

        result = dbtRunner(callbacks=[forward]).invoke(args)
        if result.exception is not None:
            self.exception = result.exception
            if isinstance(result.exception, Exception) and not self._errors_seen:
                self._error(f"dbt failed: {result.exception}")  # a usage error: dbt fired no event for it
            return ERROR
        return SUCCESS if result.success else FAILURE

    def _scrubbed(self, text: str) -> str:
        from dbt_common.exceptions.base import scrub_secrets

        return str(scrub_secrets(text, self._secrets))

    def _error(self, message: str) -> None:
        self.stdout.put(_error_line(self._scrubbed(message)))

    def wait(self, timeout: float | None = None) -> int:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def poll(self) -> int | None:
        return None if self._thread.is_alive() else self.returncode

    def send_signal(self, sig: int) -> None:
        """SIGINT or SIGTERM: as ^C at a terminal. The queries dbt has open are cancelled now, and dbt's main
        thread gets KeyboardInterrupt (at its next Python instruction, or its next event), stopping its nodes."""
        if sig not in (signal.SIGINT, signal.SIGTERM) or not self._thread.is_alive():
            return
        if self._cancelled.is_set():
            return
        self._cancelled.set()
        # A query that had not reached DuckDB when cancelled would run on: cancel again until dbt has stopped.
        threading.Thread(target=self._keep_cancelling, name="dbt-in-process-cancel", daemon=True).start()
        with self._signal_lock:
            if self._in_dbt and not self._interrupted and self._thread.ident is not None:
                self._interrupted = True
                _async_raise(self._thread.ident, KeyboardInterrupt)

    def _keep_cancelling(self, every_s: float = 0.25, for_s: float = LOCK_WAIT_S) -> None:
        deadline = time.monotonic() + for_s
        while self._thread.is_alive() and time.monotonic() < deadline:
            _cancel_open_queries()
            self._thread.join(every_s)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def _async_raise(thread_id: int, exc: type[BaseException] | None) -> None:
    """Raise ``exc`` in another thread at its next Python instruction (None: withdraw one not yet raised).

    CPython's ``PyThreadState_SetAsyncExc``: the only way to interrupt a thread that waits in Python code
    (dbt's main thread waits for its node queue, where no event fires).
    """
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                               None if exc is None else ctypes.py_object(exc))


def _cancel_open_queries() -> None:
    """dbt's own cancellation on ^C: every registered adapter cancels its open connections' queries."""
    try:
        from dbt.adapters.factory import FACTORY
    except ImportError:  # pragma: no cover
        return
    for adapter in list(FACTORY.adapters.values()):
        try:
            adapter.cancel_open_connections()
        except Exception:  # noqa: BLE001, S112 (best effort, as dbt's own: the interrupt still stops the nodes)
            continue


def release_dbt_event_manager() -> None:
    """Drop dbt's loggers and callbacks (its open ``dbt.log`` and this build's queue) until the next invocation."""
    from dbt_common.events.event_manager_client import cleanup_event_logger

    cleanup_event_logger()


def _error_line(message: str) -> bytes:
    import orjson

    return orjson.dumps({"info": {"level": "error", "msg": message, "name": "MeshInProcessError"}, "data": {}})


def close_dbt_duckdb_environment() -> None:
    """Close dbt-duckdb's process-wide DuckDB environment (its database and plugins), if it has one.

    dbt-duckdb keeps it in ``DuckDBConnectionManager._ENV`` and only drops it at
    exit; its own ``close_all_connections`` forgets it without closing it.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover (dbt-duckdb is a dependency)
        return
    with DuckDBConnectionManager._LOCK:  # noqa: SLF001 (see the docstring; checked by tests)
        environment, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None  # noqa: SLF001
    if environment is not None:
        environment.close()


def dbt_flags(args: Sequence[str], *, target_path: Path, project_dir: Path, profiles_dir: str | None,
              indirect_selection: str | None) -> list[str]:
    """The flags that stand for dagster-dbt's ``DBT_*`` environment of a dbt subprocess, for ``args``' subcommand.

    As with the environment, the caller's own flags win: a flag ``args`` already
    has is not added, and only flags the subcommand accepts are (``dbt deps`` has
    no ``--target-path``). The console is always off (the events are forwarded);
    a ``--log-level`` of the caller's only chooses which events are.
    """
    from dbt.cli.main import cli

    command = next((a for a in args if not a.startswith("-") and a in cli.commands), None)
    accepted: set[str] = set()
    if command is not None:
        for param in cli.commands[command].params:
            accepted.update(getattr(param, "opts", ()), getattr(param, "secondary_opts", ()))
    given = {a.split("=", 1)[0] for a in args if a.startswith("-")}
    wanted: list[tuple[str, str | None]] = [
        ("--target-path", os.fspath(target_path)), ("--log-path", os.fspath(target_path)),
        ("--project-dir", os.fspath(project_dir)), ("--log-level-file", "debug"),
        ("--no-send-anonymous-usage-stats", None)]
    if profiles_dir:
        wanted.append(("--profiles-dir", os.fspath(profiles_dir)))
    if indirect_selection:
        wanted.append(("--indirect-selection", indirect_selection))
    flags: list[str] = []
    for name, value in wanted:
        if name in accepted and name not in given and not (name.startswith("--no-") and f"--{name[5:]}" in given):
            flags += [name] if value is None else [name, value]
    if "--log-level" in accepted:
        flags += ["--log-level", "none"]  # after the caller's: the last one wins, and the console stays off
    return flags
