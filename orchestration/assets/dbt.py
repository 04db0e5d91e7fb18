"""dbt models as Dagster assets; marts map to the product asset keys of their contracts."""

# No `from __future__ import annotations`: Dagster reads these annotations at definition time.

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from datamesh.contracts import ContractRegistry
from datamesh.dbt_sources import CONTEXT_FILE
from datamesh.identity import Role
from datamesh.paths import DBT_PROJECT_DIR
from datamesh.settings import Settings
from datamesh.tables import CATALOG_NAME as TABLE_CATALOG
from orchestration.products import STORAGE_KIND, asset_key, description, owners, table_schema
from orchestration.resources import PARTIAL_PARSE, MeshResource, dbt_project, project_parse_file


class MeshDbtTranslator(DagsterDbtTranslator):
    """Sources and marts that are products get the product's key, group, owners and lake table;
    the models between them are owned by the teams whose marts they feed."""

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

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: Any) -> dg.AssetSpec:  # noqa: ANN401
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        contract = self._contract(props)
        if contract is not None and props.get("resource_type") == "model":
            # A mart is published to the lake: the product's Iceberg table is its storage, not the
            # view dbt keeps in its private DuckDB working file.
            metadata = {**spec.metadata, "dagster/table_name": f"{TABLE_CATALOG}.{contract.domain}.{contract.id}",
                        "dagster/storage_kind": STORAGE_KIND}
            return spec.replace_attributes(metadata=metadata, kinds={"dbt", "duckdb", STORAGE_KIND})
        if contract is None and props.get("resource_type") == "model" and not spec.owners:
            return spec.replace_attributes(owners=self._downstream_owners(manifest, unique_id))
        return spec

    def _downstream_owners(self, manifest: Mapping[str, Any], unique_id: str) -> list[str]:
        """Owners of the product marts this model feeds (the teams that would notice it break)."""
        children = manifest.get("child_map", {})
        seen, todo, out = set(), [unique_id], []
        while todo:
            for child in children.get(todo.pop(), []):
                if child in seen:
                    continue
                seen.add(child)
                todo.append(child)
                contract = self._contract(manifest.get("nodes", {}).get(child, {}))
                if contract is not None:
                    out.extend(o for o in owners(contract) if o not in out)
        return out

    def get_asset_check_spec(self, asset_spec: dg.AssetSpec, manifest: Mapping[str, Any], unique_id: str,
                             project: Any) -> dg.AssetCheckSpec | None:  # noqa: ANN401
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None or spec.description:
            return spec
        return dg.AssetCheckSpec(name=spec.name, asset=spec.asset_key, description=dbt_test_description(
            manifest.get("nodes", {}).get(unique_id, {})), additional_deps=spec.additional_deps,
            metadata=spec.metadata, blocking=spec.blocking)

    def get_metadata(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, Any]:
        contract = self._contract(dbt_resource_props)
        base = dict(super().get_metadata(dbt_resource_props))
        if contract is not None:
            base["dagster/column_schema"] = table_schema(contract)
            base["contract_version"] = contract.version
        return base


def dbt_test_description(test: Mapping[str, Any]) -> str:
    """What a dbt data test checks, from its test metadata: a ``relationships`` test of a column to
    another model's key reads as such, not as "No description provided"."""
    meta = test.get("test_metadata") or {}
    kwargs = {k: v for k, v in (meta.get("kwargs") or {}).items() if k not in ("model", "column_name")}
    column = (meta.get("kwargs") or {}).get("column_name") or test.get("column_name")
    name = meta.get("name") or test.get("name", "test")
    if name == "relationships" and {"to", "field"} <= kwargs.keys():
        target = str(kwargs["to"]).removeprefix("ref(").removeprefix("source(").rstrip(")").replace("'", "")
        return f"dbt test: every {column} is a {kwargs['field']} of {target}"
    args = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    return f"dbt test {name}" + (f" on {column}" if column else "") + (f" ({args})" if args else "")


def mart_actor(settings: Settings, contracts: ContractRegistry) -> str:
    """Who dbt publishes the marts as: their domain's publisher when the platform holds its credentials
    (every mart of this project is one domain's), else the acting identity itself."""
    nodes = json.loads(Path(dbt_project.manifest_path).read_text()).get("nodes", {}).values()
    marts = {n.get("name") for n in nodes if n.get("resource_type") == "model"}
    domains = {c.domain for c in contracts if c.id in marts}
    if settings.credentials_file is None or settings.identity.role is not Role.PLATFORM or len(domains) != 1:
        return settings.actor
    return f"publisher:{domains.pop()}"


