"""Builds every Dagster object from the contracts and the dbt project."""

from __future__ import annotations

import dagster as dg

from datamesh.contracts import ContractRegistry
from datamesh.dbt_sources import dbt_model_names, write_sources
from datamesh.paths import CONTRACTS_DIR, DBT_PROJECT_DIR
from orchestration.assets.dbt import build_dbt_assets
from orchestration.assets.ml import build_ml_assets
from orchestration.assets.sources import build_source_assets
from orchestration.checks import build_contract_checks
from orchestration.products import register_domains
from orchestration.resources import dbt_project


def load_contracts() -> ContractRegistry:
    contracts = ContractRegistry.from_dir(CONTRACTS_DIR)
    register_domains(contracts)
    return contracts


def prepare_dbt(contracts: ContractRegistry) -> None:
    """Derive dbt sources from contracts and parse the project if its manifest is stale."""
    write_sources(contracts, DBT_PROJECT_DIR)
    manifest = dbt_project.manifest_path
    inputs = [*DBT_PROJECT_DIR.rglob("*.sql"), *DBT_PROJECT_DIR.rglob("*.yml")]
    inputs = [p for p in inputs if "target" not in p.parts and "logs" not in p.parts]
    if not manifest.exists() or any(p.stat().st_mtime > manifest.stat().st_mtime for p in inputs):
        dbt_project.preparer.prepare(dbt_project)


def build_definitions_parts(contracts: ContractRegistry) -> tuple[list, list]:  # noqa: ANN401
    prepare_dbt(contracts)
    assets: list = [build_source_assets(contracts), build_dbt_assets(contracts), *build_ml_assets(contracts)]
    dbt_built = dbt_model_names(DBT_PROJECT_DIR)
    checks = [build_contract_checks(c) for c in contracts if c.id in dbt_built]
    return assets, checks


def with_freshness(contracts: ContractRegistry, spec: dg.AssetSpec) -> dg.AssetSpec:
    """Contract freshness service levels become Dagster freshness policies."""
    from datetime import timedelta

    key = spec.key.path
    if len(key) == 2 and key[1] in contracts:
        seconds = contracts.get(key[1]).freshness_seconds
        if seconds:
            return spec.replace_attributes(freshness_policy=dg.FreshnessPolicy.time_window(
                fail_window=timedelta(seconds=seconds)))
    return spec
