"""Source products of the demo domains, generated and published through the atomic publish."""

# No `from __future__ import annotations`: Dagster reads these annotations at definition time.

import dagster as dg

from datamesh.contracts import ContractRegistry
from orchestration.products import asset_key, check_specs, materialize_result, spec_for
from orchestration.resources import MeshResource


class GeneratorConfig(dg.Config):
    """Scale and seed of the deterministic demo generator."""

    customers: int = 50_000
    seed: int = 42


def build_source_assets(contracts: ContractRegistry) -> dg.AssetsDefinition:
    from demo_sources.generator import SOURCE_PRODUCTS

    chosen = [contracts.get(p) for p in SOURCE_PRODUCTS]

    @dg.multi_asset(
        name="demo_sources",
        specs=[spec_for(c, deps=[]) for c in chosen],
        check_specs=[s for c in chosen for s in check_specs(c)],
        can_subset=True,
        description="Generate the operational data of the demo domains and publish each as a product version.",
    )
    def demo_sources(context: dg.AssetExecutionContext, config: GeneratorConfig, mesh: MeshResource):
        """Generate the operational data of the demo domains and publish each as a product version."""
        from demo_sources.generator import DemoConfig, iter_product

        platform = mesh.mesh(context.run_id)
        demo = DemoConfig(customers=config.customers, seed=config.seed)
        selected = context.selected_asset_keys
        for contract in chosen:
            if asset_key(contract) not in selected:
                continue
            manifest = platform.publish(
                contract.id, iter_product(contract.id, demo, platform.contracts),
                metadata={"generator": {"customers": config.customers, "seed": config.seed}},
                progress=context.log.info,
            )
            uri = platform.lake.uri(platform.catalog.paths_for(contract).prefix)
            yield materialize_result(contract, manifest, uri, extra={"customers": config.customers, "seed": config.seed})

    return demo_sources
