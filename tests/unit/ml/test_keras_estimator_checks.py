"""The Keras classifiers against scikit-learn's own estimator checks.

Tiny networks (one hidden layer of 8 units, two epochs of small batches, no
validation split) keep the whole check set short; TensorFlow is imported by
the first fit, not at collection. Every check applies and passes but one,
declared in ``expected_failed_checks`` (the array-API check skips itself
unless ``SCIPY_ARRAY_API`` is set): ``check_methods_sample_order_invariance``
asks a permuted batch for the same probabilities to a relative 1e-7, and
TensorFlow's float32 kernels give a row a result that depends on its place in
the batch on some CPUs (on this machine's AMD EPYC the probabilities differed
by at most 6e-8, a relative 1.4e-7; on the Intel hosts before, they matched).
It is not strict: where the kernels agree the check passes.
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


SAMPLE_ORDER = ("float32 kernels: a row's probability can differ by ~1e-7 with its place in the batch, "
                "beyond the check's 1e-7 relative tolerance on some CPUs")


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda _estimator: {
    "check_methods_sample_order_invariance": SAMPLE_ORDER})
def test_follows_the_scikit_learn_contract(estimator: Any, check: Callable[[Any], None]) -> None:
    check(estimator)
