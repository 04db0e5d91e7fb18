from __future__ import annotations

import dagster as dg
import pytest

from datamesh.contracts import ContractRegistry
from datamesh.paths import CONTRACTS_DIR


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    from orchestration.definitions import defs

    return defs


def test_definitions_load(defs: dg.Definitions) -> None:
    defs.resolve_implicit_global_asset_job_def()
    assert defs.resolve_asset_graph().get_all_asset_keys()


def test_every_product_is_an_asset_derived_from_its_contract(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    contracts = ContractRegistry.from_dir(CONTRACTS_DIR)
    for contract in contracts:
        key = dg.AssetKey([contract.domain, contract.id])
        assert graph.has(key), f"no asset for {contract.id}"
        node = graph.get(key)
        assert node.group_name == contract.domain
        assert any(o.endswith(contract.owner.contact) for o in node.owners) or any(
            contract.owner.team.replace("-", "_") in o for o in node.owners)
        schema = node.metadata["dagster/column_schema"]
        assert [c.name for c in schema.columns] == contract.column_names


def test_contract_rules_are_blocking_checks(defs: dg.Definitions) -> None:
    contracts = ContractRegistry.from_dir(CONTRACTS_DIR)
    check_keys = {(k.asset_key.to_user_string(), k.name) for k in defs.resolve_asset_graph().asset_check_keys}
    for contract in contracts:
        for rule in contract.rules():
            assert (f"{contract.domain}/{contract.id}", rule.key) in check_keys


def test_dbt_lineage_reaches_sources(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    features = dg.AssetKey(["retention", "churn_features"])
    upstream = graph.get(features).parent_keys | {
        p for parent in graph.get(features).parent_keys for p in graph.get(parent).parent_keys
    }
    ancestors = set()
    frontier = {features}
    while frontier:
        key = frontier.pop()
        for parent in graph.get(key).parent_keys:
            if parent not in ancestors:
                ancestors.add(parent)
                frontier.add(parent)
    assert dg.AssetKey(["crm", "customers"]) in ancestors
    assert dg.AssetKey(["product", "usage_events"]) in ancestors
    assert upstream
    predictions = graph.get(dg.AssetKey(["retention", "churn_predictions"]))
    assert dg.AssetKey(["retention", "churn_features_model"]) in predictions.parent_keys


def test_unsupervised_assets_are_generated_from_the_source_contracts(defs: dg.Definitions) -> None:
    from orchestration.assets.ml import anomaly_products, segmented_products

    contracts = ContractRegistry.from_dir(CONTRACTS_DIR)
    declared = [("segments", *pair) for pair in segmented_products(contracts)] + [
        ("anomalies", *pair) for pair in anomaly_products(contracts)]
    assert {(kind, source.id, output.id) for kind, source, output in declared} == {
        ("segments", "churn_features", "customer_segments"), ("anomalies", "churn_features", "anomalous_accounts")}
    graph = defs.resolve_asset_graph()
    for kind, source, output in declared:
        key = dg.AssetKey([output.domain, output.id])
        assert defs.resolve_assets_def(key).node_def.name == f"{kind}_{output.id}"
        assert graph.get(key).parent_keys == {dg.AssetKey([source.domain, source.id])}


def test_demo_run_config_is_derived_from_the_contracts(defs: dg.Definitions, tmp_path) -> None:  # noqa: ANN001
    from datamesh.settings import Settings
    from ml.spec import Task
    from ml.zoo import Profile
    from orchestration.assets.ml import labelled_products, training_op
    from orchestration.demo import demo_run_config

    contracts = ContractRegistry.from_dir(CONTRACTS_DIR)
    config = demo_run_config(contracts, Settings(lake_url=str(tmp_path / "lake"), contracts_dir=CONTRACTS_DIR),
                             customers=500, seed=3, profile=Profile.FAST, max_training_rows=1_000)
    job = defs.resolve_implicit_global_asset_job_def()
    assert dg.validate_run_config(job, config.to_config_dict())
    configurable = {node.name for node in job.nodes
                    if getattr(node.definition.config_schema.as_field().config_type, "fields", None)}
    assert set(config.ops) == configurable
    tasks = set()
    for contract in labelled_products(contracts):
        task = Task(contract.ml.task)
        tasks.add(task)
        training = config.ops[training_op(contract)]
        expected = Profile.FULL if task is Task.REGRESSION else Profile.FAST
        assert (training.profile, training.include_keras, training.seed) == (expected, False, 3)
    assert tasks == {Task.CLASSIFICATION, Task.REGRESSION}  # both branches are exercised


def test_products_are_stored_in_the_lake_and_kinds_say_what_computes_them(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    for contract in ContractRegistry.from_dir(CONTRACTS_DIR):
        node = graph.get(dg.AssetKey([contract.domain, contract.id]))
        assert node.metadata["dagster/table_name"] == f"lake.{contract.domain}.{contract.id}", contract.id
        assert node.metadata["dagster/storage_kind"] == "iceberg", contract.id
        assert "iceberg" in node.kinds and "parquet" not in node.kinds, (contract.id, node.kinds)
    features = graph.get(dg.AssetKey(["retention", "churn_features"]))
    assert {"dbt", "duckdb", "iceberg"} == set(features.kinds)  # built by dbt in DuckDB, stored in Iceberg
    model = graph.get(dg.AssetKey(["retention", "churn_features_model"]))
    assert "keras" not in model.kinds  # the default run does not train Keras models


def test_every_check_says_what_it_checks(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    undescribed = [k.to_user_string() for k in graph.asset_check_keys if not graph.get_check_spec(k).description]
    assert undescribed == []


def test_models_between_sources_and_marts_are_owned_by_the_teams_of_the_marts_they_feed(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    transform = [k for k in graph.get_all_asset_keys() if k.path[0] == "transform"]
    assert transform
    for key in transform:
        assert "team:retention_analytics" in graph.get(key).owners, key


def test_ui_defaults_are_the_demos_and_operators_retrain_the_whole_zoo(defs: dg.Definitions) -> None:
    from ml.choices import Profile
    from orchestration.assets.ml import TrainingConfig

    default = TrainingConfig()
    assert default.profile is Profile.FAST and not default.include_keras
    assert "full" in TrainingConfig.model_fields["profile"].description
    job = defs.resolve_job_def("retrain_churn_features")
    train = job.run_config_schema.config_type.fields["ops"].default_value["train_churn_features"]["config"]
    assert train["profile"] == "FULL" and train["include_keras"] is True, train  # Dagster names enums by name
    assert "full" in job.description


def test_dbt_tests_get_a_description_from_their_metadata() -> None:
    from orchestration.assets.dbt import dbt_test_description

    relationships = {"name": "relationships_x", "column_name": "customer_id", "test_metadata": {
        "name": "relationships", "kwargs": {"column_name": "customer_id", "to": "ref('stg_crm__customers')",
                                            "field": "customer_id", "model": "{{ get_where_subquery(ref('x')) }}"}}}
    assert dbt_test_description(relationships) == "dbt test: every customer_id is a customer_id of stg_crm__customers"
    accepted = {"name": "t", "test_metadata": {"name": "accepted_values",
                                                "kwargs": {"column_name": "plan", "values": ["a", "b"]}}}
    assert dbt_test_description(accepted) == "dbt test accepted_values on plan (values=['a', 'b'])"


def test_a_models_output_gets_the_column_types_of_its_view() -> None:
    from orchestration.assets.dbt import with_column_types

    manifest = {"nodes": {"model.p.int_x": {"name": "int_x", "config": {"materialized": "view"},
                                             "columns": {"customer_id": {"description": "the key"}}},
                          "model.p.mart": {"name": "mart", "config": {"materialized": "external"}}}}
    types = {"int_x": [("customer_id", "varchar"), ("n", "bigint")], "mart": [("a", "integer")]}
    out = with_column_types(dg.Output(None, "int_x", metadata={"unique_id": "model.p.int_x"}), types, manifest)
    columns = out.metadata["dagster/column_schema"].schema.columns
    assert [(c.name, c.type, c.description) for c in columns] == [("customer_id", "varchar", "the key"),
                                                                   ("n", "bigint", None)]
    mart = dg.Output(None, "mart", metadata={"unique_id": "model.p.mart"})
    assert with_column_types(mart, types, manifest) is mart  # a product's schema is its contract's
    check = dg.AssetCheckResult(passed=True, asset_key=dg.AssetKey("x"), check_name="c")
    assert with_column_types(check, types, manifest) is check
