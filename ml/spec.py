"""What to learn from a data product: the :class:`LearningSpec`.

A spec names the id and label columns, which columns are features, the task,
the metric that ranks candidates, the threshold policy and the champion
margin. It is built from the ``ml:`` block of a product contract
(:func:`ml.products.learning_spec`); ``contract_path`` is named in errors.
The contract declares the vocabulary (:class:`datamesh.contracts.MLSection`):
:class:`Task` holds the values of its ``task`` and :class:`ThresholdPolicy`
is its ``thresholdPolicy`` resolved for training.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pandas as pd
import pyarrow as pa

from datamesh.contracts import MLSection
from datamesh.contracts import ThresholdPolicy as ContractThresholdPolicy
from datamesh.errors import did_you_mean
from ml.choices import Task  # noqa: F401 - re-exported; lives in a module without scikit-learn
from ml.errors import FeatureError, LabelError, SpecError
from ml.metrics import DEFAULT_MULTICLASS_METRIC, MULTICLASS_METRICS, metric_info

__all__ = [
    "DEFAULT_TASK",
    "ColumnKind",
    "FeatureSet",
    "LearningSpec",
    "Task",
    "ThresholdPolicy",
    "column_kind",
    "feature_set",
    "resolve_features",
]


DEFAULT_TASK = Task(MLSection.model_fields["task"].default)
"""The task of a spec that names none: the contract's default for ``ml.task``."""

_DEFAULT_METRIC = {Task.CLASSIFICATION: "roc_auc", Task.REGRESSION: "rmse"}


class ColumnKind(StrEnum):
    """How a model can take a column (see :func:`column_kind`)."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    UNSUPPORTED = "unsupported"


def _contract_policy_keys() -> dict[str, str]:
    """Every spelling of the contract's threshold-policy goals (alias and field name) -> field name."""
    keys: dict[str, str] = {}
    for name, info in ContractThresholdPolicy.model_fields.items():
        if name != "maximize":
            keys[info.alias or name] = name
            keys[name] = name
    return keys


_POLICY_KEYS = {**_contract_policy_keys(), "fixed": "fixed"}
_POLICY_SPELLING = ", ".join(k for k in _POLICY_KEYS if "_" not in k)  # as in contracts: recallAtLeast, ...
_MAXIMIZE_KEYS = ("maximize", "maximise")


@dataclass(frozen=True)
class ThresholdPolicy:
    """How the decision threshold is chosen from the precision-recall curve.

    The contract's ``ml.thresholdPolicy`` (:class:`datamesh.contracts.ThresholdPolicy`)
    resolved for training: :meth:`from_contract` builds it, then it is
    validated (at most one goal, each in (0, 1]). ``fixed``, a constant
    threshold, can be set from code only. With no field set the threshold
    maximises F1. ``ThresholdPolicy(recall_at_least=0.8)`` takes the highest
    threshold that still finds 80 % of the positives.
    """

    recall_at_least: float | None = None
    precision_at_least: float | None = None
    fixed: float | None = None

    def __post_init__(self) -> None:
        chosen = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        if len(chosen) > 1:
            raise SpecError(
                f"Threshold policy sets {sorted(chosen)}; set at most one of "
                "recall_at_least, precision_at_least, fixed (none = maximise F1)."
            )
        for key, value in chosen.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
                raise SpecError(f"Threshold policy {key}={value!r}: expected a number in (0, 1].")

    def describe(self) -> str:
        """Short human form: ``recall>=0.8``, ``precision>=0.9``, ``fixed=0.5``, ``max_f1``."""
        if self.recall_at_least is not None:
            return f"recall>={self.recall_at_least}"
        if self.precision_at_least is not None:
            return f"precision>={self.precision_at_least}"
        if self.fixed is not None:
            return f"fixed={self.fixed}"
        return "max_f1"

    def to_dict(self) -> dict[str, float]:
        """The fields that are set (``{}`` for maximise F1)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_contract(
        cls, policy: ContractThresholdPolicy, *, where: str = "the threshold policy"
    ) -> ThresholdPolicy:
        """The policy a contract's ``ml.thresholdPolicy`` declares (``maximize: f1`` = no goal)."""
        try:
            return cls(recall_at_least=policy.recall_at_least, precision_at_least=policy.precision_at_least)
        except SpecError as exc:
            raise SpecError(f"`ml.thresholdPolicy` in {where}: {exc}") from None

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any] | ContractThresholdPolicy | None, *, where: str = "the threshold policy"
    ) -> ThresholdPolicy:
        """Build from ``{recall_at_least: 0.8}``, the contract's ``{recallAtLeast: 0.8}`` or
        the contract's parsed policy; ``{maximize: f1}`` or an empty mapping means maximise F1."""
        if isinstance(data, ContractThresholdPolicy):
            return cls.from_contract(data, where=where)
        if not data:
            return cls()
        kwargs: dict[str, float] = {}
        for key, value in data.items():
            if key in _MAXIMIZE_KEYS and str(value).lower() == "f1":
                continue
            if key not in _POLICY_KEYS:
                raise SpecError(
                    f"Unknown key '{key}' in {where}; expected one of {_POLICY_SPELLING}, maximize: f1."
                    + did_you_mean(key, _POLICY_KEYS)
                )
            kwargs[_POLICY_KEYS[key]] = value
        return cls(**kwargs)


