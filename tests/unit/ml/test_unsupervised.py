from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

from ml.errors import FeatureError
from ml.unsupervised import anomaly_scores, detect_anomalies, segment_customers


@pytest.fixture
def blobs() -> pd.DataFrame:
    X, _ = make_blobs(600, 3, centers=[[0, 0, 0], [8, 0, 0], [0, 8, 0]], cluster_std=1.0, random_state=0)
    return pd.DataFrame(X, columns=["spend", "tenure", "tickets"]).assign(plan="basic")


def test_segments_choose_true_k(blobs: pd.DataFrame) -> None:
    result = segment_customers(blobs, ["spend", "tenure", "tickets"], k_range=range(2, 6))
    assert result.k == 3
    assert max(result.silhouette, key=result.silhouette.get) == 3
    assert sorted(result.sizes.values()) == [200, 200, 200]
    assert len(result.labels) == 600 and list(result.profile.columns) == ["spend", "tenure", "tickets"]
    assert result.scatter_png.startswith(b"\x89PNG")
    assert (result.model.predict(blobs) == result.labels).all()


def test_segments_reject_text_columns(blobs: pd.DataFrame) -> None:
    with pytest.raises(FeatureError, match="'plan' has type"):
        segment_customers(blobs, ["spend", "plan"])


def test_anomalies_flag_outlier(blobs: pd.DataFrame) -> None:
    blobs.loc[5, ["spend", "tenure", "tickets"]] = [40.0, -40.0, 40.0]
    result = detect_anomalies(blobs, ["spend", "tenure", "tickets"], percentile=1.0)
    assert result.flags[5]
    assert result.flags.sum() == pytest.approx(6, abs=1)
    assert int(np.argmin(result.scores)) == 5
    assert np.allclose(anomaly_scores(result.model, blobs), result.scores)
    assert result.n_components in result.bic
