from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from datamesh.contract_diff import (
    ChangeKind,
    diff_contracts,
    diff_published,
    ensure_compatible,
    major_version,
    published_doc,
)
from datamesh.contracts import Contract, parse_contract
from datamesh.errors import BreakingChangeError, ContractError
from tests.conftest import WIDGETS_CONTRACT, widgets_table

PATH = Path("data_products/shop/widgets.yaml")


def contract(text: str = WIDGETS_CONTRACT) -> Contract:
    return parse_contract(yaml.safe_load(text), PATH)


def doc(text: str = WIDGETS_CONTRACT) -> dict[str, Any]:
    """What a manifest stores as ``contract_doc``."""
    return contract(text).model_dump(mode="json", by_alias=True, exclude={"source_path"})


def edited(old: str, new: str, *, version: str = "1.1.0", text: str = WIDGETS_CONTRACT) -> Contract:
    assert old in text, old
    return contract(text.replace(old, new, 1).replace("version: 1.0.0", f"version: {version}", 1))


MADE_AT = "  - name: made_at\n    type: timestamp\n"
PRICE = "  - name: price\n    type: double\n"

CASES = [
    # (id, old text, new text, kind, breaking)
    ("column_removed", MADE_AT, "", ChangeKind.COLUMN_REMOVED, True),
    ("column_renamed", "  - name: made_at", "  - name: made_on", ChangeKind.COLUMN_RENAMED, True),
    ("column_added", MADE_AT, MADE_AT + "  - name: discount\n    type: double\n", ChangeKind.COLUMN_ADDED, False),
    ("required_column_added", MADE_AT, MADE_AT + "  - name: discount\n    type: double\n    required: true\n",
     ChangeKind.COLUMN_ADDED, True),
    ("type_narrowed", "    type: int64", "    type: int32", ChangeKind.TYPE_CHANGED, True),
    ("type_incompatible", "    type: timestamp", "    type: string", ChangeKind.TYPE_CHANGED, True),
    ("type_double_to_int", PRICE, "  - name: price\n    type: int64\n", ChangeKind.TYPE_CHANGED, True),
    ("made_required", PRICE, PRICE + "    required: true\n", ChangeKind.REQUIRED_CHANGED, True),
    ("no_longer_required", "    type: string\n    required: true", "    type: string", ChangeKind.REQUIRED_CHANGED,
     True),
    ("made_unique", PRICE, PRICE + "    unique: true\n", ChangeKind.UNIQUE_CHANGED, True),
    ("primary_key_changed", "primaryKey: [widget_id]", "primaryKey: [widget_id, color]",
     ChangeKind.PRIMARY_KEY_CHANGED, True),
    ("primary_key_dropped", "primaryKey: [widget_id]\n", "", ChangeKind.PRIMARY_KEY_CHANGED, True),
    ("range_loosened", "        max: 1000", "        max: 2000", ChangeKind.RULE_LOOSENED, True),
    ("range_tightened", "        max: 1000", "        max: 500", ChangeKind.RULE_TIGHTENED, False),
    ("range_min_dropped", "        min: 0\n", "", ChangeKind.RULE_LOOSENED, True),
    ("values_added", "values: [red, green, blue]", "values: [red, green, blue, pink]", ChangeKind.RULE_LOOSENED, True),
    ("values_removed", "values: [red, green, blue]", "values: [red, green]", ChangeKind.RULE_TIGHTENED, False),
    ("values_swapped", "values: [red, green, blue]", "values: [red, green, pink]", ChangeKind.RULE_LOOSENED, True),
    ("row_count_loosened", "    min: 1\n    max: 1000000", "    min: 0\n    max: 1000000", ChangeKind.RULE_LOOSENED,
     True),
    ("rule_removed", "    quality:\n      - rule: range\n        min: 0\n        max: 1000\n", "", ChangeKind.RULE_REMOVED, True),
    ("sql_bound_loosened", "    mustBe: 0\n", "    mustBeLessThan: 3\n", ChangeKind.RULE_LOOSENED, True),
    ("sql_bound_tightened", "    mustBeLessThan: 2", "    mustBeLessThan: 1", ChangeKind.RULE_TIGHTENED, False),
    ("sql_query_changed", "where color = 'blue' and price = 0", "where color = 'blue' and price < 1",
     ChangeKind.RULE_CHANGED, True),
    ("severity_lowered", "    name: no_free_blue_widgets\n",
     "    name: no_free_blue_widgets\n    severity: warning\n", ChangeKind.RULE_LOOSENED, True),
    ("warning_rule_loosened", "    mustBeLessThan: 2", "    mustBeLessThan: 5", ChangeKind.RULE_LOOSENED, False),
    ("warning_rule_removed", "  - rule: sql\n    name: few_expensive_widgets\n    severity: warning\n"
     "    query: \"select count(*) from {product} where price > 900\"\n    mustBeLessThan: 2\n", "",
     ChangeKind.RULE_REMOVED, False),
    ("rule_added", "      - rule: range\n", "      - rule: not_null\n        name: price_present\n      - rule: range\n",
     ChangeKind.RULE_ADDED, False),
    ("owner_changed", "  team: shop-team", "  team: ops-team", ChangeKind.OWNER_CHANGED, False),
    ("purpose_changed", "  purpose: Widgets for sale.", "  purpose: Widgets we sell.", ChangeKind.DESCRIPTION_CHANGED,
     False),
    ("column_description", PRICE, PRICE + "    description: Price in EUR.\n", ChangeKind.DESCRIPTION_CHANGED, False),
    ("classification", PRICE, PRICE + "    classification: confidential\n", ChangeKind.METADATA_CHANGED, False),
    ("retention_changed", "    value: 3\n", "    value: 5\n", ChangeKind.METADATA_CHANGED, False),
    ("name_changed", "name: Widgets", "name: All widgets", ChangeKind.METADATA_CHANGED, False),
]


