"""The `query_latency` asset check: generated from each contract's queryLatency, run against a real lake."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from datamesh.contracts import ContractRegistry
from datamesh.paths import CONTRACTS_DIR
from orchestration.checks import QUERY_LATENCY_CHECK, build_query_latency_checks, query_latency_check_key
from orchestration.products import spec_for
from orchestration.resources import MeshResource
from tests.conftest import widgets_table
from tests.latency import orders_table, write_latency_contracts

ERROR_TARGET = "  - property: queryLatency\n    value: 0.000001\n    unit: ms\n    severity: error\n"


def run_check(tmp_path: Path, root: Path, product: str) -> dg.AssetCheckEvaluation:
    contracts = ContractRegistry.from_dir(root)
    contract = contracts.get(product)
    check = build_query_latency_checks([contract], name="shop_query_latency")
    result = dg.materialize(
        [spec_for(contract, deps=[], computed_by="python"), check], selection=dg.AssetSelection.checks(check),
        resources={"mesh": MeshResource(lake_url=str(tmp_path / "lake"), contracts_dir=str(root))})
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert (evaluation.asset_key, evaluation.check_name) == (query_latency_check_key(contract).asset_key,
                                                             QUERY_LATENCY_CHECK)
    return evaluation


@pytest.fixture()
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """The latency contracts (widgets: a target nothing meets; widget_orders: one anything meets), published."""
    from datamesh.platform import Mesh
    from datamesh.settings import Settings

    monkeypatch.delenv("MESH_TRINO_HOST", raising=False)
    root = write_latency_contracts(tmp_path / "contracts")
    mesh = Mesh.from_settings(Settings(lake_url=str(tmp_path / "lake"), contracts_dir=root))
    mesh.publish("widgets", widgets_table(5))
    mesh.publish("widget_orders", orders_table())
    return root


def test_a_met_target_passes_with_p50_and_p95_per_probe(tmp_path: Path, lake: Path) -> None:
    evaluation = run_check(tmp_path, lake, "widget_orders")
    assert evaluation.passed
    metadata = {k: v.value for k, v in evaluation.metadata.items()}
    assert metadata["target_ms"] == 1e9 and metadata["version"] == 1
    assert metadata["runs"] == 3  # every run far inside its target: the budget stops each probe at 3
    for probe in ("scan", "lookup"):
        assert 0 < metadata[f"duckdb_{probe}_p50_ms"] <= metadata[f"duckdb_{probe}_p95_ms"]
    assert not any(k.startswith("trino_") for k in metadata)  # no Trino configured
    table = metadata["results"]
    assert table.startswith("| engine | probe |") and "| duckdb | lookup |" in table and "| met |" in table
    assert evaluation.description.startswith("met: slowest p95")


def test_a_missed_target_fails_as_a_warning(tmp_path: Path, lake: Path) -> None:
    evaluation = run_check(tmp_path, lake, "widgets")
    assert not evaluation.passed
    assert evaluation.severity is dg.AssetCheckSeverity.WARN
    assert "target missed: duckdb scan p95" in evaluation.description and "duckdb lookup p95" in evaluation.description
    assert "| missed |" in evaluation.metadata["results"].value


def test_a_contract_may_make_a_missed_target_an_error(tmp_path: Path) -> None:
    from datamesh.platform import Mesh
    from datamesh.settings import Settings

    root = write_latency_contracts(tmp_path / "contracts", widgets=ERROR_TARGET)
    Mesh.from_settings(Settings(lake_url=str(tmp_path / "lake"), contracts_dir=root)).publish(
        "widgets", widgets_table(5))
    evaluation = run_check(tmp_path, root, "widgets")
    assert not evaluation.passed and evaluation.severity is dg.AssetCheckSeverity.ERROR


def test_an_unpublished_product_is_not_measured(tmp_path: Path) -> None:
    root = write_latency_contracts(tmp_path / "contracts")
    evaluation = run_check(tmp_path, root, "widgets")
    assert evaluation.passed and "no published version" in evaluation.description


def test_every_product_with_a_target_has_a_non_blocking_latency_check() -> None:
    from orchestration.definitions import defs

    contracts = ContractRegistry.from_dir(CONTRACTS_DIR)
    graph = defs.resolve_asset_graph()
    targeted = {f"{c.domain}/{c.id}" for c in contracts if c.query_latency_ms is not None}
    checks = {k.asset_key.to_user_string() for k in graph.asset_check_keys if k.name == QUERY_LATENCY_CHECK}
    assert checks == targeted and targeted == {f"{c.domain}/{c.id}" for c in contracts}
    for contract in contracts:
        assert not graph.get_check_spec(query_latency_check_key(contract)).blocking


def test_one_op_times_every_product_and_only_the_selected_ones(tmp_path: Path, lake: Path) -> None:
    """One step and one session for all the products' checks; a run that selects one check runs that one."""
    contracts = ContractRegistry.from_dir(lake)
    chosen = [contracts.get("widgets"), contracts.get("widget_orders")]
    check = build_query_latency_checks(chosen, name="shop_query_latency")
    specs = [spec_for(c, deps=[], computed_by="python") for c in chosen]
    resources = {"mesh": MeshResource(lake_url=str(tmp_path / "lake"), contracts_dir=str(lake))}
    both = dg.materialize([*specs, check], selection=dg.AssetSelection.checks(check), resources=resources)
    assert {(e.asset_key.path[-1], e.passed) for e in both.get_asset_check_evaluations()} == {
        ("widgets", False), ("widget_orders", True)}
    assert len([e for e in both.all_events if e.event_type_value == "STEP_SUCCESS"]) == 1
    one = dg.materialize([*specs, check], resources=resources,
                         selection=dg.AssetSelection.checks(query_latency_check_key(chosen[1])))
    assert [e.asset_key.path[-1] for e in one.get_asset_check_evaluations()] == ["widget_orders"]


