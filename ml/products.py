"""The ML layer on data products: train from a product, score into a product.

Plain Python over the platform library (no Dagster): ``mesh train`` and the
Dagster ML assets both call these functions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ml.errors import LabelError, RegistryError
from ml.registry import ModelRegistry, ModelVersion
from ml.spec import LearningSpec, Task, ThresholdPolicy
from ml.zoo import DEFAULT_PROFILE, Profile

if TYPE_CHECKING:
    import pandas as pd

    from datamesh.catalog import Manifest
    from datamesh.contracts import Contract
    from datamesh.platform import Mesh
    from ml.champion import Decision
    from ml.drift import DriftStatus
    from ml.training import TrainingReport

Progress = Callable[[str], None]


def learning_spec(contract: Contract, *, seed: int = 42, max_training_rows: int | None = None) -> LearningSpec:
    """The :class:`LearningSpec` declared by a contract's ``ml`` block."""
    where = str(contract.source_path or f"the contract of '{contract.id}'")
    ml = contract.ml
    if ml is None or ml.label_column is None:
        raise LabelError(
            f"Product '{contract.id}' declares no label column: add an `ml:` block with `idColumn` and "
            f"`labelColumn` to {where} to train on it."
        )
    return LearningSpec(
        product=contract.id,
        id_column=ml.id_column,
        label_column=ml.label_column,
        feature_columns=ml.feature_columns,
        exclude_columns=ml.exclude_columns,
        task=Task(ml.task),
        primary_metric=ml.primary_metric,
        threshold_policy=ThresholdPolicy.from_contract(ml.threshold_policy, where=where),
        champion_margin=ml.champion_margin,
        cv_folds=ml.cv_folds,
        seed=seed,
        max_training_rows=max_training_rows if max_training_rows is not None else ml.max_training_rows,
        contract_path=where,
    )


def registry(mesh: Mesh) -> ModelRegistry:
    """The model registry of this lake (``<lake>/models``), versioned like products."""
    return ModelRegistry(mesh.lake)


def load_frame(mesh: Mesh, product: str, version: int | None = None) -> tuple[pd.DataFrame, Manifest]:
    """A product version as a pandas DataFrame (strings as ``object``)."""
    import pyarrow.parquet as pq

    manifest = mesh.catalog.manifest(product, version)
    table = pq.ParquetDataset(mesh.catalog.verified_file_paths(manifest), filesystem=mesh.lake.fs).read()
    return table.to_pandas(), manifest


@dataclass
class TrainOutcome:
    report: TrainingReport
    model_version: ModelVersion
    decision: Decision | None
    promoted: bool
    champion: ModelVersion | None


def train_product(
    mesh: Mesh,
    product: str,
    *,
    candidates: Sequence[str] | None = None,
    profile: Profile | str = DEFAULT_PROFILE,
    include_keras: bool = True,
    seed: int = 42,
    max_training_rows: int | None = None,
    progress: Progress | None = None,
) -> TrainOutcome:
    """Run the model zoo on a labelled product, register the best model, maybe promote it.

    The best candidate becomes champion only if it beats the current champion
    by the contract's margin on the same folds. A failed run raises and
    leaves the champion (and the served predictions) untouched.
    """
    from ml.training import train_and_evaluate
    from ml.zoo import default_zoo

    contract = mesh.contract(product)
    spec = learning_spec(contract, seed=seed, max_training_rows=max_training_rows)
    frame, manifest = load_frame(mesh, product)
    say = progress or (lambda _m: None)
    say(f"training on {contract.domain}.{product} v{manifest.version} ({len(frame):,} rows)")
    reg = registry(mesh)
    current = reg.champion(product)
    plan: Any = list(candidates) if candidates else default_zoo(spec.task, len(frame), include_keras=include_keras,
                                                                  profile=profile)
    report = train_and_evaluate(
        frame, spec, plan, progress=say, training_data={product: str(manifest.version)},
        current_champion=current.card if current is not None else None,
    )
    card = report.model_card(model_name=product)
    version = reg.register(product, report.model, card, report.plots)
    decision = report.decision
    promote = current is None or (decision is not None and decision.promote)
    if promote:
        reason = decision.reason if decision is not None else "first model"
        reg.promote(product, version.version, reason=reason)
        say(f"model {product} v{version.version} ({report.best.name}) is the new champion: {reason}")
    else:
        say(f"model {product} v{version.version} registered; champion stays v{current.version if current else '?'}"
            f" ({decision.reason if decision else ''})")
    return TrainOutcome(report, version, decision, promote, reg.champion(product))


