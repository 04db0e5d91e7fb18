"""Trino's access rules and groups rendered from the policy, read the way Trino reads them (first match wins)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest

from datamesh.contracts import ContractRegistry
from datamesh.errors import PolicyError
from datamesh.paths import CONTRACTS_DIR
from datamesh.policy import GOVERNANCE_FILE, Policy, PolicyRole, load_policy
from datamesh.policy.trino import (
    GROUPS_FILE,
    MASKED_METADATA_TABLES,
    RULES_FILE,
    column_mask,
    render_trino,
    trino_groups,
    trino_rules,
)

#: The top-level keys Trino 476's FileBasedSystemAccessControlRules accepts (it refuses any other key).
TRINO_476_SECTIONS = {"catalogs", "queries", "impersonation", "principals", "system_information", "authorization",
                      "schemas", "tables", "system_session_properties", "catalog_session_properties", "functions",
                      "procedures"}
#: Sections that mean "allow all" when absent: every one must be written out.
DEFAULT_ALLOW_SECTIONS = {"catalogs", "schemas", "tables", "system_session_properties",
                          "catalog_session_properties", "functions", "procedures", "queries"}
WRITES = {"INSERT", "DELETE", "UPDATE", "OWNERSHIP", "GRANT_SELECT"}


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(ContractRegistry.from_dir(CONTRACTS_DIR), GOVERNANCE_FILE)


@pytest.fixture(scope="module")
def rules(policy: Policy) -> dict[str, Any]:
    return json.loads(render_trino(policy)[RULES_FILE])


class Trino:
    """The rule matching of Trino's file-based access control: whole-name regexes, first match wins."""

    def __init__(self, policy: Policy, rules: dict[str, Any]) -> None:
        self.rules = rules
        self.groups: dict[str, set[str]] = {}
        for group, members in trino_groups(policy).items():
            for member in members:
                self.groups.setdefault(member, set()).add(group)

    def first(self, section: str, user: str, **names: str) -> dict[str, Any] | None:
        for rule in self.rules[section]:
            if "user" in rule and not re.fullmatch(rule["user"], user):
                continue
            if "group" in rule and not any(re.fullmatch(rule["group"], g) for g in self.groups.get(user, ())):
                continue
            if all(re.fullmatch(rule[key], value) for key, value in names.items() if key in rule):
                return rule
        return None

    def catalog_access(self, user: str, catalog: str) -> str:
        rule = self.first("catalogs", user, catalog=catalog)
        return rule["allow"] if rule else "none"

    def table(self, user: str, schema: str, table: str, catalog: str = "lake") -> dict[str, Any] | None:
        return self.first("tables", user, catalog=catalog, schema=schema, table=table)

    def privileges(self, user: str, schema: str, table: str, catalog: str = "lake") -> set[str]:
        rule = self.table(user, schema, table, catalog)
        return set(rule["privileges"]) if rule else set()

    def masks(self, user: str, schema: str, table: str) -> dict[str, str]:
        rule = self.table(user, schema, table)
        return {c["name"]: c["mask"] for c in (rule or {}).get("columns", ()) if "mask" in c}


@pytest.fixture(scope="module")
def trino(policy: Policy, rules: dict[str, Any]) -> Trino:
    return Trino(policy, rules)


def non_platform(policy: Policy) -> list[str]:
    return [p.name for p in policy.principals if p.role is not PolicyRole.PLATFORM]


# -- the files -----------------------------------------------------------------------------------------------


def test_rendering_is_deterministic_and_every_section_trino_reads_is_written(policy: Policy,
                                                                             rules: dict[str, Any]) -> None:
    first, second = render_trino(policy), render_trino(policy)
    assert first == second and set(first) == {RULES_FILE, GROUPS_FILE}
    assert set(rules) <= TRINO_476_SECTIONS, "Trino refuses unknown keys: no marker key in the JSON"
    assert DEFAULT_ALLOW_SECTIONS <= set(rules), "an absent section means allow-all"
    assert first[RULES_FILE].endswith("}\n")


def test_groups_file_has_a_marker_and_one_line_per_non_empty_group(policy: Policy) -> None:
    text = render_trino(policy)[GROUPS_FILE]
    lines = text.splitlines()
    assert lines[0].startswith("# Generated") and "Do not edit" in lines[0]
    parsed = {line.split(":")[0]: line.split(": ")[1].split(",") for line in lines[1:]}
    assert parsed["role_platform"] == ["mesh_platform", "ops_admin"]
    assert parsed["role_reader_pii"] == ["dana"]
    assert set(parsed["role_reader"]) == {"analyst", *(p.name for p in policy.people() if p.role is PolicyRole.READER)}
    assert parsed["privacy_office"] == ["dana"]


