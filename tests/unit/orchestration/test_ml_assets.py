"""Segment and anomaly assets, generated from the source contract's `ml` block and materialised by Dagster."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from datamesh.contracts import ContractRegistry
from orchestration.resources import MeshResource
from tests.lead_segments import write_unsupervised_contracts
from tests.leads import write_csv


def test_unsupervised_assets_publish_the_declared_products(tmp_path: Path) -> None:
    from datamesh.platform import Mesh
    from datamesh.settings import Settings
    from orchestration.assets.ml import UnsupervisedConfig, build_anomalies_asset, build_segments_asset
    from orchestration.products import spec_for

    root = write_unsupervised_contracts(tmp_path / "contracts")
    contracts = ContractRegistry.from_dir(root)
    mesh = Mesh.from_settings(Settings(lake_url=str(tmp_path / "lake"), contracts_dir=root))
    mesh.publish_file("leads", write_csv(tmp_path / "v1.csv", n=600))
    leads = contracts.get("leads")
    segments = build_segments_asset(leads, contracts.get("lead_segments"), contracts)
    anomalies = build_anomalies_asset(leads, contracts.get("lead_anomalies"), contracts)
    assert (segments.node_def.name, anomalies.node_def.name) == ("segments_lead_segments", "anomalies_lead_anomalies")

    result = dg.materialize(
        [spec_for(leads, deps=[], computed_by="python"), segments, anomalies],
        resources={"mesh": MeshResource(lake_url=str(tmp_path / "lake"), contracts_dir=str(root))},
        selection=dg.AssetSelection.assets(segments, anomalies),
        run_config=dg.RunConfig(ops={"segments_lead_segments": UnsupervisedConfig(seed=0)}),
    )
    assert result.success
    metadata = {e.asset_key.to_user_string(): e.materialization.metadata
                for e in result.get_asset_materialization_events()}
    assert set(metadata) == {"sales/lead_segments", "sales/lead_anomalies"}
    assert metadata["sales/lead_segments"]["k"].value >= 2
    with mesh.session() as s:
        flagged = s.sql("select count_if(is_anomalous) from sales.lead_anomalies").fetchone()[0]
    assert metadata["sales/lead_anomalies"]["flagged"].value == flagged > 0
    checks = result.get_asset_check_evaluations()
    assert {c.asset_key.to_user_string() for c in checks} == set(metadata) and all(c.passed for c in checks)
    assert mesh.catalog.manifest("lead_segments").inputs == {"leads": 1}
