"""Turning a product's rows into model input: validation of the training
frame, label encoding, a column-casting transformer that starts every model
pipeline, and stratified subsampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from datamesh.errors import did_you_mean
from ml.errors import FeatureError, LabelError
from ml.spec import FeatureSet, LearningSpec, Task, feature_set

__all__ = [
    "FrameCaster",
    "LabelEncoding",
    "TrainingData",
    "encode_label",
    "prepare_training_data",
    "stratified_subsample",
]

MISSING_CATEGORY = "(missing)"


class FrameCaster(TransformerMixin, BaseEstimator):
    """First step of every model pipeline: select the feature columns of a
    DataFrame and give them one representation whatever their source dtype.

    Numeric and boolean columns become float64 (nulls -> NaN); string and
    categorical columns become object arrays of ``str`` (nulls -> NaN). Other
    columns of the input are ignored, so scoring frames may carry extra
    columns. A missing column or an infinite value raises
    :class:`~ml.errors.FeatureError` naming the column.
    """

    def __init__(self, numeric: Sequence[str] = (), categorical: Sequence[str] = (), product: str = "") -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.product = product

    def fit(self, X: pd.DataFrame, y: Any = None) -> FrameCaster:
        """Check the columns exist and remember them."""
        columns = [*self.numeric, *self.categorical]
        if not columns:
            raise FeatureError(f"Product '{self.product}': no feature columns to cast.")
        self._check_columns(X, columns)
        self.feature_names_in_ = np.asarray(columns, dtype=object)
        self.n_features_in_ = len(columns)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return a new DataFrame of the feature columns only, cast."""
        check_is_fitted(self, "feature_names_in_")
        self._check_columns(X, list(self.feature_names_in_))
        out: dict[str, Any] = {}
        for column in self.numeric:
            values = X[column].to_numpy(dtype="float64", na_value=np.nan)
            infinite = np.isinf(values)
            if infinite.any():
                first = X.index[int(np.argmax(infinite))]
                raise FeatureError(
                    f"Product '{self.product}': feature column '{column}' holds {int(infinite.sum())} "
                    f"infinite value(s) (first at row {first!r}); models cannot take inf. Clip them or "
                    "set them to null in the feature product."
                )
            out[column] = values
        for column in self.categorical:
            series = X[column]
            missing = series.isna().to_numpy()
            values = series.astype(object).to_numpy(copy=True)
            values[missing] = np.nan
            values[~missing] = values[~missing].astype(str)
            out[column] = pd.Series(values, index=X.index, dtype=object)
        return pd.DataFrame(out, index=X.index)

    def get_feature_names_out(self, input_features: Any = None) -> NDArray[np.object_]:
        """The feature columns, numeric first."""
        check_is_fitted(self, "feature_names_in_")
        return np.asarray(self.feature_names_in_, dtype=object)

    def _check_columns(self, X: Any, columns: list[str]) -> None:
        if not isinstance(X, pd.DataFrame):
            raise FeatureError(
                f"Product '{self.product}': models take a pandas DataFrame with named columns, "
                f"got {type(X).__name__}."
            )
        missing = [c for c in columns if c not in X.columns]
        if missing:
            raise FeatureError(
                f"Product '{self.product}': input lacks feature column(s) {missing} that the model "
                "was trained on." + did_you_mean(missing[0], [str(c) for c in X.columns])
            )


@dataclass(frozen=True)
class LabelEncoding:
    """The label as 0/1 (classification) or float (regression), and what 0 and 1 stand for."""

    y: NDArray[Any]
    negative: Any = None
    positive: Any = None


def encode_label(series: pd.Series, spec: LearningSpec) -> LabelEncoding:
    """Encode the label column; raise :class:`LabelError` if it cannot be learnt."""
    where = spec.where
    column = spec.label_column
    n_null = int(series.isna().sum())
    if n_null:
        raise LabelError(
            f"Product '{spec.product}': label column '{column}' has {n_null} null value(s) of "
            f"{len(series)}; every training row needs a label. Filter unlabelled rows out of the "
            "training product."
        )
    if spec.task == Task.REGRESSION:
        if pd.api.types.is_bool_dtype(series.dtype) or not pd.api.types.is_numeric_dtype(series.dtype):
            raise LabelError(
                f"Product '{spec.product}': label column '{column}' has type {series.dtype}; "
                f"a regression label must be numeric. Use task: classification in {where} for classes."
            )
        y = series.to_numpy(dtype="float64")
        if not np.isfinite(y).all():
            raise LabelError(f"Product '{spec.product}': label column '{column}' holds infinite values.")
        return LabelEncoding(y)
    classes = list(pd.unique(series))
    if len(classes) < 2:
        value = _plain(classes[0]) if classes else None
        raise LabelError(
            f"Product '{spec.product}': label column '{column}' has a single class ({value!r}) in "
            f"{len(series)} row(s); a classifier needs examples of both classes. Check the training "
            "window and the label definition."
        )
    if len(classes) > 2:
        shown = sorted(map(str, classes))[:10]
        raise LabelError(
            f"Product '{spec.product}': label column '{column}' has {len(classes)} classes ({shown}); "
            "only binary classification is supported. Derive a yes/no label in the feature product."
        )
    positive = _positive_class(series, classes, spec)
    y = (series.to_numpy() == positive).astype(np.int64)
    negative = next(c for c in classes if c != positive)
    return LabelEncoding(y, negative=_plain(negative), positive=_plain(positive))