# -- the platform -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["mesh_platform", "ops_admin"])
def test_platform_identities_may_do_everything(trino: Trino, user: str) -> None:
    assert trino.catalog_access(user, "lake") == "all"
    assert trino.first("schemas", user, catalog="lake", schema="crm")["owner"] is True
    assert trino.privileges(user, "crm", "customers") == {"SELECT", *WRITES}
    assert trino.privileges(user, "t0123456789", "anything") == {"SELECT", *WRITES}  # also schemas no product has
    assert "columns" not in trino.table(user, "crm", "customers") and "filter" not in trino.table(user, "crm",
                                                                                                 "customers")
    assert trino.first("procedures", user, catalog="lake", schema="system", procedure="register_table")
    assert set(trino.first("queries", user)["allow"]) == {"execute", "view", "kill"}
    assert set(trino.first("system_information", user)["allow"]) == {"read", "write"}
    assert trino.first("system_session_properties", user, property="query_max_memory")["allow"] is True


def test_platform_rule_comes_first_in_every_section_it_is_in(rules: dict[str, Any]) -> None:
    for section, entries in rules.items():
        if any(rule.get("group") == "^role_platform$" for rule in entries):
            assert entries[0].get("group") == "^role_platform$", section


# -- everyone else reads only --------------------------------------------------------------------------------


def test_nobody_but_the_platform_may_write_or_own_anything(policy: Policy, trino: Trino) -> None:
    for user in non_platform(policy):
        assert trino.catalog_access(user, "lake") == "read-only", user
        assert not trino.first("schemas", user, catalog="lake", schema="crm")["owner"], user
        for product in policy.products:
            for table in (product.product, f"{product.product}$snapshots", f"{product.product}$files"):
                assert not trino.privileges(user, product.domain, table) & WRITES, (user, table)
        assert trino.first("procedures", user, catalog="lake", schema="system", procedure="register_table") is None
        assert trino.first("procedures", user, catalog="system", schema="runtime", procedure="kill_query") is None
        assert trino.first("functions", user, catalog="lake", schema="system", function="table_changes") is None
        assert trino.first("queries", user)["allow"] == ["execute"], user
        assert trino.first("system_information", user) is None, user
        assert trino.first("catalog_session_properties", user, catalog="lake", property="x") is None
    assert trino.rules["impersonation"] == [] and trino.rules["authorization"] == []


def test_every_table_rule_but_the_platforms_carries_the_filter_that_refuses_table_procedures(
        rules: dict[str, Any]) -> None:
    for rule in rules["tables"][1:]:
        if rule.get("catalog") == "^lake$":
            assert rule["filter"] == "true", rule


def test_readers_read_every_active_product_and_its_pinned_versions(policy: Policy, trino: Trino) -> None:
    for reader in ("analyst", "alice", "dana", "carol"):
        for product in policy.products:
            assert ("SELECT" in trino.privileges(reader, product.domain, product.product)) is product.active
        for product in (p for p in policy.products if not p.pii_columns and p.active):
            for meta in ("snapshots", "refs", "files", "partitions"):
                assert trino.privileges(reader, product.domain, f"{product.product}${meta}") == {"SELECT"}


def test_readers_see_the_system_tables_clients_need_and_only_their_own_queries(trino: Trino) -> None:
    for table in ("tables", "columns", "schemas", "catalogs"):
        assert trino.privileges("analyst", "jdbc", table, catalog="system") == {"SELECT"}
    assert trino.privileges("analyst", "metadata", "table_comments", catalog="system") == {"SELECT"}
    assert trino.privileges("analyst", "runtime", "queries", catalog="system") == {"SELECT"}
    for table in ("nodes", "tasks", "transactions"):
        assert trino.table("analyst", "runtime", table, catalog="system") is None
    assert trino.catalog_access("analyst", "system") == "read-only"
    assert trino.first("system_session_properties", "analyst", property="enable_dynamic_filtering")
    assert trino.first("system_session_properties", "analyst", property="query_max_memory") is None


def test_publishers_read_their_own_domains_and_declared_inputs_only(policy: Policy, trino: Trino) -> None:
    for publisher in (p for p in policy.principals if p.role is PolicyRole.PUBLISHER):
        allowed = {a.fqn for a in policy.trino_readable(publisher)}
        for product in policy.products:
            readable = "SELECT" in trino.privileges(publisher.name, product.domain, product.product)
            assert readable is (product.fqn in allowed), (publisher.name, product.fqn)


