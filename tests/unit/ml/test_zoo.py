from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.errors import SpecError
from ml.evaluation import fit_candidate
from ml.preparation import prepare_training_data
from ml.spec import LearningSpec
from ml.zoo import Candidate, Family, all_candidates, candidate_by_name, default_zoo, with_members

CLASSIFICATION = {
    "logistic_regression", "logistic_elastic_net", "sgd_log_loss", "linear_svc", "svc_rbf", "decision_tree",
    "random_forest", "extra_trees", "adaboost", "gradient_boosting", "hist_gradient_boosting", "keras_mlp",
    "keras_wide_deep", "soft_voting", "stacking",
}


def test_full_zoo_has_every_candidate() -> None:
    plan = default_zoo("classification", 1_000)
    assert set(plan.names()) == CLASSIFICATION
    assert plan.skipped == ()
    assert set(default_zoo("regression", 1_000).names()) == {"ridge", "lasso", "elastic_net", "hist_gradient_boosting"}


def test_fast_profile_and_no_keras_record_reasons() -> None:
    fast = default_zoo("classification", 1_000, profile="fast")
    assert "keras_mlp" not in fast.names() and "svc_rbf" not in fast.names()
    assert dict(fast.skipped)["stacking"] == "not in the fast profile"
    no_keras = default_zoo("classification", 1_000, include_keras=False)
    assert dict(no_keras.skipped) == {"keras_mlp": "include_keras=False", "keras_wide_deep": "include_keras=False"}


def test_large_data_subsamples_then_skips_heavy_candidates() -> None:
    plan = default_zoo("classification", 50_000)
    svc = next(c for c in plan.candidates if c.name == "svc_rbf")
    assert svc.max_rows == 5_000 and "subsample of 5,000 of 50,000 rows" in svc.note
    assert not svc.member_of_ensembles
    rf = next(c for c in plan.candidates if c.name == "random_forest")
    assert rf.note == "" and rf.member_of_ensembles
    huge = default_zoo("classification", 2_000_000)
    assert "svc_rbf" not in huge.names()
    assert "heavy candidate skipped" in dict(huge.skipped)["svc_rbf"]


def test_unknown_profile_and_candidate() -> None:
    with pytest.raises(SpecError, match="Did you mean 'fast'"):
        default_zoo("classification", 10, profile="fats")
    with pytest.raises(SpecError, match="Did you mean 'random_forest'"):
        candidate_by_name("random_forrest", "classification")


SKLEARN_CANDIDATES = [c for c in all_candidates("classification") if c.family not in (Family.NEURAL, Family.ENSEMBLE)]


@pytest.mark.parametrize("candidate", SKLEARN_CANDIDATES, ids=lambda c: c.name)
def test_every_sklearn_candidate_fits_raw_frame_and_predicts_probabilities(
    candidate: Candidate, frame: pd.DataFrame, spec: LearningSpec
) -> None:
    data = prepare_training_data(frame, spec)
    model = fit_candidate(candidate, data.X, data.y, spec, data.features)
    # The fitted pipeline takes the product frame as is: extra columns, str dtype, unseen category.
    raw = frame.drop(columns="churned").head(20).copy()
    raw.loc[0, "plan"] = "never_seen"
    p = model.predict_proba(raw)[:, 1]
    assert p.shape == (20,) and np.all((p >= 0) & (p <= 1))


def test_ensembles_build_over_members(frame: pd.DataFrame, spec: LearningSpec) -> None:
    data = prepare_training_data(frame, spec)
    members = [candidate_by_name("logistic_regression", "classification"), candidate_by_name("decision_tree", "classification")]
    for name in ("soft_voting", "stacking"):
        ensemble = with_members(candidate_by_name(name, "classification"), members)
        model = fit_candidate(ensemble, data.X, data.y, spec, data.features)
        assert model.predict_proba(frame.head(5))[:, 1].shape == (5,)
        assert [m["name"] for m in ensemble.describe()["members"]] == ["logistic_regression", "decision_tree"]
    with pytest.raises(SpecError, match="needs at least 2 members"):
        with_members(candidate_by_name("soft_voting", "classification"), members[:1]).build(data.features, 0)


def test_hist_gradient_boosting_declares_categoricals(frame: pd.DataFrame, spec: LearningSpec) -> None:
    data = prepare_training_data(frame, spec)
    model = candidate_by_name("hist_gradient_boosting", "classification").build(data.features, 0)
    mask = model.named_steps["estimator"].categorical_features
    assert list(mask) == [False] * 5 + [True]


def test_describe_is_json_able() -> None:
    import json

    for c in all_candidates("classification"):
        json.dumps(c.describe())


def test_profiles_are_an_enum_that_takes_the_old_strings() -> None:
    from ml.zoo import DEFAULT_PROFILE, Profile

    assert [p.value for p in Profile] == ["full", "fast"] and DEFAULT_PROFILE is Profile.FULL
    assert default_zoo("classification", 1_000, profile=Profile.FAST) == default_zoo("classification", 1_000, profile="fast")
    assert default_zoo("classification", 1_000) == default_zoo("classification", 1_000, profile=Profile.FULL)


def test_catalogue_is_typed_and_frozen() -> None:
    import dataclasses

    from ml.zoo import CATALOGUE, Profile

    names = {(c.task, c.name) for c in CATALOGUE}
    assert len(names) == len(CATALOGUE)  # one entry per task and name
    assert {c.name for c in CATALOGUE if c.needs_keras} == {"keras_mlp", "keras_wide_deep"}
    assert all(Profile.FULL in c.profiles for c in CATALOGUE)
    assert {c.name for c in CATALOGUE if Profile.FAST in c.profiles and c.task == "classification"} == {
        "logistic_regression", "decision_tree", "random_forest", "hist_gradient_boosting", "soft_voting",
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        CATALOGUE[0].name = "renamed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("profile", "include_keras", "expected"),
    [
        ("fast", True, ["logistic_regression", "decision_tree", "random_forest", "hist_gradient_boosting", "soft_voting"]),
        ("full", False, sorted(CLASSIFICATION - {"keras_mlp", "keras_wide_deep"})),
        ("full", True, sorted(CLASSIFICATION)),
    ],
)
def test_candidates_by_profile_and_keras(profile: str, include_keras: bool, expected: list[str]) -> None:
    from ml.zoo import candidates

    chosen = [c.name for c in candidates("classification", profile, include_keras)]
    assert sorted(chosen) == sorted(expected)
    assert chosen == [n for n in (c.name for c in all_candidates("classification")) if n in expected]  # run order


def test_candidates_by_name_keep_the_order_given_whatever_the_profile() -> None:
    from ml.zoo import candidates

    chosen = candidates("classification", "fast", names=["svc_rbf", "logistic_regression"])
    assert [c.name for c in chosen] == ["svc_rbf", "logistic_regression"]
    assert candidates("regression", names=["ridge"])[0].task == "regression"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"names": ["random_forrest"]}, "Unknown classification candidate 'random_forrest'.*Did you mean 'random_forest'"),
        ({"names": ["ridge"]}, "Unknown classification candidate 'ridge'"),
        ({"names": ["keras_mlp"], "include_keras": False}, "Candidate 'keras_mlp' needs Keras, but include_keras=False"),
        ({"names": ["decision_tree", "decision_tree"]}, "Candidate names must be unique; \\['decision_tree'\\] given more"),
        ({"profile": "fats"}, "Unknown zoo profile 'fats'; expected 'full' or 'fast'. Did you mean 'fast'"),
    ],
)
def test_candidates_errors(kwargs: dict[str, object], message: str) -> None:
    from ml.zoo import candidates

    with pytest.raises(SpecError, match=message):
        candidates("classification", **kwargs)  # type: ignore[arg-type]


def test_unknown_task_suggests_the_closest() -> None:
    from ml.zoo import candidates

    with pytest.raises(SpecError, match="Unknown task 'clasification'.*Did you mean 'classification'"):
        candidates("clasification")


def test_default_zoo_with_names_runs_exactly_those_and_still_subsamples() -> None:
    plan = default_zoo("classification", 50_000, include_keras=False, profile="fast", names=["svc_rbf"])
    assert plan.names() == ["svc_rbf"] and plan.skipped == ()
    assert "subsample of 5,000 of 50,000 rows" in plan.candidates[0].note


def test_n_jobs_reaches_the_forests_only() -> None:
    two = {c.name: c for c in all_candidates("classification", n_jobs=2)}
    assert two["random_forest"].params["n_jobs"] == 2 and two["extra_trees"].params["n_jobs"] == 2
    assert "n_jobs" not in two["logistic_regression"].params
    assert candidate_by_name("random_forest", "classification").params["n_jobs"] == -1
