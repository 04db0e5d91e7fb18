"""The whole pipeline, in-process, on a small scale: generate → publish → dbt → train → score."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datamesh.platform import Mesh
    from datamesh.settings import get_settings
    from ml.products import registry
    from orchestration.demo import run_demo

    monkeypatch.setenv("MESH_LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("MESH_DBT_DUCKDB_PATH", str(tmp_path / "dbt.duckdb"))
    monkeypatch.setenv("MESH_DBT_STAGING_DIR", str(tmp_path / "staging"))
    get_settings.cache_clear()
    summary = run_demo(customers=1500, seed=7, progress=lambda m: None, dagster_home=tmp_path / "dagster")
    mesh = Mesh.from_settings()
    status = {row["product"]: row for row in mesh.catalog.status()}
    assert all(row["version"] == 1 for row in status.values()), status
    features = mesh.catalog.manifest("churn_features")
    predictions = mesh.catalog.manifest("churn_predictions")
    assert predictions.row_count == features.row_count > 1000
    assert predictions.inputs == {"churn_features": 1}
    assert set(features.inputs) == {"customers", "subscriptions", "invoices", "payments", "usage_events", "tickets"}
    champion = registry(mesh).champion("churn_features")
    assert champion is not None
    assert 0.6 < champion.card.metrics["roc_auc"] < 0.98
    with mesh.session() as s:
        rate, n = s.sql("select avg(predicted_label::int), count(*) from retention.churn_predictions").fetchone()
        assert n == features.row_count and 0 < rate < 1
        joined = s.sql(
            "select count(*) from retention.churn_predictions p join crm.customers c using (customer_id)"
        ).fetchone()[0]
        assert joined == n
    assert summary["models"]["churn_features"]["candidate"] == champion.card.candidate
    # The run is in the persistent instance the UI opens: materializations and check results are there.
    import dagster as dg

    from orchestration.instance import persistent_instance

    instance = persistent_instance(tmp_path / "dagster")
    assert instance.get_run_by_id(summary["run_id"]).is_success
    assert instance.get_latest_materialization_event(dg.AssetKey(["crm", "customers"])) is not None
    assert instance.get_latest_materialization_event(dg.AssetKey(["retention", "churn_predictions"])) is not None
    assert set(summary["step_seconds"]) >= {"demo_sources", "dbt_models", "score_churn_predictions"}
    # Every version the run committed can be traced to it: the manifest records the Dagster run id.
    for row in mesh.catalog.status():
        manifest = mesh.catalog.manifest(row["product"])
        assert manifest.orchestrator_run_id == summary["run_id"], (row["product"], manifest.writer)
        assert manifest.run_id.endswith(summary["run_id"].replace("-", "")[:8])
    # A model between sources and marts shows the column types of the view dbt built.
    staged = instance.get_latest_materialization_event(
        dg.AssetKey(["transform", "int_invoices_aggregated_to_customers"])).asset_materialization
    columns = {c.name: c.type for c in staged.metadata["dagster/column_schema"].schema.columns}
    assert columns["customer_id"] == "varchar" and "?" not in columns.values(), columns
