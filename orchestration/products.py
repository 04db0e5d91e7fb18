"""Dagster views of product contracts: asset specs, checks and materialization results.

Everything here is derived from the contract files; nothing is declared twice.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from datamesh.catalog import Manifest
from datamesh.contracts import ColumnType, Contract, ContractRegistry, Severity
from datamesh.tables import CATALOG_NAME as TABLE_CATALOG

#: Every product is an Iceberg table of Parquet files in the lake (its storage kind).
STORAGE_KIND = "iceberg"


def asset_key(contract: Contract) -> dg.AssetKey:
    return dg.AssetKey([contract.domain, contract.id])


def owners(contract: Contract) -> list[str]:
    out = [f"team:{contract.owner.team.replace('-', '_')}"]
    if "@" in contract.owner.contact:
        out.insert(0, contract.owner.contact)
    return out


def table_schema(contract: Contract) -> dg.TableSchema:
    return dg.TableSchema(columns=[
        dg.TableColumn(
            name=c.name, type=c.type.value, description=c.description or None,
            constraints=dg.TableColumnConstraints(nullable=not c.required, unique=c.unique),
            tags={"classification": c.classification.value} if c.classification.value != "internal" else {},
        ) for c in contract.columns
    ])


def description(contract: Contract) -> str:
    return f"{contract.description.purpose}\n\nGrain: {contract.description.grain}"


def lineage_keys(contract: Contract, contracts: ContractRegistry) -> list[dg.AssetKey]:
    """Asset keys of the products in the contract's ``lineage.inputs`` (each in its own domain)."""
    return [asset_key(contracts.get(product)) for product in contract.lineage.inputs]


def spec_for(contract: Contract, *, deps: Iterable[dg.AssetKey], computed_by: str) -> dg.AssetSpec:
    """The asset spec of a product, from its contract; ``deps`` are its upstream assets
    (:func:`lineage_keys` for the ones its contract declares), ``computed_by`` the kind of what
    computes it (``python``, ``scikit-learn``); its storage is the product's table in the lake."""
    metadata = {
        "dagster/table_name": f"{TABLE_CATALOG}.{contract.domain}.{contract.id}",
        "dagster/storage_kind": STORAGE_KIND,
        "dagster/column_schema": table_schema(contract),
        "contract_version": contract.version,
        "contract_file": str(contract.source_path.name) if contract.source_path else "",
        "grain": contract.description.grain,
    }
    return dg.AssetSpec(
        key=asset_key(contract),
        deps=list(deps),
        description=description(contract),
        group_name=contract.domain,
        owners=owners(contract),
        kinds={computed_by, STORAGE_KIND},
        tags={"domain": contract.domain, "status": contract.status.value},
        metadata=metadata,
    )


def check_specs(contract: Contract) -> list[dg.AssetCheckSpec]:
    """One asset check per contract rule; error-severity rules block downstream assets."""
    return [
        dg.AssetCheckSpec(name=rule.key, asset=asset_key(contract), description=rule.description or rule.expectation(),
                          blocking=rule.severity is Severity.ERROR)
        for rule in contract.rules()
    ]


def check_results(contract: Contract, manifest: Manifest) -> list[dg.AssetCheckResult]:
    """Check results recorded by the publish over exactly the committed files."""
    out = []
    for r in manifest.quality:
        out.append(dg.AssetCheckResult(
            asset_key=asset_key(contract), check_name=r["key"], passed=bool(r["passed"]),
            severity=dg.AssetCheckSeverity.ERROR if r["severity"] == "error" else dg.AssetCheckSeverity.WARN,
            metadata={"observed": float(r["observed"]), "expected": r["expected"], "version": manifest.version},
            description=r["message"],
        ))
    return out


def manifest_metadata(manifest: Manifest, lake_uri: str) -> dict[str, object]:
    return {
        "version": manifest.version,
        "dagster/row_count": manifest.row_count,
        "dagster/uri": lake_uri,
        "files": len(manifest.files),
        "size_bytes": manifest.size_bytes,
        "run_id": manifest.run_id,
        "dagster_run_id": manifest.orchestrator_run_id or "",
        "inputs": dg.MetadataValue.json(manifest.inputs),
        "contract_version": manifest.contract_version,
        "iceberg_snapshot_id": str(manifest.snapshot_id) if manifest.snapshot_id is not None else "",
        "iceberg_tag": f"v{manifest.version}",
    }


def materialize_result(contract: Contract, manifest: Manifest, lake_uri: str,
                       extra: dict[str, object] | None = None, with_checks: bool = True) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        asset_key=asset_key(contract),
        metadata={**manifest_metadata(manifest, lake_uri), **(extra or {})},
        check_results=check_results(contract, manifest) if with_checks else None,
        data_version=dg.DataVersion(f"v{manifest.version}"),
    )


__all__ = ["ColumnType", "asset_key", "check_results", "check_specs", "lineage_keys", "materialize_result", "spec_for"]
