from __future__ import annotations

import math

import numpy as np
import pytest

from ml.errors import SpecError
from ml.metrics import (
    choose_threshold,
    classification_metrics,
    confusion_counts,
    gain,
    metric_info,
    precision_recall_f1,
    regression_metrics,
)
from ml.spec import ThresholdPolicy

# A hand-made ranking: 6 positives, 4 negatives.
Y = np.array([0, 0, 1, 0, 1, 1, 0, 1, 1, 1])
P = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])


def test_confusion_counts_by_hand() -> None:
    counts = confusion_counts([1, 1, 1, 0, 0, 0, 0, 1], [1, 0, 1, 0, 1, 0, 0, 1])
    assert counts == (3, 1, 1, 3)  # tn, fp, fn, tp
    assert counts.as_matrix() == [[3, 1], [1, 3]]


def test_precision_recall_f1_by_hand() -> None:
    precision, recall, f1 = precision_recall_f1(confusion_counts([1, 1, 1, 0, 0], [1, 1, 0, 1, 0]))
    assert precision == pytest.approx(2 / 3)
    assert recall == pytest.approx(2 / 3)
    assert f1 == pytest.approx(2 / 3)


def test_precision_recall_f1_no_positive_predictions_is_zero() -> None:
    assert precision_recall_f1(confusion_counts([1, 0], [0, 0])) == (0.0, 0.0, 0.0)


def test_confusion_counts_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="shape"):
        confusion_counts([1, 0], [1])


@pytest.mark.parametrize(
    ("policy", "threshold", "precision", "recall"),
    [
        (ThresholdPolicy(recall_at_least=0.8), 0.4, 5 / 6, 5 / 6),
        (ThresholdPolicy(recall_at_least=0.9), 0.3, 6 / 8, 1.0),
        (ThresholdPolicy(recall_at_least=0.5), 0.7, 1.0, 0.5),
        (ThresholdPolicy(precision_at_least=0.8), 0.4, 5 / 6, 5 / 6),
        (ThresholdPolicy(precision_at_least=0.95), 0.7, 1.0, 0.5),
        (ThresholdPolicy(), 0.3, 6 / 8, 1.0),  # max F1 = 0.857 at 0.3
        (ThresholdPolicy(fixed=0.5), 0.5, 0.8, 4 / 6),
    ],
)
def test_choose_threshold_on_hand_made_curve(policy: ThresholdPolicy, threshold: float, precision: float, recall: float) -> None:
    choice = choose_threshold(Y, P, policy)
    assert choice.threshold == pytest.approx(threshold)
    assert choice.precision == pytest.approx(precision)
    assert choice.recall == pytest.approx(recall)
    assert choice.satisfied
    assert choice.policy == policy.describe()


def test_choose_threshold_reports_unreachable_precision() -> None:
    choice = choose_threshold([0, 1, 0, 1], [0.9, 0.8, 0.7, 0.6], ThresholdPolicy(precision_at_least=0.9))
    assert not choice.satisfied
    assert choice.precision == pytest.approx(0.5)
    assert "no threshold reaches precision 0.9" in choice.note


def test_classification_metrics_by_hand() -> None:
    m = classification_metrics(Y, P, 0.4)
    assert m["roc_auc"] == pytest.approx(20 / 24)  # 20 of 24 positive/negative pairs ranked right
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (3, 1, 1, 5)
    assert m["precision"] == pytest.approx(5 / 6)
    assert m["accuracy"] == pytest.approx(8 / 10)
    assert m["threshold"] == 0.4


def test_brier_and_log_loss_by_hand() -> None:
    m = classification_metrics([0, 1], [0.2, 0.6], 0.5)
    assert m["brier"] == pytest.approx((0.2**2 + 0.4**2) / 2)
    assert m["log_loss"] == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)


def test_regression_metrics_by_hand() -> None:
    m = regression_metrics([1, 2, 3], [1, 2, 5])
    assert m["rmse"] == pytest.approx(math.sqrt(4 / 3))
    assert m["mae"] == pytest.approx(2 / 3)
    assert m["r2"] == pytest.approx(-1.0)


def test_gain_respects_direction() -> None:
    assert gain(0.81, 0.80, "roc_auc") == pytest.approx(0.01)
    assert gain(0.30, 0.32, "log_loss") == pytest.approx(0.02)
    assert gain(0.34, 0.32, "log_loss") == pytest.approx(-0.02)


def test_metric_info_alias_and_errors() -> None:
    assert metric_info("average_precision").name == "pr_auc"
    with pytest.raises(SpecError, match="Did you mean 'roc_auc'"):
        metric_info("roc_acu")
    with pytest.raises(SpecError, match="is for regression, not classification"):
        metric_info("rmse", "classification")
