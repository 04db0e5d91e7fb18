"""ML assets, generated from the contracts' ``ml`` blocks.

* every labelled product (``ml.labelColumn``): a ``<domain>/<product>_model``
  asset (op ``train_<product>``: zoo, evaluation plots, registry, champion
  rule) and, if the contract names one, its predictions product (op
  ``score_<predictions product>``);
* every product whose ``ml`` block declares ``segments`` or ``anomalies``:
  the named output product (ops ``segments_<output>``, ``anomalies_<output>``).

Op names come from the functions below, so run config (the demo's) is built
from the same contracts.
"""

# No `from __future__ import annotations`: Dagster reads these annotations at definition time.

import base64
from collections.abc import Callable
from typing import Any

import dagster as dg
from pydantic import Field

from datamesh.contracts import AnomaliesSection, Contract, ContractRegistry, SegmentsSection
from ml.choices import DEFAULT_PROFILE, Profile, Task
from orchestration.products import asset_key, check_specs, lineage_keys, materialize_result, owners, spec_for
from orchestration.resources import MeshResource


class TrainingConfig(dg.Config):
    """How the model zoo runs. The defaults are the demo's (what a click on Materialize in the UI
    runs); the ``retrain_<product>`` jobs that schedules and sensors start run :data:`OPERATOR_TRAINING`."""

    seed: int = Field(42, description="Seed of the folds and the models (same data + seed = same metrics).")
    profile: Profile = Field(Profile.FAST, description=(
        "fast: 5 candidates (logistic regression, decision tree, random forest, gradient boosting, soft "
        "voting), about 2.5 min on 50,000 customers on 2 cores. full: every family (SVMs, k-NN, stacking, "
        "Keras MLPs with include_keras), several times longer."))
    include_keras: bool = Field(False, description="Add the Keras models (profile full only; loads TensorFlow).")
    candidates: list[str] = Field([], description="Run only these candidates (empty: the whole profile).")
    max_training_rows: int | None = Field(100_000, description=(
        "Cross-validate on a stratified sample of at most this many rows; the champion is refit on all."))


#: What operators' retraining runs (the weekly schedule, the new-version and drift sensors): the whole zoo.
OPERATOR_TRAINING = TrainingConfig(profile=DEFAULT_PROFILE, include_keras=True, max_training_rows=200_000)


class UnsupervisedConfig(dg.Config):
    """Seed of the clustering and mixture models."""

    seed: int = 42


def model_key(contract: Contract) -> dg.AssetKey:
    return dg.AssetKey([contract.domain, f"{contract.id}_model"])


def training_op(contract: Contract) -> str:
    return f"train_{contract.id}"


def scoring_op(predictions: Contract) -> str:
    return f"score_{predictions.id}"


def segments_op(output: Contract) -> str:
    return f"segments_{output.id}"


def anomalies_op(output: Contract) -> str:
    return f"anomalies_{output.id}"


def labelled_products(contracts: ContractRegistry) -> list[Contract]:
    return [c for c in contracts if c.ml is not None and c.ml.label_column is not None]


def predictions_of(contract: Contract, contracts: ContractRegistry) -> Contract | None:
    """The predictions product a labelled contract names, if it has a contract."""
    target = contract.ml.predictions_product if contract.ml else None
    return contracts.get(target) if target and target in contracts else None


def segmented_products(contracts: ContractRegistry) -> list[tuple[Contract, Contract]]:
    """``(source, output)`` for every contract whose ``ml.segments`` names an output product."""
    return [(c, contracts.get(c.ml.segments.product)) for c in contracts if c.ml is not None and c.ml.segments]


def anomaly_products(contracts: ContractRegistry) -> list[tuple[Contract, Contract]]:
    """``(source, output)`` for every contract whose ``ml.anomalies`` names an output product."""
    return [(c, contracts.get(c.ml.anomalies.product)) for c in contracts if c.ml is not None and c.ml.anomalies]


