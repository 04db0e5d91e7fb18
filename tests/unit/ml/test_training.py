from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.card import ModelCard
from ml.errors import FeatureError, LabelError, TrainingError
from ml.spec import LearningSpec, Task, ThresholdPolicy
from ml.training import TrainingReport, train_and_evaluate
from ml.zoo import Candidate, Family

from .conftest import churn_frame

QUICK = ["logistic_regression", "decision_tree", "hist_gradient_boosting", "soft_voting"]


def _boom(**_: object) -> object:
    raise RuntimeError("boom")


BROKEN = Candidate("broken", Family.LINEAR, Task.CLASSIFICATION, _boom)


@pytest.fixture(scope="module")
def report() -> TrainingReport:
    spec = LearningSpec("churn_features", "customer_id", "churned", cv_folds=3, threshold_policy=ThresholdPolicy(recall_at_least=0.8))
    return train_and_evaluate(churn_frame(), spec, QUICK, training_data={"churn_features": "3"})


def test_report_ranks_candidates_and_refits_best(report: TrainingReport) -> None:
    scores = [row["roc_auc"] for row in report.comparison]
    assert [row["candidate"] for row in report.comparison][0] == report.best.name
    assert scores == sorted(scores, reverse=True)
    assert {row["candidate"] for row in report.comparison} == set(QUICK)
    assert report.best.threshold.recall >= 0.8
    assert report.threshold == report.best.threshold.threshold
    frame = churn_frame()
    p = report.model.predict_proba(frame.drop(columns="churned"))[:, 1]
    assert p.shape == (300,) and 0.5 < report.score <= 1.0
    assert report.comparison_markdown.count("\n") == len(QUICK) + 1
    assert {"prepare", "cross_validation", "refit", "diagnostics", "plots"} <= set(report.timings)


def test_report_plots_and_diagnostics(report: TrainingReport) -> None:
    expected = {"comparison.png", "confusion_matrix.png", "roc.png", "pr.png", "calibration.png", "learning_curve.png", "feature_importance.png"}
    assert set(report.plots) == expected
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in report.plots.values())
    assert set(report.candidate_plots) == set(QUICK)
    assert {f.feature for f in report.importances} == {"x0", "x1", "x2", "x3", "x4", "plan"}
    assert len(report.learning_curve.train_sizes) == 3


def test_model_card(report: TrainingReport) -> None:
    card = report.model_card("churn")
    assert card.candidate == report.best.name and card.training_data == {"churn_features": "3"}
    assert card.threshold_policy["policy"] == "recall>=0.8" and card.threshold == report.threshold
    assert card.feature_columns == ["x0", "x1", "x2", "x3", "x4", "plan"]
    assert card.feature_dtypes["plan"] == "str" and card.positive_label is True
    assert card.evaluation_key == report.key
    assert ModelCard.from_json(card.to_json()) == card
    json.loads(card.to_json())


def test_same_seed_same_metrics_and_other_seed_differs() -> None:
    spec = LearningSpec("churn_features", "customer_id", "churned", cv_folds=3)
    names = ["logistic_regression", "hist_gradient_boosting"]

    def metrics(s: LearningSpec) -> list[dict[str, float]]:
        r = train_and_evaluate(churn_frame(), s, names, plots="none", diagnostics=False)
        return [{k: v for k, v in row.items() if k != "seconds"} for row in r.comparison]

    first = metrics(spec)
    assert first == metrics(spec)
    assert first != metrics(dataclasses.replace(spec, seed=7))


def test_failed_candidate_does_not_stop_others() -> None:
    spec = LearningSpec("churn_features", "customer_id", "churned", cv_folds=3)
    r = train_and_evaluate(churn_frame(), spec, [BROKEN, "logistic_regression"], plots="none", diagnostics=False)
    assert r.best.name == "logistic_regression"
    failed = next(row for row in r.comparison if row["candidate"] == "broken")
    assert failed["status"] == "failed" and failed["note"] == "RuntimeError: boom"


