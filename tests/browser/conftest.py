"""Fixtures of the browser tests: a small demo in a temporary lake, the UI on its instance, Chromium.

One demo and one UI serve the whole session (the demo takes about two minutes). Nothing is
set in this process's environment: the demo and the UI get theirs through ``env=``.
Screenshots of every step, the UI's log and the demo's log go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from datamesh.paths import PROJECT_ROOT

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "browser"
DEMO_CUSTOMERS = 600
DEMO_SEED = 7
DEMO_DEADLINE_SECONDS = 900
UI_READY_DEADLINE_SECONDS = 240
STOP_GRACE_SECONDS = 45
LOOPBACK = "127.0.0.1"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
VIEWPORT = {"width": 1600, "height": 1000}
EXPECT_TIMEOUT_MS = 20_000
ACTION_TIMEOUT_MS = 30_000
#: Start-up times of this session's demo and UI (printed at the end of the session).
SESSION_TIMINGS: dict[str, float] = {}


# --- the UI process -------------------------------------------------------------------------------

def ui_command(port: int, dagster_home: Path) -> list[str]:
    """How the tests start the UI: `mesh ui` (webserver + daemon on 127.0.0.1, stops on SIGTERM)."""
    return [sys.executable, "-m", "meshcli", "ui", "--port", str(port), "--dagster-home", str(dagster_home)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return f"({path} not written)"


def stop_process_group(proc: subprocess.Popen, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM to the process group ``proc`` leads, SIGKILL to whatever is left after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    end = time.monotonic() + 10
    while time.monotonic() < end:  # members of the group that outlive its leader
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def subprocess_env(work: Path, dagster_home: Path) -> dict[str, str]:
    """This process's environment without any MESH_* of the developer's, plus the test lake's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESH_") and k != "DAGSTER_HOME"}
    env.update({
        "DAGSTER_HOME": str(dagster_home),
        "MESH_LAKE_URL": str(work / "lake"),
        "MESH_DBT_DUCKDB_PATH": str(work / "dbt.duckdb"),
        "MESH_DBT_STAGING_DIR": str(work / "staging"),
        "DO_NOT_TRACK": "1",
        "PYTHONUNBUFFERED": "1",
    })
    return env


@dataclass
class MeshUI:
    """The running UI on the demo's instance."""

    base_url: str
    dagster_home: Path
    lake_url: str
    log_path: Path
    demo_summary: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base_url + path

    def log_tail(self, chars: int = 4000) -> str:
        parts = [f"--- {self.log_path} (tail) ---\n{tail(self.log_path, chars)}"]
        inner = self.dagster_home / "ui.log"  # `mesh ui` writes its children's logs there
        if inner.exists():
            parts.append(f"--- {inner} (tail) ---\n{tail(inner, chars)}")
        return "\n".join(parts)

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return graphql(self.base_url, query, variables)

    def mesh(self):  # noqa: ANN201
        """The platform on the test lake, as the code location sees it."""
        from datamesh.platform import Mesh
        from datamesh.settings import build_settings

        return Mesh.from_settings(build_settings(lake_url=self.lake_url))

    def instance(self):  # noqa: ANN201
        import dagster as dg

        return dg.DagsterInstance.from_config(str(self.dagster_home))


def graphql(base_url: str, query: str, variables: dict[str, Any] | None = None, timeout: float = 10) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{base_url}/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback URL we built)
        payload = json.loads(response.read())
    if payload.get("errors"):
        raise AssertionError(f"GraphQL errors: {payload['errors']}")
    return payload["data"]


LOCATIONS = "{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus " \
            "locationOrLoadError { __typename ... on PythonError { message } } } } } }"


def ui_ready(base_url: str) -> tuple[bool, str]:
    """(ready, why not): the webserver answers and every code location is LOADED without error."""
    try:
        with urllib.request.urlopen(f"{base_url}/server_info", timeout=3) as response:  # noqa: S310
            if response.status != 200:
                return False, f"server_info answered {response.status}"
        data = graphql(base_url, LOCATIONS, timeout=5)
    except (OSError, ValueError, AssertionError) as exc:
        return False, f"not answering: {exc}"
    entries = (data.get("workspaceOrError") or {}).get("locationEntries") or []
    if not entries:
        return False, "no code location yet"
    for entry in entries:
        error = entry.get("locationOrLoadError") or {}
        if error.get("__typename") == "PythonError":
            raise AssertionError(f"code location {entry['name']} failed to load: {error.get('message')}")
        if entry.get("loadStatus") != "LOADED":
            return False, f"code location {entry['name']} is {entry.get('loadStatus')}"
    return True, ""


# --- session fixtures ---------------------------------------------------------------------------

@pytest.fixture(scope="package")
def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Chromium is not installed: the browser tests drive Debian's /usr/bin/chromium. "
                    "`make test` installs it (apt-get install chromium); never `playwright install`.", pytrace=False)
    return path


@pytest.fixture(scope="package")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@dataclass(frozen=True)
class Expected:
    """What the UI should show, from the code location's own definitions (imported here)."""

    group_sizes: dict[str, int]
    checks: dict[str, set[str]]
    contracts: Any

    def checks_of(self, key: str) -> set[str]:
        return self.checks[key]


@pytest.fixture(scope="package")
def expected() -> Expected:
    # Imported before the demo and the UI start: the import derives the dbt sources and parses the
    # project if needed, once, instead of three processes doing it at the same time.
    from orchestration.definitions import contracts, defs

    graph = defs.resolve_asset_graph()
    sizes: dict[str, int] = {}
    checks: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        sizes[node.group_name] = sizes.get(node.group_name, 0) + 1
        checks[key.to_user_string()] = {c.name for c in graph.get_check_keys_for_assets([key])}
    return Expected(group_sizes=sizes, checks=checks, contracts=contracts)


