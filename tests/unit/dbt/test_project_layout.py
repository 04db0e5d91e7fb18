"""The dbt project follows the house layout (jaffle-shop style), and leaves the contracts' checks to them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from datamesh.contracts import ContractRegistry
from datamesh.dbt_sources import contract_checked_tests
from datamesh.paths import CONTRACTS_DIR, DBT_PROJECT_DIR

MODELS = DBT_PROJECT_DIR / "models"
OWN_MODELS = sorted(p for p in MODELS.rglob("*.sql") if "sources" not in p.parts)
CONTRACTS = ContractRegistry.from_dir(CONTRACTS_DIR)


def _entry(properties: dict[str, Any], name: str) -> dict[str, Any]:
    (entry,) = [m for m in properties["models"] if m["name"] == name]
    return entry


def _documented(model: Path) -> dict:
    return _entry(yaml.safe_load(model.with_suffix(".yml").read_text()), model.stem)


def _test_names(column: dict[str, Any]) -> set[str]:
    return {t if isinstance(t, str) else next(iter(t)) for t in column.get("data_tests", [])}


_SOURCE = re.compile(r"source\(\s*'[a-z_]+'\s*,\s*'([a-z_]+)'\s*\)")
_PASSED_THROUGH = re.compile(r"^\s*([a-z_]+)(?:\s+as\s+([a-z_]+))?,?\s*$", re.MULTILINE)


def repeated_contract_checks(name: str, sql: str, properties: dict[str, Any], contracts: ContractRegistry) -> list[str]:
    """dbt tests of model ``name`` that its product's contract, or its source's, already runs at publish.

    A mart named like a contract is that product: every column test its contract
    covers is repeated. A model over a source passes columns through unchanged
    (``column`` or ``column as new_name``): their tests are repeated too, its grain
    key's ``unique`` + ``not_null`` included (decision 0041: the source's contract
    ran them at publish on exactly the files the staging view reads).
    """
    if name in contracts:
        contract = contracts.get(name)
        renamed = {column: column for column in contract.column_names}
    elif (source := _SOURCE.search(sql)) is not None and source.group(1) in contracts:
        contract = contracts.get(source.group(1))
        renamed = {
            alias or column: column
            for column, alias in _PASSED_THROUGH.findall(sql)
            if column in contract.column_names
        }
    else:
        return []
    covered = contract_checked_tests(contract)
    found = []
    for column in _entry(properties, name).get("columns", []):
        upstream = renamed.get(column["name"])
        repeated = _test_names(column) & covered.get(upstream, set())
        found += [f"{name}.{column['name']}: {test} (checked by the contract of '{contract.id}')"
                  for test in sorted(repeated)]
    return found


@pytest.mark.parametrize("model", OWN_MODELS, ids=lambda p: p.stem)
def test_every_model_has_a_yml_beside_it_stating_its_grain(model: Path) -> None:
    assert model.with_suffix(".yml").exists(), f"{model.name} needs {model.with_suffix('.yml').name}"
    assert re.search(r"one row per", _documented(model)["description"], re.IGNORECASE)


@pytest.mark.parametrize("model", OWN_MODELS, ids=lambda p: p.stem)
def test_model_names_follow_their_layer(model: Path) -> None:
    layer = model.relative_to(MODELS).parts[0]
    if layer == "staging":
        source = model.parent.name
        assert re.fullmatch(rf"stg_{source}__[a-z_]+s", model.stem)
    elif layer == "intermediate":
        assert re.fullmatch(r"int_[a-z_]+s_[a-z]+ed(_[a-z_]+)?", model.stem)
    else:
        assert layer == "marts"


@pytest.mark.parametrize("model", OWN_MODELS, ids=lambda p: p.stem)
def test_models_end_with_select_from_final_or_renamed(model: Path) -> None:
    code = re.sub(r"--[^\n]*", "", model.read_text()).strip()
    assert re.search(r"select \* from (final|renamed)(\s+order by [a-z_]+)?$", code)


def _passes_the_key_through(sql: str, key: str) -> bool:
    """The model selects its source's key unchanged (``key`` or ``key as key``) from that one source, with
    no join, filter, grouping, distinct or union that could drop, repeat or invent rows."""
    selected = {alias or column for column, alias in _PASSED_THROUGH.findall(sql) if column == key}
    changes_rows = re.search(r"\b(join|where|qualify|group\s+by|distinct|union|having|limit)\b", sql, re.IGNORECASE)
    return key in selected and changes_rows is None and len(_SOURCE.findall(sql)) == 1


def test_a_staging_key_counts_as_checked_only_when_passed_through_unchanged() -> None:
    assert _passes_the_key_through(_STAGING_SQL, "payment_id")
    joined = _STAGING_SQL.replace("from source", "from source join other using (customer_id)")
    assert not _passes_the_key_through(joined, "payment_id")
    filtered = _STAGING_SQL.replace("from source", "from source where status <> 'failed'")
    assert not _passes_the_key_through(filtered, "payment_id")
    computed = _STAGING_SQL.replace("        payment_id,", "        coalesce(payment_id, 0) as payment_id,")
    assert not _passes_the_key_through(computed, "payment_id")


@pytest.mark.parametrize("model", OWN_MODELS, ids=lambda p: p.stem)
def test_primary_keys_are_tested_unique_and_not_null(model: Path) -> None:
    """By dbt, or by a contract at publish: the product's for a mart that is one, the source product's
    for a staging model whose key is the source's primary key, passed through."""
    first = _documented(model)["columns"][0]
    sql = re.sub(r"--[^\n]*", "", model.read_text())
    source = _SOURCE.search(sql)
    owner = model.stem if model.stem in CONTRACTS else source.group(1) if source and source.group(1) in CONTRACTS \
        and _passes_the_key_through(sql, first["name"]) else None
    if owner is not None and CONTRACTS.get(owner).primary_key == (first["name"],):
        assert {"unique", "not_null"} <= contract_checked_tests(CONTRACTS.get(owner))[first["name"]]
    elif model.stem in CONTRACTS:
        raise AssertionError(f"{model.stem}: the contract's primary key comes first")
    else:
        assert {"unique", "not_null"} <= _test_names(first), f"{model.stem}.{first['name']}"


