"""Retraining: a weekly schedule, a sensor on new training-product versions, and drift.

* ``retrain_<product>`` job: the model asset, its predictions product and the
  segment and anomaly products its contract declares (``ml.segments``,
  ``ml.anomalies``), run together so scoring always follows a new champion.
* weekly schedule per labelled product.
* ``<product>_new_version_sensor``: watches the lake (not Dagster events), so a
  version published by dbt, the CLI or another tool triggers retraining once
  (run key = product version).
* ``<product>_drift_sensor``: when the drift check on the predictions product
  fails (PSI >= 0.25), requests a retraining run once per failed evaluation.
"""

from __future__ import annotations

import dagster as dg

from datamesh.contracts import Contract, ContractRegistry
from orchestration.assets.ml import (
    OPERATOR_TRAINING,
    drift_check_key,
    labelled_products,
    model_key,
    predictions_of,
    training_op,
    unsupervised_outputs,
)
from orchestration.products import asset_key
from orchestration.resources import MeshResource

WEEKLY = "0 3 * * 1"  # Mondays 03:00 UTC
SENSOR_INTERVAL_SECONDS = 30


def retrain_job(contract: Contract, contracts: ContractRegistry) -> dg.UnresolvedAssetJobDefinition:
    predictions = predictions_of(contract, contracts)
    outputs = ([predictions] if predictions is not None else []) + unsupervised_outputs(contract, contracts)
    keys = [model_key(contract), *(asset_key(c) for c in outputs)]
    return dg.define_asset_job(
        name=f"retrain_{contract.id}",
        selection=dg.AssetSelection.assets(*keys),
        description=(f"Retrain the whole model zoo (profile full, Keras included: several times the few minutes "
                     f"of the fast profile) on {contract.domain}.{contract.id}, then score and publish."),
        config=dg.RunConfig(ops={training_op(contract): OPERATOR_TRAINING}),
        tags={"domain": contract.domain, "purpose": "retraining"},
    )


def _sensor_status(running: bool) -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED


def new_version_sensor(contract: Contract, job: dg.UnresolvedAssetJobDefinition, *,
                       running: bool = False) -> dg.SensorDefinition:
    @dg.sensor(name=f"{contract.id}_new_version_sensor", job=job, minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
               default_status=_sensor_status(running),
               description=f"Retrain when a new version of {contract.domain}.{contract.id} is published.")
    def sensor(context: dg.SensorEvaluationContext, mesh: MeshResource) -> dg.SensorResult | dg.SkipReason:
        from ml.products import registry

        platform = mesh.mesh()
        latest = platform.catalog.latest_version(contract.id)
        if latest is None:
            return dg.SkipReason(f"{contract.id} has no version yet")
        champion = registry(platform).champion(contract.id)
        trained_on = int(champion.card.training_data.get(contract.id, 0)) if champion else None
        if trained_on == latest:
            return dg.SkipReason(f"champion already trained on {contract.id} v{latest}")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"{contract.id}-v{latest}",
                                        tags={"trigger": "new_version", "product_version": str(latest)})],
            cursor=str(latest),
        )

    return sensor


def drift_sensor(contract: Contract, predictions: Contract, job: dg.UnresolvedAssetJobDefinition, *,
                 running: bool = False) -> dg.SensorDefinition:
    check_key = drift_check_key(predictions)

    @dg.sensor(name=f"{contract.id}_drift_sensor", job=job, minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
               default_status=_sensor_status(running),
               description=f"Retrain {contract.id} when the drift check on {predictions.id} fails.")
    def sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        record = context.instance.get_latest_asset_check_evaluation_record(check_key)
        if record is None or record.event is None:
            return dg.SkipReason("the drift check has not run yet")
        evaluation = record.event.asset_check_evaluation
        if evaluation is None or evaluation.passed:
            return dg.SkipReason("no drift")
        if context.cursor == str(record.id):
            return dg.SkipReason("retraining already requested for this drift evaluation")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"drift-{record.id}", tags={"trigger": "drift"})],
            cursor=str(record.id),
        )

    return sensor


def build_automation(contracts: ContractRegistry, *, running: bool = False) -> tuple[list, list, list]:  # noqa: ANN401
    """Retraining jobs, weekly schedules and sensors; they start OFF unless ``running`` (``MESH_AUTOMATION``)."""
    jobs, schedules, sensors = [], [], []
    for contract in labelled_products(contracts):
        job = retrain_job(contract, contracts)
        jobs.append(job)
        schedules.append(dg.ScheduleDefinition(
            name=f"{contract.id}_weekly_retraining", job=job, cron_schedule=WEEKLY, execution_timezone="UTC",
            default_status=dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED,
            description=f"Weekly retraining of the {contract.id} model zoo.",
        ))
        sensors.append(new_version_sensor(contract, job, running=running))
        predictions = predictions_of(contract, contracts)
        if predictions is not None:
            sensors.append(drift_sensor(contract, predictions, job, running=running))
    return jobs, schedules, sensors
