from __future__ import annotations

import dataclasses

import pytest

from ml.card import ModelCard
from ml.champion import decide_champion
from ml.errors import TrainingError
from ml.evaluation import CandidateResult, EvaluationKey

KEY = EvaluationKey("classification", "churned", 5, 42, 1000, "abc", (("churn_features", "3"),))
OTHER_KEY = dataclasses.replace(KEY, training_data=(("churn_features", "4"),), data_fingerprint="def")


def result(score: float, key: EvaluationKey = KEY, name: str = "random_forest", status: str = "ok") -> CandidateResult:
    return CandidateResult(name=name, family="forest", status=status, metrics={"roc_auc": score, "log_loss": 1 - score},
                           key=key, error=None if status == "ok" else "ValueError: nope")


def card(score: float, key: EvaluationKey = KEY) -> ModelCard:
    return ModelCard(
        model_name="churn", product="churn_features", task="classification", candidate="logistic_regression",
        family="linear", params={"name": "logistic_regression", "params": {}}, metrics={"roc_auc": score, "log_loss": 1 - score},
        primary_metric="roc_auc", threshold=0.3, threshold_policy={}, training_data=dict(key.training_data),
        id_column="customer_id", label_column="churned", positive_label=True, feature_columns=["x"],
        feature_dtypes={"x": "float64"}, numeric_features=["x"], categorical_features=[], evaluation=key.to_dict(),
        code_version="unknown", seed=42, cv_folds=5, n_training_rows=1000,
    )


def test_no_champion_promotes() -> None:
    decision = decide_champion(result(0.7), None, 0.005)
    assert decision.promote and decision.reason == "no current champion"


@pytest.mark.parametrize(
    ("new", "old", "promote"),
    [(0.806, 0.800, True), (0.805, 0.800, True), (0.804, 0.800, False), (0.800, 0.800, False), (0.79, 0.80, False)],
)
def test_margin(new: float, old: float, promote: bool) -> None:
    decision = decide_champion(result(new), card(old), 0.005)
    assert decision.promote is promote
    assert decision.champion_score == old and not decision.rescored


def test_lower_is_better_metric() -> None:
    # log_loss = 1 - score: 0.19 vs 0.20 is an improvement of 0.01.
    assert decide_champion(result(0.81), card(0.80), 0.005, metric="log_loss").promote
    assert not decide_champion(result(0.79), card(0.80), 0.005, metric="log_loss").promote


def test_other_data_needs_rescore() -> None:
    with pytest.raises(TrainingError, match="re-score it on the same folds"):
        decide_champion(result(0.9, key=OTHER_KEY), card(0.8), 0.005)


def test_rescored_champion_is_compared_instead_of_card() -> None:
    # The card says 0.95 on old data, but refit on the new folds the champion only reaches 0.80.
    decision = decide_champion(
        result(0.86, key=OTHER_KEY), card(0.95), 0.005, rescored_current=result(0.80, key=OTHER_KEY, name="logistic_regression")
    )
    assert decision.promote and decision.rescored and decision.champion_score == 0.80
    keep = decide_champion(
        result(0.802, key=OTHER_KEY), card(0.5), 0.005, rescored_current=result(0.80, key=OTHER_KEY, name="logistic_regression")
    )
    assert not keep.promote


def test_rescored_on_other_folds_is_rejected() -> None:
    with pytest.raises(TrainingError, match="other folds"):
        decide_champion(result(0.9, key=OTHER_KEY), card(0.8), 0.005, rescored_current=result(0.8, key=KEY))


def test_champion_that_cannot_be_rescored_is_replaced() -> None:
    failed = result(0.0, key=OTHER_KEY, name="logistic_regression", status="failed")
    decision = decide_champion(result(0.7, key=OTHER_KEY), card(0.9), 0.005, rescored_current=failed)
    assert decision.promote and "could not be re-scored" in decision.reason


def test_card_json_round_trip() -> None:
    c = card(0.8)
    assert ModelCard.from_json(c.to_json()) == c
    assert c.evaluation_key == KEY
