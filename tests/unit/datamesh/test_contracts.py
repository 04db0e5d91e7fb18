from __future__ import annotations

from pathlib import Path

import pytest

from datamesh.contracts import ContractRegistry, RuleType, load_contract, to_odcs
from datamesh.errors import ContractError, UnknownProductError
from datamesh.paths import CONTRACTS_DIR
from tests.conftest import WIDGETS_CONTRACT


def write(tmp_path: Path, text: str, domain: str = "shop", name: str = "widgets") -> Path:
    path = tmp_path / domain / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_repository_contracts_load() -> None:
    registry = ContractRegistry.from_dir(CONTRACTS_DIR)
    assert "customers" in registry
    assert registry.get("crm.customers").domain == "crm"


def test_rules_are_derived_from_columns(contracts_dir: Path) -> None:
    c = ContractRegistry.from_dir(contracts_dir).get("widgets")
    keys = {r.key: r for r in c.rules()}
    assert keys["widget_id_not_null"].rule is RuleType.NOT_NULL
    assert keys["widget_id_unique"].rule is RuleType.UNIQUE
    assert keys["color_accepted_values"].values == ("red", "green", "blue")
    assert keys["price_range"].max == 1000
    assert "primary_key_unique" not in keys  # single-column key already unique
    orders = ContractRegistry.from_dir(contracts_dir).get("widget_orders")
    assert {r.key for r in orders.rules()} >= {"primary_key_unique"}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  team: shop-team", "  teem: shop-team", "unknown field 'owner.teem'. Did you mean 'team'?"),
        ("    type: double", "    type: float", "field 'columns[price].type'"),
        ("primaryKey: [widget_id]", "primaryKey: [widgetid]", "Did you mean 'widget_id'?"),
        ("id: widgets", "id: ../widgets", "Invalid product id '../widgets'"),
        ("id: widgets", "id: \"widgets; drop table x\"", "Invalid product id"),
        ("domain: shop", "domain: Shop", "Invalid domain 'Shop'"),
        ("version: 1.0.0", "version: one", "semantic"),
        ("    mustBe: 0\n", "\n", "needs one of mustBe"),
        ("        values: [red, green, blue]", "        values: []", "non-empty 'values'"),
        ("kind: DataProduct", "kind: Table", "field 'kind'"),
        ("  - name: price\n    type: double", "  - name: color\n    type: double", "duplicate column names"),
    ],
)
def test_bad_contracts_name_file_and_field(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in WIDGETS_CONTRACT
    path = write(tmp_path, WIDGETS_CONTRACT.replace(old, new, 1))
    with pytest.raises(ContractError) as info:
        load_contract(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_not_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "id: [unclosed")
    with pytest.raises(ContractError, match="not valid YAML"):
        load_contract(path)


def test_domain_must_match_folder(tmp_path: Path) -> None:
    write(tmp_path, WIDGETS_CONTRACT, domain="other")
    with pytest.raises(ContractError, match="Move the file to data_products/shop/"):
        ContractRegistry.from_dir(tmp_path)


def test_unknown_lineage_input(tmp_path: Path) -> None:
    write(tmp_path, WIDGETS_CONTRACT + "lineage:\n  inputs: [widgetz]\n")
    with pytest.raises(ContractError, match="lineage input 'widgetz'"):
        ContractRegistry.from_dir(tmp_path)


def test_duplicate_product_ids(tmp_path: Path) -> None:
    write(tmp_path, WIDGETS_CONTRACT, name="a")
    write(tmp_path, WIDGETS_CONTRACT, name="b")
    with pytest.raises(ContractError, match="declared twice"):
        ContractRegistry.from_dir(tmp_path)


def test_unknown_product_suggests(contracts_dir: Path) -> None:
    registry = ContractRegistry.from_dir(contracts_dir)
    with pytest.raises(UnknownProductError, match="Did you mean 'widgets'"):
        registry.get("widgetz")


def test_odcs_export(contracts_dir: Path) -> None:
    doc = to_odcs(ContractRegistry.from_dir(contracts_dir).get("widgets"))
    assert doc["apiVersion"].startswith("v3")
    assert doc["kind"] == "DataContract"
    props = {p["name"]: p for p in doc["schema"][0]["properties"]}
    assert props["widget_id"]["primaryKey"] is True
    assert props["color"]["quality"][0]["arguments"]["validValues"] == ["red", "green", "blue"]
    assert any(q.get("type") == "sql" for q in doc["schema"][0]["quality"])