def score_product(
    mesh: Mesh,
    product: str,
    *,
    predictions_product: str | None = None,
    batch_rows: int = 100_000,
    progress: Progress | None = None,
) -> Manifest:
    """Score the latest version of ``product`` with its champion and publish the predictions product."""
    import pyarrow.parquet as pq

    from ml.scoring import score_batches

    contract = mesh.contract(product)
    spec = learning_spec(contract)
    target = predictions_product or (contract.ml.predictions_product if contract.ml else None)
    if not target:
        raise RegistryError(
            f"Product '{product}' names no predictions product: add `ml.predictionsProduct` to "
            f"{contract.source_path} and a contract for it."
        )
    reg = registry(mesh)
    champion = reg.champion(product)
    if champion is None:
        raise RegistryError(f"Model '{product}' has no champion yet: train it first (`mesh train {product}`).")
    model = reg.load(product, champion.version)
    manifest = mesh.catalog.manifest(product)
    dataset = pq.ParquetDataset(mesh.catalog.verified_file_paths(manifest), filesystem=mesh.lake.fs)
    card = champion.card

    def batches() -> Iterator[pa.RecordBatch]:
        for fragment in dataset.fragments:
            yield from fragment.to_batches(batch_size=batch_rows)

    say = progress or (lambda _m: None)
    say(f"scoring {product} v{manifest.version} with {card.candidate} (model v{champion.version}, "
        f"threshold {card.threshold:.3f})" if card.threshold is not None else f"scoring {product}")
    scored = score_batches(model, batches(), spec, card.threshold, f"{product}/{card.candidate}",
                           champion.version, extra={"features_version": manifest.version})
    metadata = {"model": {"name": product, "version": champion.version, "candidate": card.candidate,
                          "threshold": card.threshold, "metrics": card.metrics},
                "scored_product": {"product": product, "version": manifest.version}}
    inputs = {product: manifest.version}
    return mesh.publish(target, scored, inputs=inputs, metadata=json.loads(json.dumps(metadata, default=str)),
                        progress=progress)


def numeric_features(mesh: Mesh, product: str, frame: pd.DataFrame) -> list[str]:
    """The numeric features a product's ``ml`` block declares (for clustering and drift)."""
    from ml.spec import feature_set

    features = feature_set(learning_spec(mesh.contract(product)), frame)
    return [c for c in features.numeric if frame[c].dtype != bool]


def _now() -> Any:
    from datetime import UTC, datetime

    import numpy as np

    return np.datetime64(datetime.now(UTC).replace(tzinfo=None), "us")


def segment_product(mesh: Mesh, product: str, target: str, *, seed: int = 42,
                    progress: Progress | None = None) -> tuple[Manifest, Any]:
    """K-means segments of a product's rows (k by silhouette), published as ``target``."""
    import numpy as np

    from ml.unsupervised import segment_customers

    frame, manifest = load_frame(mesh, product)
    spec = learning_spec(mesh.contract(product))
    features = numeric_features(mesh, product, frame)
    say = progress or (lambda _m: None)
    say(f"segmenting {len(frame):,} rows of {product} v{manifest.version} on {len(features)} numeric features")
    result = segment_customers(frame, features, seed=seed, product=product)
    n = len(frame)
    table = pa.table({
        spec.id_column: pa.array(frame[spec.id_column], pa.string()),
        "segment": pa.array(np.asarray(result.labels, dtype=np.int32)),
        "segment_count": pa.array(np.full(n, result.k, dtype=np.int32)),
        "silhouette_score": pa.array(np.full(n, result.silhouette[result.k], dtype=np.float64)),
        "segmented_at": pa.array(np.full(n, _now()), pa.timestamp("us")),
        "features_version": pa.array(np.full(n, manifest.version, dtype=np.int64)),
    })
    published = mesh.publish(target, table, inputs={product: manifest.version}, progress=progress,
                             metadata={"k": result.k, "silhouette": {str(k): v for k, v in result.silhouette.items()},
                                       "features": features})
    return published, result