def test_every_candidate_failing_raises() -> None:
    spec = LearningSpec("churn_features", "customer_id", "churned", cv_folds=3)
    with pytest.raises(TrainingError, match="every candidate failed \\(broken: RuntimeError: boom\\)"):
        train_and_evaluate(churn_frame(), spec, [BROKEN], plots="none", diagnostics=False)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda f: f.drop(columns="churned"), LabelError, "has no column 'churned'"),
        (lambda f: f.assign(churned=True), LabelError, "single class"),
        (lambda f: f.assign(churned=[True, True] + [False] * 298), LabelError, "only 2 row"),
        (lambda f: f.drop(columns="x2"), FeatureError, None),
        (lambda f: f.assign(x2=np.where(np.arange(300) == 3, np.inf, f["x2"])), FeatureError, "infinite"),
    ],
)
def test_input_errors(change: Callable[[pd.DataFrame], pd.DataFrame], error: type[Exception], message: str | None) -> None:
    spec = LearningSpec("churn_features", "customer_id", "churned", cv_folds=3, feature_columns=("x0", "x2", "plan"))
    with pytest.raises(error, match=message or "no feature column 'x2'"):
        train_and_evaluate(change(churn_frame()), spec, ["logistic_regression"])


def test_champion_decision_same_data_compares_card(report: TrainingReport) -> None:
    card = report.model_card("churn")
    again = train_and_evaluate(churn_frame(), report.spec, QUICK, training_data={"churn_features": "3"}, current_champion=card,
                               plots="none", diagnostics=False)
    assert again.decision is not None and not again.decision.rescored
    assert not again.decision.promote  # the same model does not beat itself by the margin
    assert "does not beat" in again.decision.reason


def test_champion_on_other_data_is_rescored(report: TrainingReport) -> None:
    card = dataclasses.replace(report.model_card("churn"), metrics={**report.best.metrics, "roc_auc": 0.9999})
    new = train_and_evaluate(churn_frame(seed=1), report.spec, ["logistic_regression", "decision_tree"],
                             training_data={"churn_features": "4"}, current_champion=card, plots="none", diagnostics=False)
    decision = new.decision
    assert decision is not None and decision.rescored
    assert decision.champion_score != 0.9999  # the card's old score is not used
    assert decision.promote is (decision.candidate_score - decision.champion_score >= 0.005 - 1e-12)


def test_regression_task() -> None:
    from sklearn.datasets import make_regression

    X, y = make_regression(240, 4, noise=10.0, random_state=0)
    frame = pd.DataFrame(X, columns=list("abcd")).assign(region=np.tile(["n", "s", "e"], 80), id=range(240), revenue=y)
    spec = LearningSpec("revenue_features", "id", "revenue", task="regression", cv_folds=3)
    r = train_and_evaluate(frame, spec, progress=None)
    assert {row["candidate"] for row in r.comparison} == {"ridge", "lasso", "elastic_net", "hist_gradient_boosting"}
    assert r.threshold is None and r.best.metrics["r2"] > 0.8
    rmse = [row["rmse"] for row in r.comparison]
    assert rmse == sorted(rmse)  # lower is better
    assert {"predicted_vs_actual.png", "learning_curve.png", "comparison.png"} <= set(r.plots)
    assert r.model_card().threshold is None


def test_progress_messages() -> None:
    messages: list[str] = []
    spec = LearningSpec("churn_features", "customer_id", "churned", cv_folds=3)
    train_and_evaluate(churn_frame(), spec, ["logistic_regression"], progress=messages.append, plots="none", diagnostics=False)
    assert messages[0].startswith("churn_features: 300 rows, 6 features (1 categorical), 1 candidates, 3-fold CV")
    assert any(m.startswith("[1/1] logistic_regression: roc_auc") for m in messages)


def test_plot_selection_is_an_enum_that_takes_the_old_strings() -> None:
    from datamesh.provenance import code_version
    from ml.errors import SpecError
    from ml.plots import PlotKind
    from ml.training import DEFAULT_PLOTS, PlotSelection

    assert DEFAULT_PLOTS is PlotSelection.ALL and [p.value for p in PlotSelection] == ["all", "best", "none"]
    spec = LearningSpec("churn_features", "customer_id", "churned", cv_folds=3)
    best = train_and_evaluate(churn_frame(), spec, ["logistic_regression", "decision_tree"], plots=PlotSelection.BEST,
                              diagnostics=False)
    assert set(best.plots) == {k.filename for k in (PlotKind.COMPARISON, PlotKind.CONFUSION_MATRIX, PlotKind.ROC,
                                                    PlotKind.PR, PlotKind.CALIBRATION)}
    assert list(best.candidate_plots) == [best.best.name]
    assert best.model_card().code_version == code_version()
    with pytest.raises(SpecError, match="plots='nnone'; expected 'all', 'best' or 'none'. Did you mean 'none'?"):
        train_and_evaluate(churn_frame(), spec, ["logistic_regression"], plots="nnone")