def _positive_class(series: pd.Series, classes: list[Any], spec: LearningSpec) -> Any:
    if spec.positive_label is not None:
        for c in classes:
            if c == spec.positive_label or str(c) == str(spec.positive_label):
                return c
        raise LabelError(
            f"Product '{spec.product}': `ml.positiveLabel` {spec.positive_label!r} in {spec.where} is "
            f"not a value of label column '{spec.label_column}' (values: {sorted(map(str, classes))})."
            + did_you_mean(str(spec.positive_label), map(str, classes))
        )
    if pd.api.types.is_numeric_dtype(series.dtype) and {float(c) for c in classes} == {0.0, 1.0}:
        return next(c for c in classes if float(c) == 1.0)
    if all(isinstance(c, bool | np.bool_) for c in classes):
        return next(c for c in classes if bool(c))
    raise LabelError(
        f"Product '{spec.product}': label column '{spec.label_column}' has classes "
        f"{sorted(map(str, classes))}; say which one is positive with `ml.positiveLabel` in {spec.where}."
    )


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class TrainingData:
    """A validated training frame: features, encoded label and row ids."""

    X: pd.DataFrame
    label: LabelEncoding
    features: FeatureSet
    n_rows_available: int

    @property
    def y(self) -> NDArray[Any]:
        """The encoded label."""
        return self.label.y


def prepare_training_data(frame: pd.DataFrame, spec: LearningSpec) -> TrainingData:
    """Validate ``frame`` against ``spec`` and return what training needs.

    Raises :class:`LabelError` (no label column, nulls, a single class, more
    than two classes, too few minority rows for the folds) or
    :class:`FeatureError` (missing or unsupported feature columns, a feature
    that is entirely null, infinite values). Applies
    ``spec.max_training_rows`` by stratified subsampling.
    """
    if not isinstance(frame, pd.DataFrame):
        raise FeatureError(f"Product '{spec.product}': training takes a pandas DataFrame, got {type(frame).__name__}.")
    features = feature_set(spec, frame)
    if len(frame) == 0:
        raise LabelError(f"Product '{spec.product}' has no rows to train on.")
    label = encode_label(frame[spec.label_column], spec)
    if spec.task == Task.CLASSIFICATION:
        counts = np.bincount(label.y, minlength=2)
        minority = int(counts.min())
        minority_class = label.positive if counts[1] <= counts[0] else label.negative
        if minority < spec.cv_folds:
            raise LabelError(
                f"Product '{spec.product}': label '{spec.label_column}' has only {minority} row(s) of class "
                f"{minority_class!r}; {spec.cv_folds}-fold cross-validation needs at least {spec.cv_folds} "
                f"(better {10 * spec.cv_folds}). Add data or lower `ml.cvFolds` in {spec.where}."
            )
    elif len(frame) < 2 * spec.cv_folds:
        raise LabelError(
            f"Product '{spec.product}' has {len(frame)} row(s); {spec.cv_folds}-fold cross-validation "
            f"needs at least {2 * spec.cv_folds}."
        )
    for column in features.columns:
        if frame[column].isna().all():
            raise FeatureError(
                f"Product '{spec.product}': feature column '{column}' is null in every row; drop it or "
                f"add it to `ml.excludeColumns` in {spec.where}."
            )
    X = FrameCaster(features.numeric, features.categorical, spec.product).fit(frame).transform(frame)
    X = X.reset_index(drop=True)
    n_available = len(X)
    if spec.max_training_rows is not None and len(X) > spec.max_training_rows:
        keep = stratified_subsample(label.y, spec.max_training_rows, spec.seed, stratify=spec.task == Task.CLASSIFICATION)
        X = X.iloc[keep].reset_index(drop=True)
        label = LabelEncoding(label.y[keep], label.negative, label.positive)
    return TrainingData(X=X, label=label, features=features, n_rows_available=n_available)


def stratified_subsample(y: NDArray[Any], n: int, seed: int, *, stratify: bool = True) -> NDArray[np.intp]:
    """Indices (sorted) of ``n`` rows keeping the class balance of ``y``."""
    index = np.arange(len(y))
    if n >= len(y):
        return index
    keep, _ = train_test_split(index, train_size=n, random_state=seed, stratify=y if stratify else None)
    return np.sort(keep)
