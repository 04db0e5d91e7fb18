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
  target folder. Only events at info level or above are passed on, as dbt's
  console logger would print them.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

#: Exit codes of the dbt CLI: success, a node failed, dbt itself failed.
SUCCESS, FAILURE, ERROR = 0, 1, 2
_LEVELS_SHOWN = frozenset({"info", "warn", "error"})
_ONE_BUILD_AT_A_TIME = threading.Lock()
_END = object()


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
    ``cwd`` is the folder dbt runs in (the project folder).
    """

    def __init__(self, args: Sequence[str], cwd: Path) -> None:
        self.args = ["dbt", *args]
        self.cwd = Path(cwd)
        self.returncode: int | None = None
        self.exception: BaseException | None = None
        self.stdout = _Lines()
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(list(args),), name="dbt-in-process", daemon=True)
        self._thread.start()

    def _run(self, args: list[str]) -> None:
        code = ERROR
        try:
            with _ONE_BUILD_AT_A_TIME:
                previous = os.getcwd()
                os.chdir(self.cwd)
                try:
                    close_dbt_duckdb_environment()  # one left by a dbtRunner call of someone else's
                    code = self._invoke(args)
                finally:
                    close_dbt_duckdb_environment()
                    os.chdir(previous)
        except BaseException as exc:  # noqa: BLE001 (reported as dbt's own failure, never lost on a thread)
            self.exception = exc
            self.stdout.put(_error_line(f"dbt could not run in-process: {type(exc).__name__}: {exc}"))
        finally:
            self.returncode = code
            self.stdout.end()

    def _invoke(self, args: list[str]) -> int:
        from dbt.cli.main import dbtRunner
        from dbt_common.events.functions import msg_to_json
        from dbt_common.exceptions.base import env_secrets, scrub_secrets

        secrets = env_secrets()  # DBT_ENV_SECRET_* values, as dbt's own loggers scrub them

        def forward(msg: Any) -> None:  # noqa: ANN401 (dbt's EventMsg)
            if self._cancelled.is_set() and threading.current_thread() is self._thread:
                # dbt's main thread stops its nodes and cancels their queries on KeyboardInterrupt, as on ^C.
                raise KeyboardInterrupt
            if msg.info.level in _LEVELS_SHOWN:
                self.stdout.put(str(scrub_secrets(msg_to_json(msg), secrets)).encode())

        result = dbtRunner(callbacks=[forward]).invoke(args)
        if result.exception is not None:
            self.exception = result.exception
            if isinstance(result.exception, KeyboardInterrupt) or not isinstance(result.exception, Exception):
                return ERROR
            self.stdout.put(_error_line(f"dbt failed: {result.exception}"))
            return ERROR
        return SUCCESS if result.success else FAILURE

    def wait(self, timeout: float | None = None) -> int | None:
        self._thread.join(timeout)
        return self.returncode

    def poll(self) -> int | None:
        return None if self._thread.is_alive() else self.returncode

    def send_signal(self, sig: int) -> None:
        """SIGINT or SIGTERM: dbt stops at its next event (as on ^C), cancelling what it runs."""
        if sig in (signal.SIGINT, signal.SIGTERM):
            self._cancelled.set()

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


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


def dbt_flags(*, target_path: Path, project_dir: Path, profiles_dir: str | None,
              indirect_selection: str | None) -> list[str]:
    """The flags that stand for dagster-dbt's ``DBT_*`` environment of a dbt subprocess."""
    flags = ["--target-path", os.fspath(target_path), "--log-path", os.fspath(target_path),
             "--project-dir", os.fspath(project_dir), "--log-level", "none", "--log-level-file", "debug",
             "--no-send-anonymous-usage-stats"]
    if profiles_dir:
        flags += ["--profiles-dir", os.fspath(profiles_dir)]
    if indirect_selection:
        flags += ["--indirect-selection", indirect_selection]
    return flags
