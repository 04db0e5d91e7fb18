"""Metric maths: the metric table, binary classification and regression metrics,
and the choice of a decision threshold from the precision-recall curve.

Everything here is a pure function of arrays; cross-validation lives in
:mod:`ml.evaluation`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from datamesh.errors import did_you_mean
from ml.errors import SpecError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from ml.spec import ThresholdPolicy

__all__ = [
    "BINARY_METRICS",
    "DEFAULT_MULTICLASS_METRIC",
    "METRICS",
    "MULTICLASS_METRICS",
    "CalibrationCurve",
    "ConfusionCounts",
    "MetricInfo",
    "ThresholdChoice",
    "calibration",
    "choose_threshold",
    "classification_metrics",
    "confusion_counts",
    "gain",
    "metric_info",
    "multiclass_metrics",
    "normalised_confusion",
    "per_class_metrics",
    "precision_recall_f1",
    "regression_metrics",
]


class MetricInfo(NamedTuple):
    """How a metric is named, which task it is for and which way is better."""

    name: str
    task: str
    greater_is_better: bool
    sklearn_scoring: str
    label: str


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("roc_auc", "classification", True, "roc_auc", "ROC-AUC"),
        MetricInfo("pr_auc", "classification", True, "average_precision", "PR-AUC"),
        MetricInfo("log_loss", "classification", False, "neg_log_loss", "log loss"),
        MetricInfo("brier", "classification", False, "neg_brier_score", "Brier score"),
        MetricInfo("f1", "classification", True, "f1", "F1"),
        MetricInfo("f1_macro", "classification", True, "f1_macro", "macro F1"),
        MetricInfo("roc_auc_ovr", "classification", True, "roc_auc_ovr", "macro ROC-AUC (one-vs-rest)"),
        MetricInfo("accuracy", "classification", True, "accuracy", "accuracy"),
        MetricInfo("rmse", "regression", False, "neg_root_mean_squared_error", "RMSE"),
        MetricInfo("mae", "regression", False, "neg_mean_absolute_error", "MAE"),
        MetricInfo("r2", "regression", True, "r2", "R²"),
    )
}
_ALIASES = {"average_precision": "pr_auc", "auc": "roc_auc", "brier_score": "brier", "macro_f1": "f1_macro",
            "macro_roc_auc": "roc_auc_ovr"}

BINARY_METRICS = frozenset({"roc_auc", "pr_auc", "log_loss", "brier", "f1", "accuracy"})
"""Classification metrics a two-class label can be ranked by (``accuracy`` at the chosen threshold)."""
MULTICLASS_METRICS = frozenset({"f1_macro", "roc_auc_ovr", "accuracy", "log_loss"})
"""Classification metrics a label of 3+ classes can be ranked by (decisions by argmax, no threshold)."""
DEFAULT_MULTICLASS_METRIC = "f1_macro"
"""The primary metric of a multi-class label when the contract names none (see docs/decisions/0035)."""


def metric_info(name: str, task: str | None = None) -> MetricInfo:
    """Look a metric up by name (or alias); check it fits ``task`` if given."""
    key = _ALIASES.get(name, name)
    if key not in METRICS:
        raise SpecError(
            f"Unknown metric '{name}'; expected one of {sorted(METRICS)}."
            + did_you_mean(name, [*METRICS, *_ALIASES])
        )
    info = METRICS[key]
    if task is not None and info.task != str(task):
        valid = sorted(m for m, i in METRICS.items() if i.task == str(task))
        raise SpecError(
            f"Metric '{name}' is for {info.task}, not {task}; expected one of {valid}."
        )
    return info


def gain(candidate: float, reference: float, metric: str) -> float:
    """How much better ``candidate`` is than ``reference`` (negative: worse)."""
    info = metric_info(metric)
    return candidate - reference if info.greater_is_better else reference - candidate


class ConfusionCounts(NamedTuple):
    """Binary confusion matrix counts (positive class = 1)."""

    tn: int
    fp: int
    fn: int
    tp: int

    def as_matrix(self) -> list[list[int]]:
        """``[[tn, fp], [fn, tp]]``: rows are actual, columns predicted."""
        return [[self.tn, self.fp], [self.fn, self.tp]]


def confusion_counts(y_true: ArrayLike, y_pred: ArrayLike) -> ConfusionCounts:
    """Count true/false negatives/positives of 0/1 (or bool) arrays."""
    t = np.asarray(y_true).astype(bool)
    p = np.asarray(y_pred).astype(bool)
    if t.shape != p.shape:
        raise ValueError(f"y_true has shape {t.shape} but y_pred has {p.shape}")
    return ConfusionCounts(
        tn=int(np.sum(~t & ~p)),
        fp=int(np.sum(~t & p)),
        fn=int(np.sum(t & ~p)),
        tp=int(np.sum(t & p)),
    )


def precision_recall_f1(counts: ConfusionCounts) -> tuple[float, float, float]:
    """Precision, recall and F1 of the positive class; 0.0 where undefined."""
    precision = counts.tp / (counts.tp + counts.fp) if counts.tp + counts.fp else 0.0
    recall = counts.tp / (counts.tp + counts.fn) if counts.tp + counts.fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@dataclass(frozen=True)
class ThresholdChoice:
    """The threshold picked by a policy and what it achieves on the given data.

    A row is predicted positive when its probability is ``>= threshold``.
    ``satisfied`` is False when the policy's constraint could not be met (for
    example no threshold reaches the requested precision); the threshold is
    then the closest one and ``note`` says why.
    """

    threshold: float
    policy: str
    precision: float
    recall: float
    f1: float
    satisfied: bool = True
    note: str = ""


def choose_threshold(
    y_true: ArrayLike, proba: ArrayLike, policy: ThresholdPolicy
) -> ThresholdChoice:
    """Pick the decision threshold that ``policy`` asks for.

    * ``recall_at_least=r``: the highest threshold whose recall is ``>= r``
      (the most precise operating point that still finds r of the positives);
    * ``precision_at_least=q``: the lowest threshold whose precision is
      ``>= q`` (the most recall at that precision);
    * ``fixed=t``: ``t``;
    * otherwise: the threshold that maximises F1 (the highest on ties).
    """
    y = np.asarray(y_true).astype(int)
    p = np.asarray(proba, dtype=float)
    if policy.fixed is not None:
        return _choice_at(y, p, float(policy.fixed), policy.describe())
    precision, recall, thresholds = skm.precision_recall_curve(y, p)
    # precision[i], recall[i] belong to thresholds[i]; the last point has none.
    precision, recall = precision[:-1], recall[:-1]
    if policy.recall_at_least is not None:
        ok = np.flatnonzero(recall >= policy.recall_at_least)
        # recall falls as the threshold rises, so the last index that qualifies
        # is the highest threshold; index 0 (lowest score) always has recall 1.
        i = int(ok[-1])
        return _choice_at(y, p, float(thresholds[i]), policy.describe())
    if policy.precision_at_least is not None:
        ok = np.flatnonzero(precision >= policy.precision_at_least)
        if ok.size:
            return _choice_at(y, p, float(thresholds[ok[0]]), policy.describe())
        i = int(np.argmax(precision))
        choice = _choice_at(y, p, float(thresholds[i]), policy.describe())
        return _unsatisfied(choice, policy.precision_at_least, float(precision[i]))
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    i = len(f1) - 1 - int(np.argmax(f1[::-1]))
    return _choice_at(y, p, float(thresholds[i]), policy.describe())


def _unsatisfied(choice: ThresholdChoice, wanted: float, best: float) -> ThresholdChoice:
    return dataclasses.replace(
        choice,
        satisfied=False,
        note=f"no threshold reaches precision {wanted}; took the most precise one ({best:.3f})",
    )


def _choice_at(y: NDArray[np.int_], p: NDArray[np.float64], threshold: float, policy: str) -> ThresholdChoice:
    precision, recall, f1 = precision_recall_f1(confusion_counts(y, p >= threshold))
    return ThresholdChoice(threshold, policy, precision, recall, f1)


def classification_metrics(y_true: ArrayLike, proba: ArrayLike, threshold: float) -> dict[str, float]:
    """Threshold-free and thresholded metrics of binary probabilities.

    Keys: ``roc_auc``, ``pr_auc`` (average precision), ``log_loss``,
    ``brier``, and at ``threshold``: ``precision``, ``recall``, ``f1``,
    ``accuracy``, ``tn``, ``fp``, ``fn``, ``tp``, ``threshold``.
    """
    y = np.asarray(y_true).astype(int)
    p = np.asarray(proba, dtype=float)
    counts = confusion_counts(y, p >= threshold)
    precision, recall, f1 = precision_recall_f1(counts)
    return {
        "roc_auc": float(skm.roc_auc_score(y, p)),
        "pr_auc": float(skm.average_precision_score(y, p)),
        "log_loss": float(skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "brier": float(skm.brier_score_loss(y, p)),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": (counts.tp + counts.tn) / len(y) if len(y) else 0.0,
        "threshold": float(threshold),
        "tn": float(counts.tn),
        "fp": float(counts.fp),
        "fn": float(counts.fn),
        "tp": float(counts.tp),
    }


def multiclass_metrics(y_true: ArrayLike, proba: ArrayLike, classes: Sequence[object]) -> dict[str, float]:
    """Metrics of class probabilities ``proba`` (n x K, columns in the order of ``classes``) against
    class indices ``y_true`` (0..K-1); the decision is the most probable class (argmax).

    Keys: ``f1_macro``, ``precision_macro``, ``recall_macro``, ``roc_auc_ovr`` (macro one-vs-rest),
    ``accuracy``, ``log_loss``.
    """
    y = np.asarray(y_true).astype(int)
    p = np.asarray(proba, dtype=float)
    labels = list(range(len(classes)))
    pred = p.argmax(axis=1)
    precision, recall, f1, _ = skm.precision_recall_fscore_support(y, pred, labels=labels, average="macro",
                                                                   zero_division=0.0)
    clipped = np.clip(p, 1e-15, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return {
        "f1_macro": float(f1),
        "precision_macro": float(precision),
        "recall_macro": float(recall),
        "roc_auc_ovr": float(skm.roc_auc_score(y, clipped, multi_class="ovr", average="macro", labels=labels)),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "log_loss": float(skm.log_loss(y, clipped, labels=labels)),
    }


def per_class_metrics(y_true: ArrayLike, proba: ArrayLike, classes: Sequence[object]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of each class (keyed by ``str(class)``), deciding by argmax."""
    y = np.asarray(y_true).astype(int)
    pred = np.asarray(proba, dtype=float).argmax(axis=1)
    labels = list(range(len(classes)))
    precision, recall, f1, support = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0.0)
    return {
        str(c): {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                 "support": float(support[i])}
        for i, c in enumerate(classes)
    }


def normalised_confusion(y_true: ArrayLike, proba: ArrayLike, n_classes: int) -> list[list[float]]:
    """The K x K confusion matrix of argmax decisions, each row (actual class) divided by its count."""
    y = np.asarray(y_true).astype(int)
    pred = np.asarray(proba, dtype=float).argmax(axis=1)
    matrix = skm.confusion_matrix(y, pred, labels=list(range(n_classes)), normalize="true")
    return [[float(v) for v in row] for row in matrix]


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """RMSE, MAE and R² of predictions."""
    y = np.asarray(y_true, dtype=float)
    yhat = np.asarray(y_pred, dtype=float)
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(y, yhat))),
        "mae": float(skm.mean_absolute_error(y, yhat)),
        "r2": float(skm.r2_score(y, yhat)),
    }


class CalibrationCurve(NamedTuple):
    """Mean predicted probability and observed positive rate per bin."""

    predicted: list[float]
    observed: list[float]


def calibration(y_true: ArrayLike, proba: ArrayLike, n_bins: int = 10) -> CalibrationCurve:
    """Reliability curve with quantile bins (every bin holds as many rows)."""
    observed, predicted = calibration_curve(
        np.asarray(y_true).astype(int), np.asarray(proba, dtype=float), n_bins=n_bins, strategy="quantile"
    )
    return CalibrationCurve([float(v) for v in predicted], [float(v) for v in observed])
