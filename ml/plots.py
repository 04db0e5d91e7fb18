"""Evaluation plots as small PNG images (bytes).

Figures are made with :class:`matplotlib.figure.Figure` and the Agg canvas
directly, never through ``pyplot``: no global figure state, no GUI backend,
safe in worker threads. Every function returns PNG bytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from ml.metrics import CalibrationCurve, ConfusionCounts, ThresholdChoice, metric_info

__all__ = [
    "PlotKind",
    "calibration_png",
    "comparison_png",
    "confusion_matrix_png",
    "feature_importance_png",
    "learning_curve_png",
    "normalised_confusion_png",
    "predicted_vs_actual_png",
    "pr_png",
    "roc_png",
    "scatter_png",
]

FIGSIZE = (5.0, 4.0)
DPI = 80


class PlotKind(StrEnum):
    """The evaluation plots a training run stores; the file is ``<kind>.png`` (:attr:`filename`)."""

    COMPARISON = "comparison"
    CONFUSION_MATRIX = "confusion_matrix"
    ROC = "roc"
    PR = "pr"
    CALIBRATION = "calibration"
    PREDICTED_VS_ACTUAL = "predicted_vs_actual"
    LEARNING_CURVE = "learning_curve"
    FEATURE_IMPORTANCE = "feature_importance"

    @property
    def filename(self) -> str:
        """``roc.png``, ``pr.png``, ..."""
        return f"{self.value}.png"


def _figure(size: tuple[float, float] = FIGSIZE) -> Figure:
    fig = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def confusion_matrix_png(counts: ConfusionCounts, *, labels: Sequence[str] = ("negative", "positive"), title: str = "") -> bytes:
    """2x2 confusion matrix with counts; rows are actual, columns predicted."""
    fig = _figure()
    ax = fig.add_subplot()
    matrix = np.asarray(counts.as_matrix())
    ax.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, f"{v:,}", ha="center", va="center", color="white" if v > matrix.max() / 2 else "black")
    ax.set_xticks([0, 1], [str(lab) for lab in labels])
    ax.set_yticks([0, 1], [str(lab) for lab in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title or "Confusion matrix")
    return _png(fig)


def normalised_confusion_png(matrix: Sequence[Sequence[float]], *, labels: Sequence[str], title: str = "") -> bytes:
    """K x K confusion matrix, each row (actual class) normalised to 1; columns predicted."""
    values = np.asarray(matrix, dtype=float)
    k = len(labels)
    size = max(4.0, 0.6 * k + 2.5)
    fig = _figure((size + 0.8, size))
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if k <= 20:
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize="x-small" if k > 8 else "small",
                    color="white" if v > 0.5 else "black")
    ticks = list(range(k))
    ax.set_xticks(ticks, [str(lab) for lab in labels], rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center")
    ax.set_yticks(ticks, [str(lab) for lab in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title or "Confusion matrix (row-normalised)")
    return _png(fig)


def roc_png(y_true: ArrayLike, proba: ArrayLike, *, title: str = "") -> bytes:
    """ROC curve with its AUC."""
    fpr, tpr, _ = roc_curve(y_true, proba)
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(y_true, proba):.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title or "ROC curve")
    ax.legend(loc="lower right")
    return _png(fig)


def pr_png(y_true: ArrayLike, proba: ArrayLike, *, threshold: ThresholdChoice | None = None, title: str = "") -> bytes:
    """Precision-recall curve with average precision and the chosen operating point."""
    precision, recall, _ = precision_recall_curve(y_true, proba)
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(recall, precision, label=f"AP {average_precision_score(y_true, proba):.3f}")
    base = float(np.mean(np.asarray(y_true)))
    ax.axhline(base, linestyle="--", color="grey", linewidth=1, label=f"base rate {base:.3f}")
    if threshold is not None:
        ax.scatter([threshold.recall], [threshold.precision], color="red", zorder=3,
                   label=f"threshold {threshold.threshold:.3f} ({threshold.policy})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.01)
    ax.set_title(title or "Precision-recall curve")
    ax.legend(loc="lower left", fontsize="small")
    return _png(fig)


def calibration_png(curve: CalibrationCurve, *, title: str = "") -> bytes:
    """Reliability diagram: observed positive rate against mean predicted probability."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    ax.plot(curve.predicted, curve.observed, marker="o", label="model")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed positive rate")
    ax.set_title(title or "Calibration")
    ax.legend(loc="upper left", fontsize="small")
    return _png(fig)


