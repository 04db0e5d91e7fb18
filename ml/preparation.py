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
    "class_counts",
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
    """The label as 0/1 (two classes), as class indices 0..K-1 (3+ classes) or as float
    (regression), and what the codes stand for.

    ``classes`` lists the label values in code order: ``(negative, positive)`` for two
    classes, the sorted values for 3+ classes, empty for regression.
    """

    y: NDArray[Any]
    negative: Any = None
    positive: Any = None
    classes: tuple[Any, ...] = ()

    @property
    def multiclass(self) -> bool:
        """True for a label of 3 or more classes."""
        return len(self.classes) > 2

    def subset(self, rows: NDArray[np.intp]) -> LabelEncoding:
        """The encoding of the given rows only."""
        return LabelEncoding(self.y[rows], self.negative, self.positive, self.classes)


def class_counts(series: pd.Series) -> dict[str, int]:
    """Rows per label value (``str(value)`` -> count), most frequent first."""
    counts = series.value_counts(dropna=True)
    return {str(_plain(k)): int(v) for k, v in counts.items()}


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
            f"{len(series)} row(s) (class counts: {class_counts(series)}); a classifier needs examples of at "
            "least two classes. Add rows of the other class(es) (check the training window and the label "
            "definition), or use task: regression for a numeric target."
        )
    if len(classes) > 2:
        if spec.positive_label is not None:
            raise LabelError(
                f"Product '{spec.product}': `ml.positiveLabel` {spec.positive_label!r} in {where} names the "
                f"positive class of a two-class label, but label column '{column}' has {len(classes)} classes "
                f"({class_counts(series)}). Remove `ml.positiveLabel` to train a multi-class model, or derive a "
                "two-class label in the feature product."
            )
        ordered = _sorted_classes(classes)
        codes = {c: i for i, c in enumerate(ordered)}
        y = np.fromiter((codes[v] for v in series.to_numpy()), dtype=np.int64, count=len(series))
        return LabelEncoding(y, classes=tuple(_plain(c) for c in ordered))
    positive = _positive_class(series, classes, spec)
    y = (series.to_numpy() == positive).astype(np.int64)
    negative = next(c for c in classes if c != positive)
    return LabelEncoding(y, negative=_plain(negative), positive=_plain(positive),
                         classes=(_plain(negative), _plain(positive)))


def _sorted_classes(classes: list[Any]) -> list[Any]:
    try:
        return sorted(classes)
    except TypeError:  # mixed types: order by text
        return sorted(classes, key=str)


# YAML 1.1 reads an unquoted `positiveLabel: Yes` as true: match it to the label's spelling.
_YAML_BOOLEAN_WORDS = {True: {"yes", "y", "true", "on"}, False: {"no", "n", "false", "off"}}


def _positive_class(series: pd.Series, classes: list[Any], spec: LearningSpec) -> Any:
    if spec.positive_label is not None:
        given = spec.positive_label
        for c in classes:
            if c == given and isinstance(c, bool | np.bool_) == isinstance(given, bool):
                return c
        for c in classes:
            if str(c) == str(given):
                return c
        if isinstance(given, bool):
            words = [c for c in classes if isinstance(c, str) and c.strip().lower() in _YAML_BOOLEAN_WORDS[given]]
            if len(words) == 1:
                return words[0]
        raise LabelError(
            f"Product '{spec.product}': `ml.positiveLabel` {given!r} in {spec.where} is not a value of "
            f"label column '{spec.label_column}' (values seen: {sorted(map(str, classes))}, class counts: "
            f"{class_counts(series)}). Set it to one of the values seen (quote it in YAML, e.g. "
            f"positiveLabel: \"{_plain(classes[0])}\")."
            + did_you_mean(str(given), map(str, classes))
        )
    if pd.api.types.is_numeric_dtype(series.dtype) and {float(c) for c in classes} == {0.0, 1.0}:
        return next(c for c in classes if float(c) == 1.0)
    if all(isinstance(c, bool | np.bool_) for c in classes):
        return next(c for c in classes if bool(c))
    raise LabelError(
        f"Product '{spec.product}': label column '{spec.label_column}' has classes "
        f"{sorted(map(str, classes))}; say which one is positive with `ml.positiveLabel` in {spec.where} "
        f"(e.g. positiveLabel: \"{_plain(sorted(classes, key=str)[-1])}\")."
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
        counts = np.bincount(label.y, minlength=len(label.classes))
        minority = int(counts.min())
        if minority < spec.cv_folds:
            rare = [label.classes[i] for i in np.flatnonzero(counts < spec.cv_folds)]
            shown = {str(c): int(n) for c, n in zip(label.classes, counts, strict=True)}
            merge = " or merge rare classes into a broader one in the feature product" if label.multiclass else ""
            raise LabelError(
                f"Product '{spec.product}': label '{spec.label_column}' has only {minority} row(s) of class "
                f"{rare[0]!r}; {spec.cv_folds}-fold cross-validation needs at least {spec.cv_folds} rows of every "
                f"class (better {10 * spec.cv_folds}); class counts: {shown}. Add data, lower `ml.cvFolds` in "
                f"{spec.where}{merge}."
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
        label = label.subset(keep)
    return TrainingData(X=X, label=label, features=features, n_rows_available=n_available)


def stratified_subsample(y: NDArray[Any], n: int, seed: int, *, stratify: bool = True) -> NDArray[np.intp]:
    """Indices (sorted) of ``n`` rows keeping the class balance of ``y``."""
    index = np.arange(len(y))
    if n >= len(y):
        return index
    keep, _ = train_test_split(index, train_size=n, random_state=seed, stratify=y if stratify else None)
    return np.sort(keep)
