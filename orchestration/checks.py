"""Asset checks derived from contracts, beyond what a publish records.

* ``<product>_contract_checks``: the contract rules of products built outside
  our publishing assets (dbt marts). The publish recorded every rule's result
  over exactly the committed files; these checks surface the latest version's
  results in Dagster. Error rules are blocking: a failure stops downstream assets.
* ``query_latency``: on every product whose contract has a ``queryLatency``
  target, the p95 of a full-column scan and a primary-key lookup of the
  latest version (``datamesh/slo.py``), in DuckDB and, when the settings name
  a Trino host, in Trino; one op per asset step (``<step>_query_latency``)
  times that step's products in one session. Non-blocking (a slow query never
  stops the data); a missed target is a warning unless the contract's
  ``queryLatency`` says ``severity: error``.
"""

# No `from __future__ import annotations`: Dagster reads these annotations at definition time.

import dagster as dg

from datamesh.contracts import Contract, Severity
from datamesh.slo import LatencyResult, Verdict, markdown_table
from orchestration.products import asset_key, check_results, check_specs
from orchestration.resources import MeshResource

QUERY_LATENCY_CHECK = "query_latency"


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


def query_latency_check_key(contract: Contract) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(asset_key(contract), QUERY_LATENCY_CHECK)


def build_query_latency_checks(contracts: list[Contract], name: str) -> dg.AssetChecksDefinition:
    """One ``query_latency`` check per product with a ``queryLatency`` target, all run by one op ``name``.

    Give it the products of one asset step (the loader groups them so): the op
    waits for nothing else, so a failed step elsewhere skips no product's check.
    It opens the mesh and one read-only DuckDB session (which registers the
    selected products' views and verifies their files) for all of them, instead of a step,
    a mesh and a session per product. A product that cannot be measured gets a
    failed check of its own; the others are still timed. A run that
    materializes only some products runs only their checks.
    """
    specs = [dg.AssetCheckSpec(
        name=QUERY_LATENCY_CHECK, asset=asset_key(c), blocking=False,
        description=f"p95 of a full-column scan and of a primary-key lookup of the latest version at most "
                    f"{c.query_latency_ms:g} ms (queryLatency), in DuckDB and in Trino when configured.")
        for c in contracts]
    by_key = {query_latency_check_key(c): c for c in contracts}

    @dg.multi_asset_check(specs=specs, name=name, can_subset=True)
    def query_latency_probes(context: dg.AssetCheckExecutionContext, mesh: MeshResource):
        """Time the scan and lookup probes of each product's latest version against its contract's queryLatency."""
        import duckdb

        from datamesh.errors import PlatformError, VersionNotFoundError
        from datamesh.slo import DEFAULT_BUDGET_S, measure
        from datamesh.trino import TrinoClient

        platform = mesh.mesh()
        trino = TrinoClient.from_settings(platform.settings) if platform.settings.trino_host else None
        selected = [key for key in by_key if key in context.selected_asset_check_keys]
        with platform.session(products=[by_key[key].id for key in selected]) as session:
            for key in selected:
                contract = by_key[key]
                try:
                    yield query_latency_result(contract, measure(session, contract, trino=trino,
                                                                      budget_s=DEFAULT_BUDGET_S))
                except VersionNotFoundError as exc:
                    yield dg.AssetCheckResult(asset_key=key.asset_key, check_name=key.name, passed=True,
                                              description=f"not measured: {exc}")
                except (PlatformError, duckdb.Error, OSError) as exc:
                    yield dg.AssetCheckResult(asset_key=key.asset_key, check_name=key.name, passed=False,
                                              severity=dg.AssetCheckSeverity.WARN,
                                              description=f"could not be measured: {exc}")

    return query_latency_probes


def query_latency_result(contract: Contract, results: list[LatencyResult]) -> dg.AssetCheckResult:
    """The check's result: p50/p95 of each engine and probe as numbers, and a Markdown table of them."""
    missed = [r for r in results if r.verdict is Verdict.MISSED]
    metadata: dict[str, object] = {
        "target_ms": contract.query_latency_ms,
        "version": results[0].version if results else None,
        # The fewest timed runs of any probe: a slow probe whose verdict was settled stops early.
        "runs": min(r.runs for r in results) if results else 0,
        "results": dg.MetadataValue.md(markdown_table(results)),
    }
    for r in results:
        metadata[f"{r.engine.value}_{r.probe.value}_p50_ms"] = round(r.p50_ms, 3)
        metadata[f"{r.engine.value}_{r.probe.value}_p95_ms"] = round(r.p95_ms, 3)
    worst = max(results, key=lambda r: r.p95_ms) if results else None
    if missed:
        description = "target missed: " + ", ".join(
            f"{r.engine.value} {r.probe.value} p95 {r.p95_ms:.1f} ms" for r in missed) + \
            f" > {contract.query_latency_ms:g} ms"
    elif worst is not None:
        description = f"met: slowest p95 {worst.p95_ms:.1f} ms ({worst.engine.value} {worst.probe.value}) <= " \
                      f"{contract.query_latency_ms:g} ms"
    else:
        description = "nothing measured"
    return dg.AssetCheckResult(
        asset_key=asset_key(contract), check_name=QUERY_LATENCY_CHECK,
        passed=not missed,
        severity=dg.AssetCheckSeverity.ERROR if contract.query_latency_severity is Severity.ERROR
        else dg.AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )
