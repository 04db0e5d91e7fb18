from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.errors import FeatureError, LabelError
from ml.preparation import FrameCaster, encode_label, prepare_training_data, stratified_subsample
from ml.spec import LearningSpec

from .conftest import churn_frame


def test_prepare_training_data(frame: pd.DataFrame, spec: LearningSpec) -> None:
    data = prepare_training_data(frame, spec)
    assert data.features.numeric == ("x0", "x1", "x2", "x3", "x4")
    assert data.features.categorical == ("plan",)
    assert list(data.X.columns) == ["x0", "x1", "x2", "x3", "x4", "plan"]
    assert data.X["plan"].dtype == object
    assert set(np.unique(data.y)) == {0, 1}
    assert data.y.sum() == frame["churned"].sum()
    assert (data.label.negative, data.label.positive) == (False, True)


def test_no_label_column(frame: pd.DataFrame, spec: LearningSpec) -> None:
    with pytest.raises(LabelError, match="no column 'churned'.*Did you mean 'churned_x'"):
        prepare_training_data(frame.rename(columns={"churned": "churned_x"}), spec)


def test_single_class_label(frame: pd.DataFrame, spec: LearningSpec) -> None:
    with pytest.raises(LabelError, match="single class \\(False\\) in 300 row"):
        prepare_training_data(frame.assign(churned=False), spec)


def test_too_few_minority_rows_for_folds(spec: LearningSpec) -> None:
    frame = churn_frame(100)
    frame["churned"] = False
    frame.loc[[3, 50], "churned"] = True
    with pytest.raises(LabelError, match="only 2 row\\(s\\) of class True; 3-fold cross-validation needs at least 3"):
        prepare_training_data(frame, spec)


def test_null_labels(frame: pd.DataFrame, spec: LearningSpec) -> None:
    frame["churned"] = frame["churned"].astype(object)
    frame.loc[[1, 2], "churned"] = None
    with pytest.raises(LabelError, match="2 null value"):
        prepare_training_data(frame, spec)


def test_more_than_two_classes_are_encoded_as_sorted_class_indices(frame: pd.DataFrame, spec: LearningSpec) -> None:
    data = prepare_training_data(frame.assign(churned=frame["plan"]), spec)
    assert data.label.multiclass and data.label.classes == ("basic", "enterprise", "pro")
    assert data.label.positive is None and set(data.y) == {0, 1, 2}
    assert (np.asarray(data.label.classes, dtype=object)[data.y] == frame["plan"].to_numpy()).all()


def test_string_label_needs_positive_label(frame: pd.DataFrame, spec: LearningSpec) -> None:
    frame["churned"] = np.where(frame["churned"], "churned", "active")
    with pytest.raises(LabelError, match="ml.positiveLabel"):
        prepare_training_data(frame, spec)
    spec2 = LearningSpec(**{**spec.__dict__, "positive_label": "churned"})
    assert prepare_training_data(frame, spec2).label.positive == "churned"
    spec3 = LearningSpec(**{**spec.__dict__, "positive_label": "churnd"})
    with pytest.raises(LabelError, match="Did you mean 'churned'"):
        prepare_training_data(frame, spec3)


def test_zero_one_label_positive_is_one(frame: pd.DataFrame, spec: LearningSpec) -> None:
    encoded = encode_label(frame["churned"].astype(int), spec)
    assert encoded.positive == 1 and encoded.negative == 0


def test_missing_feature_column(frame: pd.DataFrame) -> None:
    spec = LearningSpec("churn_features", "customer_id", "churned", feature_columns=("x0", "x_3"), cv_folds=3)
    with pytest.raises(FeatureError, match="no feature column 'x_3'.*Did you mean 'x3'"):
        prepare_training_data(frame, spec)


def test_infinite_feature_value(frame: pd.DataFrame, spec: LearningSpec) -> None:
    frame.loc[7, "x2"] = np.inf
    with pytest.raises(FeatureError, match="'x2' holds 1 infinite value\\(s\\) \\(first at row 7\\)"):
        prepare_training_data(frame, spec)


def test_all_null_feature(frame: pd.DataFrame, spec: LearningSpec) -> None:
    frame["x3"] = np.nan
    with pytest.raises(FeatureError, match="'x3' is null in every row"):
        prepare_training_data(frame, spec)


def test_max_training_rows_subsamples_stratified(frame: pd.DataFrame) -> None:
    spec = LearningSpec("churn_features", "customer_id", "churned", cv_folds=3, max_training_rows=100)
    data = prepare_training_data(frame, spec)
    assert len(data.y) == 100
    assert data.n_rows_available == 300
    assert abs(data.y.mean() - frame["churned"].mean()) < 0.02


def test_stratified_subsample_keeps_balance() -> None:
    y = np.array([0] * 900 + [1] * 100)
    keep = stratified_subsample(y, 200, seed=1)
    assert len(keep) == 200 and y[keep].sum() == 20
    assert np.all(np.diff(keep) > 0)
    assert len(stratified_subsample(y, 5000, seed=1)) == 1000


def test_frame_caster_casts_and_ignores_extra_columns() -> None:
    df = pd.DataFrame(
        {
            "n": pd.array([1, None], dtype="Int64"),
            "b": [True, False],
            "c": pd.Series(["x", None], dtype="category"),
            "extra": ["ignored", "too"],
        }
    )
    out = FrameCaster(["n", "b"], ["c"], "p").fit(df).transform(df)
    assert list(out.columns) == ["n", "b", "c"]
    assert out["n"].dtype == np.float64 and np.isnan(out["n"][1])
    assert out["b"].tolist() == [1.0, 0.0]
    assert out["c"].dtype == object and out["c"][0] == "x" and pd.isna(out["c"][1])


def test_frame_caster_missing_column_at_transform() -> None:
    df = pd.DataFrame({"seats": [1.0], "plan": ["a"]})
    caster = FrameCaster(["seats"], ["plan"], "churn_features").fit(df)
    with pytest.raises(FeatureError, match="lacks feature column\\(s\\) \\['seats'\\].*Did you mean 'seat'"):
        caster.transform(pd.DataFrame({"seat": [1.0], "plan": ["a"]}))