def dbt_duckdb_path() -> Path:
    """dbt's private DuckDB working file, as profiles.yml places it (relative to the project)."""
    return DBT_PROJECT_DIR / os.environ.get("MESH_DBT_DUCKDB_PATH", "target/mesh_dbt.duckdb")


def view_column_types(path: Path) -> dict[str, list[tuple[str, str]]]:
    """{model name: [(column, DuckDB type)]} of the views and tables in dbt's working file ({} when
    it cannot be read, e.g. a plain ``dbt build`` holds it)."""
    import duckdb

    if not path.is_file():
        return {}
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            rows = con.execute("select table_name, column_name, data_type from duckdb_columns() "
                               "where schema_name = 'main' order by table_name, column_index").fetchall()
    except duckdb.Error:
        return {}
    out: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in rows:
        out.setdefault(table, []).append((column, data_type.lower()))
    return out


def with_column_types(event: Any, types: Mapping[str, list[tuple[str, str]]], manifest: Mapping[str, Any]) -> Any:  # noqa: ANN401
    """A model's output with the column types of the view dbt built (its yml declares names and
    descriptions only); outputs of marts (the product's schema) and every other event unchanged."""
    unique_id = getattr(event, "metadata", {}).get("unique_id") if isinstance(event, dg.Output) else None
    node = manifest.get("nodes", {}).get(getattr(unique_id, "text", unique_id) or "", {})
    columns = types.get(node.get("name", ""))
    if not columns or node.get("config", {}).get("materialized") == "external":
        return event
    described = {name: (c.get("description") or None) for name, c in (node.get("columns") or {}).items()}
    schema = dg.TableSchema(columns=[dg.TableColumn(name=n, type=t, description=described.get(n)) for n, t in columns])
    return event.with_metadata({**event.metadata, "dagster/column_schema": schema})


def keep_partial_parse(run_target: Path) -> None:
    """Make this run's parse the one the next run starts from.

    The run started from a copy of the project's parse (``target/partial_parse.msgpack``,
    :func:`~orchestration.resources.project_parse_file`) in its own target
    folder, and dbt writes its new parse there. When the parse the
    project folder holds was made under another profile (``MESH_DBT_DUCKDB_PATH``
    differs, say), every later run would parse the whole project again: the
    newest parse goes back, atomically (dbt itself checks that it still fits
    the project and the profile before using it).
    """
    fresh = run_target / PARTIAL_PARSE
    if not fresh.is_file():
        return
    shared = project_parse_file(Path(dbt_project.project_dir))
    staged = shared.with_name(f".{fresh.name}.{os.getpid()}")
    try:
        shutil.copyfile(fresh, staged)
        os.replace(staged, shared)
    except OSError:  # a cache: a read-only project folder only costs the next run its parse
        staged.unlink(missing_ok=True)


def build_dbt_assets(contracts: ContractRegistry) -> dg.AssetsDefinition:
    @dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project,
                dagster_dbt_translator=MeshDbtTranslator(contracts), name="dbt_models")
    def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, mesh: MeshResource):
        """Build staging, intermediate and mart models; marts publish through the mesh plugin."""
        # dbt (run in this process, decision 0042) gets this run's settings (lake, contracts, actor, run id)
        # in a context file inside its own target folder: nothing travels through the environment.
        target = Path(dbt_project.project_dir) / "target" / f"run-{context.run_id}"
        target.mkdir(parents=True, exist_ok=True)
        settings = mesh.settings(run_id=context.run_id)
        (target / CONTEXT_FILE).write_text(json.dumps({
            "lake_url": settings.lake_url, "contracts_dir": str(settings.contracts_dir),
            "actor": mart_actor(settings, contracts), "run_id": settings.run_id,
        }))
        invocation = dbt.cli(["build"], context=context, target_path=target, raise_on_error=False)
        # The events wait for the build's end (dbt's log still streams to the compute log): only then
        # has dbt closed its DuckDB working file, where the views' column types are to be read. A
        # failed build still records what it built and every check result before the step fails.
        events = list(invocation.stream())
        keep_partial_parse(target)
        types = view_column_types(dbt_duckdb_path())
        manifest = invocation.manifest
        for event in events:
            yield with_column_types(event, types, manifest)
        error = invocation.get_error()
        if error is not None:
            raise error

    return dbt_models
