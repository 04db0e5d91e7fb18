"""Background processes: pid files, spawning, and stopping by PID (never by name).

A service is found again from its pid file, and only counts as running while
that pid is alive and its command line still names the expected program (a
guard against recycled pids). Stopping signals the pid's process group.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from nativestack.defaults import HOST

__all__ = [
    "LOG_TAIL_LINES",
    "alive",
    "file_lock",
    "is_zombie",
    "log_tail",
    "port_free",
    "read_pid",
    "spawn",
    "terminate",
]

LOG_TAIL_LINES = 30
"""How many last lines of a log an error message shows."""


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the ``with`` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (reaping it first if it is our exited child)."""
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not is_zombie(pid)


def is_zombie(pid: int) -> bool:
    """True when every thread of ``pid`` has exited and only its exit status is left.

    A JVM's main thread may show state ``Z`` while its other threads still
    shut down, so all of ``/proc/<pid>/task/*`` are checked, not only the leader.
    """
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False  # no /proc (not Linux) or no such process
    for task in tasks:
        try:
            state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            return False
    return True


def read_pid(path: Path, expect_in_cmdline: str) -> int | None:
    """The pid in ``path`` if that process still runs the expected program."""
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if not alive(pid):
        return None
    with contextlib.suppress(OSError):  # guard against a recycled pid
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        if expect_in_cmdline not in cmdline:
            return None
    return pid


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_file: Path,
    pid_file: Path,
    cwd: Path,
    user: int | None = None,
    group: int | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start a background process in its own session; returns it and its log offset.

    With ``user`` (and ``group``), a uid (gid) to run it as instead of ours
    (needs root); its supplementary groups are dropped.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        log.write(f"\n===== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {argv[0]} =====\n".encode())
        log.flush()
        offset = log.tell()
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
            close_fds=True,
            user=user,
            group=group,
            extra_groups=None if user is None else [],
            umask=-1 if user is None else 0o077,
        )
    pid_file.write_text(f"{process.pid}\n")
    return process, offset


def terminate(pid: int, timeout: float, *, signum: int = signal.SIGTERM, group: bool = True) -> None:
    """Send ``signum`` to the process group of ``pid`` (only to ``pid`` if not ``group``), wait, then SIGKILL the group.

    A PostgreSQL server gets SIGINT (fast shutdown) on its postmaster alone,
    which then stops its own backends.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            break
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # also stray children of the group
    deadline = time.monotonic() + 5.0
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def log_tail(log_file: Path, offset: int = 0, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines written after ``offset``, indented, led by earlier ``ERROR`` lines."""
    try:
        with log_file.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    all_lines = text.splitlines()
    tail = all_lines[-lines:]
    if not tail:
        return "    (log is empty)"
    # A Java stack trace can push the one line that explains the failure out of the tail.
    errors = [line for line in all_lines[:-lines] if "ERROR" in line][-5:]
    shown = [*errors, "..."] if errors else []
    return "\n".join("    " + line for line in [*shown, *tail])


def port_free(port: int) -> bool:
    """Whether ``port`` on :data:`~nativestack.defaults.HOST` can be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True
