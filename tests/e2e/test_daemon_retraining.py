"""One retraining run started by the Dagster daemon: a new version of a labelled product is
published, the new-version sensor fires, the daemon launches the retraining job, and the
champion and its predictions move to the new version."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datamesh.paths import PROJECT_ROOT
from tests.leads import write_contracts, write_csv

DEADLINE_SECONDS = 420


@pytest.mark.slow
def test_daemon_retrains_when_a_new_version_is_published(tmp_path: Path) -> None:
    from datamesh.platform import Mesh
    from datamesh.settings import Settings
    from ml.products import registry, score_product, train_product

    contracts = write_contracts(tmp_path / "contracts")
    lake = tmp_path / "lake"
    mesh = Mesh.from_settings(Settings(lake_url=str(lake), contracts_dir=contracts))
    mesh.publish_file("leads", write_csv(tmp_path / "v1.csv"))
    train_product(mesh, "leads", candidates=["logistic_regression"], include_keras=False)
    score_product(mesh, "leads")
    mesh.publish_file("leads", write_csv(tmp_path / "v2.csv", seed=5))

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "MESH_LAKE_URL": str(lake), "MESH_CONTRACTS_DIR": str(contracts),
           "PYTHONPATH": str(PROJECT_ROOT), "DO_NOT_TRACK": "1"}
    log = (tmp_path / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-m", "tests.e2e.daemon_defs",
         "-d", str(PROJECT_ROOT)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=PROJECT_ROOT,
    )
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        scores = None
        while time.monotonic() < deadline:
            assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]
            versions = registry(mesh).list_versions("leads")
            newest = registry(mesh).get("leads", versions[-1]) if versions else None
            if newest and newest.card.training_data.get("leads") == "2" and mesh.catalog.latest_version("lead_scores") == 2:
                scores = mesh.catalog.manifest("lead_scores")
                break
            time.sleep(3)
        assert scores is not None, "no retraining run finished in time:\n" + (tmp_path / "daemon.log").read_text()[-3000:]
        assert scores.inputs == {"leads": 2}
        import dagster as dg

        with dg.DagsterInstance.from_config(str(home)) as instance:
            while True:
                runs = instance.get_runs(filters=dg.RunsFilter(job_name="retrain_leads"))
                assert runs, "the daemon launched no retraining run"
                assert all(r.tags.get("trigger") == "new_version" for r in runs), [r.tags for r in runs]
                if any(r.status == dg.DagsterRunStatus.SUCCESS for r in runs):
                    break
                assert not any(r.status == dg.DagsterRunStatus.FAILURE for r in runs), "the retraining run failed"
                assert time.monotonic() < deadline, f"run not finished: {[r.status for r in runs]}"
                time.sleep(2)
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
        log.close()
