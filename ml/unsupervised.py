"""Unsupervised models: segments (k-means) and anomalies (Gaussian mixture) of a product's rows.

Both work on numeric (incl. boolean) features, median-imputed and
standardised inside the returned pipeline, so ``result.model`` takes a raw
product DataFrame (``model.predict`` gives segments; for anomalies use
:func:`anomaly_scores`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.metrics import silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from datamesh.errors import did_you_mean
from ml import plots
from ml.errors import FeatureError
from ml.preparation import FrameCaster
from ml.spec import ColumnKind, column_kind

__all__ = ["AnomalyResult", "SegmentationResult", "anomaly_scores", "detect_anomalies", "segment"]


def _numeric_frame(frame: pd.DataFrame, features: Sequence[str], what: str) -> list[str]:
    if not features:
        raise FeatureError(f"{what} needs at least one numeric feature column.")
    for column in features:
        if column not in frame.columns:
            raise FeatureError(f"{what}: no column '{column}'." + did_you_mean(column, [str(c) for c in frame.columns]))
        if column_kind(frame[column].dtype, frame[column]) is not ColumnKind.NUMERIC:
            raise FeatureError(
                f"{what}: column '{column}' has type {frame[column].dtype}; only numeric and boolean columns are used."
            )
        if frame[column].isna().all():
            raise FeatureError(f"{what}: column '{column}' is null in every row.")
    return list(features)


def _scaler(features: list[str], product: str) -> list[tuple[str, object]]:
    return [
        ("prepare", FrameCaster(features, (), product)),
        ("impute", SimpleImputer(strategy="median")),
        ("scale", StandardScaler()),
    ]


def _sample(n: int, size: int, seed: int) -> NDArray[np.intp]:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


@dataclass
class SegmentationResult:
    """Segments of every row, the chosen k and why."""

    labels: NDArray[np.int_]
    k: int
    silhouette: dict[int, float]
    model: Pipeline
    sizes: dict[int, int]
    profile: pd.DataFrame = field(repr=False)
    scatter_png: bytes = field(default=b"", repr=False)


def segment(
    frame: pd.DataFrame,
    features: Sequence[str],
    *,
    k_range: Sequence[int] = range(2, 9),
    sample_size: int = 5_000,
    seed: int = 42,
    product: str = "",
    n_threads: int | None = 1,
) -> SegmentationResult:
    """K-means segments on scaled numeric ``features``.

    k is the one with the best silhouette score over ``k_range``, measured
    on a sample of ``sample_size`` rows; the final model is fit on all
    rows. ``profile`` is the mean of each feature per segment (original
    units), ``scatter_png`` the segments on the first two principal
    components. ``n_threads`` caps OpenMP threads (see
    :func:`ml.training.train_and_evaluate`).
    """
    with threadpool_limits(limits=n_threads):
        return _segment(frame, features, k_range, sample_size, seed, product)


def _segment(
    frame: pd.DataFrame, features: Sequence[str], k_range: Sequence[int], sample_size: int, seed: int, product: str
) -> SegmentationResult:
    columns = _numeric_frame(frame, features, "Segmentation")
    ks = [k for k in k_range if 2 <= k < len(frame)]
    if not ks:
        raise FeatureError(f"Segmentation: {len(frame)} row(s) are too few for k in {list(k_range)}.")
    prep = Pipeline(_scaler(columns, product)).fit(frame)
    scaled = prep.transform(frame)
    sample = scaled[_sample(len(scaled), sample_size, seed)]
    scores: dict[int, float] = {}
    for k in ks:
        labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(sample)
        scores[k] = float(silhouette_score(sample, labels)) if len(set(labels)) > 1 else -1.0
    best_k = max(scores, key=lambda k: (scores[k], -k))
    # The scaler fitted above on every row is the one a fresh pipeline would fit: reuse it and its output.
    kmeans = KMeans(n_clusters=best_k, n_init=4, random_state=seed)
    labels = kmeans.fit_predict(scaled)
    model = Pipeline([*prep.steps, ("kmeans", kmeans)])
    sizes = {int(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True), strict=True)}
    profile = frame[columns].astype("float64").groupby(labels).mean()
    profile.index.name = "segment"
    coords = PCA(n_components=2, random_state=seed).fit_transform(scaled) if scaled.shape[1] >= 2 else np.column_stack([scaled[:, 0], np.zeros(len(scaled))])
    png = plots.scatter_png(coords, labels, title=f"Segments (k={best_k})")
    return SegmentationResult(labels, best_k, scores, model, sizes, profile, png)


@dataclass
class AnomalyResult:
    """Log-likelihood of every row under the mixture, and the rows flagged."""

    scores: NDArray[np.float64]
    flags: NDArray[np.bool_]
    threshold: float
    n_components: int
    bic: dict[int, float]
    model: Pipeline


def detect_anomalies(
    frame: pd.DataFrame,
    features: Sequence[str],
    *,
    components: Sequence[int] = range(1, 7),
    percentile: float = 1.0,
    min_component_weight: float = 0.01,
    sample_size: int = 20_000,
    seed: int = 42,
    product: str = "",
    n_threads: int | None = 1,
) -> AnomalyResult:
    """Flag the least likely rows under a Gaussian mixture.

    The number of components is the one with the lowest BIC over
    ``components`` (fit on a sample of ``sample_size`` rows) among mixtures
    whose every component holds at least ``min_component_weight`` of the
    rows (a tiny component would make its rows look normal). Every row gets
    ``score`` = log-likelihood; rows below the ``percentile``-th percentile
    of the scores (default the lowest 1 %) are flagged. ``n_threads`` caps
    OpenMP/BLAS threads.
    """
    with threadpool_limits(limits=n_threads):
        return _anomalies(frame, features, components, percentile, min_component_weight, sample_size, seed, product)


def _anomalies(
    frame: pd.DataFrame,
    features: Sequence[str],
    components: Sequence[int],
    percentile: float,
    min_component_weight: float,
    sample_size: int,
    seed: int,
    product: str,
) -> AnomalyResult:
    if not 0 < percentile < 100:
        raise FeatureError(f"Anomalies: percentile={percentile}; expected a number in (0, 100).")
    columns = _numeric_frame(frame, features, "Anomaly detection")
    prep = Pipeline(_scaler(columns, product)).fit(frame)
    sample_rows = _sample(len(frame), sample_size, seed)
    sample = prep.transform(frame.iloc[sample_rows])
    bic: dict[int, float] = {}
    fitted: dict[int, GaussianMixture] = {}
    for n in components:
        if n < 1 or n > len(sample):
            continue
        gm = GaussianMixture(n_components=n, covariance_type="full", reg_covar=1e-4, random_state=seed).fit(sample)
        bic[n] = float(gm.bic(sample))
        fitted[n] = gm
    if not bic:
        raise FeatureError(f"Anomalies: {len(frame)} row(s) are too few for components {list(components)}.")
    # A component holding a handful of rows is itself a cluster of anomalies: it would
    # give them a high likelihood. Only mixtures whose every component holds at least
    # min_component_weight of the rows are eligible.
    eligible = [n for n, gm in fitted.items() if gm.weights_.min() >= min_component_weight] or [min(fitted)]
    best = min(eligible, key=lambda n: (bic[n], n))
    mixture = fitted[best]
    model = Pipeline([*prep.steps, ("mixture", mixture)])
    scores = anomaly_scores(model, frame)
    threshold = float(np.percentile(scores, percentile))
    return AnomalyResult(scores, scores < threshold, threshold, best, bic, model)


def anomaly_scores(model: Pipeline, frame: pd.DataFrame) -> NDArray[np.float64]:
    """Log-likelihood of each row under a fitted anomaly model (lower = more anomalous)."""
    return np.asarray(model.score_samples(frame), dtype=np.float64)
