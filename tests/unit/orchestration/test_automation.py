"""Retraining triggers: the weekly schedule, the new-version sensor and the drift sensor."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from datamesh.contracts import ContractRegistry
from datamesh.paths import CONTRACTS_DIR
from orchestration.resources import MeshResource
from orchestration.schedules import WEEKLY, build_automation
from tests.lead_segments import write_unsupervised_contracts
from tests.leads import write_contracts, write_csv


@pytest.fixture()
def leads_mesh(tmp_path: Path):  # noqa: ANN201
    from datamesh.platform import Mesh
    from datamesh.settings import Settings

    contracts = write_contracts(tmp_path / "contracts")
    resource = MeshResource(lake_url=str(tmp_path / "lake"), contracts_dir=str(contracts))
    mesh = Mesh.from_settings(Settings(lake_url=str(tmp_path / "lake"), contracts_dir=contracts))
    return mesh, resource, ContractRegistry.from_dir(contracts), tmp_path


def test_weekly_schedule_requests_the_retraining_job() -> None:
    jobs, schedules, _ = build_automation(ContractRegistry.from_dir(CONTRACTS_DIR))
    schedule = next(s for s in schedules if s.name == "churn_features_weekly_retraining")
    assert schedule.cron_schedule == WEEKLY and schedule.job_name == "retrain_churn_features"
    result = schedule.evaluate_tick(dg.build_schedule_context())
    assert result.run_requests and len(result.run_requests) == 1
    job = next(j for j in jobs if j.name == "retrain_churn_features")
    keys = {k.to_user_string() for k in job.selection.resolve(
        __import__("orchestration.definitions", fromlist=["defs"]).defs.resolve_asset_graph())}
    assert keys == {"retention/churn_features_model", "retention/churn_predictions",
                    "retention/customer_segments", "retention/anomalous_accounts"}


def test_retrain_job_includes_the_unsupervised_products_its_contract_declares(tmp_path: Path) -> None:
    from orchestration.assets.ml import build_ml_assets
    from orchestration.products import spec_for

    contracts = ContractRegistry.from_dir(write_unsupervised_contracts(tmp_path / "contracts"))
    assets = build_ml_assets(contracts)
    assert {a.node_def.name for a in assets} == {"train_leads", "score_lead_scores", "segments_lead_segments",
                                                 "anomalies_lead_anomalies"}
    jobs, _, _ = build_automation(contracts)
    job = next(j for j in jobs if j.name == "retrain_leads")
    graph = dg.Definitions(assets=[spec_for(contracts.get("leads"), deps=[], computed_by="python"), *assets],
                           resources={"mesh": MeshResource()}).resolve_asset_graph()
    assert {k.to_user_string() for k in job.selection.resolve(graph)} == {
        "sales/leads_model", "sales/lead_scores", "sales/lead_segments", "sales/lead_anomalies"}


def test_new_version_sensor(leads_mesh) -> None:  # noqa: ANN001
    from ml.products import train_product

    mesh, resource, contracts, tmp = leads_mesh
    _, _, sensors = build_automation(contracts)
    sensor = next(s for s in sensors if s.name == "leads_new_version_sensor")

    def tick() -> object:
        return sensor.evaluate_tick(dg.build_sensor_context(resources={"mesh": resource}))

    assert tick().skip_message and "no version yet" in tick().skip_message
    mesh.publish_file("leads", write_csv(tmp / "v1.csv"))
    first = tick()
    assert [r.run_key for r in first.run_requests] == ["leads-v1"]
    train_product(mesh, "leads", candidates=["logistic_regression"], include_keras=False)
    assert "already trained on leads v1" in tick().skip_message
    mesh.publish_file("leads", write_csv(tmp / "v2.csv", seed=1))
    assert [r.run_key for r in tick().run_requests] == ["leads-v2"]


@pytest.mark.slow
def test_drift_check_fails_and_the_drift_sensor_requests_retraining(leads_mesh) -> None:  # noqa: ANN001
    from ml.products import score_product, train_product
    from orchestration.assets.ml import build_drift_check, drift_check_key

    mesh, resource, contracts, tmp = leads_mesh
    mesh.publish_file("leads", write_csv(tmp / "v1.csv", n=600))
    train_product(mesh, "leads", candidates=["logistic_regression"], include_keras=False)
    score_product(mesh, "leads")
    leads, scores = contracts.get("leads"), contracts.get("lead_scores")
    check = build_drift_check(leads, scores)
    _, _, sensors = build_automation(contracts)
    sensor = next(s for s in sensors if s.name == "leads_drift_sensor")
    instance = dg.DagsterInstance.ephemeral()
    spec = dg.AssetSpec(key=["sales", "lead_scores"])

    def run_check() -> dg.AssetCheckEvaluation:
        result = dg.materialize([spec, check], instance=instance, resources={"mesh": resource},
                                selection=dg.AssetSelection.checks(check))
        return result.get_asset_check_evaluations()[0]

    same = run_check()
    assert same.passed and same.metadata["max_psi"].value < 0.1
    context = dg.build_sensor_context(instance=instance)
    assert "no drift" in sensor.evaluate_tick(context).skip_message

    mesh.publish_file("leads", write_csv(tmp / "v2.csv", n=600, seed=3, shift=1.0))
    drifted = run_check()
    assert not drifted.passed and drifted.metadata["max_psi"].value >= 0.25
    assert instance.get_latest_asset_check_evaluation_record(drift_check_key(scores)) is not None
    result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    assert len(result.run_requests) == 1 and result.run_requests[0].tags["trigger"] == "drift"
    again = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=result.cursor))
    assert "already requested" in again.skip_message


def test_automation_is_off_unless_switched_on() -> None:
    import dagster as dg

    from datamesh.contracts import ContractRegistry
    from datamesh.paths import CONTRACTS_DIR

    contracts = ContractRegistry.from_dir(CONTRACTS_DIR)
    _, schedules, sensors = build_automation(contracts)
    assert schedules and sensors
    assert all(s.default_status is dg.DefaultScheduleStatus.STOPPED for s in schedules)
    assert all(s.default_status is dg.DefaultSensorStatus.STOPPED for s in sensors)
    _, schedules, sensors = build_automation(contracts, running=True)
    assert all(s.default_status is dg.DefaultScheduleStatus.RUNNING for s in schedules)
    assert all(s.default_status is dg.DefaultSensorStatus.RUNNING for s in sensors)
