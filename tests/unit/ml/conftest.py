"""Small synthetic data shared by the ML unit tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification

from ml.spec import LearningSpec


def churn_frame(n_rows: int = 300, *, seed: int = 0, weights: tuple[float, ...] = (0.75,)) -> pd.DataFrame:
    """customer_id, churned (bool), five numeric features (one with nulls) and a string column."""
    X, y = make_classification(
        n_samples=n_rows, n_features=5, n_informative=3, n_redundant=1, weights=list(weights), random_state=seed
    )
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    frame.loc[rng.random(n_rows) < 0.05, "x1"] = np.nan
    frame["plan"] = pd.Series(rng.choice(["basic", "pro", "enterprise"], n_rows), dtype="str")
    frame.insert(0, "customer_id", [f"C{i:08d}" for i in range(n_rows)])
    frame["churned"] = y.astype(bool)
    return frame


@pytest.fixture
def frame() -> pd.DataFrame:
    return churn_frame()


@pytest.fixture
def spec() -> LearningSpec:
    return LearningSpec(product="churn_features", id_column="customer_id", label_column="churned", cv_folds=3)
