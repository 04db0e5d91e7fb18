"""The policy's S3 and catalog artefacts: bucket policy, per-user S3 policies, the catalog's roles SQL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from datamesh.contracts import ContractRegistry
from datamesh.errors import PolicyError
from datamesh.paths import CONTRACTS_DIR
from datamesh.policy import GOVERNANCE_FILE, Policy, PolicyRole, load_policy
from datamesh.policy.storage import (
    BUCKET_POLICY_FILE,
    POSTGRES_ROLES_FILE,
    READ_ACTIONS,
    WRITE_ACTIONS,
    bucket_policy,
    normalise_lake_root,
    postgres_roles_sql,
    render_storage,
    user_policy,
)

CONTRACTS = ContractRegistry.from_dir(CONTRACTS_DIR)
ARN = "arn:aws:s3:::lake"
BUCKET_ADMIN = {"s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:DeleteBucket", "s3:PutBucketAcl", "s3:*",
                "s3:CreateBucket", "s3:PutObjectAcl", "s3:PutBucketVersioning"}


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(CONTRACTS, GOVERNANCE_FILE)


def statements_of(doc: dict[str, Any], principal: str) -> list[dict[str, Any]]:
    return [s for s in doc["Statement"] if s["Principal"] == {"AWS": [principal]}]


def resources(statements: list[dict[str, Any]], action: str) -> set[str]:
    return {r for s in statements if action in s["Action"] for r in s["Resource"]}


# -- S3 -----------------------------------------------------------------------------------------------------


def test_every_service_user_and_nobody_else_is_a_principal(policy: Policy) -> None:
    doc = bucket_policy(policy)
    principals = {p for s in doc["Statement"] for p in s["Principal"]["AWS"]}

    assert principals == {p.name for p in policy.service_users()}
    assert all(s["Effect"] == "Allow" for s in doc["Statement"])  # everything else: versitygw's default deny
    assert all(s["Principal"] != "*" for s in doc["Statement"])


def test_a_publisher_writes_only_its_own_domains_prefixes(policy: Policy) -> None:
    doc = bucket_policy(policy)
    for name in policy.names(role=PolicyRole.PUBLISHER):
        principal = policy.principal(name)
        own = tuple(f"{ARN}/products/{d}/" for d in principal.domains)
        models = {f"{ARN}/models/{a.product}/*" for a in policy.products if a.domain in principal.domains and a.has_model}
        mine = statements_of(doc, name)
        for action in WRITE_ACTIONS:
            written = resources(mine, action)
            assert written, (name, action)
            assert all(r.startswith(own) or r in models for r in written), (name, written)
            assert all(r.endswith("/*") for r in written)  # a folder, never a bare key or a sibling "crmx"
    crm = statements_of(doc, "svc_crm")
    assert resources(crm, "s3:PutObject") == {f"{ARN}/products/crm/*"}
    assert resources(crm, "s3:GetObject") == {f"{ARN}/products/crm/*", f"{ARN}/products/crm"}


def test_readers_have_no_write_action_and_the_query_user_no_pii_product(policy: Policy) -> None:
    doc = bucket_policy(policy)
    for name in (policy.reader.name, policy.engine.name):
        actions = {a for s in statements_of(doc, name) for a in s["Action"]}
        assert actions <= set(READ_ACTIONS) | {"s3:ListBucket", "s3:GetBucketLocation"}, (name, actions)
    readable = resources(statements_of(doc, policy.reader.name), "s3:GetObject")
    for product in policy.products:
        granted = f"{ARN}/{product.prefix}*" in readable
        assert granted == (product.active and not product.pii_columns), product.fqn
    assert f"{ARN}/products/crm/customers/*" not in readable  # crm.customers has PII columns
    assert f"{ARN}/products/billing/invoices/*" in readable


def test_only_the_platform_lists_uploads_and_nobody_administers_the_bucket(policy: Policy) -> None:
    doc = bucket_policy(policy)
    actions = {a for s in doc["Statement"] for a in s["Action"]}
    uploads = {p for s in doc["Statement"] if "s3:ListBucketMultipartUploads" in s["Action"] for p in s["Principal"]["AWS"]}

    assert not actions & BUCKET_ADMIN
    assert uploads == {policy.platform.name}
    assert resources(statements_of(doc, policy.platform.name), "s3:PutObject") == {f"{ARN}/*"}
    for s in doc["Statement"]:  # bucket actions on the bucket, object actions on keys
        on_bucket = any(a.startswith("s3:List") and a != "s3:ListMultipartUploadParts" or a == "s3:GetBucketLocation"
                        for a in s["Action"])
        assert all((r == ARN) == on_bucket for r in s["Resource"]), s


def test_each_grant_applies_under_each_lake_root(policy: Policy) -> None:
    doc = bucket_policy(policy, "lake", ["", "pipeline-1a2b/", "/tests/x"])
    crm = statements_of(doc, "svc_crm")

    assert resources(crm, "s3:PutObject") == {
        f"{ARN}/products/crm/*", f"{ARN}/pipeline-1a2b/products/crm/*", f"{ARN}/tests/x/products/crm/*"}
    assert resources(statements_of(doc, policy.platform.name), "s3:DeleteObject") == {f"{ARN}/*"}
    assert bucket_policy(policy, "lake", ["pipeline-1a2b", "pipeline-1a2b/"]) == bucket_policy(
        policy, "lake", ["pipeline-1a2b/"])
    assert bucket_policy(policy, "other-bucket")["Statement"][0]["Resource"] == ["arn:aws:s3:::other-bucket/*"]


@pytest.mark.parametrize("root", ["a/../b", "a/./b", "a//b", "x*", "pipe?", "a b"])
def test_a_lake_root_that_could_widen_a_grant_is_refused(root: str) -> None:
    with pytest.raises(PolicyError, match="Invalid lake root"):
        normalise_lake_root(root)


@pytest.mark.parametrize(("given", "expected"), [("", ""), ("/", ""), ("pipeline-1", "pipeline-1/"),
                                                  ("/tests/x/", "tests/x/")])
def test_lake_roots_are_normalised(given: str, expected: str) -> None:
    assert normalise_lake_root(given) == expected


def test_user_policies_are_the_bucket_statements_without_principals(policy: Policy) -> None:
    doc = bucket_policy(policy)
    for p in policy.service_users():
        user = user_policy(policy, p.name)
        expected = [{k: v for k, v in s.items() if k != "Principal"} for s in statements_of(doc, p.name)]
        assert [{**s, "Sid": ""} for s in user["Statement"]] == [{**s, "Sid": ""} for s in expected]
        assert all("Principal" not in s for s in user["Statement"])
    with pytest.raises(PolicyError, match="person"):
        user_policy(policy, policy.people()[0].name)


# -- PostgreSQL ----------------------------------------------------------------------------------------------


def policies_in(sql: str) -> dict[tuple[str, str], str]:
    """(policy name, table) -> its definition."""
    return {(m[1], m[2]): m[0] for m in re.finditer(r"CREATE POLICY (\S+) ON (\S+) [^;]*;", sql)}


def test_the_sql_has_row_level_security_per_publisher_on_both_tables(policy: Policy) -> None:
    sql = postgres_roles_sql(policy)
    defined = policies_in(sql)

    for table, column in (("iceberg_tables", "table_namespace"), ("iceberg_namespace_properties", "namespace")):
        assert f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;" in sql
        for name in policy.names(role=PolicyRole.PUBLISHER):
            rule = defined[(f"mesh_write_{name}", table)]
            domains = ", ".join(f"'{d}'" for d in policy.principal(name).domains)
            condition = f"{column} = ANY (ARRAY[{domains}]::text[])"
            assert f'TO "{name}" USING ({condition}) WITH CHECK ({condition}' in rule
            if table == "iceberg_tables":  # and its pointers lead only into the table's own metadata folder
                assert "'/products/' || table_namespace || '/' || table_name || '/metadata/'" in rule
        assert f'TO "{policy.platform.name}" USING (true) WITH CHECK (true)' in defined[
            (f"mesh_write_{policy.platform.name}", table)]
        readers = [policy.reader.name, policy.engine.name]
        assert not any(f'TO "{r}"' in d for (n, _), d in defined.items() if n.startswith("mesh_write_") for r in readers)


def test_readers_get_select_only_and_nobody_a_password_or_ownership(policy: Policy) -> None:
    sql = postgres_roles_sql(policy)
    grants = re.search(r"GRANT INSERT, UPDATE, DELETE ON [^;]* TO ([^;]*);", sql)
    assert grants is not None
    writers = set(re.findall(r'"([a-z0-9_]+)"', grants[1]))

    assert writers == {policy.platform.name, *policy.names(role=PolicyRole.PUBLISHER)}
    assert policy.reader.name not in writers and policy.engine.name not in writers
    statements = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    assert "PASSWORD" not in statements.upper()
    assert "SUPERUSER NOCREATEDB" in sql and "BYPASSRLS " not in sql.replace("NOBYPASSRLS", "")
    assert not re.search(r"OWNER TO \"?(mesh_|svc_|analyst|trino)", sql)
    assert sql.count("BEGIN;") == 1 and sql.rstrip().endswith("COMMIT;")


def test_the_sql_creates_pyicebergs_catalog_tables_exactly(policy: Policy) -> None:
    """The fallback DDL is pyiceberg's own schema V1 (columns, types, nullability, primary key)."""
    from pyiceberg.catalog.sql import SqlCatalogBaseTable
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateTable

    sql = postgres_roles_sql(policy)
    for table in SqlCatalogBaseTable.metadata.sorted_tables:
        theirs = str(CreateTable(table).compile(dialect=postgresql.dialect()))
        ours = re.search(rf"CREATE TABLE IF NOT EXISTS {table.name} \((.*?)\n\);", sql, re.S)
        assert ours is not None, table.name

        def normal(ddl: str) -> list[str]:
            return sorted(line.strip().rstrip(",") for line in ddl.strip().splitlines() if line.strip())

        body = theirs[theirs.index("(") + 1: theirs.rindex(")")]
        assert normal(ours[1]) == normal(body), table.name