def learning_curve_png(train_sizes: Sequence[int], train_scores: Sequence[float], validation_scores: Sequence[float], *, metric: str, title: str = "") -> bytes:
    """Train and validation score against training size."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(train_sizes, train_scores, marker="o", label="train")
    ax.plot(train_sizes, validation_scores, marker="o", label="validation")
    ax.set_xlabel("training rows")
    ax.set_ylabel(metric_info(metric).label)
    ax.set_title(title or "Learning curve")
    ax.legend(loc="best")
    return _png(fig)


def feature_importance_png(importances: Sequence[tuple[str, float, float]], *, metric: str, top: int = 15, title: str = "") -> bytes:
    """Horizontal bars of permutation importance ``(feature, mean, std)``, most important on top."""
    items = list(importances)[:top][::-1]
    fig = _figure((5.0, max(2.5, 0.25 * len(items) + 1.0)))
    ax = fig.add_subplot()
    ax.barh([i[0] for i in items], [i[1] for i in items], xerr=[i[2] for i in items], color="tab:blue")
    ax.set_xlabel(f"drop in {metric_info(metric).label} when shuffled")
    ax.set_title(title or "Permutation importance")
    ax.tick_params(axis="y", labelsize="small")
    return _png(fig)


def comparison_png(rows: Sequence[Mapping[str, Any]], *, metric: str, title: str = "") -> bytes:
    """Bar chart of every scored candidate's primary metric; the best in a different colour."""
    from ml.evaluation import CandidateStatus  # lazily: evaluation imports the whole zoo

    scored = [r for r in rows if r.get("status") == CandidateStatus.OK and r.get(metric) is not None][::-1]
    fig = _figure((5.0, max(2.5, 0.3 * len(scored) + 1.0)))
    ax = fig.add_subplot()
    values = [float(r[metric]) for r in scored]
    colours = ["tab:orange" if r.get("rank") == 1 else "tab:blue" for r in scored]
    ax.barh([str(r["candidate"]) for r in scored], values, color=colours)
    if values:
        low, high = min(values), max(values)
        pad = (high - low) * 0.15 or abs(high) * 0.05 or 0.05
        ax.set_xlim(low - pad, high + pad)
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:.4f}", va="center", fontsize="x-small")
    ax.set_xlabel(metric_info(metric).label + ("" if metric_info(metric).greater_is_better else " (lower is better)"))
    ax.set_title(title or "Candidates (cross-validated)")
    ax.tick_params(axis="y", labelsize="small")
    return _png(fig)


def predicted_vs_actual_png(y_true: ArrayLike, y_pred: ArrayLike, *, title: str = "", max_points: int = 5_000) -> bytes:
    """Scatter of predictions against actual values (regression)."""
    y = np.asarray(y_true, dtype=float)
    yhat = np.asarray(y_pred, dtype=float)
    if len(y) > max_points:
        idx = np.random.default_rng(0).choice(len(y), max_points, replace=False)
        y, yhat = y[idx], yhat[idx]
    fig = _figure()
    ax = fig.add_subplot()
    ax.scatter(y, yhat, s=4, alpha=0.4)
    lo, hi = float(min(y.min(), yhat.min())), float(max(y.max(), yhat.max()))
    ax.plot([lo, hi], [lo, hi], linestyle="--", color="grey", linewidth=1)
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted (out of fold)")
    ax.set_title(title or "Predicted vs actual")
    return _png(fig)


def scatter_png(coords: ArrayLike, labels: ArrayLike, *, title: str = "", xlabel: str = "PC 1", ylabel: str = "PC 2", max_points: int = 5_000) -> bytes:
    """2-D scatter coloured by integer label (e.g. segments on two principal components)."""
    xy = np.asarray(coords, dtype=float)
    lab = np.asarray(labels)
    if len(xy) > max_points:
        idx = np.random.default_rng(0).choice(len(xy), max_points, replace=False)
        xy, lab = xy[idx], lab[idx]
    fig = _figure()
    ax = fig.add_subplot()
    for value in np.unique(lab):
        mask = lab == value
        ax.scatter(xy[mask, 0], xy[mask, 1], s=5, alpha=0.5, label=str(value))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or "Segments")
    ax.legend(loc="best", fontsize="x-small", markerscale=2)
    return _png(fig)
