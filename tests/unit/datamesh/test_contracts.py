from __future__ import annotations

from pathlib import Path

import pytest

from datamesh.contracts import ColumnType, ContractRegistry, RuleType, load_contract, to_odcs
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
        ("    type: double", "    type: float",
         "1 column type is not valid: price is 'float' (unknown type; did you mean 'double'?). Column types are "
         "string, int32, int64, double, decimal(p,s) (precision p 1-38, scale s 0-p, e.g. decimal(12,2)), "
         "boolean, date, time, timestamp, timestamptz."),
        ("    type: double", "    type: decimal(40,2)", "price is 'decimal(40,2)' (the precision must be 1 to 38"),
        ("    type: double", "    type: decimal(4,5)", "price is 'decimal(4,5)' (the scale must be 0 to the precision"),
        ("    type: double", "    type: decimal", "price is 'decimal' (a decimal needs its precision and scale"),
        ("    type: double", "    type: string", "field 'columns[price]': rule range on column 'price' needs a number "
                                                 "column (int32, int64, double or decimal(p,s)); 'price' is string"),
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


BAD_COLUMN_NAMES = [
    "customerID", "TotalSpend", "firstName", "lastName", "EmailAddress", "signupDate", "isActive", "planType",
    "MonthlyFee", "countryCode", "zipCode", "phoneNumber", "lastLoginAt", "churnScore", "referralSource",
    "accountManager", "NPS", "supportTickets", "discountRate", "billingCycle", "createdBy",
]


def test_many_bad_column_names_are_one_line(tmp_path: Path) -> None:
    assert len(BAD_COLUMN_NAMES) == 21
    columns = "".join(f"  - name: {n}\n    type: string\n" for n in BAD_COLUMN_NAMES)
    path = write(tmp_path, WIDGETS_CONTRACT.replace("columns:\n", "columns:\n" + columns, 1))
    with pytest.raises(ContractError) as info:
        load_contract(path)
    message = str(info.value)
    assert message.count("\n") == 0
    assert message.startswith(f"Invalid contract {path}: 21 column names are not snake_case: "
                              "customerID → customer_id, TotalSpend → total_spend, firstName → first_name")
    assert "NPS → nps" in message and "createdBy → created_by" in message
    assert message.count("lowercase letters, digits and single underscores") == 1


def test_one_bad_column_name(tmp_path: Path) -> None:
    path = write(tmp_path, WIDGETS_CONTRACT.replace("  - name: price", "  - name: Price", 1))
    with pytest.raises(ContractError, match="1 column name is not snake_case: Price → price. Names are lowercase"):
        load_contract(path)


def test_other_problems_stay_one_short_line_each(tmp_path: Path) -> None:
    text = (WIDGETS_CONTRACT.replace("  team: shop-team\n", "", 1).replace("  - name: price", "  - name: Price", 1)
            .replace("    type: double", "    type: float", 1).replace("  contact: shop@example.com", "  contct: x", 1))
    path = write(tmp_path, text)
    with pytest.raises(ContractError) as info:
        load_contract(path)
    lines = str(info.value).splitlines()
    assert lines[0] == f"Invalid contract {path}: 4 problems:"
    assert lines[1] == "  - 1 column name is not snake_case: Price → price. Names are lowercase letters, digits and " \
                       "single underscores, starting with a letter, at most 63 characters."
    assert lines[2] == "  - missing required fields 'owner.team', 'owner.contact'"
    assert any("unknown field 'owner.contct'. Did you mean 'contact'?" in line for line in lines)
    assert lines[3].startswith("  - 1 column type is not valid: Price is 'float' (unknown type; did you mean 'double'?)")
    assert all(len(line) < 250 for line in lines)


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        ("id: widgets", 'id: "widgets\\n"', "product id"),
        ("domain: shop", 'domain: "shop\\n"', "domain"),
        ("  - name: price", '  - name: "price\\n"', "column name"),
    ],
)
def test_trailing_newline_in_names_is_refused(tmp_path: Path, old: str, new: str, kind: str) -> None:
    path = write(tmp_path, WIDGETS_CONTRACT.replace(old, new, 1))
    with pytest.raises(ContractError) as info:
        load_contract(path)
    message = str(info.value)
    assert str(path) in message
    assert "\\n" in message  # shown escaped, so the reader sees it
    assert ("line break" in message) or ("not snake_case" in message)
    assert "^[a-z]" not in message


