"""`make bench` section ``ui``: what a person at the Dagster UI waits for.

* the code location's import (a fresh interpreter importing ``orchestration.definitions``, median of 3);
* ``mesh ui`` from start to a loaded code location and to a ready webserver;
* a one-step UI run (score the churn predictions: a ~2 s step) launched through the webserver's
  GraphQL API and timed to RUN_SUCCESS, with one process per run (the default now) and with one
  process per step (``execution: {config: {multiprocess: {}}}``, the behaviour before),
  interleaved, median of ``repeats`` each.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datamesh.paths import PROJECT_ROOT

_LAUNCH = """
mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } ... on InvalidSubsetError { message } } }
"""
_STATUS = "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"


def _graphql(url: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(f"{url}/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
        return json.loads(response.read())["data"]


def launch_and_wait(url: str, asset_path: list[str], run_config: dict[str, Any], deadline_s: float = 600) -> float:
    """Seconds from launching a run of one asset to its success (raises on failure or timeout)."""
    from orchestration.ui import LOCATION_NAME

    params = {"selector": {"repositoryLocationName": LOCATION_NAME, "repositoryName": "__repository__",
                           "jobName": "__ASSET_JOB", "assetSelection": [{"path": asset_path}]},
              "runConfigData": run_config, "mode": "default"}
    started = time.monotonic()
    launched = _graphql(url, _LAUNCH, {"p": params})["launchRun"]
    if launched["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"launch failed: {launched}")
    run_id = launched["run"]["runId"]
    while time.monotonic() - started < deadline_s:
        status = _graphql(url, _STATUS, {"id": run_id})["runOrError"].get("status")
        if status == "SUCCESS":
            return time.monotonic() - started
        if status in ("FAILURE", "CANCELED"):
            raise RuntimeError(f"run {run_id} ended {status}")
        time.sleep(0.25)
    raise RuntimeError(f"run {run_id} not finished after {deadline_s:.0f} s")


def import_seconds(repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import orchestration.definitions"], cwd=PROJECT_ROOT, check=True,
                       capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_ui(lake_url: str, work: Path, repeats: int, say: Callable[[str], None]) -> dict[str, Any]:
    from orchestration.ui import Supervisor, free_port

    os.environ["MESH_LAKE_URL"] = lake_url  # the code server, webserver and daemon inherit it
    result: dict[str, Any] = {"code_location_import_s": round(import_seconds(), 2)}
    say(f"code location import: {result['code_location_import_s']} s")
    ui = Supervisor(home=work / "ui-home", port=free_port(), say=say)
    started = time.monotonic()
    try:
        ui.start()
        result["mesh_ui_ready_s"] = round(time.monotonic() - started, 1)
        result["mesh_ui_code_location_loaded_s"] = round(ui.loaded_seconds, 1)
        one_run = {"one process per run (now)": {}, "one process per step (before)": {
            "execution": {"config": {"multiprocess": {}}}}}
        times: dict[str, list[float]] = {name: [] for name in one_run}
        asset = ["retention", "churn_predictions"]
        for i in range(repeats):
            for name, config in one_run.items():
                seconds = launch_and_wait(ui.url, asset, config)
                times[name].append(seconds)
                say(f"one-step UI run ({name}) #{i + 1}: {seconds:.1f} s")
        medians = {name: round(statistics.median(t), 1) for name, t in times.items()}
        result["one_step_ui_run_s"] = medians
        now, before = medians["one process per run (now)"], medians["one process per step (before)"]
        result["one_step_ui_run_before_over_now"] = round(before / now, 2) if now else None
    finally:
        ui.stop()
    return result
