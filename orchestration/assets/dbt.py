"""dbt models as Dagster assets; marts map to the product asset keys of their contracts."""

# No `from __future__ import annotations`: Dagster reads these annotations at definition time.

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from datamesh.contracts import ContractRegistry
from datamesh.dbt_plugin import RUN_ID_ENV
from orchestration.products import asset_key, description, owners, table_schema
from orchestration.resources import dbt_project


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


def build_dbt_assets(contracts: ContractRegistry) -> dg.AssetsDefinition:
    @dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project,
                dagster_dbt_translator=MeshDbtTranslator(contracts), name="dbt_models")
    def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        """Build staging, intermediate and mart models; marts publish through the mesh plugin."""
        # dbt runs as a subprocess and inherits the environment: the run id ends up in manifests.
        os.environ[RUN_ID_ENV] = _run_id(context)
        os.environ.setdefault("DO_NOT_TRACK", "1")
        try:
            yield from dbt.cli(["build"], context=context).stream()
        finally:
            os.environ.pop(RUN_ID_ENV, None)

    return dbt_models


def _run_id(context: dg.AssetExecutionContext) -> str:
    from datamesh.publish import new_run_id

    return f"{new_run_id()}-{context.run_id[:8]}"
