"""Builds every Dagster object from the contracts and the dbt project."""

from __future__ import annotations

import os
import subprocess

import dagster as dg

from datamesh.contracts import ContractRegistry
from datamesh.dbt_sources import dbt_model_names, write_sources
from datamesh.paths import CONTRACTS_DIR, DBT_PROJECT_DIR
from orchestration.assets.dbt import build_dbt_assets
from orchestration.assets.ml import build_ml_assets, build_ml_checks
from orchestration.assets.sources import build_source_assets
from orchestration.checks import build_contract_checks, build_query_latency_checks
from orchestration.products import asset_key
from orchestration.resources import dbt_executable, dbt_project


def load_contracts() -> ContractRegistry:
    return ContractRegistry.from_dir(CONTRACTS_DIR)


def prepare_dbt(contracts: ContractRegistry) -> None:
    """Derive dbt sources from contracts and parse the project if its manifest is stale."""
    write_sources(contracts, DBT_PROJECT_DIR)
    manifest = dbt_project.manifest_path
    inputs = [*DBT_PROJECT_DIR.rglob("*.sql"), *DBT_PROJECT_DIR.rglob("*.yml")]
    inputs = [p for p in inputs if "target" not in p.parts and "logs" not in p.parts]
    if not manifest.exists() or any(p.stat().st_mtime > manifest.stat().st_mtime for p in inputs):
        project = str(DBT_PROJECT_DIR)
        result = subprocess.run(
            [dbt_executable(), "parse", "--quiet", "--project-dir", project, "--profiles-dir", project],
            cwd=project, env={**os.environ, "DO_NOT_TRACK": "1"}, capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"`dbt parse` of {project} failed:\n{result.stdout}\n{result.stderr}")


def build_definitions_parts(contracts: ContractRegistry) -> tuple[list, list]:  # noqa: ANN401
    prepare_dbt(contracts)
    assets: list = [build_source_assets(contracts), build_dbt_assets(contracts), *build_ml_assets(contracts)]
    dbt_built = dbt_model_names(DBT_PROJECT_DIR)
    checks = [build_contract_checks(c) for c in contracts if c.id in dbt_built] + build_ml_checks(contracts)
    targeted = [c for c in contracts if c.query_latency_ms is not None]
    for definition in assets:  # one latency op per asset step: it waits for that step alone
        group = [c for c in targeted if asset_key(c) in definition.keys]
        if group:
            checks.append(build_query_latency_checks(group, name=f"{definition.node_def.name}_query_latency"))
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