@dataclass(frozen=True)
class LearningSpec:
    """What to learn from one product and how to judge it.

    ``feature_columns=None`` means every column except the id, the label and
    ``exclude_columns``. ``primary_metric=None`` means ``roc_auc`` for
    classification, ``f1_macro`` for a multi-class label and ``rmse`` for
    regression. ``positive_label`` (the contract's ``ml.positiveLabel``) is
    needed only when a two-class label is neither boolean nor 0/1.
    ``multiclass`` is set by training when the label turns out to have 3+
    classes (:meth:`as_multiclass`); ``metric_is_default`` records whether
    the metric was chosen by default (so that switch may change it).
    """

    product: str
    id_column: str
    label_column: str
    feature_columns: tuple[str, ...] | None = None
    exclude_columns: tuple[str, ...] = ()
    task: Task = DEFAULT_TASK
    primary_metric: str | None = None
    threshold_policy: ThresholdPolicy = field(default_factory=ThresholdPolicy)
    positive_label: str | int | bool | None = None
    champion_margin: float = 0.005
    cv_folds: int = 5
    seed: int = 42
    max_training_rows: int | None = None
    contract_path: str | None = None
    multiclass: bool = False
    metric_is_default: bool | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        where = self.where
        if not self.label_column:
            raise LabelError(
                f"Product '{self.product}' declares no label column: add `ml.labelColumn` to {where}."
            )
        if not self.id_column:
            raise SpecError(
                f"Product '{self.product}' declares no id column: add `ml.idColumn` to {where}."
            )
        if self.id_column == self.label_column:
            raise SpecError(
                f"Product '{self.product}': id column and label column are both "
                f"'{self.label_column}' in {where}; they must differ."
            )
        try:
            task = Task(str(self.task))
        except ValueError:
            raise SpecError(
                f"Product '{self.product}': unknown task '{self.task}' in {where}; expected one of "
                f"{[t.value for t in Task]}." + did_you_mean(str(self.task), [t.value for t in Task])
            ) from None
        object.__setattr__(self, "task", task)
        multiclass = bool(self.multiclass) and task == Task.CLASSIFICATION
        object.__setattr__(self, "multiclass", multiclass)
        default = DEFAULT_MULTICLASS_METRIC if multiclass else _DEFAULT_METRIC[task]
        if self.metric_is_default is None or self.primary_metric not in (None, default):
            object.__setattr__(self, "metric_is_default", self.primary_metric is None)
        metric = self.primary_metric or default
        try:
            metric = metric_info(metric, task).name
        except SpecError as exc:
            raise SpecError(f"Product '{self.product}', `ml.primaryMetric` in {where}: {exc}") from None
        if multiclass and metric not in MULTICLASS_METRICS:
            raise SpecError(
                f"Product '{self.product}': `ml.primaryMetric` {metric!r} in {where} is for two-class labels, but "
                f"label '{self.label_column}' has 3 or more classes; use one of {sorted(MULTICLASS_METRICS)} "
                f"(or remove it: the default for multi-class labels is {DEFAULT_MULTICLASS_METRIC})."
            )
        object.__setattr__(self, "primary_metric", metric)
        if self.feature_columns is not None:
            object.__setattr__(self, "feature_columns", tuple(self.feature_columns))
        object.__setattr__(self, "exclude_columns", tuple(self.exclude_columns))
        if not isinstance(self.threshold_policy, ThresholdPolicy):
            object.__setattr__(
                self, "threshold_policy", ThresholdPolicy.from_dict(self.threshold_policy, where=where)
            )
        if isinstance(self.cv_folds, bool) or not isinstance(self.cv_folds, int) or self.cv_folds < 2:
            raise SpecError(
                f"Product '{self.product}': cv_folds={self.cv_folds!r} in {where}; expected an integer >= 2."
            )
        if not isinstance(self.champion_margin, int | float) or not (
            math.isfinite(self.champion_margin) and self.champion_margin >= 0
        ):
            raise SpecError(
                f"Product '{self.product}': champion_margin={self.champion_margin!r} in {where}; "
                "expected a number >= 0."
            )
        if self.max_training_rows is not None and self.max_training_rows < 10 * self.cv_folds:
            raise SpecError(
                f"Product '{self.product}': max_training_rows={self.max_training_rows} in {where}; "
                f"expected at least {10 * self.cv_folds} (10 rows per fold) or null for all rows."
            )

    def as_multiclass(self) -> LearningSpec:
        """This spec for a label of 3+ classes: decisions by argmax, the default metric
        :data:`~ml.metrics.DEFAULT_MULTICLASS_METRIC` unless the contract named one."""
        if self.multiclass:
            return self
        metric = None if self.metric_is_default else self.primary_metric
        return dataclasses.replace(self, multiclass=True, primary_metric=metric, metric_is_default=None)

    @property
    def where(self) -> str:
        """Where the spec was declared, for error messages."""
        return self.contract_path or f"the `ml` block of product '{self.product}'"

    @property
    def metric(self) -> str:
        """The resolved primary metric (never None after construction)."""
        assert self.primary_metric is not None
        return self.primary_metric