def anomalies_product(mesh: Mesh, product: str, target: str, *, seed: int = 42, percentile: float = 1.0,
                      progress: Progress | None = None) -> tuple[Manifest, Any]:
    """Gaussian-mixture density scores (components by BIC); rows below the percentile are flagged."""
    import numpy as np

    from ml.unsupervised import detect_anomalies

    frame, manifest = load_frame(mesh, product)
    spec = learning_spec(mesh.contract(product))
    features = numeric_features(mesh, product, frame)
    say = progress or (lambda _m: None)
    say(f"scoring anomalies on {len(frame):,} rows of {product} v{manifest.version}")
    result = detect_anomalies(frame, features, seed=seed, percentile=percentile, product=product)
    n = len(frame)
    table = pa.table({
        spec.id_column: pa.array(frame[spec.id_column], pa.string()),
        "log_likelihood": pa.array(np.asarray(result.scores, dtype=np.float64)),
        "is_anomalous": pa.array(np.asarray(result.flags, dtype=bool)),
        "threshold": pa.array(np.full(n, result.threshold, dtype=np.float64)),
        "mixture_components": pa.array(np.full(n, result.n_components, dtype=np.int32)),
        "scored_at": pa.array(np.full(n, _now()), pa.timestamp("us")),
        "features_version": pa.array(np.full(n, manifest.version, dtype=np.int64)),
    })
    published = mesh.publish(target, table, inputs={product: manifest.version}, progress=progress,
                             metadata={"components": result.n_components, "percentile": percentile,
                                       "bic": {str(k): v for k, v in result.bic.items()}, "features": features})
    return published, result


@dataclass
class ChampionDrift:
    """Drift of the latest product version against the champion's training version."""

    product: str
    reference_version: int
    current_version: int
    features: Any  # ml.drift.DriftReport
    predictions_psi: float | None

    @property
    def max_psi(self) -> float:
        return max(self.features.max_psi, self.predictions_psi or 0.0)

    @property
    def status(self) -> DriftStatus:
        from ml.drift import drift_status

        return drift_status(self.max_psi)


def drift_against_champion(mesh: Mesh, product: str, *, sample_rows: int = 200_000) -> ChampionDrift | None:
    """PSI of every feature and of the predicted distribution, champion's training data vs latest.

    Returns None when there is no champion yet.
    """
    from ml.drift import drift_report, psi_numeric

    reg = registry(mesh)
    champion = reg.champion(product)
    if champion is None:
        return None
    reference_version = int(champion.card.training_data.get(product, 0))
    current, manifest = load_frame(mesh, product)
    try:
        reference, _ = load_frame(mesh, product, reference_version)
    except Exception as exc:  # noqa: BLE001 - the training version may have been removed by retention
        raise RegistryError(
            f"Drift of '{product}': the champion was trained on version {reference_version}, which is no longer "
            f"readable ({exc}). Retrain to get a champion on a current version."
        ) from None
    if len(reference) > sample_rows:
        reference = reference.sample(sample_rows, random_state=0)
    if len(current) > sample_rows:
        current = current.sample(sample_rows, random_state=0)
    features = drift_report(reference, current, champion.card.feature_columns)
    predictions_psi = None
    if champion.card.task == Task.CLASSIFICATION:
        from threadpoolctl import threadpool_limits

        model = reg.load(product, champion.version)
        with threadpool_limits(limits=1):  # OpenMP threads spin-wait on a busy 2-core machine
            predictions_psi = psi_numeric(model.predict_proba(reference)[:, 1], model.predict_proba(current)[:, 1])
    return ChampionDrift(product, reference_version, manifest.version, features, predictions_psi)
