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

from ml.errors import LabelError, RegistryError, SpecError
from ml.registry import ModelRegistry, ModelVersion
from ml.spec import LearningSpec, Task, ThresholdPolicy
from ml.zoo import DEFAULT_PROFILE, Profile

if TYPE_CHECKING:
    import pandas as pd

    from datamesh.catalog import Manifest
    from datamesh.contracts import Contract, MLSection, UnsupervisedSection
    from datamesh.platform import Mesh
    from ml.champion import Decision
    from ml.drift import DriftStatus
    from ml.training import TrainingReport
    from ml.unsupervised import AnomalyResult, SegmentationResult

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
        positive_label=ml.positive_label,
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
    leaves the champion (and the served predictions) untouched. ``candidates``
    names the zoo's candidates to run instead of ``profile``'s (see
    :func:`ml.zoo.candidates`: an unknown name raises with the closest one).
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
    multiclass = _has_many_classes(frame, spec)
    plan = default_zoo(spec.task, len(frame), include_keras=include_keras, profile=profile,
                       names=list(candidates) if candidates else None, multiclass=multiclass)
    report = train_and_evaluate(  # plots="best": the registry stores the best model's plots only
        frame, spec, plan, progress=say, training_data={product: str(manifest.version)},
        current_champion=current.card if current is not None else None, plots="best",
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


def _has_many_classes(frame: pd.DataFrame, spec: LearningSpec) -> bool:
    """Whether the label of a classification product has 3+ classes (the multi-class zoo runs)."""
    if spec.task != Task.CLASSIFICATION or spec.label_column not in frame.columns:
        return False
    return int(frame[spec.label_column].nunique(dropna=True)) > 2


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
    card = champion.card
    _check_positive_label(spec, card, champion.version)
    model = reg.load(product, champion.version)
    manifest = mesh.catalog.manifest(product)
    dataset = pq.ParquetDataset(mesh.catalog.verified_file_paths(manifest), filesystem=mesh.lake.fs)

    def batches() -> Iterator[pa.RecordBatch]:
        for fragment in dataset.fragments:
            yield from fragment.to_batches(batch_size=batch_rows)

    say = progress or (lambda _m: None)
    classes = card.classes if card.multiclass else None
    decision = (f"{len(classes)} classes: predicted class = the most probable one" if classes is not None
                else f"threshold {card.threshold:.3f}" if card.threshold is not None else "")
    say(f"scoring {product} v{manifest.version} with {card.candidate} (model v{champion.version}"
        + (f", {decision})" if decision else ")"))
    scored = score_batches(model, batches(), spec, card.threshold, f"{product}/{card.candidate}",
                           champion.version, extra={"features_version": manifest.version}, classes=classes)
    metadata = {"model": {"name": product, "version": champion.version, "candidate": card.candidate,
                          "threshold": card.threshold, "metrics": card.metrics,
                          **({"classes": list(classes)} if classes is not None else {}),
                          **({"positive_label": card.positive_label} if card.positive_label is not None else {})},
                "scored_product": {"product": product, "version": manifest.version}}
    inputs = {product: manifest.version}
    return mesh.publish(target, scored, inputs=inputs, metadata=json.loads(json.dumps(metadata, default=str)),
                        progress=progress)


def _check_positive_label(spec: LearningSpec, card: Any, version: int) -> None:
    """The champion's positive class must still be the one the contract declares: its
    probabilities are of that class, and ``predicted_label`` means it."""
    if card.multiclass or card.positive_label is None:
        return
    if spec.positive_label is None:
        if card.positive_label is True or str(card.positive_label).strip().lower() in ("1", "true"):
            return  # the default positive class of a boolean or 0/1 label, named explicitly at training time
        raise RegistryError(
            f"Model '{spec.product}' v{version} was trained with positive class {card.positive_label!r}, but "
            f"{spec.where} no longer sets `ml.positiveLabel`, so the default (true / 1) would be meant: its "
            f"probabilities are of the old class. Put `positiveLabel: {card.positive_label!r}` back, or retrain "
            f"(`mesh train {spec.product}`) before scoring."
        )
    if card.positive_label == spec.positive_label or str(card.positive_label) == str(spec.positive_label):
        return
    yaml_words = {True: {"yes", "y", "true", "on"}, False: {"no", "n", "false", "off"}}
    if isinstance(spec.positive_label, bool) and isinstance(card.positive_label, str) \
            and card.positive_label.strip().lower() in yaml_words[spec.positive_label]:
        return  # an unquoted YAML `Yes` matched the label's spelling at training time
    raise RegistryError(
        f"Model '{spec.product}' v{version} was trained with positive class {card.positive_label!r}, but "
        f"`ml.positiveLabel` in {spec.where} now says {spec.positive_label!r}: its probabilities are of the old "
        f"class. Retrain (`mesh train {spec.product}`) before scoring."
    )


def _undeclared(contract: Contract, field: str) -> SpecError:
    return SpecError(
        f"Product '{contract.id}' declares no `ml.{field}`: add e.g. `{field}: {{product: <output product>}}` "
        f"to the `ml:` block of {contract.source_path or 'its contract'}, and a contract for the output product."
    )


def _unsupervised_features(ml: MLSection, section: UnsupervisedSection, frame: pd.DataFrame) -> list[str]:
    """The section's ``featureColumns``, else the numeric, non-boolean columns of the ml block's
    features (``ml.featureColumns`` or every column) minus the id, the label and excluded columns."""
    from ml.spec import ColumnKind, column_kind

    if section.feature_columns is not None:
        return [c for c in section.feature_columns if c not in section.exclude_columns]
    skip = {ml.id_column, ml.id_column_of(section), ml.label_column, *ml.exclude_columns, *section.exclude_columns}
    candidates = [str(c) for c in frame.columns] if ml.feature_columns is None else list(ml.feature_columns)
    return [c for c in candidates if c not in skip and c in frame.columns and frame[c].dtype != bool
            and column_kind(frame[c].dtype, frame[c]) is ColumnKind.NUMERIC]


def _now() -> Any:
    from datetime import UTC, datetime

    import numpy as np

    return np.datetime64(datetime.now(UTC).replace(tzinfo=None), "us")


def segment_product(mesh: Mesh, product: str, *, seed: int = 42,
                    progress: Progress | None = None) -> tuple[Manifest, SegmentationResult]:
    """K-means segments of a product's rows (k by silhouette), published as the product its
    contract's ``ml.segments`` names."""
    import numpy as np

    from ml.unsupervised import segment

    contract = mesh.contract(product)
    ml = contract.ml
    if ml is None or ml.segments is None:
        raise _undeclared(contract, "segments")
    section, id_column = ml.segments, ml.id_column_of(ml.segments)
    frame, manifest = load_frame(mesh, product)
    features = _unsupervised_features(ml, section, frame)
    say = progress or (lambda _m: None)
    say(f"segmenting {len(frame):,} rows of {product} v{manifest.version} on {len(features)} numeric features")
    result = segment(frame, features, seed=seed, product=product)
    n = len(frame)
    table = pa.table({
        id_column: pa.array(frame[id_column], pa.string()),
        "segment": pa.array(np.asarray(result.labels, dtype=np.int32)),
        "segment_count": pa.array(np.full(n, result.k, dtype=np.int32)),
        "silhouette_score": pa.array(np.full(n, result.silhouette[result.k], dtype=np.float64)),
        "segmented_at": pa.array(np.full(n, _now()), pa.timestamp("us")),
        "features_version": pa.array(np.full(n, manifest.version, dtype=np.int64)),
    })
    published = mesh.publish(section.product, table, inputs={product: manifest.version}, progress=progress,
                             metadata={"k": result.k, "silhouette": {str(k): v for k, v in result.silhouette.items()},
                                       "features": features})
    return published, result


def anomalies_product(mesh: Mesh, product: str, *, seed: int = 42,
                      progress: Progress | None = None) -> tuple[Manifest, AnomalyResult]:
    """Gaussian-mixture density scores (components by BIC) of a product's rows, published as the
    product its contract's ``ml.anomalies`` names; rows below ``ml.anomalies.percentile`` are flagged."""
    import numpy as np

    from ml.unsupervised import detect_anomalies

    contract = mesh.contract(product)
    ml = contract.ml
    if ml is None or ml.anomalies is None:
        raise _undeclared(contract, "anomalies")
    section, id_column = ml.anomalies, ml.id_column_of(ml.anomalies)
    frame, manifest = load_frame(mesh, product)
    features = _unsupervised_features(ml, section, frame)
    say = progress or (lambda _m: None)
    say(f"scoring anomalies on {len(frame):,} rows of {product} v{manifest.version}")
    result = detect_anomalies(frame, features, seed=seed, percentile=section.percentile, product=product)
    n = len(frame)
    table = pa.table({
        id_column: pa.array(frame[id_column], pa.string()),
        "log_likelihood": pa.array(np.asarray(result.scores, dtype=np.float64)),
        "is_anomalous": pa.array(np.asarray(result.flags, dtype=bool)),
        "threshold": pa.array(np.full(n, result.threshold, dtype=np.float64)),
        "mixture_components": pa.array(np.full(n, result.n_components, dtype=np.int32)),
        "scored_at": pa.array(np.full(n, _now()), pa.timestamp("us")),
        "features_version": pa.array(np.full(n, manifest.version, dtype=np.int64)),
    })
    published = mesh.publish(section.product, table, inputs={product: manifest.version}, progress=progress,
                             metadata={"components": result.n_components, "percentile": section.percentile,
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
    # The latest version is often the one the champion was trained on: read it once, predict it not at all.
    same = reference_version == manifest.version
    try:
        reference = current if same else load_frame(mesh, product, reference_version)[0]
    except Exception as exc:  # noqa: BLE001 - the training version may have been removed by retention
        raise RegistryError(
            f"Drift of '{product}': the champion was trained on version {reference_version}, which is no longer "
            f"readable ({exc}). Retrain to get a champion on a current version."
        ) from None
    if len(current) > sample_rows:
        current = current.sample(sample_rows, random_state=0)
    if same:
        reference = current  # the same rows, sampled the same way
    elif len(reference) > sample_rows:
        reference = reference.sample(sample_rows, random_state=0)
    features = drift_report(reference, current, champion.card.feature_columns)
    predictions_psi = None
    if champion.card.task == Task.CLASSIFICATION and same:
        # The same rows and the same model: the predicted distribution is the reference's, PSI 0 exactly
        # (what predicting both would give), so the model is neither loaded nor run.
        predictions_psi = 0.0
    elif champion.card.task == Task.CLASSIFICATION:
        from threadpoolctl import threadpool_limits

        model = reg.load(product, champion.version)
        column = (lambda p: p.max(axis=1)) if champion.card.multiclass else (lambda p: p[:, 1])
        with threadpool_limits(limits=1):  # OpenMP threads spin-wait on a busy 2-core machine
            current_p = column(model.predict_proba(current))
            reference_p = column(model.predict_proba(reference))
        predictions_psi = psi_numeric(reference_p, current_p)
    return ChampionDrift(product, reference_version, manifest.version, features, predictions_psi)
