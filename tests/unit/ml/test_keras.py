"""Keras wrappers: divergence handling, pickling, MC Dropout. Each test pays
the TensorFlow import (~10 s) once per session, hence ``slow``."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from datamesh.storage import Lake
from ml.evaluation import fit_candidate
from ml.preparation import prepare_training_data
from ml.registry import ModelRegistry
from ml.scoring import score_batches
from ml.spec import LearningSpec, Task
from ml.training import train_and_evaluate
from ml.zoo import Candidate, Family, Preprocessing, candidate_by_name

from .conftest import churn_frame
from .test_champion import card

pytestmark = pytest.mark.slow

SPEC = LearningSpec("churn_features", "customer_id", "churned", cv_folds=3)
TINY = {"hidden_units": (16,), "epochs": 5, "patience": 2}


@pytest.fixture(scope="module")
def keras_pipeline() -> tuple[Pipeline, pd.DataFrame]:
    frame = churn_frame(200)
    data = prepare_training_data(frame, SPEC)
    base = candidate_by_name("keras_mlp", "classification")
    tiny = Candidate(base.name, base.family, base.task, base.factory, {**base.params, **TINY}, base.preprocessing)
    return fit_candidate(tiny, data.X, data.y, SPEC, data.features), frame


def test_diverging_network_is_marked_failed_and_others_go_on() -> None:
    from ml.keras_models import KerasMLPClassifier

    diverging = Candidate(
        "keras_diverging", Family.NEURAL, Task.CLASSIFICATION, KerasMLPClassifier,
        {"learning_rate": 1e30, "epochs": 3, "hidden_units": (16, 16)}, Preprocessing.DENSE_ONE_HOT,
    )
    report = train_and_evaluate(churn_frame(150), SPEC, [diverging, "logistic_regression"], plots="none", diagnostics=False)
    failed = next(r for r in report.results if r.name == "keras_diverging")
    assert failed.status == "failed"
    assert failed.error.startswith("TrainingError: KerasMLPClassifier diverged: the loss became NaN/inf")
    assert report.best.name == "logistic_regression"


def test_overflowing_input_is_a_training_error() -> None:
    from ml.errors import TrainingError
    from ml.keras_models import KerasMLPClassifier

    X = np.ones((20, 2))
    X[0, 0] = 1e300  # finite in float64, inf in float32
    with pytest.raises(TrainingError, match="overflow float32"):
        KerasMLPClassifier(epochs=1).fit(X, [0, 1] * 10)


def test_predictions_uncertainty_and_pickling(keras_pipeline: tuple[Pipeline, pd.DataFrame]) -> None:
    model, frame = keras_pipeline
    p = model.predict_proba(frame)[:, 1]
    assert p.shape == (200,) and np.all((p >= 0) & (p <= 1))
    network = model.named_steps["estimator"]
    std = network.predict_uncertainty(model[:-1].transform(frame.head(30)), n=10)
    assert std.shape == (30,) and np.all(std >= 0) and std.max() > 0
    restored = pickle.loads(pickle.dumps(model))
    assert np.allclose(restored.predict_proba(frame)[:, 1], p)
    params = clone(network).get_params()
    assert params["hidden_units"] == (16,) and params["optimizer"] == "adam"


def test_registry_and_scoring_with_uncertainty(keras_pipeline: tuple[Pipeline, pd.DataFrame], tmp_path: Path) -> None:
    model, frame = keras_pipeline
    registry = ModelRegistry(Lake(tmp_path))
    registry.register("churn", model, card(0.7))
    loaded = registry.load("churn", 1)
    table = pa.Table.from_pandas(frame.drop(columns="churned"), preserve_index=False)
    out = pa.Table.from_batches(list(score_batches(loaded, table.to_batches(max_chunksize=64), SPEC, 0.5, "churn", 1)))
    assert np.allclose(out["probability"].to_numpy(), model.predict_proba(frame)[:, 1], atol=1e-6)
    assert out["uncertainty"].null_count == 0


def test_invalid_optimizer_fails_at_fit() -> None:
    from ml.keras_models import KerasWideDeepClassifier

    message = "The 'optimizer' parameter of KerasWideDeepClassifier must be a str among .*Got 'sgd' instead"
    with pytest.raises(ValueError, match=message):
        KerasWideDeepClassifier(optimizer="sgd").fit(np.zeros((10, 2)), [0, 1] * 5)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"dropout": 1.0}, "The 'dropout' parameter of KerasMLPClassifier must be a float in the range \\[0.0, 1.0\\). Got 1.0"),
        ({"epochs": 0}, "The 'epochs' parameter of KerasMLPClassifier must be an int in the range \\[1, inf\\)"),
        ({"class_weight": "even"}, "The 'class_weight' parameter of KerasMLPClassifier must be"),
        ({"hidden_units": (16, 0)}, "The 'hidden_units' parameter of KerasMLPClassifier must be a tuple of positive ints"),
        ({"hidden_units": 16}, "The 'hidden_units' parameter of KerasMLPClassifier must be an instance of"),
    ],
)
def test_invalid_parameters_fail_at_fit_not_init(params: dict[str, object], message: str) -> None:
    from ml.keras_models import KerasMLPClassifier

    estimator = KerasMLPClassifier(**params)  # __init__ only stores
    assert estimator.get_params()[next(iter(params))] == next(iter(params.values()))
    with pytest.raises(ValueError, match=message):
        estimator.fit(np.zeros((10, 2)), [0, 1] * 5)


@pytest.mark.parametrize(
    ("y", "message"),
    [
        ([0, 1, 2, 0, 1, 2, 0, 1, 2, 0], "Only binary classification is supported. The type of the target is multiclass"),
        ([0.5, 1.5] * 5, "Unknown label type: continuous"),
        ([1] * 10, "is a binary classifier; y has 1 class"),
    ],
)
def test_only_binary_targets_are_accepted(y: list[float], message: str) -> None:
    from ml.keras_models import KerasMLPClassifier

    with pytest.raises(ValueError, match=message):
        KerasMLPClassifier(epochs=1).fit(np.zeros((10, 2)), y)


def test_seed_is_random_state_or_drawn_from_it() -> None:
    from ml.keras_models import KerasMLPClassifier

    assert KerasMLPClassifier(random_state=7)._seed() == 7
    drawn = KerasMLPClassifier(random_state=np.random.RandomState(0))._seed()
    assert drawn == KerasMLPClassifier(random_state=np.random.RandomState(0))._seed()
