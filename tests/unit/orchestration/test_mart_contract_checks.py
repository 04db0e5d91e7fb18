"""`mart_contract_checks`: one op surfaces the contract rules every mart's publish recorded."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from datamesh.contracts import ContractRegistry
from orchestration.checks import build_contract_checks
from orchestration.products import asset_key, check_specs, spec_for
from orchestration.resources import MeshResource
from tests.conftest import widgets_table
from tests.latency import orders_table, write_latency_contracts


@pytest.fixture()
def published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, ContractRegistry]:
    from datamesh.platform import Mesh
    from datamesh.settings import Settings

    monkeypatch.delenv("MESH_TRINO_HOST", raising=False)
    root = write_latency_contracts(tmp_path / "contracts")
    mesh = Mesh.from_settings(Settings(lake_url=str(tmp_path / "lake"), contracts_dir=root))
    mesh.publish("widgets", widgets_table(5))
    mesh.publish("widget_orders", orders_table())
    return root, ContractRegistry.from_dir(root)


def test_one_step_reports_every_rule_of_every_product_and_only_the_selected(
        tmp_path: Path, published: tuple[Path, ContractRegistry]) -> None:
    root, contracts = published
    chosen = [contracts.get("widgets"), contracts.get("widget_orders")]
    check = build_contract_checks(chosen)
    specs = [spec_for(c, deps=[], computed_by="python") for c in chosen]
    resources = {"mesh": MeshResource(lake_url=str(tmp_path / "lake"), contracts_dir=str(root))}

    every = dg.materialize([*specs, check], selection=dg.AssetSelection.checks(check), resources=resources)
    got = {(e.asset_key, e.check_name) for e in every.get_asset_check_evaluations()}
    assert got == {(s.asset_key, s.name) for c in chosen for s in check_specs(c)}
    assert all(e.passed for e in every.get_asset_check_evaluations())
    assert len([e for e in every.all_events if e.event_type_value == "STEP_SUCCESS"]) == 1

    (one,) = check_specs(chosen[1])[:1]
    only = dg.materialize([*specs, check], selection=dg.AssetSelection.checks(one.key), resources=resources)
    assert [(e.asset_key, e.check_name) for e in only.get_asset_check_evaluations()] == [
        (asset_key(chosen[1]), one.name)]