def test_a_product_that_cannot_be_read_fails_its_own_check_only(tmp_path: Path, lake: Path) -> None:
    """A tampered product's check fails with the reason; the other products in the same op are still timed."""
    from datamesh.platform import Mesh
    from datamesh.settings import Settings

    mesh = Mesh.from_settings(Settings(lake_url=str(tmp_path / "lake"), contracts_dir=lake))
    (path,) = mesh.catalog.verified_file_paths(mesh.catalog.manifest("widgets"))
    Path(path).write_bytes(b"not parquet any more")
    contracts = ContractRegistry.from_dir(lake)
    chosen = [contracts.get("widgets"), contracts.get("widget_orders")]
    check = build_query_latency_checks(chosen, name="shop_query_latency")
    result = dg.materialize([*(spec_for(c, deps=[], computed_by="python") for c in chosen), check],
                            selection=dg.AssetSelection.checks(check),
                            resources={"mesh": MeshResource(lake_url=str(tmp_path / "lake"), contracts_dir=str(lake))})
    assert result.success
    by_product = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
    assert not by_product["widgets"].passed and "could not be measured" in by_product["widgets"].description
    assert "widgets" in by_product["widgets"].description
    assert by_product["widget_orders"].passed


def test_latency_ops_wait_for_one_asset_step_each() -> None:
    """A failed step elsewhere must not skip a product's latency check: each op times one step's products."""
    from orchestration.definitions import defs

    latency_ops = [c for c in defs.asset_checks or [] if c.node_def.name.endswith("_query_latency")]
    covered = set()
    for op in latency_ops:
        steps = {defs.resolve_assets_def(k.asset_key).node_def.name for k in op.check_keys}
        assert steps == {op.node_def.name.removesuffix("_query_latency")}, op.node_def.name
        covered |= {k for k in op.check_keys if k.name == QUERY_LATENCY_CHECK}
    graph = defs.resolve_asset_graph()
    assert covered == {k for k in graph.asset_check_keys if k.name == QUERY_LATENCY_CHECK}
    assert {op.node_def.name for op in latency_ops} >= {"demo_sources_query_latency", "dbt_models_query_latency"}
