"""Cross-validated evaluation of candidates on shared folds.

Every candidate is scored on the same folds (:func:`make_folds`), from its
out-of-fold predictions, so candidates compare like for like. A candidate
that raises is recorded as failed with its error and the others go on.
Ensembles are scored from their members' out-of-fold predictions (see
:func:`score_ensemble`). Also here: learning curves, permutation importance
and the comparison table.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold, learning_curve

from ml.card import EvaluationKey
from ml.errors import TrainingError
from ml.metrics import (
    CalibrationCurve,
    ThresholdChoice,
    calibration,
    choose_threshold,
    classification_metrics,
    metric_info,
    multiclass_metrics,
    normalised_confusion,
    per_class_metrics,
    regression_metrics,
)
from ml.preparation import TrainingData, stratified_subsample
from ml.spec import FeatureSet, LearningSpec, Task
from ml.zoo import Candidate, EnsembleKind

__all__ = [
    "CandidateResult",
    "CandidateStatus",
    "EvaluationKey",
    "FeatureImportance",
    "Folds",
    "LearningCurve",
    "comparison_markdown",
    "comparison_table",
    "class_probabilities",
    "cross_validate",
    "evaluation_key",
    "fit_candidate",
    "learning_curve_for",
    "make_folds",
    "permutation_importances",
    "rank",
    "score_ensemble",
    "score_predictions",
]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Folds:
    """Train/test row indices of each fold, and how they were drawn."""

    splits: tuple[tuple[NDArray[np.intp], NDArray[np.intp]], ...]
    n_splits: int
    seed: int
    stratified: bool


def make_folds(y: NDArray[Any], task: Task | str, n_splits: int, seed: int) -> Folds:
    """Shuffled (stratified for classification) k-fold splits."""
    stratified = Task(str(task)) == Task.CLASSIFICATION
    splitter = (StratifiedKFold if stratified else KFold)(n_splits=n_splits, shuffle=True, random_state=seed)
    splits = tuple((tr, te) for tr, te in splitter.split(np.zeros(len(y)), y))
    return Folds(splits, n_splits, seed, stratified)


def evaluation_key(data: TrainingData, spec: LearningSpec, training_data: Mapping[str, str] | None = None) -> EvaluationKey:
    """The key of evaluating on ``data`` with ``spec``'s folds."""
    digest = hashlib.sha256()
    digest.update(",".join(map(str, data.X.columns)).encode())
    digest.update(pd.util.hash_pandas_object(data.X, index=False).to_numpy().tobytes())
    digest.update(np.ascontiguousarray(data.y).tobytes())
    return EvaluationKey(
        task=str(spec.task),
        label_column=spec.label_column,
        cv_folds=spec.cv_folds,
        fold_seed=spec.seed,
        n_rows=len(data.X),
        data_fingerprint=digest.hexdigest()[:32],
        training_data=tuple(sorted((str(k), str(v)) for k, v in (training_data or {}).items())),
    )


class CandidateStatus(StrEnum):
    """What became of one candidate in a training run."""

    OK = "ok"
    """Cross-validated and scored."""
    FAILED = "failed"
    """Raised while fitting or predicting, or produced non-finite predictions (``error`` says why)."""
    SKIPPED = "skipped"
    """Not run (``note`` says why: not in the profile, too many rows, too few ensemble members)."""