@pytest.mark.parametrize(
    ("query", "fragments"),
    [
        ("select 0 from {product}; COPY (select 1) TO '/tmp/x.csv'; select 0",
         ["statement 2 of 3 is COPY", "COPY (select 1) TO '/tmp/x.csv'"]),
        ("select count(*) from {product}; select 1", ["exactly one SELECT statement", "has 2"]),
        ("copy (select * from {product}) to '/tmp/x.csv'", ["it is COPY"]),
        ("select count(*) frm {product}", ["does not parse", "{product}"]),
        ("explain analyze select count(*) from {product}", ["EXPLAIN"]),
    ],
    ids=["smuggled_copy", "two_selects", "copy_only", "syntax_error", "explain"],
)
def test_sql_rules_are_checked_at_load_time(tmp_path: Path, query: str, fragments: list[str]) -> None:
    original = "select count(*) from {product} where color = 'blue' and price = 0"
    path = write(tmp_path, WIDGETS_CONTRACT.replace(original, query.replace('"', '\\"'), 1))
    with pytest.raises(ContractError) as info:
        load_contract(path)
    message = str(info.value)
    assert str(path) in message
    assert "quality[no_free_blue_widgets]" in message
    assert "__mesh_product" not in message
    for fragment in fragments:
        assert fragment in message


def test_sql_rule_with_placeholder_in_a_subquery_loads(tmp_path: Path) -> None:
    original = "select count(*) from {product} where color = 'blue' and price = 0"
    query = "with c as (select * from {product}) select count(*) from c where price = 0"
    assert load_contract(write(tmp_path, WIDGETS_CONTRACT.replace(original, query, 1))).quality


def test_decimals_instants_and_times_load_and_export(tmp_path: Path) -> None:
    text = (WIDGETS_CONTRACT.replace("    type: double", "    type: decimal( 12, 2 )", 1)
            .replace("    type: timestamp", "    type: timestamptz", 1)
            .replace("primaryKey:", "  - name: opens_at\n    type: time\nprimaryKey:", 1))
    contract = load_contract(write(tmp_path, text))
    assert [c.type.value for c in contract.columns] == ["int64", "string", "decimal(12,2)", "timestamptz", "time"]
    assert contract.column("price").type is ColumnType.decimal(12, 2)
    assert any(r.key == "price_range" and r.rule is RuleType.RANGE for r in contract.rules())  # a decimal is a number
    assert contract.model_dump(mode="json")["columns"][2]["type"] == "decimal(12,2)"
    props = {p["name"]: p for p in to_odcs(contract)["schema"][0]["properties"]}
    assert (props["price"]["logicalType"], props["price"]["physicalType"]) == ("number", "decimal(12,2)")
    assert (props["made_at"]["logicalType"], props["made_at"]["physicalType"]) == ("date", "timestamp(6) with time zone")
    assert (props["opens_at"]["logicalType"], props["opens_at"]["physicalType"]) == ("string", "time(6)")


def test_bad_types_of_several_columns_share_one_line(tmp_path: Path) -> None:
    text = (WIDGETS_CONTRACT.replace("    type: double", "    type: money", 1)
            .replace("    type: timestamp", "    type: decimal(12, 20)", 1))
    with pytest.raises(ContractError) as info:
        load_contract(write(tmp_path, text))
    assert str(info.value).endswith(
        ": 2 column types are not valid: price is 'money' (unknown type; did you mean 'decimal(p,s)'?), made_at is "
        "'decimal(12, 20)' (the scale must be 0 to the precision (12), not 20). Column types are string, int32, int64, "
        "double, decimal(p,s) (precision p 1-38, scale s 0-p, e.g. decimal(12,2)), boolean, date, time, timestamp, "
        "timestamptz.")


