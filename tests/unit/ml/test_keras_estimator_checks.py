"""The Keras classifiers against scikit-learn's own estimator checks.

Tiny networks (one hidden layer of 8 units, two epochs of small batches, no
validation split) keep the whole check set short; TensorFlow is imported by
the first fit, not at collection. Every check applies and passes, so none is
declared in ``expected_failed_checks`` (the array-API check skips itself
unless ``SCIPY_ARRAY_API`` is set).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from ml.keras_models import KerasMLPClassifier, KerasWideDeepClassifier

pytestmark = pytest.mark.slow

TINY: dict[str, Any] = {
    "hidden_units": (8,),
    "batch_norm": False,
    "dropout": 0.0,
    "learning_rate": 0.05,
    "epochs": 2,
    "batch_size": 16,
    "patience": 1,
    "validation_fraction": 0.0,
    "random_state": 0,
}

ESTIMATORS = [KerasMLPClassifier(**TINY), KerasWideDeepClassifier(**TINY)]


@parametrize_with_checks(ESTIMATORS)
def test_follows_the_scikit_learn_contract(estimator: Any, check: Callable[[Any], None]) -> None:
    check(estimator)