@dataclass(frozen=True)
class CandidateResult:
    """The outcome of cross-validating one candidate (immutable: derive a
    changed copy with :func:`dataclasses.replace`).

    ``status`` is a :class:`CandidateStatus` (a plain string such as ``"ok"``
    is converted): ``ok``, ``failed`` (``error`` says why) or ``skipped``
    (``note`` says why). ``oof`` holds the out-of-fold
    probabilities of the positive class (two classes), an n x K matrix of
    class probabilities (3+ classes, columns in the order of the label's
    classes) or predictions (regression), aligned with the training rows.
    For 3+ classes ``per_class`` holds each class's precision, recall, F1
    and support and ``confusion`` the row-normalised confusion matrix of the
    argmax decisions (rows actual, columns predicted). ``first_fold_model`` is the
    model fitted on the first fold when :func:`cross_validate` was asked to
    keep it (for permutation importance; a soft-voting ensemble's is assembled from its
    members' first-fold models); reports drop it.
    """

    name: str
    family: str
    status: CandidateStatus
    candidate: Candidate | None = None
    oof: NDArray[np.float64] | None = field(default=None, repr=False)
    metrics: dict[str, float] = field(default_factory=dict)
    threshold: ThresholdChoice | None = None
    calibration: CalibrationCurve | None = field(default=None, repr=False)
    error: str | None = None
    seconds: float = 0.0
    note: str = ""
    warnings: tuple[str, ...] = ()
    key: EvaluationKey | None = field(default=None, repr=False)
    first_fold_model: Any = field(default=None, repr=False)
    per_class: Mapping[str, Mapping[str, float]] = field(default_factory=dict, repr=False)
    confusion: tuple[tuple[float, ...], ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "status", CandidateStatus(self.status))
        except ValueError:
            choices = [s.value for s in CandidateStatus]
            raise TrainingError(
                f"Candidate '{self.name}': unknown status {self.status!r}; expected one of {choices}."
            ) from None

    @property
    def ok(self) -> bool:
        """True when the candidate was scored."""
        return self.status is CandidateStatus.OK

    def score(self, metric: str) -> float:
        """The cross-validated value of ``metric``."""
        if not self.ok or metric not in self.metrics:
            raise TrainingError(f"Candidate '{self.name}' has no '{metric}' score (status {self.status}).")
        return self.metrics[metric]


def fit_candidate(candidate: Candidate, X: pd.DataFrame, y: NDArray[Any], spec: LearningSpec, features: FeatureSet) -> Any:
    """Build and fit ``candidate`` on ``X, y`` (subsampled to its ``max_rows``)."""
    if candidate.max_rows is not None and len(y) > candidate.max_rows:
        keep = stratified_subsample(y, candidate.max_rows, spec.seed, stratify=spec.task == Task.CLASSIFICATION)
        X, y = X.iloc[keep], y[keep]
    model = candidate.build(features, spec.seed, spec.product)
    return model.fit(X, y)


def _predict(model: Any, X: pd.DataFrame, task: Task, n_classes: int = 2) -> NDArray[np.float64]:
    if task == Task.CLASSIFICATION and n_classes > 2:
        return class_probabilities(model, X, n_classes)
    if task == Task.CLASSIFICATION:
        return np.asarray(model.predict_proba(X)[:, 1], dtype=np.float64)
    return np.asarray(model.predict(X), dtype=np.float64).reshape(-1)


def class_probabilities(model: Any, X: pd.DataFrame, n_classes: int) -> NDArray[np.float64]:
    """``model.predict_proba(X)`` as an n x ``n_classes`` matrix whose column k is class code k,
    whichever classes the model saw (a class missing from a subsample gets probability 0)."""
    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    seen = np.asarray(getattr(model, "classes_", np.arange(proba.shape[1]))).astype(np.int64)
    if proba.shape[1] == n_classes and (seen == np.arange(n_classes)).all():
        return proba
    out = np.zeros((proba.shape[0], n_classes))
    out[:, seen] = proba
    return out


def cross_validate(
    candidate: Candidate,
    data: TrainingData,
    folds: Folds,
    spec: LearningSpec,
    *,
    key: EvaluationKey | None = None,
    progress: Progress | None = None,
    keep_first_fold_model: bool = False,
) -> CandidateResult:
    """Out-of-fold predictions and metrics of one candidate on ``folds``.

    Any exception while fitting or predicting marks the result failed (with
    the error) instead of propagating, so one bad candidate does not stop a
    run. Non-finite predictions count as a failure.
    """
    start = time.perf_counter()
    n_classes = len(data.label.classes) if spec.multiclass else 2
    oof = np.full((len(data.y), n_classes) if spec.multiclass else len(data.y), np.nan)
    first_model = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            for k, (train, test) in enumerate(folds.splits):
                model = fit_candidate(candidate, data.X.iloc[train], data.y[train], spec, data.features)
                oof[test] = _predict(model, data.X.iloc[test], spec.task, n_classes)
                if k == 0 and keep_first_fold_model:
                    first_model = model
                if progress:
                    progress(f"{candidate.name}: fold {k + 1}/{folds.n_splits} done")
            if not np.isfinite(oof).all():
                raise TrainingError(f"candidate '{candidate.name}' produced non-finite predictions")
        except Exception as exc:  # noqa: BLE001 - a failed candidate must not stop the others
            return CandidateResult(
                name=candidate.name,
                family=str(candidate.family),
                status=CandidateStatus.FAILED,
                candidate=candidate,
                error=f"{type(exc).__name__}: {exc}",
                seconds=time.perf_counter() - start,
                note=candidate.note,
                warnings=_warning_texts(caught),
                key=key,
            )
    return dataclasses.replace(
        score_predictions(candidate, oof, data.y, spec, key=key, classes=data.label.classes),
        seconds=time.perf_counter() - start,
        warnings=_warning_texts(caught),
        first_fold_model=first_model,
    )