def unsupervised_outputs(contract: Contract, contracts: ContractRegistry) -> list[Contract]:
    """The segment and anomaly products computed from ``contract``."""
    ml = contract.ml
    sections: list[SegmentsSection | AnomaliesSection | None] = [ml.segments, ml.anomalies] if ml else []
    return [contracts.get(s.product) for s in sections if s is not None]


def ml_op_configs(contracts: ContractRegistry, *, seed: int, profile_for: Callable[[Contract], Profile], include_keras: bool,
                  max_training_rows: int | None) -> dict[str, dg.Config]:
    """Run config of every ML op, keyed by op name: ``profile_for(contract)`` picks each zoo profile."""
    out: dict[str, dg.Config] = {}
    for contract in labelled_products(contracts):
        out[training_op(contract)] = TrainingConfig(seed=seed, profile=profile_for(contract),
                                                    include_keras=include_keras, max_training_rows=max_training_rows)
    for _, output in segmented_products(contracts):
        out[segments_op(output)] = UnsupervisedConfig(seed=seed)
    for _, output in anomaly_products(contracts):
        out[anomalies_op(output)] = UnsupervisedConfig(seed=seed)
    return out


def _png_markdown(plots: dict[str, bytes], names: list[str]) -> str:
    parts = []
    for name in names:
        data = plots.get(name)
        if data:
            parts.append(f"**{name.removesuffix('.png').replace('_', ' ')}**\n\n"
                         f"![{name}](data:image/png;base64,{base64.b64encode(data).decode()})")
    return "\n\n".join(parts)


