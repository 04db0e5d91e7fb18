"""The demo's source assets: a UI materialization keeps the scale the lake was generated with."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from datamesh.contracts import ContractRegistry
from datamesh.paths import CONTRACTS_DIR
from orchestration.assets.sources import build_source_assets
from orchestration.resources import MeshResource


def test_materializing_one_source_keeps_the_lake_scale(tmp_path: Path) -> None:
    contracts = ContractRegistry.from_dir(CONTRACTS_DIR)
    sources = build_source_assets(contracts)
    resources = {"mesh": MeshResource(lake_url=str(tmp_path / "lake"), contracts_dir=str(CONTRACTS_DIR))}
    first = dg.materialize([sources], selection=[dg.AssetKey(["crm", "customers"])], resources=resources,
                           run_config={"ops": {"demo_sources": {"config": {"customers": 300, "seed": 5}}}})
    assert first.success
    again = dg.materialize([sources], selection=[dg.AssetKey(["billing", "subscriptions"])], resources=resources)
    assert again.success
    from datamesh.platform import Mesh
    from datamesh.settings import Settings

    mesh = Mesh.from_settings(Settings(lake_url=str(tmp_path / "lake"), contracts_dir=CONTRACTS_DIR))
    assert mesh.catalog.manifest("subscriptions").metadata["generator"] == {"customers": 300, "seed": 5}
    customers = mesh.catalog.manifest("customers").row_count
    assert customers == 300