@pytest.fixture(scope="package")
def mesh_ui(chromium_path: str, artifacts: Path, expected: Expected,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshUI]:
    """A small demo recorded in a fresh instance, and the UI serving that instance."""
    from orchestration.instance import persistent_instance

    work = tmp_path_factory.mktemp("browser-mesh")
    home = work / "dagster_home"
    persistent_instance(home).dispose()  # the folder and its dagster.yaml, as `mesh demo` makes them
    env = subprocess_env(work, home)
    port = free_port()
    ui_log, demo_log = artifacts / "dagster-ui.log", artifacts / "demo.log"
    summary_path = work / "demo-summary.json"
    timings = SESSION_TIMINGS
    timings.clear()
    processes: list[subprocess.Popen] = []
    started = time.monotonic()
    try:
        # The UI loads its code location while the demo runs: both only read the same definitions.
        with ui_log.open("wb") as ui_out, demo_log.open("wb") as demo_out:
            ui = subprocess.Popen(ui_command(port, home), cwd=PROJECT_ROOT, env=env, stdout=ui_out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            processes.append(ui)
            demo = subprocess.Popen(
                [sys.executable, "-m", "tests.browser.demo_runner", "--customers", str(DEMO_CUSTOMERS),
                 "--seed", str(DEMO_SEED), "--dagster-home", str(home), "--out", str(summary_path)],
                cwd=PROJECT_ROOT, env=env, stdout=demo_out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
            processes.append(demo)
        # Wait for both; a UI that cannot start fails the session at once, not after the demo.
        base_url = f"http://{LOOPBACK}:{port}"
        demo_deadline = started + DEMO_DEADLINE_SECONDS
        ui_deadline: float | None = None  # UI_READY_DEADLINE_SECONDS after the demo's end
        ui_is_ready, why = False, "not polled"
        while "demo_seconds" not in timings or not ui_is_ready:
            if "demo_seconds" not in timings:
                rc = demo.poll()
                if rc is not None:
                    if rc != 0 or not summary_path.exists():
                        pytest.fail(f"the demo failed (exit code {rc}):\n{tail(demo_log)}", pytrace=False)
                    timings["demo_seconds"] = round(time.monotonic() - started, 1)
                    ui_deadline = time.monotonic() + UI_READY_DEADLINE_SECONDS
                elif time.monotonic() > demo_deadline:
                    pytest.fail(f"the demo did not finish in {DEMO_DEADLINE_SECONDS} s:\n{tail(demo_log)}",
                                pytrace=False)
            if not ui_is_ready:
                if ui.poll() is not None:
                    pytest.fail(f"the UI exited with code {ui.returncode} before it was ready:\n{tail(ui_log)}\n"
                                f"{tail(home / 'ui.log')}", pytrace=False)
                try:
                    ui_is_ready, why = ui_ready(base_url)
                except AssertionError as exc:
                    pytest.fail(f"{exc}\n{tail(ui_log)}\n{tail(home / 'ui.log')}", pytrace=False)
                if ui_is_ready:
                    timings["ui_ready_seconds"] = round(time.monotonic() - started, 1)
                elif ui_deadline is not None and time.monotonic() > ui_deadline:
                    pytest.fail(f"the UI was not ready {UI_READY_DEADLINE_SECONDS} s after the demo ({why}):\n"
                                f"{tail(ui_log)}\n{tail(home / 'ui.log')}", pytrace=False)
            time.sleep(0.5)
        summary = json.loads(summary_path.read_text())
        # The "Join the Dagster community" dialog opens on loopback UIs until the instance records it as seen.
        assert graphql(base_url, "mutation { setNuxSeen }")["setNuxSeen"] is True
        (artifacts / "timings.json").write_text(json.dumps(timings, indent=2))
        yield MeshUI(base_url=base_url, dagster_home=home, lake_url=env["MESH_LAKE_URL"], log_path=ui_log,
                     demo_summary=summary, timings=timings)
    finally:
        for proc in reversed(processes):
            stop_process_group(proc)


@pytest.fixture(scope="package")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    # The UI answers slowly while a run or a demo keeps the machine busy: generous waits, never sleeps.
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture()
def page(browser: Any, mesh_ui: MeshUI, request: pytest.FixtureRequest, artifacts: Path) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(test_dir(artifacts, request.node.name) / "zz-failure.png"), full_page=True)
        context.close()


def test_dir(artifacts: Path, test_name: str) -> Path:
    return artifacts / re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)


@pytest.fixture()
def shot(page: Any, request: pytest.FixtureRequest, artifacts: Path) -> Callable[..., Path]:
    """``shot("label")`` saves a screenshot of the page (or of ``locator=``) as the test's next step."""
    folder = test_dir(artifacts, request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    counter = iter(range(1, 1000))

    def take(label: str, *, locator: Any = None, full_page: bool = False) -> Path:
        path = folder / f"{next(counter):02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', label)}.png"
        if locator is not None:
            locator.screenshot(path=str(path))
        else:
            page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


# --- reporting ----------------------------------------------------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
    ui = getattr(item, "funcargs", {}).get("mesh_ui")
    if report.failed and isinstance(ui, MeshUI):
        report.sections.append(("Dagster UI log", ui.log_tail()))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SESSION_TIMINGS:
        terminalreporter.write_line(f"browser tests: demo and UI ready after (s) {json.dumps(SESSION_TIMINGS)}; "
                                    f"screenshots and logs in {ARTIFACTS}")
