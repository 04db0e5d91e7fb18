from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from ml.evaluation import (
    CandidateResult,
    comparison_markdown,
    comparison_table,
    cross_validate,
    evaluation_key,
    make_folds,
    rank,
    score_ensemble,
)
from ml.preparation import prepare_training_data
from ml.spec import LearningSpec, Task
from ml.zoo import Candidate, Family, candidate_by_name, with_members

from .conftest import churn_frame


def _broken(**_: object) -> object:
    raise RuntimeError("this estimator is broken on purpose")


BROKEN = Candidate("broken", Family.LINEAR, Task.CLASSIFICATION, _broken)


def test_folds_are_stratified_and_reproducible(frame: pd.DataFrame, spec: LearningSpec) -> None:
    y = prepare_training_data(frame, spec).y
    a, b = make_folds(y, "classification", 3, 42), make_folds(y, "classification", 3, 42)
    c = make_folds(y, "classification", 3, 7)
    assert all(np.array_equal(x[1], z[1]) for x, z in zip(a.splits, b.splits, strict=True))
    assert not all(np.array_equal(x[1], z[1]) for x, z in zip(a.splits, c.splits, strict=True))
    tests = np.concatenate([t for _, t in a.splits])
    assert sorted(tests) == list(range(len(y)))  # every row is out of fold exactly once
    rates = [y[t].mean() for _, t in a.splits]
    assert max(rates) - min(rates) < 0.02


def test_failed_candidate_is_captured(frame: pd.DataFrame, spec: LearningSpec) -> None:
    data = prepare_training_data(frame, spec)
    folds = make_folds(data.y, spec.task, spec.cv_folds, spec.seed)
    result = cross_validate(BROKEN, data, folds, spec)
    assert result.status == "failed" and not result.ok
    assert result.error == "RuntimeError: this estimator is broken on purpose"
    ok = cross_validate(candidate_by_name("logistic_regression", "classification"), data, folds, spec)
    assert ok.ok and ok.oof is not None and ok.oof.shape == data.y.shape
    assert 0.5 < ok.metrics["roc_auc"] <= 1.0


def test_soft_voting_oof_is_mean_of_members_and_matches_refitting(frame: pd.DataFrame, spec: LearningSpec) -> None:
    data = prepare_training_data(frame, spec)
    folds = make_folds(data.y, spec.task, spec.cv_folds, spec.seed)
    members = [candidate_by_name(n, "classification") for n in ("logistic_regression", "decision_tree")]
    results = [cross_validate(m, data, folds, spec) for m in members]
    voting = with_members(candidate_by_name("soft_voting", "classification"), members)
    scored = score_ensemble(voting, results, data, folds, spec)
    assert np.allclose(scored.oof, (results[0].oof + results[1].oof) / 2)
    refit = cross_validate(voting, data, folds, spec)  # a real VotingClassifier on every fold
    assert np.allclose(scored.oof, refit.oof)


def test_stacking_scores_from_members(frame: pd.DataFrame, spec: LearningSpec) -> None:
    data = prepare_training_data(frame, spec)
    folds = make_folds(data.y, spec.task, spec.cv_folds, spec.seed)
    members = [candidate_by_name(n, "classification") for n in ("logistic_regression", "decision_tree")]
    results = [cross_validate(m, data, folds, spec) for m in members]
    stacking = with_members(candidate_by_name("stacking", "classification"), members)
    scored = score_ensemble(stacking, results, data, folds, spec)
    assert scored.ok and "meta-learner" in scored.note
    assert 0.5 < scored.metrics["roc_auc"] <= 1.0


def _result(name: str, status: str, roc_auc: float | None = None, log_loss: float | None = None) -> CandidateResult:
    metrics = {} if roc_auc is None else {"roc_auc": roc_auc, "log_loss": log_loss or 0.5}
    return CandidateResult(name=name, family="linear", status=status, metrics=metrics, error="boom" if status == "failed" else None)


def test_rank_and_comparison_table_order() -> None:
    results = [
        _result("skipped_one", "skipped"),
        _result("b", "ok", 0.80, 0.40),
        _result("failed_one", "failed"),
        _result("a", "ok", 0.90, 0.45),
    ]
    assert [r.name for r in rank(results, "roc_auc")] == ["a", "b"]
    assert [r.name for r in rank(results, "log_loss")] == ["b", "a"]  # lower is better
    rows = comparison_table(results, "roc_auc", "classification")
    assert [(r["rank"], r["candidate"], r["status"]) for r in rows] == [
        (1, "a", "ok"), (2, "b", "ok"), (None, "failed_one", "failed"), (None, "skipped_one", "skipped"),
    ]
    assert rows[2]["note"] == "boom"
    text = comparison_markdown(rows)
    assert text.splitlines()[0].startswith("| rank | candidate | family | status | roc_auc")
    assert "| 1 | a | linear | ok | 0.9 |" in text


