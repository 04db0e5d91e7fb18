from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from ml.errors import FeatureError, LabelError, SpecError
from ml.spec import LearningSpec, Task, ThresholdPolicy, column_kind, feature_set, resolve_features

CONTRACT = "data_products/retention/churn_features.yaml"


def make_spec(**kwargs: object) -> LearningSpec:
    base: dict[str, object] = {"product": "churn_features", "id_column": "customer_id", "label_column": "churned"}
    return LearningSpec(**{**base, **kwargs})  # type: ignore[arg-type]


def test_defaults_resolve_metric_per_task() -> None:
    assert make_spec().primary_metric == "roc_auc"
    assert make_spec(task="regression").primary_metric == "rmse"
    assert make_spec(task="regression").task is Task.REGRESSION


def test_no_label_column_names_product_and_contract() -> None:
    with pytest.raises(LabelError) as info:
        make_spec(label_column="", contract_path=CONTRACT)
    assert str(info.value) == (
        "Product 'churn_features' declares no label column: add `ml.labelColumn` to "
        "data_products/retention/churn_features.yaml."
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "classifcation"}, "Did you mean 'classification'"),
        ({"primary_metric": "rmse"}, "is for regression"),
        ({"cv_folds": 1}, "expected an integer >= 2"),
        ({"champion_margin": -0.1}, "expected a number >= 0"),
        ({"max_training_rows": 10}, "expected at least 50"),
        ({"label_column": "customer_id"}, "must differ"),
    ],
)
def test_invalid_spec(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        make_spec(**kwargs)


def test_threshold_policy_validation() -> None:
    with pytest.raises(SpecError, match="at most one"):
        ThresholdPolicy(recall_at_least=0.8, precision_at_least=0.9)
    with pytest.raises(SpecError, match=r"in \(0, 1\]"):
        ThresholdPolicy(recall_at_least=1.5)
    with pytest.raises(SpecError, match="Did you mean 'recallAtLeast'"):
        ThresholdPolicy.from_dict({"recalAtLeast": 0.8})
    assert ThresholdPolicy.from_dict({"maximize": "f1"}) == ThresholdPolicy()
    assert ThresholdPolicy().describe() == "max_f1"


FRAME = pd.DataFrame(
    {
        "customer_id": ["a", "b"],
        "seats": [1, 2],
        "is_active": [True, False],
        "plan": pd.Series(["basic", "pro"], dtype="str"),
        "country": pd.Series(["US", "GB"], dtype="category"),
        "revenue": [1.5, None],
        "signed_up_at": pd.to_datetime(["2024-01-01", "2024-02-01"]),
        "churned": [True, False],
    }
)


def test_resolve_features_all_but_id_label_and_excluded() -> None:
    numeric, categorical = resolve_features(make_spec(exclude_columns=("signed_up_at",)), FRAME)
    assert numeric == ("seats", "is_active", "revenue")
    assert categorical == ("plan", "country")


def test_resolve_features_from_arrow_schema_and_dtype_mapping() -> None:
    schema = pa.schema([("customer_id", pa.string()), ("seats", pa.int32()), ("plan", pa.dictionary(pa.int8(), pa.string())),
                        ("amount", pa.decimal128(10, 2)), ("churned", pa.bool_())])
    assert resolve_features(make_spec(), schema) == (("seats", "amount"), ("plan",))
    assert resolve_features(make_spec(), {"customer_id": "object", "x": "float64", "churned": "bool"}) == (("x",), ())


def test_feature_set_records_dtypes() -> None:
    fs = feature_set(make_spec(feature_columns=("seats", "plan")), FRAME)
    assert fs.columns == ("seats", "plan")
    assert fs.dtypes == {"seats": "int64", "plan": "str"}


def test_timestamp_feature_is_rejected_with_advice() -> None:
    with pytest.raises(FeatureError, match="'signed_up_at' has type datetime64.*excludeColumns"):
        resolve_features(make_spec(), FRAME)


def test_missing_label_column_suggests_closest() -> None:
    with pytest.raises(LabelError, match="no column 'churnd'.*Did you mean 'churned'"):
        resolve_features(make_spec(label_column="churnd"), FRAME)


def test_missing_feature_column_suggests_closest() -> None:
    with pytest.raises(FeatureError, match="no feature column 'seat'.*Did you mean 'seats'"):
        resolve_features(make_spec(feature_columns=("seat",)), FRAME)


def test_unknown_excluded_column() -> None:
    with pytest.raises(FeatureError, match="excludeColumns.*Did you mean 'signed_up_at'"):
        resolve_features(make_spec(exclude_columns=("signed_up",)), FRAME)


def test_label_cannot_be_a_feature() -> None:
    with pytest.raises(FeatureError, match="is the label"):
        resolve_features(make_spec(feature_columns=("seats", "churned")), FRAME)


def test_missing_id_column() -> None:
    with pytest.raises(FeatureError, match="id declared by `ml.idColumn`"):
        resolve_features(make_spec(id_column="customerid"), FRAME)


def test_column_kind_inspects_object_columns() -> None:
    assert column_kind(pd.Series([1, None], dtype=object).dtype, pd.Series([1.5, None], dtype=object)) == "numeric"
    assert column_kind(pd.Series(["a"], dtype=object).dtype, pd.Series(["a"], dtype=object)) == "categorical"
    assert column_kind(pa.timestamp("us")) == "unsupported"


def test_task_values_are_the_contracts() -> None:
    from typing import get_args

    from datamesh.contracts import MLSection
    from ml.spec import DEFAULT_TASK

    assert {t.value for t in Task} == set(get_args(MLSection.model_fields["task"].annotation))
    assert DEFAULT_TASK == MLSection.model_fields["task"].default and make_spec().task is DEFAULT_TASK


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ({"recallAtLeast": 0.8}, ThresholdPolicy(recall_at_least=0.8)),
        ({"precisionAtLeast": 0.9}, ThresholdPolicy(precision_at_least=0.9)),
        ({"maximize": "f1"}, ThresholdPolicy()),
        ({}, ThresholdPolicy()),
    ],
)
def test_threshold_policy_from_the_contract(declared: dict[str, object], expected: ThresholdPolicy) -> None:
    from datamesh.contracts import ThresholdPolicy as ContractThresholdPolicy

    contract_policy = ContractThresholdPolicy.model_validate(declared)
    assert ThresholdPolicy.from_contract(contract_policy) == expected
    assert ThresholdPolicy.from_dict(declared) == expected
    assert make_spec(threshold_policy=contract_policy).threshold_policy == expected