@pytest.mark.parametrize(("old", "new", "kind", "breaking"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_kind_of_change(old: str, new: str, kind: ChangeKind, breaking: bool) -> None:
    diff = diff_contracts(doc(), edited(old, new))
    assert [c.kind for c in diff.changes] == [kind], diff.lines()
    change = diff.changes[0]
    assert change.breaking is breaking
    assert diff.breaking is breaking
    assert change.path and change.text
    assert change.level == ("breaking" if breaking else "info" if kind in (
        ChangeKind.OWNER_CHANGED, ChangeKind.DESCRIPTION_CHANGED, ChangeKind.METADATA_CHANGED) else "compatible")


@pytest.mark.parametrize(
    ("old_type", "new_type", "breaking"),
    [("int32", "int64", False), ("decimal(10,2)", "decimal(12,2)", False), ("decimal(10,2)", "decimal(38,2)", False),
     # Iceberg promotes only int32 → int64 and a decimal's precision: everything else changes the type.
     ("int32", "double", True), ("int64", "double", True), ("int64", "int32", True), ("double", "int64", True),
     ("decimal(12,2)", "decimal(10,2)", True), ("decimal(10,2)", "decimal(12,3)", True),
     ("decimal(10,2)", "decimal(10,3)", True), ("int64", "decimal(38,0)", True), ("double", "decimal(38,10)", True),
     ("date", "timestamp", True), ("timestamp", "timestamptz", True), ("timestamptz", "timestamp", True),
     ("time", "timestamp", True), ("string", "int64", True)],
)
def test_type_widening(old_type: str, new_type: str, breaking: bool) -> None:
    text = WIDGETS_CONTRACT.replace("  - name: made_at\n    type: timestamp", f"  - name: made_at\n    type: {old_type}")
    diff = diff_contracts(doc(text), edited(f"    type: {old_type}\n", f"    type: {new_type}\n", text=text))
    assert [(c.kind, c.breaking) for c in diff.changes] == [(ChangeKind.TYPE_CHANGED, breaking)]
    assert ("widened" in diff.changes[0].text) is (not breaking)


@pytest.mark.parametrize(
    ("old_type", "new_type", "how"),
    [("int64", "int32", "narrowed"), ("decimal(12,2)", "decimal(10,2)", "narrowed"),
     ("int32", "double", "changed incompatibly"), ("decimal(10,2)", "decimal(10,3)", "changed incompatibly")],
)
def test_type_changes_say_how(old_type: str, new_type: str, how: str) -> None:
    text = WIDGETS_CONTRACT.replace("  - name: made_at\n    type: timestamp", f"  - name: made_at\n    type: {old_type}")
    diff = diff_contracts(doc(text), edited(f"    type: {old_type}\n", f"    type: {new_type}\n", text=text))
    assert diff.changes[0].text.endswith(f"' type {how}: {old_type} → {new_type}")


def test_a_type_written_with_spaces_is_no_change() -> None:
    text = WIDGETS_CONTRACT.replace("  - name: made_at\n    type: timestamp", "  - name: made_at\n    type: decimal(12,2)")
    assert diff_contracts(doc(text), edited("    type: decimal(12,2)\n", "    type: decimal( 12, 2 )\n", text=text)).changes == ()


def test_no_changes() -> None:
    diff = diff_contracts(doc(), contract())
    assert diff.changes == () and not diff.breaking
    assert diff.lines() == ["widgets: published contract 1.0.0 → current 1.0.0: no changes"]


def test_no_published_version() -> None:
    assert diff_contracts({}, contract()).changes == ()
    assert ensure_compatible({}, contract()).changes == ()


def test_lines_for_the_cli() -> None:
    diff = diff_contracts(doc(), edited(MADE_AT, "").model_copy(update={"owner": contract().owner.model_copy(
        update={"team": "ops"})}))
    lines = diff.lines()
    assert lines[0] == "widgets: published contract 1.0.0 → current 1.1.0: 2 changes, 1 breaking"
    assert lines[1] == "  breaking  columns.made_at: column 'made_at' (timestamp) was removed"
    assert lines[2].startswith("  info      owner.team: owner team changed: 'shop-team' → 'ops'")
    assert lines[-1] == "  Bump the contract's major version (e.g. 1.0.0 → 2.0.0) or revert the breaking changes."
    assert not any("[" in line for line in lines)  # nothing a terminal could read as markup


def test_breaking_change_without_a_major_bump_is_refused() -> None:
    current = edited(MADE_AT, "", version="1.2.0")
    with pytest.raises(BreakingChangeError) as info:
        ensure_compatible(doc(), current)
    message = str(info.value)
    assert "Product 'widgets'" in message and str(PATH) in message
    assert "columns.made_at: column 'made_at' (timestamp) was removed" in message
    assert "bump the contract's major version (e.g. 1.0.0 → 2.0.0) or revert" in message.lower()
    assert isinstance(info.value, ContractError)


def test_breaking_change_with_a_major_bump_passes() -> None:
    diff = ensure_compatible(doc(), edited(MADE_AT, "", version="2.0.0"))
    assert diff.breaking and diff.major_bumped
    assert "Bump" not in "\n".join(diff.lines())


def test_compatible_change_needs_no_bump() -> None:
    diff = ensure_compatible(doc(), edited(MADE_AT, MADE_AT + "  - name: discount\n    type: double\n",
                                           version="1.0.0"))
    assert not diff.breaking and len(diff.changes) == 1


def test_rules_of_a_removed_column_are_not_reported_twice() -> None:
    diff = diff_contracts(doc(), edited(PRICE + "    quality:\n      - rule: range\n        min: 0\n        max: 1000\n",
                                        ""))
    assert [c.kind for c in diff.changes] == [ChangeKind.COLUMN_REMOVED]


LEGACY = {"version": "1.0.0", "schema_": [
    {"name": "widget_id", "type": "int32"}, {"name": "color", "type": "string"},
    {"name": "price", "type": "double"}, {"name": "made_at", "type": "timestamp[us]"},
    {"name": "in_stock", "type": "bool"},
]}


def test_old_manifests_compare_columns_only() -> None:
    diff = diff_contracts(LEGACY, contract())
    assert diff.columns_only
    assert {(c.kind, c.path, c.breaking) for c in diff.changes} == {
        (ChangeKind.COLUMN_REMOVED, "columns.in_stock", True),
        (ChangeKind.TYPE_CHANGED, "columns.widget_id.type", False),
    }
    assert "only columns were compared" in "\n".join(diff.lines())
    with pytest.raises(BreakingChangeError, match="in_stock"):
        ensure_compatible(LEGACY, contract())


def test_a_document_this_code_cannot_read_falls_back_to_columns() -> None:
    unreadable = doc() | {"someFutureField": 1}
    diff = diff_contracts(unreadable, edited(MADE_AT, ""))
    assert diff.columns_only and [c.kind for c in diff.changes] == [ChangeKind.COLUMN_REMOVED]


def test_published_doc_of_manifests() -> None:
    new = SimpleNamespace(contract_doc=doc(), contract_version="1.0.0", schema_=())
    assert published_doc(new) == doc()
    old = SimpleNamespace(contract_doc={}, contract_version="1.0.0", schema_=tuple(LEGACY["schema_"]))
    assert published_doc(old) == LEGACY


def test_published_doc_of_a_real_publish(mesh) -> None:  # noqa: ANN001
    manifest = mesh.publish("widgets", widgets_table(3))
    published = published_doc(manifest)
    assert not diff_contracts(published, mesh.contract("widgets")).changes
    removed = mesh.contract("widgets").model_copy(update={"columns": mesh.contract("widgets").columns[:-1]})
    with pytest.raises(BreakingChangeError, match="made_at"):
        ensure_compatible(published, removed)


@pytest.mark.parametrize(("version", "major"), [("1.2.3", 1), ("10.0.0", 10), ("0.1.0", 0)])
def test_major_version(version: str, major: int) -> None:
    assert major_version(version) == major


def test_major_version_refuses_non_semver() -> None:
    with pytest.raises(ContractError, match="not semantic"):
        major_version("v1")


def test_diff_published_and_blocking() -> None:
    manifest = SimpleNamespace(contract_doc=doc(), contract_version="1.0.0", schema_=())
    removed = edited(MADE_AT, "")
    assert diff_published(manifest, removed).blocking
    assert not diff_published(manifest, edited(MADE_AT, "", version="2.0.0")).blocking
    assert not diff_published(manifest, edited("  team: shop-team", "  team: ops")).blocking
