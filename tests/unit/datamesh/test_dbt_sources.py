from __future__ import annotations

import copy

import yaml

from datamesh.contracts import ContractRegistry, parse_contract
from datamesh.dbt_sources import SOURCES_FILE, contract_checked_tests, render_sources
from datamesh.paths import CONTRACTS_DIR, DBT_PROJECT_DIR

CONTRACTS = ContractRegistry.from_dir(CONTRACTS_DIR)


def test_committed_dbt_sources_match_contracts() -> None:
    """The generated sources file is up to date (run `mesh dbt sources` if this fails)."""
    expected = render_sources(ContractRegistry.from_dir(CONTRACTS_DIR), DBT_PROJECT_DIR)
    assert (DBT_PROJECT_DIR / SOURCES_FILE).read_text() == expected


def test_dbt_built_products_are_not_sources() -> None:
    text = render_sources(ContractRegistry.from_dir(CONTRACTS_DIR), DBT_PROJECT_DIR)
    assert "name: churn_features\n" not in text
    assert "name: customers" in text


def _tables() -> dict[str, dict]:
    rendered = yaml.safe_load(render_sources(CONTRACTS, DBT_PROJECT_DIR))
    return {table["name"]: table for source in rendered["sources"] for table in source["tables"]}


def test_sources_declare_every_contract_column_with_its_type() -> None:
    for product_id, table in _tables().items():
        contract = CONTRACTS.get(product_id)
        declared = [(column["name"], column["data_type"]) for column in table["columns"]]
        assert declared == [(column.name, column.type.duckdb) for column in contract.columns], product_id


def test_sources_leave_the_checks_to_the_contracts() -> None:
    """Contracts check source products at publish (Dagster shows those checks): dbt does not run them again."""
    for product_id, table in _tables().items():
        assert not {"data_tests", "tests"} & set(table), product_id
        for column in table["columns"]:
            assert not {"data_tests", "tests"} & set(column), f"{product_id}.{column['name']}"


def test_contract_checked_tests_follow_the_contract_rules() -> None:
    covered = contract_checked_tests(CONTRACTS.get("payments"))
    assert covered["payment_id"] == {"not_null", "unique"}  # required, unique
    assert covered["status"] == {"not_null", "accepted_values"}
    assert covered["failure_reason"] == {"accepted_values"}  # optional column
    assert covered["attempt_number"] == {"not_null"}  # a range rule has no dbt generic twin
    assert covered["invoice_id"] == {"not_null"}  # unique only together with attempt_number


def test_a_one_column_primary_key_is_unique_even_without_the_column_flag() -> None:
    contract = CONTRACTS.get("customers")
    raw = yaml.safe_load(contract.source_path.read_text())
    edited = copy.deepcopy(raw)
    edited["columns"][0]["unique"] = False
    covered = contract_checked_tests(parse_contract(edited, contract.source_path))
    assert covered["customer_id"] == {"not_null", "unique"}
