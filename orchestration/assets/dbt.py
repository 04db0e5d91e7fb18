"""dbt models as Dagster assets; marts map to the product asset keys of their contracts."""

# No `from __future__ import annotations`: Dagster reads these annotations at definition time.

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from datamesh.contracts import ContractRegistry
from datamesh.dbt_sources import CONTEXT_FILE
from datamesh.identity import Role
from datamesh.settings import Settings
from orchestration.products import asset_key, description, owners, table_schema
from orchestration.resources import MeshResource, dbt_project


class MeshDbtTranslator(DagsterDbtTranslator):
    """Sources and marts that are products get the product's key, group and owners."""

    def __init__(self, contracts: ContractRegistry) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))
        self.contracts = contracts

    def _contract(self, props: Mapping[str, Any]):  # noqa: ANN202
        name = props.get("name", "")
        if props.get("resource_type") in ("source", "model") and name in self.contracts:
            return self.contracts.get(name)
        return None

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        contract = self._contract(dbt_resource_props)
        if contract is not None:
            return asset_key(contract)
        return dg.AssetKey(["transform", dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        contract = self._contract(dbt_resource_props)
        return contract.domain if contract is not None else "transform"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str] | None:
        contract = self._contract(dbt_resource_props)
        return owners(contract) if contract is not None else None

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        contract = self._contract(dbt_resource_props)
        return description(contract) if contract is not None else super().get_description(dbt_resource_props)

    def get_metadata(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, Any]:
        contract = self._contract(dbt_resource_props)
        base = dict(super().get_metadata(dbt_resource_props))
        if contract is not None:
            base["dagster/column_schema"] = table_schema(contract)
            base["contract_version"] = contract.version
        return base


def mart_actor(settings: Settings, contracts: ContractRegistry) -> str:
    """Who dbt publishes the marts as: their domain's publisher when the platform holds its credentials
    (every mart of this project is one domain's), else the acting identity itself."""
    nodes = json.loads(Path(dbt_project.manifest_path).read_text()).get("nodes", {}).values()
    marts = {n.get("name") for n in nodes if n.get("resource_type") == "model"}
    domains = {c.domain for c in contracts if c.id in marts}
    if settings.credentials_file is None or settings.identity.role is not Role.PLATFORM or len(domains) != 1:
        return settings.actor
    return f"publisher:{domains.pop()}"


def build_dbt_assets(contracts: ContractRegistry) -> dg.AssetsDefinition:
    @dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project,
                dagster_dbt_translator=MeshDbtTranslator(contracts), name="dbt_models")
    def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, mesh: MeshResource):
        """Build staging, intermediate and mart models; marts publish through the mesh plugin."""
        # The dbt subprocess gets this run's settings (lake, contracts, actor, run id) in a context
        # file inside its own target folder: nothing travels through this process's environment.
        target = Path(dbt_project.project_dir) / "target" / f"run-{context.run_id}"
        target.mkdir(parents=True, exist_ok=True)
        settings = mesh.settings(run_id=context.run_id)
        (target / CONTEXT_FILE).write_text(json.dumps({
            "lake_url": settings.lake_url, "contracts_dir": str(settings.contracts_dir),
            "actor": mart_actor(settings, contracts), "run_id": settings.run_id,
        }))
        yield from dbt.cli(["build"], context=context, target_path=target).stream()

    return dbt_models
