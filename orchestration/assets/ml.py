"""ML assets: train and evaluate the model zoo on labelled products, publish predictions.

For every contract with an ``ml`` block (a labelled product) there is a
``<domain>/<product>_model`` asset (zoo, evaluation plots, registry,
champion rule) and, if the contract names one, its predictions product.
"""

# No `from __future__ import annotations`: Dagster reads these annotations at definition time.

import base64
from typing import Any

import dagster as dg

from datamesh.contracts import Contract, ContractRegistry
from orchestration.products import asset_key, check_specs, materialize_result, owners, spec_for
from orchestration.resources import MeshResource


class TrainingConfig(dg.Config):
    """How the model zoo runs."""

    seed: int = 42
    profile: str = "fast"
    include_keras: bool = False
    candidates: list[str] = []
    max_training_rows: int | None = None


def model_key(contract: Contract) -> dg.AssetKey:
    return dg.AssetKey([contract.domain, f"{contract.id}_model"])


def _png_markdown(plots: dict[str, bytes], names: list[str]) -> str:
    parts = []
    for name in names:
        data = plots.get(name)
        if data:
            parts.append(f"**{name.removesuffix('.png').replace('_', ' ')}**\n\n"
                         f"![{name}](data:image/png;base64,{base64.b64encode(data).decode()})")
    return "\n\n".join(parts)


def build_training_asset(contract: Contract) -> dg.AssetsDefinition:
    key = model_key(contract)

    @dg.asset(
        key=key,
        deps=[asset_key(contract)],
        group_name=contract.domain,
        owners=owners(contract),
        kinds={"scikit-learn", "keras"},
        name=None,
        description=f"Model zoo on {contract.domain}.{contract.id}: stratified CV, evaluation, champion rule.",
        tags={"domain": contract.domain},
    )
    def train(context: dg.AssetExecutionContext, config: TrainingConfig, mesh: MeshResource) -> dg.MaterializeResult:
        """Cross-validate the model zoo, register the best model, promote it if it beats the champion."""
        from ml.products import train_product

        outcome = train_product(
            mesh.mesh(), contract.id, candidates=config.candidates or None, profile=config.profile,
            include_keras=config.include_keras, seed=config.seed, max_training_rows=config.max_training_rows,
            progress=context.log.info,
        )
        report = outcome.report
        best = report.best
        metadata: dict[str, Any] = {
            "model_version": outcome.model_version.version,
            "champion_version": outcome.champion.version if outcome.champion else None,
            "promoted": outcome.promoted,
            "decision": outcome.decision.reason if outcome.decision else "first model",
            "best_candidate": best.name,
            "primary_metric": report.spec.metric,
            report.spec.metric: float(report.score),
            "threshold": report.threshold,
            "threshold_policy": report.spec.threshold_policy.describe(),
            "training_rows": report.n_rows,
            "comparison": dg.MetadataValue.md(report.comparison_markdown),
            "metrics": dg.MetadataValue.json({k: float(v) for k, v in best.metrics.items()}),
            "plots": dg.MetadataValue.md(_png_markdown(report.plots, sorted(report.plots))),
            "training_data": dg.MetadataValue.json(report.training_data),
            "seconds_per_candidate": dg.MetadataValue.json({r.name: round(r.seconds, 2) for r in report.results}),
        }
        if report.notes:
            metadata["notes"] = dg.MetadataValue.md("\n".join(f"- {n}" for n in report.notes))
        return dg.MaterializeResult(metadata=metadata)

    return train


def build_predictions_asset(training: Contract, predictions: Contract) -> dg.AssetsDefinition:
    spec = spec_for(predictions, deps=[model_key(training), asset_key(training)])

    @dg.multi_asset(specs=[spec], check_specs=check_specs(predictions), name=f"score_{predictions.id}")
    def score(context: dg.AssetExecutionContext, mesh: MeshResource):
        """Score the latest features with the champion model and publish the predictions product."""
        from ml.products import score_product

        platform = mesh.mesh()
        manifest = score_product(platform, training.id, predictions_product=predictions.id, progress=context.log.info)
        with platform.session() as s:
            positives, mean_p = s.sql(
                f"select count_if(predicted_label), avg(probability) from {predictions.domain}.{predictions.id}"
            ).fetchone()
        uri = platform.lake.uri(platform.catalog.paths_for(predictions).prefix)
        yield materialize_result(predictions, manifest, uri, extra={
            "predicted_positive": int(positives or 0), "mean_probability": float(mean_p or 0.0),
            "model": dg.MetadataValue.json(manifest.metadata.get("model", {})),
        })

    return score


def build_ml_assets(contracts: ContractRegistry) -> list[dg.AssetsDefinition]:
    out: list[dg.AssetsDefinition] = []
    for contract in contracts:
        if contract.ml is None or contract.ml.label_column is None:
            continue
        out.append(build_training_asset(contract))
        target = contract.ml.predictions_product
        if target and target in contracts:
            out.append(build_predictions_asset(contract, contracts.get(target)))
    return out


def latest_model_summary() -> dict[str, Any]:
    """Champion of every labelled product (for the demo summary)."""
    from datamesh.platform import Mesh
    from ml.products import registry

    mesh = Mesh.from_settings()
    reg = registry(mesh)
    out = {}
    for contract in mesh.contracts:
        if contract.ml is None or contract.ml.label_column is None:
            continue
        champion = reg.champion(contract.id)
        if champion is not None:
            card = champion.card
            out[contract.id] = {"champion_version": champion.version, "candidate": card.candidate,
                                card.primary_metric: round(card.score, 4), "threshold": card.threshold,
                                "comparison": [{k: row.get(k) for k in ("candidate", "roc_auc", "pr_auc", "status") if k in row}
                                               for row in card.comparison]}
    return out