@dataclass(frozen=True)
class FeatureSet:
    """Resolved feature columns: numeric (incl. boolean) and categorical, in order."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    dtypes: Mapping[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> tuple[str, ...]:
        """All feature columns, numeric first."""
        return self.numeric + self.categorical


Columns = pd.DataFrame | pa.Schema | Mapping[str, Any]


def column_kind(dtype: Any, values: pd.Series | None = None) -> ColumnKind:
    """:class:`ColumnKind` (numeric, categorical or unsupported) of a pandas/numpy
    dtype or a pyarrow type. Object columns are inspected when ``values`` is
    given (decimals and Python numbers are numeric, strings categorical)."""
    if isinstance(dtype, pa.DataType):
        return _arrow_kind(dtype)
    if isinstance(dtype, pd.ArrowDtype):
        return _arrow_kind(dtype.pyarrow_dtype)
    if isinstance(dtype, pd.CategoricalDtype):
        return ColumnKind.CATEGORICAL
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return ColumnKind.NUMERIC
    if isinstance(dtype, pd.StringDtype):
        return ColumnKind.CATEGORICAL
    if pd.api.types.is_object_dtype(dtype):
        if values is None:
            return ColumnKind.CATEGORICAL
        inferred = pd.api.types.infer_dtype(values, skipna=True)
        if inferred in ("boolean", "integer", "floating", "decimal", "mixed-integer-float", "empty"):
            return ColumnKind.NUMERIC
        if inferred in ("string", "mixed", "categorical", "mixed-integer"):
            return ColumnKind.CATEGORICAL
        return ColumnKind.UNSUPPORTED
    return ColumnKind.UNSUPPORTED


def _arrow_kind(t: pa.DataType) -> ColumnKind:
    if pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return ColumnKind.NUMERIC
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return ColumnKind.CATEGORICAL
    if pa.types.is_dictionary(t):
        return _arrow_kind(t.value_type)
    return ColumnKind.UNSUPPORTED


def _dtypes_of(columns: Columns) -> dict[str, tuple[Any, pd.Series | None]]:
    if isinstance(columns, pd.DataFrame):
        return {str(c): (columns[c].dtype, columns[c]) for c in columns.columns}
    if isinstance(columns, pa.Schema):
        return {f.name: (f.type, None) for f in columns}
    return {str(k): (v, None) for k, v in columns.items()}


def resolve_features(spec: LearningSpec, columns: Columns) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split the spec's feature columns into ``(numeric, categorical)``.

    ``columns`` is a DataFrame, a pyarrow schema or a mapping of column name
    to dtype. Raises :class:`LabelError` if the label column is missing and
    :class:`FeatureError` for a missing id or feature column, an unknown
    excluded column, a label or id listed as a feature, a column of an
    unsupported type (timestamps, lists...) or when no feature is left.
    """
    fs = feature_set(spec, columns)
    return fs.numeric, fs.categorical