def test_a_decimal_in_a_flow_mapping_must_be_quoted(tmp_path: Path) -> None:
    text = WIDGETS_CONTRACT.replace("  - name: made_at\n    type: timestamp\n", "  - {name: made_at, type: decimal(12,2)}\n")
    with pytest.raises(ContractError) as info:
        load_contract(write(tmp_path, text))
    message = str(info.value)
    assert "made_at is 'decimal(12' (in a {...} mapping a comma ends the value: quote the type" in message
    assert "unknown field" not in message  # YAML's '2)' key is not reported on its own
    quoted = text.replace("type: decimal(12,2)}", "type: 'decimal(12,2)'}")
    assert load_contract(write(tmp_path, quoted)).column("made_at").type is ColumnType.decimal(12, 2)


def test_a_table_range_rule_needs_a_number_column(tmp_path: Path) -> None:
    text = WIDGETS_CONTRACT.replace("quality:\n  - rule: row_count", "quality:\n  - rule: range\n    column: color\n"
                                    "    min: 0\n  - rule: row_count", 1)
    with pytest.raises(ContractError, match=r"rule range on column 'color' needs a number column \(int32, int64, "
                                            r"double or decimal\(p,s\)\); 'color' is string"):
        load_contract(write(tmp_path, text))


_RETENTION = "  - property: retention\n    value: 3\n    unit: versions\n"


@pytest.mark.parametrize(("sla", "expected"), [
    ("  - property: queryLatency\n    value: 2\n    unit: h\n",
     "product 'widgets' field 'slaProperties[queryLatency]': unit 'h' is not a query latency unit; queryLatency is "
     "in s or ms"),
    ("  - property: queryLatency\n    value: 0\n    unit: ms\n",
     "product 'widgets' field 'slaProperties[queryLatency]': value must be a time above 0, got 0"),
    ("  - property: freshness\n    value: 5\n    unit: ms\n",
     "product 'widgets' field 'slaProperties[freshness]': unit 'ms' is for queryLatency only"),
    ("  - property: retention\n    value: 3\n    unit: versions\n    severity: error\n",
     "field 'slaProperties[retention]': 'severity' applies to queryLatency only"),
    ("  - property: queryLatency\n    value: 2\n    unit: sec\n", "field 'slaProperties[0].unit': Input should be 'ms'"),
    ("  - property: queryLatency\n    value: 2\n    unit: s\n    severity: fatal\n",
     "field 'slaProperties[0].severity'"),
])
def test_bad_query_latency_names_product_and_field(tmp_path: Path, sla: str, expected: str) -> None:
    path = write(tmp_path, WIDGETS_CONTRACT.replace(_RETENTION, sla))
    with pytest.raises(ContractError) as info:
        load_contract(path)
    assert str(path) in str(info.value) and expected in str(info.value)


@pytest.mark.parametrize(("sla", "target_ms", "severity"), [
    ("  - property: queryLatency\n    value: 500\n    unit: ms\n", 500.0, "warning"),
    ("  - property: queryLatency\n    value: 1.5\n    unit: s\n    severity: error\n", 1500.0, "error"),
    ("", None, "warning"),
])
def test_query_latency_target_in_milliseconds(tmp_path: Path, sla: str, target_ms: float | None, severity: str) -> None:
    contract = load_contract(write(tmp_path, WIDGETS_CONTRACT.replace(_RETENTION, _RETENTION + sla)))
    assert contract.query_latency_ms == target_ms and contract.query_latency_severity.value == severity


def test_every_repository_contract_has_a_query_latency_target() -> None:
    assert all(c.query_latency_ms is not None for c in ContractRegistry.from_dir(CONTRACTS_DIR))


def test_a_changed_contract_is_parsed_again_and_a_broken_one_is_never_kept(tmp_path: Path) -> None:
    """The parse is kept per (path, exact text): an edit, even one keeping size and mtime, is seen at once."""
    import os

    path = write(tmp_path, WIDGETS_CONTRACT)
    first = load_contract(path)
    assert load_contract(path) is first  # unchanged text: the kept parse
    stat = path.stat()
    edited = WIDGETS_CONTRACT.replace("name: Widgets", "name: Gadgets", 1)
    assert len(edited) == len(WIDGETS_CONTRACT)
    path.write_text(edited)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime
    assert load_contract(path).name == "Gadgets"
    path.write_text(WIDGETS_CONTRACT.replace("kind: DataProduct", "kind: Table", 1))
    for _ in range(2):
        with pytest.raises(ContractError, match="kind"):
            load_contract(path)
    path.write_text(WIDGETS_CONTRACT)
    assert load_contract(path) == first
