from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.pipeline import Pipeline

from ml.errors import FeatureError, SpecError
from ml.evaluation import fit_candidate
from ml.preparation import prepare_training_data
from ml.scoring import model_features, prediction_schema, score_batches
from ml.spec import LearningSpec
from ml.zoo import candidate_by_name

WHEN = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)


@pytest.fixture
def model(frame: pd.DataFrame, spec: LearningSpec) -> Pipeline:
    data = prepare_training_data(frame, spec)
    return fit_candidate(candidate_by_name("logistic_regression", "classification"), data.X, data.y, spec, data.features)


def batches(frame: pd.DataFrame, size: int = 128) -> list[pa.RecordBatch]:
    return pa.Table.from_pandas(frame.drop(columns="churned"), preserve_index=False).to_batches(max_chunksize=size)


def test_scores_match_model_and_schema(model: Pipeline, frame: pd.DataFrame, spec: LearningSpec) -> None:
    out = list(score_batches(model, batches(frame), spec, 0.4, "churn", 3, {"features_version": "7"}, scored_at=WHEN))
    assert len(out) == 3 and sum(b.num_rows for b in out) == 300
    table = pa.Table.from_batches(out)
    assert table.schema.names == [
        "customer_id", "probability", "predicted_label", "model_name", "model_version", "threshold", "scored_at",
        "uncertainty", "features_version",
    ]
    assert table.schema.field("scored_at").type == pa.timestamp("us")
    result = table.to_pandas()
    expected = model.predict_proba(frame)[:, 1]
    assert np.allclose(result["probability"], expected)
    assert (result["predicted_label"] == (expected >= 0.4)).all()
    assert result["customer_id"].tolist() == frame["customer_id"].tolist()
    assert set(result["model_name"]) == {"churn"} and set(result["model_version"]) == {"3"}
    assert (result["scored_at"] == pd.Timestamp("2025-03-01 12:30:00")).all()
    assert result["uncertainty"].isna().all()
    assert set(result["features_version"]) == {"7"}


def test_extra_columns_ignored_and_order_free(model: Pipeline, frame: pd.DataFrame, spec: LearningSpec) -> None:
    shuffled = frame[["plan", "x4", "x3", "customer_id", "x2", "x1", "x0"]].assign(unrelated=1)
    out = pa.Table.from_batches(list(score_batches(model, batches(shuffled.assign(churned=0)), spec, 0.5, "m", 1)))
    assert np.allclose(out["probability"].to_numpy(), model.predict_proba(frame)[:, 1])


def test_missing_feature_column_is_named(model: Pipeline, frame: pd.DataFrame, spec: LearningSpec) -> None:
    renamed = frame.rename(columns={"x3": "x_3"})
    with pytest.raises(FeatureError, match="lacks feature column 'x3'.*Did you mean 'x_3'"):
        list(score_batches(model, batches(renamed), spec, 0.5, "churn", 1))


def test_missing_id_column(model: Pipeline, frame: pd.DataFrame, spec: LearningSpec) -> None:
    with pytest.raises(FeatureError, match="lacks id column 'customer_id'"):
        list(score_batches(model, batches(frame.drop(columns="customer_id")), spec, 0.5, "churn", 1))


def test_empty_batch_and_laziness(model: Pipeline, frame: pd.DataFrame, spec: LearningSpec) -> None:
    empty = batches(frame)[0].slice(0, 0)
    out = list(score_batches(model, [empty], spec, 0.5, "churn", 1))
    assert out[0].num_rows == 0 and "probability" in out[0].schema.names
    iterator = score_batches(model, iter(batches(frame)), spec, 0.5, "churn", 1)
    assert next(iterator).num_rows == 128


def test_argument_errors(model: Pipeline, frame: pd.DataFrame, spec: LearningSpec) -> None:
    with pytest.raises(SpecError, match="needs a threshold"):
        list(score_batches(model, batches(frame), spec, None, "churn", 1))
    with pytest.raises(SpecError, match="clash"):
        list(score_batches(model, batches(frame), spec, 0.5, "churn", 1, {"probability": 1.0}))


def test_model_features_and_schema(model: Pipeline) -> None:
    assert model_features(model) == ["x0", "x1", "x2", "x3", "x4", "plan"]
    schema = prediction_schema(pa.field("customer_id", pa.string()), "regression")
    assert schema.names == ["customer_id", "prediction", "model_name", "model_version", "scored_at", "uncertainty"]


def test_regression_scoring() -> None:
    from sklearn.datasets import make_regression

    X, y = make_regression(100, 3, random_state=0)
    frame = pd.DataFrame(X, columns=list("abc")).assign(id=range(100), target=y)
    spec = LearningSpec("sales", "id", "target", task="regression", cv_folds=3)
    data = prepare_training_data(frame, spec)
    model = fit_candidate(candidate_by_name("ridge", "regression"), data.X, data.y, spec, data.features)
    table = pa.Table.from_batches(list(score_batches(model, [pa.RecordBatch.from_pandas(frame)], spec, None, "sales", 1)))
    assert np.allclose(table["prediction"].to_numpy(), model.predict(frame))