def feature_set(spec: LearningSpec, columns: Columns) -> FeatureSet:
    """Like :func:`resolve_features`, also returning each feature's dtype as text."""
    dtypes = _dtypes_of(columns)
    names = list(dtypes)
    where = spec.where
    if spec.label_column not in dtypes:
        raise LabelError(
            f"Product '{spec.product}' has no column '{spec.label_column}' (the label declared by "
            f"`ml.labelColumn` in {where})." + did_you_mean(spec.label_column, names)
        )
    if spec.id_column not in dtypes:
        raise FeatureError(
            f"Product '{spec.product}' has no column '{spec.id_column}' (the id declared by "
            f"`ml.idColumn` in {where})." + did_you_mean(spec.id_column, names)
        )
    for column in spec.exclude_columns:
        if column not in dtypes:
            raise FeatureError(
                f"Product '{spec.product}' has no column '{column}' listed in `ml.excludeColumns` "
                f"in {where}." + did_you_mean(column, names)
            )
    if spec.feature_columns is None:
        skip = {spec.id_column, spec.label_column, *spec.exclude_columns}
        features = [c for c in names if c not in skip]
    else:
        features = list(spec.feature_columns)
        for column in features:
            if column in (spec.id_column, spec.label_column):
                role = "label" if column == spec.label_column else "id"
                raise FeatureError(
                    f"Product '{spec.product}': column '{column}' is the {role} and cannot be a feature; "
                    f"remove it from `ml.featureColumns` in {where}."
                )
            if column not in dtypes:
                raise FeatureError(
                    f"Product '{spec.product}' has no feature column '{column}' (listed in "
                    f"`ml.featureColumns` in {where})." + did_you_mean(column, names)
                )
        features = [c for c in features if c not in spec.exclude_columns]
        if len(set(features)) != len(features):
            dup = next(c for c in features if features.count(c) > 1)
            raise FeatureError(f"Product '{spec.product}': feature '{dup}' is listed twice in {where}.")
    if not features:
        raise FeatureError(
            f"Product '{spec.product}' has no feature columns left after removing the id, the label and "
            f"`ml.excludeColumns`; list features in `ml.featureColumns` in {where}."
        )
    numeric: list[str] = []
    categorical: list[str] = []
    for column in features:
        dtype, values = dtypes[column]
        kind = column_kind(dtype, values)
        if kind is ColumnKind.NUMERIC:
            numeric.append(column)
        elif kind is ColumnKind.CATEGORICAL:
            categorical.append(column)
        else:
            raise FeatureError(
                f"Product '{spec.product}': feature column '{column}' has type {dtype}, which models "
                "cannot take (expected a number, boolean or string). Derive a numeric feature from it "
                f"in the feature product (e.g. days since a timestamp) or add it to `ml.excludeColumns` "
                f"in {where}."
            )
    text = {c: str(dtypes[c][0]) for c in features}
    return FeatureSet(tuple(numeric), tuple(categorical), text)
