from __future__ import annotations

from datamesh.contracts import ContractRegistry
from datamesh.dbt_sources import SOURCES_FILE, render_sources
from datamesh.paths import CONTRACTS_DIR, DBT_PROJECT_DIR


def test_committed_dbt_sources_match_contracts() -> None:
    """The generated sources file is up to date (run `mesh dbt sources` if this fails)."""
    expected = render_sources(ContractRegistry.from_dir(CONTRACTS_DIR), DBT_PROJECT_DIR)
    assert (DBT_PROJECT_DIR / SOURCES_FILE).read_text() == expected


def test_dbt_built_products_are_not_sources() -> None:
    text = render_sources(ContractRegistry.from_dir(CONTRACTS_DIR), DBT_PROJECT_DIR)
    assert "name: churn_features\n" not in text
    assert "name: customers" in text
