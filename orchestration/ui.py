"""`mesh ui`: the Dagster UI and daemon on the demo's instance, as one process that stops cleanly.

``dagster dev`` does the same job but is superseded (it warns so at every start),
starts a code server each for the webserver and the daemon on some versions, and
ignores SIGTERM (a ``make ui`` in a terminal multiplexer or a CI job could not be
stopped). Here one supervisor starts:

- one code server (``dagster code-server start``) that loads the code location once,
- the webserver and the daemon, both reading that code server through a workspace
  file written into the instance folder,

each in its own process group, with the children's logs in ``<home>/ui.log``.
SIGTERM, SIGINT or SIGHUP stops all three (and whatever they started, such as a
run in progress) and waits for them; a child that dies takes the others down.
Everything listens on loopback only: the UI has no login.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from datamesh.errors import PlatformError

#: Name of the code location in the UI.
LOCATION_NAME = "data_mesh"
LOOPBACK = "127.0.0.1"
#: How long a child gets to stop on SIGTERM before it is killed.
STOP_GRACE_SECONDS = 20.0


#: Run in the child before the real command: asks for SIGTERM when the supervisor dies (even by
#: SIGKILL; PR_SET_PDEATHSIG survives exec), then execs ``python -m <args>``. A preexec_fn would
#: run Python between fork and exec, which can deadlock or abort when the parent has threads.
_DIE_WITH_PARENT = ("import ctypes, os, signal, sys\n"
                    "try:\n    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG\n"
                    "except (OSError, AttributeError):\n    pass\n"
                    "if os.getppid() != int(sys.argv[1]):\n    sys.exit(1)  # the supervisor died before prctl\n"
                    "os.execv(sys.executable, [sys.executable, '-m', *sys.argv[2:]])\n")


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _code_server_loaded(port: int) -> bool:
    """Whether the code server answers with the repositories of a loaded code location."""
    from dagster._grpc.client import DagsterGrpcClient

    try:
        DagsterGrpcClient(port=port, host=LOOPBACK).list_repositories()
    except Exception:  # noqa: BLE001 (any failure means not loaded yet; a child's exit is checked apart)
        return False
    return True


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (a loopback URL we built)
            return response.status == 200
    except OSError:
        return False


_LOCATIONS_QUERY = (b'{"query": "{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus '
                    b'locationOrLoadError { __typename ... on PythonError { message } } } } } }"}')


def location_status(url: str) -> tuple[str, str | None]:
    """(load status, load error message) of our code location as the webserver sees it."""
    import json

    request = urllib.request.Request(f"{url}/graphql", data=_LOCATIONS_QUERY,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (loopback)
            body = json.loads(response.read())
    except (OSError, ValueError):
        return "UNREACHABLE", None
    entries = (body.get("data") or {}).get("workspaceOrError", {}).get("locationEntries") or []
    for entry in entries:
        if entry.get("name") == LOCATION_NAME:
            error = entry.get("locationOrLoadError") or {}
            return entry.get("loadStatus", "?"), error.get("message") if error.get("__typename") == "PythonError" else None
    return "ABSENT", None


def workspace_yaml(code_port: int) -> str:
    return (f"# Written by `mesh ui`: the webserver and the daemon share one code server.\n"
            f"load_from:\n  - grpc_server:\n      host: {LOOPBACK}\n      port: {code_port}\n"
            f"      location_name: {LOCATION_NAME}\n")


@dataclass
class Supervisor:
    """Starts the three processes, waits for them to be ready and stops them together."""

    home: Path
    port: int
    say: Callable[[str], None] = print
    deadline_seconds: float = 300.0
    children: dict[str, subprocess.Popen] = field(default_factory=dict)
    #: Signals received; the first one ends the wait for readiness and the serving loop.
    signals: list[int] = field(default_factory=list)
    #: Seconds from start to a loaded code location (set by :meth:`start`).
    loaded_seconds: float = 0.0

    @property
    def log_path(self) -> Path:
        return self.home / "ui.log"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _spawn(self, name: str, args: list[str], log) -> None:  # noqa: ANN001
        env = {**os.environ, "DAGSTER_HOME": str(self.home), "DO_NOT_TRACK": "1"}
        self.children[name] = subprocess.Popen(
            [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *args], env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own group: stopping it stops what it started (code servers, runs)
        )

    def _wait(self, what: str, ready: Callable[[], bool]) -> None:
        end = time.monotonic() + self.deadline_seconds
        while not ready():
            if self.signals:
                return
            for name, child in self.children.items():
                if child.poll() is not None:
                    raise PlatformError(f"the Dagster {name} exited with code {child.returncode} while waiting for "
                                        f"{what}; its log is {self.log_path}:\n{self.log_tail()}")
            if time.monotonic() > end:
                raise PlatformError(f"{what} was not ready after {self.deadline_seconds:.0f} s; "
                                    f"see {self.log_path}:\n{self.log_tail()}")
            time.sleep(0.2)

    def _location_loaded(self) -> bool:
        status, error = location_status(self.url)
        if error:
            raise PlatformError(f"the code location failed to load: {error.strip()}\n(full log: {self.log_path})")
        return status == "LOADED"

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self) -> None:
        from orchestration.instance import persistent_instance

        persistent_instance(self.home)  # the instance folder and its dagster.yaml, as `mesh demo` makes them
        if _listening(LOOPBACK, self.port):
            raise PlatformError(f"port {self.port} on {LOOPBACK} is taken (another `mesh ui`?); "
                                "choose another with --port")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        code_port = free_port()
        workspace = self.home / "workspace.yaml"
        workspace.write_text(workspace_yaml(code_port))
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self._spawn("code server", ["dagster", "code-server", "start", "-h", LOOPBACK, "-p", str(code_port),
                                        "-m", "orchestration.definitions", "--location-name", LOCATION_NAME], log)
            self.say(f"loading the code location (full logs: {self.log_path}) ...")
            self._wait("the code location", lambda: _code_server_loaded(code_port))
            self.loaded_seconds = loaded = time.monotonic() - started
            # The webserver and the daemon read the workspace once at start: they start on a loaded code server.
            self._spawn("webserver", ["dagster_webserver", "-h", LOOPBACK, "-p", str(self.port),
                                      "-w", str(workspace)], log)
            self._spawn("daemon", ["dagster._daemon", "run", "-w", str(workspace)], log)
        self._wait("the webserver", lambda: _http_ok(f"{self.url}/server_info"))
        self._wait("the code location", self._location_loaded)
        if self.signals:
            return
        self.say(f"Dagster UI on {self.url} (loopback only: the UI has no login): code location loaded in "
                 f"{loaded:.1f} s, ready in {time.monotonic() - started:.1f} s; Ctrl-C stops it")

    def stop(self) -> None:
        """SIGTERM to every child's group, then SIGKILL to whatever is left after the grace period."""
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
        end = time.monotonic() + STOP_GRACE_SECONDS
        for child in self.children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=max(0.1, end - time.monotonic()))
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)  # the group: a run worker may outlive its parent
            child.wait()

    def run_until_stopped(self) -> int:
        """Serve until a signal or a child's exit; returns the exit code."""
        def on_signal(signum: int, _frame: object) -> None:
            self.signals.append(signum)

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        try:
            self.start()
            while not self.signals:
                dead = [(n, c) for n, c in self.children.items() if c.poll() is not None]
                if dead:
                    name, child = dead[0]
                    self.say(f"the Dagster {name} exited with code {child.returncode}; stopping the others. "
                             f"Log {self.log_path}:\n{self.log_tail()}")
                    return 1
                time.sleep(0.5)
            self.say("stopping the Dagster UI ...")
            return 0
        finally:
            self.stop()
            for s, handler in previous.items():
                signal.signal(s, handler)