def test_report_is_frozen_and_holds_no_fold_models(report: TrainingReport) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.seconds = 0.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.best.status = "failed"  # type: ignore[misc]
    assert all(r.first_fold_model is None for r in report.results)
    assert any(r is report.best for r in report.results)
    assert report.comparison_markdown.splitlines()[2].startswith(f"| 1 | {report.best.name} |")


def _steps_input(names: list[str]) -> tuple[Any, ...]:
    from ml.evaluation import evaluation_key, make_folds
    from ml.preparation import prepare_training_data
    from ml.training import resolve_candidates

    spec = LearningSpec("churn_features", "customer_id", "churned", cv_folds=3)
    data = prepare_training_data(churn_frame(), spec)
    folds = make_folds(data.y, spec.task, spec.cv_folds, spec.seed)
    plan = resolve_candidates(names, spec.task, len(data.y))
    return spec, data, folds, plan, evaluation_key(data, spec)


def test_steps_are_functions_returning_their_results(monkeypatch: pytest.MonkeyPatch) -> None:
    import ml.training
    from ml.training import choose_best, draw_plots, evaluate_candidates, explain, refit

    spec, data, folds, plan, key = _steps_input(["logistic_regression", "decision_tree", "soft_voting"])
    results = evaluate_candidates(plan, data, folds, spec, key=key)
    assert [r.name for r in results] == ["logistic_regression", "decision_tree", "soft_voting"]
    # the voting ensemble's first-fold model is assembled from its members' (no refit)
    assert results[0].first_fold_model is not None and results[2].first_fold_model is not None
    ranked = choose_best(results, spec)
    assert [r.metrics["roc_auc"] for r in ranked] == sorted((r.metrics["roc_auc"] for r in results), reverse=True)
    chosen = refit(ranked, data, spec)
    assert chosen.best is ranked[0] and chosen.notes == ()
    fits: list[str] = []
    real_fit = ml.training.fit_candidate

    def counting_fit(candidate: Candidate, *args: Any) -> Any:
        fits.append(candidate.name)
        return real_fit(candidate, *args)

    monkeypatch.setattr(ml.training, "fit_candidate", counting_fit)
    explanation = explain(chosen.best, data, folds, spec)
    assert fits == []  # permutation importance reuses the kept first-fold model, whichever candidate won
    assert len(explanation.importances) == 6 and explanation.learning_curve is not None and explanation.notes == ()
    drawn = draw_plots(results, chosen.best, [{"candidate": r.name, "roc_auc": r.metrics["roc_auc"]} for r in results],
                       explanation, data, spec, every_candidate=False)
    assert list(drawn.candidate_plots) == [chosen.best.name] and "learning_curve.png" in drawn.plots


def test_refit_falls_back_to_the_next_best_and_notes_why() -> None:
    from ml.training import choose_best, evaluate_candidates, refit

    spec, data, folds, plan, key = _steps_input(["logistic_regression", "decision_tree"])
    ranked = choose_best(evaluate_candidates(plan, data, folds, spec, key=key), spec)
    broken = dataclasses.replace(ranked[0], candidate=BROKEN)
    chosen = refit([broken, *ranked[1:]], data, spec)
    assert chosen.best is ranked[1]
    assert chosen.notes == (f"refit of {broken.name} on all rows failed (RuntimeError: boom); next best used",)
    with pytest.raises(TrainingError, match="no candidate could be refit on all rows"):
        refit([broken], data, spec)


def test_explain_notes_failed_diagnostics_instead_of_raising() -> None:
    from ml.evaluation import CandidateResult
    from ml.training import explain

    spec, data, folds, _, _ = _steps_input(["logistic_regression"])
    result = CandidateResult(name="broken", family="linear", status="ok", candidate=BROKEN)
    explanation = explain(result, data, folds, spec)
    assert explanation.importances == () and explanation.learning_curve is None
    assert explanation.notes == ("permutation importance failed: RuntimeError: boom", "learning curve failed: RuntimeError: boom")


def test_choose_best_lists_every_error_when_nothing_scored() -> None:
    from ml.evaluation import CandidateResult
    from ml.training import choose_best

    spec = LearningSpec("churn_features", "customer_id", "churned", cv_folds=3)
    results = [CandidateResult(name="a", family="linear", status="failed", error="E1"),
               CandidateResult(name="b", family="linear", status="skipped", note="why")]
    with pytest.raises(TrainingError, match="Product 'churn_features': every candidate failed \\(a: E1\\)"):
        choose_best(results, spec)