@pytest.mark.parametrize("model", OWN_MODELS, ids=lambda p: p.stem)
def test_models_do_not_repeat_the_checks_of_contracts(model: Path) -> None:
    """Contracts run these checks at publish and Dagster shows them on the product: dbt must not run them again."""
    properties = yaml.safe_load(model.with_suffix(".yml").read_text())
    assert repeated_contract_checks(model.stem, model.read_text(), properties, CONTRACTS) == []


_STAGING_SQL = """
with source as (select * from {{ source('billing', 'payments') }}),
renamed as (
    select
        payment_id,
        customer_id,
        status as payment_status,
        status = 'failed' as is_failed
    from source
)
select * from renamed
"""


def _properties(name: str, columns: dict[str, list[Any]]) -> dict[str, Any]:
    return {"models": [{"name": name, "columns": [{"name": c, "data_tests": t} for c, t in columns.items()]}]}


def test_repeated_checks_are_found_through_renames() -> None:
    accepted = {"accepted_values": {"arguments": {"values": ["succeeded", "failed", "refunded"]}}}
    properties = _properties("stg_billing__payments", {
        "payment_id": ["unique", "not_null"],  # the source's primary key: its contract checks both
        "customer_id": ["not_null", {"relationships": {}}],
        "payment_status": [accepted],
        "is_failed": ["not_null"],  # derived: not a contract column
    })
    assert repeated_contract_checks("stg_billing__payments", _STAGING_SQL, properties, CONTRACTS) == [
        "stg_billing__payments.payment_id: not_null (checked by the contract of 'payments')",
        "stg_billing__payments.payment_id: unique (checked by the contract of 'payments')",
        "stg_billing__payments.customer_id: not_null (checked by the contract of 'payments')",
        "stg_billing__payments.payment_status: accepted_values (checked by the contract of 'payments')",
    ]


def test_repeated_checks_of_a_product_mart_include_its_key() -> None:
    properties = _properties("churn_features", {"customer_id": ["unique", "not_null", {"relationships": {}}]})
    assert repeated_contract_checks("churn_features", "select 1", properties, CONTRACTS) == [
        "churn_features.customer_id: not_null (checked by the contract of 'churn_features')",
        "churn_features.customer_id: unique (checked by the contract of 'churn_features')",
    ]


def test_models_over_no_product_are_not_checked() -> None:
    properties = _properties("int_things_aggregated", {"customer_id": ["unique", "not_null"]})
    assert repeated_contract_checks("int_things_aggregated", "select 1", properties, CONTRACTS) == []