def _warning_texts(caught: Sequence[warnings.WarningMessage]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for w in caught:
        seen.setdefault(f"{w.category.__name__}: {str(w.message).splitlines()[0][:200]}", None)
    return tuple(seen)


def score_predictions(
    candidate: Candidate,
    oof: NDArray[np.float64],
    y: NDArray[Any],
    spec: LearningSpec,
    *,
    key: EvaluationKey | None = None,
    classes: Sequence[Any] = (),
) -> CandidateResult:
    """Metrics (and for two-class labels the policy's threshold and the
    calibration curve) of out-of-fold predictions. A multi-class spec takes
    an n x K probability matrix and gets no threshold: the decision is the
    most probable class."""
    outcome: dict[str, Any]
    if spec.multiclass:
        names = list(classes) if len(classes) == oof.shape[1] else list(range(oof.shape[1]))
        confusion = normalised_confusion(y, oof, len(names))
        outcome = {"metrics": multiclass_metrics(y, oof, names), "per_class": per_class_metrics(y, oof, names),
                   "confusion": tuple(tuple(row) for row in confusion)}
    elif spec.task == Task.CLASSIFICATION:
        choice = choose_threshold(y, oof, spec.threshold_policy)
        outcome = {"metrics": classification_metrics(y, oof, choice.threshold), "threshold": choice,
                   "calibration": calibration(y, oof)}
    else:
        outcome = {"metrics": regression_metrics(y, oof)}
    return CandidateResult(name=candidate.name, family=str(candidate.family), status=CandidateStatus.OK,
                           candidate=candidate, oof=oof, note=candidate.note, key=key, **outcome)


def score_ensemble(
    ensemble: Candidate, members: Sequence[CandidateResult], data: TrainingData, folds: Folds, spec: LearningSpec, *, key: EvaluationKey | None = None
) -> CandidateResult:
    """Score an ensemble from its members' out-of-fold predictions.

    Soft voting averages the members' probabilities: this equals fitting a
    ``VotingClassifier`` on each fold, because every member is refit on the
    same fold with the same seed. Stacking fits its logistic-regression
    meta-learner on the members' out-of-fold probabilities, fold by fold on
    the same folds (the usual blending estimate; the deployed
    ``StackingClassifier`` builds its meta-features with inner CV instead).
    """
    start = time.perf_counter()
    first_fold_model = _voting_first_fold_model(ensemble, members, data, folds, spec)
    if spec.multiclass:
        return dataclasses.replace(
            _score_multiclass_ensemble(ensemble, members, data, folds, spec, key),
            seconds=time.perf_counter() - start, first_fold_model=first_fold_model,
        )
    matrix = np.column_stack([m.oof for m in members if m.oof is not None])
    if ensemble.ensemble == EnsembleKind.VOTING:
        oof = matrix.mean(axis=1)
        how = "mean of members' out-of-fold probabilities"
    else:
        oof = np.full(len(data.y), np.nan)
        for train, test in folds.splits:
            meta = LogisticRegression(C=1.0, max_iter=1000).fit(matrix[train], data.y[train])
            oof[test] = meta.predict_proba(matrix[test])[:, 1]
        how = "meta-learner cross-validated on members' out-of-fold probabilities"
    return dataclasses.replace(
        score_predictions(ensemble, oof, data.y, spec, key=key),
        seconds=time.perf_counter() - start,  # the members' own fits are counted on their rows
        note=f"members: {', '.join(m.name for m in members)}; scored from {how}",
        first_fold_model=first_fold_model,
    )


def _voting_first_fold_model(
    ensemble: Candidate, members: Sequence[CandidateResult], data: TrainingData, folds: Folds, spec: LearningSpec
) -> Any:
    """The soft-voting ensemble fitted on the first fold's training rows, assembled from its
    members' first-fold models (kept by :func:`cross_validate`) instead of fitted again: the
    permutation importance of :func:`ml.training.explain` runs on it.

    It is the model ``fit_candidate(ensemble, <fold 1 rows>)`` returns: ``VotingClassifier.fit``
    fits a clone of each member's ``(features, estimator)`` steps, built by the same
    :meth:`Candidate.build` with the same seed, on the same rows, after the same column cast
    (``FrameCaster`` only checks and remembers the column names), with the labels encoded by a
    ``LabelEncoder`` (the label's int64 codes 0..K-1 map to themselves). Returns None (fit it
    then) for stacking, a member without a kept model, Keras members (not bit-for-bit
    reproducible) and any fit a ``max_rows`` cap would subsample.
    """
    from sklearn.pipeline import Pipeline

    if ensemble.ensemble != EnsembleKind.VOTING or not folds.splits or not members:
        return None
    train = folds.splits[0][0]
    caps = [ensemble.max_rows, *(m.candidate.max_rows for m in members if m.candidate is not None)]
    fitted = [m.first_fold_model for m in members]
    if (
        any(m.candidate is None or m.candidate.needs_keras for m in members)
        or any(cap is not None and len(train) > cap for cap in caps)
        or [m.name for m in members] != [c.name for c in ensemble.members]
        or not all(isinstance(f, Pipeline) and len(f.steps) == 3 and f.steps[0][0] == "prepare" for f in fitted)
    ):
        return None
    return assemble_voting(ensemble.build(data.features, spec.seed, spec.product), fitted, data.y[train])


def assemble_voting(model: Any, fitted: Sequence[Any], y_train: Any) -> Any:  # noqa: ANN401
    """An unfitted ``prepare -> VotingClassifier`` pipeline made fitted from its members' fitted
    ``prepare -> features -> estimator`` pipelines (fitted on ``y_train``'s rows): what
    ``VotingClassifier.fit`` on those rows would fit again, clone for clone."""
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils import Bunch

    voting = model.steps[-1][1]
    estimators = [f[1:] for f in fitted]  # each member's fitted (features, estimator) steps
    voting.le_ = LabelEncoder().fit(y_train)
    voting.classes_ = voting.le_.classes_
    voting.estimators_ = estimators
    voting.named_estimators_ = Bunch(**{name: est for (name, _), est in zip(voting.estimators, estimators, strict=True)})
    if hasattr(estimators[-1], "feature_names_in_"):
        voting.feature_names_in_ = estimators[-1].feature_names_in_
    model.steps[0] = ("prepare", fitted[0].steps[0][1])
    return model


def _score_multiclass_ensemble(
    ensemble: Candidate, members: Sequence[CandidateResult], data: TrainingData, folds: Folds, spec: LearningSpec,
    key: EvaluationKey | None,
) -> CandidateResult:
    """:func:`score_ensemble` for class-probability matrices: voting averages them, stacking fits a
    multinomial logistic regression on the members' probabilities side by side."""
    stack = [m.oof for m in members if m.oof is not None]
    if ensemble.ensemble == EnsembleKind.VOTING:
        oof = np.mean(np.stack(stack), axis=0)
        how = "mean of members' out-of-fold class probabilities"
    else:
        matrix = np.hstack(stack)
        oof = np.full(stack[0].shape, np.nan)
        for train, test in folds.splits:
            meta = LogisticRegression(C=1.0, max_iter=1000).fit(matrix[train], data.y[train])
            oof[test] = class_probabilities(meta, matrix[test], stack[0].shape[1])
        how = "meta-learner cross-validated on members' out-of-fold class probabilities"
    return dataclasses.replace(
        score_predictions(ensemble, oof, data.y, spec, key=key, classes=data.label.classes),
        note=f"members: {', '.join(m.name for m in members)}; scored from {how}",
    )


def rank(results: Sequence[CandidateResult], metric: str) -> list[CandidateResult]:
    """Scored results, best first by ``metric`` (ties: by name)."""
    sign = 1.0 if metric_info(metric).greater_is_better else -1.0
    return sorted((r for r in results if r.ok), key=lambda r: (-sign * r.metrics[metric], r.name))


@dataclass(frozen=True)
class LearningCurve:
    """Mean train and validation score at a few training sizes."""

    metric: str
    train_sizes: list[int]
    train_scores: list[float]
    validation_scores: list[float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "metric": self.metric,
            "train_sizes": self.train_sizes,
            "train_scores": self.train_scores,
            "validation_scores": self.validation_scores,
        }


def learning_curve_for(
    candidate: Candidate,
    data: TrainingData,
    spec: LearningSpec,
    *,
    max_rows: int = 3_000,
    sizes: Sequence[float] = (0.25, 0.5, 1.0),
    cv: int = 3,
) -> LearningCurve:
    """A cheap learning curve: ``len(sizes)`` x ``cv`` fits on at most ``max_rows`` rows."""
    classification = spec.task == Task.CLASSIFICATION
    keep = stratified_subsample(data.y, max_rows, spec.seed, stratify=classification)
    X, y = data.X.iloc[keep].reset_index(drop=True), data.y[keep]
    info = metric_info(spec.metric)
    splitter = (StratifiedKFold if classification else KFold)(n_splits=cv, shuffle=True, random_state=spec.seed)
    model = candidate.build(data.features, spec.seed, spec.product)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sizes_abs, train, valid = learning_curve(
            model,
            X,
            y,
            train_sizes=np.asarray(sizes),
            cv=splitter,
            scoring=_scoring(spec),
            shuffle=True,
            random_state=spec.seed,
            error_score="raise",
        )
    flip = -1.0 if info.sklearn_scoring.startswith("neg_") else 1.0
    return LearningCurve(
        metric=info.name,
        train_sizes=[int(s) for s in sizes_abs],
        train_scores=[float(flip * s) for s in train.mean(axis=1)],
        validation_scores=[float(flip * s) for s in valid.mean(axis=1)],
    )


def _scoring(spec: LearningSpec) -> str:
    return metric_info(spec.metric).sklearn_scoring


@dataclass(frozen=True)
class FeatureImportance:
    """Drop in the primary metric when one input column is shuffled."""

    feature: str
    mean: float
    std: float


def permutation_importances(
    model: Any,
    data: TrainingData,
    test_rows: NDArray[np.intp],
    spec: LearningSpec,
    *,
    max_rows: int = 2_000,
    n_repeats: int = 3,
) -> list[FeatureImportance]:
    """Permutation importance of each input column of a fitted ``model`` on
    held-out ``test_rows`` (capped at ``max_rows``), most important first.
    Positive means the model is worse without the column."""
    y_test = data.y[test_rows]
    keep = stratified_subsample(y_test, max_rows, spec.seed, stratify=spec.task == Task.CLASSIFICATION)
    rows = test_rows[keep]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = permutation_importance(
            model,
            data.X.iloc[rows],
            data.y[rows],
            scoring=_scoring(spec),
            n_repeats=n_repeats,
            random_state=spec.seed,
        )
    out = [
        FeatureImportance(str(name), float(m), float(s))
        for name, m, s in zip(data.X.columns, result.importances_mean, result.importances_std, strict=True)
    ]
    return sorted(out, key=lambda f: (-f.mean, f.feature))


_TABLE_METRICS = {
    Task.CLASSIFICATION: ("roc_auc", "pr_auc", "log_loss", "brier", "f1", "precision", "recall", "threshold"),
    Task.REGRESSION: ("rmse", "mae", "r2"),
}
_MULTICLASS_TABLE_METRICS = ("f1_macro", "roc_auc_ovr", "accuracy", "log_loss", "precision_macro", "recall_macro")


def comparison_table(
    results: Sequence[CandidateResult], metric: str, task: Task | str, *, multiclass: bool = False
) -> list[dict[str, Any]]:
    """One row per candidate: scored ones ranked by ``metric``, then failed,
    then skipped. Keys: ``rank``, ``candidate``, ``family``, ``status``, the
    metric columns (the multi-class ones with ``multiclass``), ``seconds``,
    ``note`` (the error for failed ones)."""
    ranked = rank(results, metric)
    others = [r for r in results if not r.ok]
    others.sort(key=lambda r: (r.status is not CandidateStatus.FAILED, r.name))
    rows: list[dict[str, Any]] = []
    for i, r in enumerate([*ranked, *others]):
        row: dict[str, Any] = {
            "rank": i + 1 if r.ok else None,
            "candidate": r.name,
            "family": r.family,
            "status": r.status.value,
        }
        for m in _MULTICLASS_TABLE_METRICS if multiclass else _TABLE_METRICS[Task(str(task))]:
            row[m] = round(r.metrics[m], 4) if m in r.metrics else None
        row["seconds"] = round(r.seconds, 1)
        row["note"] = r.error if r.status is CandidateStatus.FAILED else r.note
        rows.append(row)
    return rows


def comparison_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The comparison table as a GitHub-flavoured markdown table."""
    if not rows:
        return ""
    columns = list(rows[0])

    def cell(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.4f}".rstrip("0").rstrip(".") if abs(v) < 1e6 else f"{v:.3g}"
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