def test_roles_that_would_collide_with_the_databases_own_are_refused(tmp_path: Path) -> None:
    governance = tmp_path / "governance.yaml"
    governance.write_text(GOVERNANCE_FILE.read_text().replace("service_user: mesh_platform", "service_user: postgres"))

    with pytest.raises(PolicyError, match="reserved"):
        postgres_roles_sql(load_policy(CONTRACTS, governance))


def test_only_marked_roles_are_ever_dropped(policy: Policy) -> None:
    sql = postgres_roles_sql(policy)
    drop = sql[sql.index("DROP OWNED BY") - 400: sql.index("DROP ROLE")]

    assert "d.description = 'datamesh policy principal (postgres-roles.sql)'" in drop
    for p in policy.service_users():
        assert f"'{p.name}'" in drop  # the policy's own roles are kept


# -- the files ------------------------------------------------------------------------------------------------


def test_render_storage_is_deterministic_and_names_every_file(policy: Policy) -> None:
    files = render_storage(policy)

    assert files == render_storage(load_policy(CONTRACTS, GOVERNANCE_FILE))
    assert set(files) == {BUCKET_POLICY_FILE, POSTGRES_ROLES_FILE,
                          *(f"s3-policies/{p.name}.json" for p in policy.service_users())}
    assert json.loads(files[BUCKET_POLICY_FILE]) == bucket_policy(policy)
    assert all(text.endswith("\n") for text in files.values())