def test_invalid_contract_threshold_policy_names_the_contract() -> None:
    from datamesh.contracts import ThresholdPolicy as ContractThresholdPolicy

    both = ContractThresholdPolicy.model_validate({"recallAtLeast": 0.8, "precisionAtLeast": 0.9})
    with pytest.raises(SpecError, match=f"`ml.thresholdPolicy` in {CONTRACT}: Threshold policy sets .*at most one"):
        ThresholdPolicy.from_contract(both, where=CONTRACT)
    with pytest.raises(SpecError, match=r"recall_at_least=1.5: expected a number in \(0, 1\]"):
        ThresholdPolicy.from_contract(ContractThresholdPolicy.model_validate({"recallAtLeast": 1.5}), where=CONTRACT)


def test_unknown_threshold_policy_key_lists_the_contract_spelling() -> None:
    with pytest.raises(SpecError) as info:
        ThresholdPolicy.from_dict({"recall": 0.8}, where=CONTRACT)
    assert str(info.value).startswith(
        f"Unknown key 'recall' in {CONTRACT}; expected one of recallAtLeast, precisionAtLeast, fixed, maximize: f1."
    )


def test_column_kind_is_an_enum_with_the_old_values() -> None:
    from ml.spec import ColumnKind

    assert column_kind(pa.int64()) is ColumnKind.NUMERIC and column_kind(pa.int64()) == "numeric"
    assert [k.value for k in ColumnKind] == ["numeric", "categorical", "unsupported"]