def test_evaluation_key_changes_with_data(frame: pd.DataFrame, spec: LearningSpec) -> None:
    key = evaluation_key(prepare_training_data(frame, spec), spec, {"churn_features": "3"})
    assert key == evaluation_key(prepare_training_data(frame.copy(), spec), spec, {"churn_features": "3"})
    changed = frame.copy()
    changed.loc[0, "x0"] += 1
    assert key.data_fingerprint != evaluation_key(prepare_training_data(changed, spec), spec).data_fingerprint
    assert key != evaluation_key(prepare_training_data(frame, spec), spec, {"churn_features": "4"})
    assert type(key).from_dict(key.to_dict()) == key


@pytest.mark.parametrize("name", ["ridge", "hist_gradient_boosting"])
def test_regression_candidates_cross_validate(name: str) -> None:
    from sklearn.datasets import make_regression

    X, y = make_regression(200, 4, noise=5.0, random_state=0)
    frame = pd.DataFrame(X, columns=list("abcd")).assign(id=range(200), target=y)
    spec = LearningSpec("sales", "id", "target", task="regression", cv_folds=3)
    data = prepare_training_data(frame, spec)
    result = cross_validate(candidate_by_name(name, "regression"), data, make_folds(data.y, spec.task, 3, 0), spec)
    assert result.ok and result.metrics["r2"] > 0.5 and result.threshold is None


def test_candidate_status_is_an_enum_that_takes_the_old_strings() -> None:
    from ml.errors import TrainingError
    from ml.evaluation import CandidateStatus

    result = CandidateResult(name="a", family="linear", status="skipped", note="why")
    assert result.status is CandidateStatus.SKIPPED and result.status == "skipped" and not result.ok
    assert CandidateResult(name="a", family="linear", status=CandidateStatus.OK).ok
    rows = comparison_table([_result("a", "ok", 0.8), _result("b", "failed")], "roc_auc", "classification")
    assert [type(r["status"]) for r in rows] == [str, str]  # plain JSON data in cards
    with pytest.raises(TrainingError, match="unknown status 'done'; expected one of \\['ok', 'failed', 'skipped'\\]"):
        CandidateResult(name="a", family="linear", status="done")  # type: ignore[arg-type]


def test_results_are_immutable_and_carry_timing_and_warnings(frame: pd.DataFrame, spec: LearningSpec) -> None:
    import dataclasses

    data = prepare_training_data(frame, spec)
    folds = make_folds(data.y, spec.task, spec.cv_folds, spec.seed)
    logistic = candidate_by_name("logistic_regression", "classification")
    result = cross_validate(logistic, data, folds, spec, keep_first_fold_model=True)
    assert result.seconds > 0 and result.first_fold_model is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.note = "changed"  # type: ignore[misc]
    assert dataclasses.replace(result, first_fold_model=None).metrics == result.metrics


@pytest.mark.parametrize("classes", [2, 3])
def test_soft_voting_first_fold_model_is_the_fitted_one(classes: int) -> None:
    """The voting ensemble's first-fold model (for permutation importance) is assembled from the
    members' first-fold models; it predicts exactly what fitting the ensemble on that fold does.
    (One forest thread: with several, predict_proba sums the trees in thread order, so even one
    fitted forest differs from itself by an ulp between calls.)"""
    from ml.evaluation import fit_candidate, permutation_importances

    frame = churn_frame(240, seed=3)
    if classes == 3:
        frame["churned"] = np.where(frame["x0"] > 0.5, "gold", np.where(frame["churned"], "silver", "bronze"))
    spec = LearningSpec(product="churn_features", id_column="customer_id", label_column="churned", cv_folds=3)
    data = prepare_training_data(frame, spec)
    if classes == 3:
        spec = spec.as_multiclass()
    folds = make_folds(data.y, spec.task, spec.cv_folds, spec.seed)
    multiclass = classes == 3
    names = ("logistic_regression", "random_forest", "decision_tree")
    members = [candidate_by_name(n, "classification", n_jobs=1, multiclass=multiclass) for n in names]
    members[1] = dataclasses.replace(members[1], params={**members[1].params, "n_estimators": 10})  # quick
    results = [cross_validate(m, data, folds, spec, keep_first_fold_model=True) for m in members]
    voting = with_members(candidate_by_name("soft_voting", "classification", n_jobs=1, multiclass=multiclass), members)
    assembled = score_ensemble(voting, results, data, folds, spec).first_fold_model
    assert assembled is not None
    train, test = folds.splits[0]
    fitted = fit_candidate(voting, data.X.iloc[train], data.y[train], spec, data.features)
    X_test = data.X.iloc[test]
    assert np.array_equal(assembled.predict_proba(X_test), fitted.predict_proba(X_test))
    assert np.array_equal(assembled.predict(X_test), fitted.predict(X_test))
    assert list(assembled.classes_) == list(fitted.classes_)
    assert permutation_importances(assembled, data, test, spec) == permutation_importances(fitted, data, test, spec)
    # without the members' kept models (or for stacking) there is none: explain() fits one
    assert score_ensemble(voting, [dataclasses.replace(r, first_fold_model=None) for r in results],
                          data, folds, spec).first_fold_model is None