def build_training_asset(contract: Contract) -> dg.AssetsDefinition:
    spec = dg.AssetSpec(
        key=model_key(contract),
        deps=[asset_key(contract)],
        group_name=contract.domain,
        owners=owners(contract),
        kinds={"scikit-learn"},  # Keras joins only when a run asks for it: see the run's "frameworks"
        description=(f"Model zoo on {contract.domain}.{contract.id}: stratified CV, evaluation, champion rule. "
                     "Materialize runs the fast profile (5 candidates: about 2.5 min on 50,000 customers on "
                     "2 cores); profile full with include_keras in the launchpad runs every family, several "
                     "times longer, as the retrain job does."),
        tags={"domain": contract.domain},
    )

    @dg.multi_asset(specs=[spec], name=training_op(contract))
    def train(context: dg.AssetExecutionContext, config: TrainingConfig, mesh: MeshResource) -> dg.MaterializeResult:
        """Cross-validate the model zoo, register the best model, promote it if it beats the champion."""
        from ml.products import train_product

        outcome = train_product(
            mesh.mesh(context.run_id).acting_for(contract.domain), contract.id, candidates=config.candidates or None, profile=config.profile,
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
            "profile": config.profile.value,
            "frameworks": "scikit-learn, keras" if any(
                r.candidate is not None and r.candidate.needs_keras and r.status == "ok" for r in report.results)
            else "scikit-learn",
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
    spec = spec_for(predictions, deps=[model_key(training), asset_key(training)], computed_by="scikit-learn")
    regression = training.ml is not None and Task(training.ml.task) is Task.REGRESSION

    @dg.multi_asset(specs=[spec], check_specs=check_specs(predictions), name=scoring_op(predictions))
    def score(context: dg.AssetExecutionContext, mesh: MeshResource):
        """Score the latest features with the champion model and publish the predictions product."""
        from ml.products import score_product

        platform = mesh.mesh(context.run_id).acting_for(predictions.domain)
        manifest = score_product(platform, training.id, predictions_product=predictions.id, progress=context.log.info)
        stats = prediction_stats(platform, manifest, regression)
        uri = platform.lake.uri(platform.catalog.paths_for(predictions).prefix)
        yield materialize_result(predictions, manifest, uri, extra={
            **stats, "model": dg.MetadataValue.json(manifest.metadata.get("model", {})),
        })

    return score


def prediction_stats(platform: Any, manifest: Any, regression: bool) -> dict[str, Any]:  # noqa: ANN401
    """Summary numbers of the version just published, from its verified files' one or two columns
    (not a DuckDB session, which would register and verify every product of the lake first)."""
    import numpy as np
    import pyarrow.parquet as pq

    paths = platform.catalog.verified_file_paths(manifest)
    columns = ["prediction"] if regression else ["predicted_label", "probability"]
    table = pq.ParquetDataset(paths, filesystem=platform.lake.fs).read(columns=columns)
    if regression:
        values = table.column("prediction").drop_null().to_numpy()
        if len(values) == 0:
            return {"mean_prediction": 0.0, "p10_prediction": 0.0, "p90_prediction": 0.0}
        p10, p90 = np.quantile(values, [0.1, 0.9])
        return {"mean_prediction": float(values.mean()), "p10_prediction": float(p10), "p90_prediction": float(p90)}
    import pyarrow as pa
    import pyarrow.compute as pc

    probabilities = table.column("probability").drop_null().to_numpy()
    stats: dict[str, Any] = {"mean_probability": float(probabilities.mean()) if len(probabilities) else 0.0}
    labels = table.column("predicted_label")
    if pa.types.is_boolean(labels.type):
        stats["predicted_positive"] = int(pc.sum(labels).as_py() or 0)
    else:  # a multi-class model: the predicted label is the class
        counts = pc.value_counts(labels).to_pylist()
        stats["predicted_by_class"] = dg.MetadataValue.json({str(c["values"]): int(c["counts"]) for c in counts})
    return stats


def build_segments_asset(source: Contract, output: Contract, contracts: ContractRegistry) -> dg.AssetsDefinition:
    """The product ``source``'s ``ml.segments`` names, published by k-means (k by silhouette)."""

    @dg.multi_asset(specs=[spec_for(output, deps=lineage_keys(output, contracts), computed_by="scikit-learn")], check_specs=check_specs(output),
                    name=segments_op(output))
    def segments(context: dg.AssetExecutionContext, config: UnsupervisedConfig, mesh: MeshResource):
        """K-means segments of the source product's rows (k by silhouette), with a PCA 2-D plot."""
        from ml.products import segment_product

        platform = mesh.mesh(context.run_id).acting_for(output.domain)
        manifest, result = segment_product(platform, source.id, seed=config.seed, progress=context.log.info)
        uri = platform.lake.uri(platform.catalog.paths_for(output).prefix)
        profile = result.profile.round(2).reset_index().to_markdown(index=False) if hasattr(
            result.profile, "to_markdown") else str(result.profile.round(2))
        yield materialize_result(output, manifest, uri, extra={
            "k": result.k,
            "silhouette_by_k": dg.MetadataValue.json({str(k): round(v, 4) for k, v in result.silhouette.items()}),
            "segment_sizes": dg.MetadataValue.json({str(k): v for k, v in result.sizes.items()}),
            "pca_plot": dg.MetadataValue.md(_png_markdown({"segments_pca.png": result.scatter_png},
                                                          ["segments_pca.png"])),
            "segment_profile": dg.MetadataValue.md(profile),
        })

    return segments


def build_anomalies_asset(source: Contract, output: Contract, contracts: ContractRegistry) -> dg.AssetsDefinition:
    """The product ``source``'s ``ml.anomalies`` names, published by a Gaussian mixture (components by BIC)."""

    @dg.multi_asset(specs=[spec_for(output, deps=lineage_keys(output, contracts), computed_by="scikit-learn")], check_specs=check_specs(output),
                    name=anomalies_op(output))
    def anomalies(context: dg.AssetExecutionContext, config: UnsupervisedConfig, mesh: MeshResource):
        """Gaussian-mixture density of the source product's rows (components by BIC); the least likely are flagged."""
        from ml.products import anomalies_product

        platform = mesh.mesh(context.run_id).acting_for(output.domain)
        manifest, result = anomalies_product(platform, source.id, seed=config.seed, progress=context.log.info)
        uri = platform.lake.uri(platform.catalog.paths_for(output).prefix)
        yield materialize_result(output, manifest, uri, extra={
            "mixture_components": result.n_components,
            "bic_by_components": dg.MetadataValue.json({str(k): round(v, 1) for k, v in result.bic.items()}),
            "flagged": int(result.flags.sum()),
            "threshold": float(result.threshold),
        })

    return anomalies


def build_ml_assets(contracts: ContractRegistry) -> list[dg.AssetsDefinition]:
    out: list[dg.AssetsDefinition] = []
    for contract in labelled_products(contracts):
        out.append(build_training_asset(contract))
        predictions = predictions_of(contract, contracts)
        if predictions is not None:
            out.append(build_predictions_asset(contract, predictions))
    out.extend(build_segments_asset(source, output, contracts) for source, output in segmented_products(contracts))
    out.extend(build_anomalies_asset(source, output, contracts) for source, output in anomaly_products(contracts))
    return out


def build_ml_checks(contracts: ContractRegistry) -> list[dg.AssetChecksDefinition]:
    out = []
    for contract in labelled_products(contracts):
        predictions = predictions_of(contract, contracts)
        if predictions is not None:
            out.append(build_drift_check(contract, predictions))
    return out


def latest_model_summary(settings: Any = None) -> dict[str, Any]:
    """Champion of every labelled product (for the demo summary)."""
    from datamesh.platform import Mesh
    from ml.products import registry

    mesh = Mesh.from_settings(settings)
    reg = registry(mesh)
    out = {}
    for contract in labelled_products(mesh.contracts):
        champion = reg.champion(contract.id)
        if champion is not None:
            card = champion.card
            extra = ["pr_auc", "f1"] if Task(card.task) is Task.CLASSIFICATION else ["mae", "r2"]
            metrics = [card.primary_metric, *extra]
            out[contract.id] = {"champion_version": champion.version, "candidate": card.candidate,
                                "task": card.task, "primary_metric": card.primary_metric,
                                card.primary_metric: round(card.score, 4), "threshold": card.threshold,
                                "metrics": metrics,
                                "comparison": [{k: row.get(k) for k in ("candidate", "status", *metrics) if k in row}
                                               for row in card.comparison]}
    return out


DRIFT_CHECK = "drift_against_champion"


def drift_check_key(predictions: Contract) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(asset_key(predictions), DRIFT_CHECK)


def build_drift_check(training: Contract, predictions: Contract) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=asset_key(predictions), name=DRIFT_CHECK, blocking=False,
                    description="Population stability index of features and predictions, champion's training "
                                "data vs the latest features; fails at PSI >= 0.25 and triggers retraining.")
    def drift(mesh: MeshResource) -> dg.AssetCheckResult:
        """PSI of features and predictions against the champion's training data."""
        from ml.drift import SIGNIFICANT
        from ml.products import drift_against_champion

        report = drift_against_champion(mesh.mesh(), training.id)
        if report is None:
            return dg.AssetCheckResult(passed=True, description="no champion yet", metadata={"max_psi": 0.0})
        worst = sorted(report.features.features.values(), key=lambda f: -f.psi)[:5]
        return dg.AssetCheckResult(
            passed=report.max_psi < SIGNIFICANT,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"max PSI {report.max_psi:.3f} ({report.status}); reference v{report.reference_version}, "
                        f"current v{report.current_version}",
            metadata={
                "max_psi": float(report.max_psi),
                "predictions_psi": float(report.predictions_psi) if report.predictions_psi is not None else None,
                "reference_version": report.reference_version,
                "current_version": report.current_version,
                "worst_features": dg.MetadataValue.json({f.feature: round(f.psi, 4) for f in worst}),
            },
        )

    return drift