def denies(rule: dict[str, Any] | None) -> bool:
    """No rule, or the catch-all rule: no privilege (and a row filter, so no table procedure either)."""
    return rule is None or (rule.get("privileges") == [] and rule.get("filter") == "true")


def test_unknown_users_and_unknown_tables_are_denied(trino: Trino) -> None:
    assert denies(trino.table("mallory", "crm", "customers"))
    assert denies(trino.table("analyst", "crm", "customers_copy"))
    assert denies(trino.table("analyst", "t0123456789", "widgets"))
    assert trino.table("svc_crm", "billing", "invoices") == {"catalog": "^lake$", "privileges": [], "filter": "true"}


# -- PII -----------------------------------------------------------------------------------------------------


def test_pii_is_masked_for_readers_not_allowed_it_and_the_masks_keep_the_type(policy: Policy, trino: Trino) -> None:
    pii_products = [a for a in policy.products if a.pii_columns]
    assert pii_products
    for product in pii_products:
        for user in (p.name for p in policy.principals if p.role is not PolicyRole.PLATFORM):
            if product not in policy.trino_readable(user):
                continue
            masks = trino.masks(user, product.domain, product.product)
            if policy.sees_pii(user, product):
                assert masks == {}, (user, product.fqn)
            else:
                assert masks == {c: column_mask(t) for c, t in product.pii_columns}, (user, product.fqn)
    assert trino.masks("analyst", "crm", "customers") == {"email": "CAST('****' AS varchar)"}
    assert trino.masks("dana", "crm", "customers") == {}  # privacy_office: pii: true
    assert trino.masks("svc_crm", "crm", "customers") == {}  # the owning team's publisher
    assert trino.masks("svc_retention", "crm", "customers") == {}  # a declared input: it reads the files whole


def test_the_pii_group_rule_precedes_the_masked_readers_rule(rules: dict[str, Any]) -> None:
    """dana is in role_reader too: only the order of the rules keeps her unmasked (first match wins)."""
    customers = [r for r in rules["tables"] if r.get("schema") == "^crm$" and r["table"].startswith("^customers")]
    by_group = [r.get("group") for r in customers]
    assert by_group.index("^role_reader_pii$") < by_group.index("^role_reader$")


def test_masked_readers_get_no_metadata_table_with_column_values(trino: Trino) -> None:
    for meta in MASKED_METADATA_TABLES:
        assert trino.privileges("analyst", "crm", f"customers${meta}") == {"SELECT"}
    for meta in ("files", "partitions", "entries", "all_entries", "manifests", "all_manifests"):
        assert denies(trino.table("analyst", "crm", f"customers${meta}")), meta
        assert trino.privileges("dana", "crm", f"customers${meta}") == {"SELECT"}


@pytest.mark.parametrize(("column_type", "mask"), [
    ("string", "CAST('****' AS varchar)"),
    ("int32", "CAST(NULL AS integer)"),
    ("int64", "CAST(NULL AS bigint)"),
    ("decimal(12,2)", "CAST(NULL AS decimal(12,2))"),
    ("timestamp", "CAST(NULL AS timestamp(6))"),
    ("timestamptz", "CAST(NULL AS timestamp(6) with time zone)"),
    ("date", "CAST(NULL AS date)"),
    ("boolean", "CAST(NULL AS boolean)"),
])
def test_column_mask_keeps_the_columns_type(column_type: str, mask: str) -> None:
    assert column_mask(column_type) == mask


# -- products that are not active, groups that would collide ----------------------------------------------------


def test_a_draft_product_is_read_by_its_publisher_but_not_by_readers(policy: Policy) -> None:
    products = tuple(replace(a, status="draft") if a.fqn == "crm.customers" else a for a in policy.products)
    trino = Trino(policy, trino_rules(replace(policy, products=products)))
    assert denies(trino.table("analyst", "crm", "customers"))
    assert denies(trino.table("dana", "crm", "customers"))
    assert trino.privileges("svc_crm", "crm", "customers") == {"SELECT"}
    assert trino.privileges("mesh_platform", "crm", "customers") == {"SELECT", *WRITES}


def test_a_governance_group_named_like_a_role_group_is_refused(policy: Policy) -> None:
    clashing = replace(policy, groups={**policy.groups, "role_platform": ("alice",)})
    with pytest.raises(PolicyError, match="'role_platform' is reserved"):
        render_trino(clashing)
