"""Source products of the demo domains, generated and published through the atomic publish."""

# No `from __future__ import annotations`: Dagster reads these annotations at definition time.

import dagster as dg

from datamesh.contracts import ContractRegistry
from orchestration.products import asset_key, check_specs, materialize_result, spec_for
from orchestration.resources import MeshResource

#: The scale of a lake that has no demo data yet.
DEFAULT_SCALE = 50_000


class GeneratorConfig(dg.Config):
    """Scale and seed of the deterministic demo generator.

    Left empty, both come from the lake: the generator settings recorded in the
    newest source product's manifest, so materializing one source from the UI
    keeps the scale of the rest (50,000 customers and seed 42 on a new lake).
    """

    customers: int | None = None
    seed: int | None = None


def lake_scale(platform, products: list) -> tuple[int | None, int | None]:  # noqa: ANN001
    """(customers, seed) the lake's source products were generated with, from their manifests."""
    from datamesh.errors import PlatformError

    for contract in products:
        try:
            manifest = platform.catalog.manifest(contract.id)
        except PlatformError:
            continue
        generator = manifest.metadata.get("generator") if isinstance(manifest.metadata, dict) else None
        if isinstance(generator, dict) and isinstance(generator.get("customers"), int):
            seed = generator.get("seed")
            return generator["customers"], seed if isinstance(seed, int) else None
    return None, None


def build_source_assets(contracts: ContractRegistry) -> dg.AssetsDefinition:
    from demo_sources.generator import SOURCE_PRODUCTS

    chosen = [contracts.get(p) for p in SOURCE_PRODUCTS]

    @dg.multi_asset(
        name="demo_sources",
        specs=[spec_for(c, deps=[], computed_by="python") for c in chosen],
        check_specs=[s for c in chosen for s in check_specs(c)],
        can_subset=True,
        description="Generate the operational data of the demo domains and publish each as a product version.",
    )
    def demo_sources(context: dg.AssetExecutionContext, config: GeneratorConfig, mesh: MeshResource):
        """Generate the operational data of the demo domains and publish each as a product version."""
        from demo_sources.generator import DemoConfig, iter_product

        platform = mesh.mesh(context.run_id)
        known_scale, known_seed = lake_scale(platform, chosen)
        customers = config.customers or known_scale or DEFAULT_SCALE
        seed = config.seed if config.seed is not None else (known_seed if known_seed is not None else 42)
        if config.customers is None:
            context.log.info(f"scale {customers:,} customers, seed {seed}: "
                             + ("as the lake's source products were generated" if known_scale else "the default"))
        demo = DemoConfig(customers=customers, seed=seed)
        selected = context.selected_asset_keys
        for contract in chosen:
            if asset_key(contract) not in selected:
                continue
            manifest = platform.acting_for(contract.domain).publish(
                contract.id, iter_product(contract.id, demo, platform.contracts),
                metadata={"generator": {"customers": customers, "seed": seed}},
                progress=context.log.info,
            )
            uri = platform.lake.uri(platform.catalog.paths_for(contract).prefix)
            yield materialize_result(contract, manifest, uri, extra={"customers": customers, "seed": seed})

    return demo_sources
