"""`mesh ui` starts the code server, webserver and daemon and stops all of them on SIGTERM or Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestration.ui import LOCATION_NAME, free_port, location_status

DEADLINE = 240.0


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigterm", "ctrl-c", "supervisor-killed"])
def test_mesh_ui_serves_the_code_location_and_stops_cleanly(tmp_path: Path, how: str) -> None:
    port = free_port()
    log = tmp_path / "out.log"
    env = {**os.environ, "MESH_LAKE_URL": str(tmp_path / "lake")}
    with log.open("w") as out:
        ui = subprocess.Popen([sys.executable, "-m", "meshcli", "ui", "--port", str(port),
                               "--dagster-home", str(tmp_path / "home")],
                              stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    spawned: set[int] = set()
    try:
        end = time.monotonic() + DEADLINE
        while "ready in" not in log.read_text():
            assert ui.poll() is None, f"mesh ui exited early:\n{log.read_text()}"
            assert time.monotonic() < end, f"mesh ui not ready after {DEADLINE:.0f} s:\n{log.read_text()}"
            time.sleep(0.5)
        assert location_status(f"http://127.0.0.1:{port}") == ("LOADED", None)
        text = log.read_text()
        assert "127.0.0.1" in text and "schedules and sensors are off" in text
        assert "SupersessionWarning" not in text and "dagster dev" not in text
        workspace = (tmp_path / "home" / "workspace.yaml").read_text()
        assert LOCATION_NAME in workspace and "127.0.0.1" in workspace
        spawned = _descendants(ui.pid)
        assert len(spawned) >= 3, spawned  # code server (and its server), webserver, daemon
        if how == "supervisor-killed":  # no chance to clean up: its children still get SIGTERM
            direct = {p for p in spawned if Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1]
                      == str(ui.pid)}
            os.kill(ui.pid, signal.SIGKILL)
            ui.wait()
            end = time.monotonic() + 60
            while any(_alive(p) for p in direct) and time.monotonic() < end:
                time.sleep(0.2)
            assert not [p for p in direct if _alive(p)], "children outlived a killed supervisor"
            return
        if how == "sigterm":
            ui.send_signal(signal.SIGTERM)  # the process alone, as a service manager would
        else:
            os.killpg(ui.pid, signal.SIGINT)  # the terminal's whole foreground group
        assert ui.wait(timeout=90) == 0, log.read_text()
        end = time.monotonic() + 30
        while any(_alive(p) for p in spawned) and time.monotonic() < end:
            time.sleep(0.2)
        assert not [p for p in spawned if _alive(p)], f"left running after {how}"
        assert "stopping the Dagster UI" in log.read_text()
    finally:
        if ui.poll() is None:
            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait()
        for pid in [p for p in spawned if _alive(p)]:  # whatever a failed run left behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
