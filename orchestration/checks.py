"""Contract checks for products built outside our publishing assets (dbt marts).

The publish recorded every rule's result over exactly the committed files;
these checks surface the latest version's results in Dagster. Error rules
are blocking: a failure stops downstream assets.
"""

# No `from __future__ import annotations`: Dagster reads these annotations at definition time.

import dagster as dg

from datamesh.contracts import Contract
from orchestration.products import check_results, check_specs
from orchestration.resources import MeshResource


def build_contract_checks(contract: Contract) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(specs=check_specs(contract), name=f"{contract.id}_contract_checks", can_subset=True)
    def contract_checks(context: dg.AssetCheckExecutionContext, mesh: MeshResource):
        """Contract rules of the latest version, as recorded by its publish."""
        platform = mesh.mesh()
        manifest = platform.catalog.manifest(contract.id)
        selected = {k.name for k in context.selected_asset_check_keys}
        for result in check_results(contract, manifest):
            if result.check_name in selected:
                yield result

    return contract_checks
