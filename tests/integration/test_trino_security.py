"""Trino on the native stack: HTTPS with the stack's CA, password logins, and access rules rendered from the policy.

Run against the session stack (``native_stack``) with the product ``crm.customers`` (its ``email`` is
classified pii): the pipeline's when it already ran in this session, otherwise three rows published here by
the platform and removed from the catalog afterwards.
"""

from __future__ import annotations

import datetime as dt
import ssl
import stat
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import requests
import trino

import nativestack
from datamesh.errors import TrinoError
from datamesh.settings import Settings
from datamesh.trino import TrinoClient, trino_session
from nativestack import StackEndpoints

pytestmark = [pytest.mark.integration]

CUSTOMERS = "lake.crm.customers"
MASK = "****"


def client(ep: StackEndpoints, name: str, **overrides: Any) -> TrinoClient:
    """A Trino client logged in as principal ``name`` (overrides: password, scheme, ca_file)."""
    options: dict[str, Any] = {"password": ep.principals[name].trino_password, "scheme": ep.trino_scheme,
                               "ca_file": ep.trino_ca_file}
    options.update(overrides)
    return TrinoClient(ep.trino_host, ep.trino_port, name, **options)


def settings_as(ep: StackEndpoints, actor: str, **overrides: str) -> Settings:
    env = {**ep.as_settings_env(actor), **overrides}
    return Settings(**{key.removeprefix("MESH_").lower(): value for key, value in env.items()})  # type: ignore[arg-type]


def rows(t: TrinoClient, sql: str) -> list[tuple[Any, ...]]:
    return t.query(sql)[1]


def customers_table(n: int) -> pa.Table:
    return pa.table({
        "customer_id": [f"C{i:08d}" for i in range(n)],
        "email": [f"person{i}@example.com" for i in range(n)],
        "country_code": ["DE"] * n,
        "industry": ["software"] * n,
        "acquisition_channel": ["organic"] * n,
        "plan": ["pro"] * n,
        "seats": pa.array([3] * n, pa.int32()),
        "signed_up_at": pa.array([dt.datetime(2025, 1, 1)] * n, pa.timestamp("us")),
    })


@pytest.fixture(scope="module")
def customers(native_stack: StackEndpoints, native_stack_home: Path) -> Iterator[list[tuple[Any, ...]]]:
    """``crm.customers`` as the platform sees it (unmasked), ordered by customer id."""
    platform = client(native_stack, native_stack.principal_of("platform"))
    exists = rows(platform, "SELECT count(*) FROM lake.information_schema.tables "
                            "WHERE table_schema = 'crm' AND table_name = 'customers'") == [(1,)]
    if not exists:
        from datamesh.platform import Mesh

        root = nativestack.grant_lake_root(native_stack_home, f"trino-security-{uuid.uuid4().hex[:8]}")
        mesh = Mesh.from_settings(settings_as(native_stack, "platform",
                                              MESH_LAKE_URL=f"s3://{native_stack.bucket}/{root}"))
        mesh.publish("customers", customers_table(3))
    try:
        yield rows(platform, f"SELECT * FROM {CUSTOMERS} ORDER BY customer_id")
    finally:
        if not exists:  # leave the catalog as found: the pipeline creates its own crm.customers
            from pyiceberg.catalog.sql import SqlCatalog

            catalog = SqlCatalog(native_stack.iceberg_catalog_name, uri=native_stack.iceberg_catalog_uri,
                                 warehouse=native_stack.iceberg_warehouse, **native_stack.iceberg_s3_properties())
            try:
                catalog.drop_table("crm.customers")
            finally:
                catalog.close()


def fingerprint(ep: StackEndpoints) -> list[tuple[Any, ...]]:
    """What a forged write would change, as the platform sees it: rows, snapshots, columns, schemas, tables."""
    return rows(client(ep, ep.principal_of("platform")), f"""
        SELECT (SELECT count(*) FROM {CUSTOMERS}), (SELECT max(plan) || max(email) FROM {CUSTOMERS}),
               (SELECT array_agg(snapshot_id ORDER BY committed_at) FROM lake.crm."customers$snapshots"),
               (SELECT array_agg(column_name ORDER BY ordinal_position) FROM lake.information_schema.columns
                 WHERE table_schema = 'crm' AND table_name = 'customers'),
               (SELECT array_agg(schema_name ORDER BY schema_name) FROM lake.information_schema.schemata),
               (SELECT array_agg(table_name ORDER BY table_name) FROM lake.information_schema.tables
                 WHERE table_schema = 'crm')""")


# -- HTTPS and logins --------------------------------------------------------------------------------------------


def test_trino_serves_https_with_the_stacks_ca_and_info_without_a_login(native_stack: StackEndpoints) -> None:
    assert native_stack.trino_scheme == "https" and native_stack.trino_url.startswith("https://")
    context = ssl.create_default_context(cafile=native_stack.trino_ca_file)
    with urllib.request.urlopen(f"{native_stack.trino_url}/v1/info", context=context, timeout=10) as answer:
        assert answer.status == 200
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(f"{native_stack.trino_url}/v1/info",  # noqa: S310 - the system's CAs only
                               context=ssl.create_default_context(), timeout=10)


def test_the_platform_logs_in_with_the_settings_the_stack_gives(native_stack: StackEndpoints) -> None:
    settings = settings_as(native_stack, "platform")
    assert settings.trino_scheme == "https" and settings.trino_password is not None
    t = TrinoClient.from_settings(settings)
    assert t.user == native_stack.principal_of("platform")
    assert rows(t, "SELECT current_user") == [(t.user,)]
    assert settings.trino_password.get_secret_value() not in repr(t)


@pytest.mark.parametrize("login", ["wrong password", "no password", "unknown user"])
def test_a_wrong_or_missing_password_is_refused(native_stack: StackEndpoints, login: str) -> None:
    t = {"wrong password": client(native_stack, "analyst", password="not-the-password"),
         "no password": client(native_stack, "analyst", password=None),
         "unknown user": TrinoClient(native_stack.trino_host, native_stack.trino_port, "mallory", password="x",
                                     scheme="https", ca_file=native_stack.trino_ca_file)}[login]
    with pytest.raises(TrinoError, match=r"refused the login of user '\w+'.*HTTP 401") as refused:
        t.query(f"SELECT count(*) FROM {CUSTOMERS}")
    assert native_stack.principals["analyst"].trino_password not in str(refused.value)


def test_plain_http_gets_no_answer_with_or_without_a_password(native_stack: StackEndpoints) -> None:
    url = f"http://{native_stack.trino_host}:{native_stack.trino_port}/v1/statement"
    password = native_stack.principals["analyst"].trino_password
    for auth in (None, ("analyst", password)):
        with pytest.raises(requests.ConnectionError):  # a TLS alert, not HTTP: nothing is served over http
            requests.post(url, data="SELECT 1", headers={"X-Trino-User": "analyst"}, auth=auth, timeout=10)
    with pytest.raises(TrinoError, match="speaks HTTPS only"):
        client(native_stack, "analyst", password=None, scheme="http", ca_file=None).query("SELECT 1")
    with pytest.raises(TrinoError, match="accepts passwords over https only"):
        client(native_stack, "analyst", scheme="http")


def test_a_client_without_the_stacks_ca_gets_a_tls_error(native_stack: StackEndpoints) -> None:
    with pytest.raises(TrinoError, match="TLS with Trino .* not trusted.*MESH_TRINO_CA_FILE"):
        client(native_stack, "analyst", ca_file=None).query("SELECT 1")


def test_nobody_may_act_as_another_user(native_stack: StackEndpoints) -> None:
    connection = trino.dbapi.connect(
        host=native_stack.trino_host, port=native_stack.trino_port, user=native_stack.principal_of("platform"),
        http_scheme="https", http_session=trino_session(native_stack.trino_ca_file),
        auth=trino.auth.BasicAuthentication("analyst", native_stack.principals["analyst"].trino_password))
    with pytest.raises(trino.exceptions.TrinoUserError, match="analyst cannot impersonate user"):
        connection.cursor().execute("SELECT 1")


def test_the_stacks_security_files_are_private_and_hold_no_password(native_stack_home: Path,
                                                                    native_stack: StackEndpoints) -> None:
    for path in ("trino-security/password.db", "trino-security/shared-secret", "tls/ca-key.pem", "tls/trino.pem"):
        assert stat.S_IMODE((native_stack_home / path).stat().st_mode) == 0o600, path
    hashed = (native_stack_home / "trino-security/password.db").read_text()
    engine = "trino"  # Trino's own storage identity has no Trino login
    assert {line.split(":")[0] for line in hashed.splitlines()} == set(native_stack.principals) - {engine}
    assert not any(s.trino_password in hashed for s in native_stack.principals.values())
    assert native_stack.principals["analyst"].trino_password not in repr(native_stack)


# -- reading -----------------------------------------------------------------------------------------------------


def test_analyst_reads_customers_with_email_masked(native_stack: StackEndpoints,
                                                   customers: list[tuple[Any, ...]]) -> None:
    analyst = TrinoClient.from_settings(settings_as(native_stack, "analyst"))
    assert analyst.user == "analyst"
    seen = rows(analyst, f"SELECT * FROM {CUSTOMERS} ORDER BY customer_id")
    assert len(seen) == len(customers) > 0
    assert all(row[1] == MASK for row in seen)
    assert [row[:1] + row[2:] for row in seen] == [row[:1] + row[2:] for row in customers]  # the rest unmasked
    assert all("@" in row[1] for row in customers)
    versions = rows(analyst, "SELECT name FROM lake.crm.\"customers$refs\" WHERE type = 'TAG' ORDER BY name")
    assert versions
    pinned = rows(analyst, f"SELECT DISTINCT email FROM {CUSTOMERS} FOR VERSION AS OF '{versions[0][0]}'")
    assert pinned == [(MASK,)]
    assert rows(analyst, 'SELECT count(*) FROM lake.crm."customers$snapshots"')[0][0] >= 1
    for leaky in ("files", "partitions", "entries"):  # column lower/upper bounds would show e-mail addresses
        with pytest.raises(TrinoError, match=rf"'analyst' may not select from table lake.crm.customers\${leaky}"):
            analyst.query(f'SELECT * FROM lake.crm."customers${leaky}"')


def test_a_pii_cleared_person_sees_email_unmasked(native_stack: StackEndpoints,
                                                  customers: list[tuple[Any, ...]]) -> None:
    assert rows(client(native_stack, "dana"), f"SELECT * FROM {CUSTOMERS} ORDER BY customer_id") == customers
    assert rows(client(native_stack, "alice"), f"SELECT DISTINCT email FROM {CUSTOMERS}") == [(MASK,)]


def test_a_publisher_reads_its_domain_and_declared_inputs_whole_and_nothing_else(
        native_stack: StackEndpoints, customers: list[tuple[Any, ...]]) -> None:
    """A declared input is read whole (the publisher gets its files on S3 anyway); anything else is denied."""
    assert rows(client(native_stack, native_stack.principal_of("publisher:crm")),
                f"SELECT * FROM {CUSTOMERS} ORDER BY customer_id") == customers
    retention = client(native_stack, native_stack.principal_of("publisher:retention"))  # customers is an input
    assert rows(retention, f"SELECT * FROM {CUSTOMERS} ORDER BY customer_id") == customers
    with pytest.raises(TrinoError, match="may not select from table lake.crm.customers"):
        client(native_stack, native_stack.principal_of("publisher:billing")).query(f"SELECT 1 FROM {CUSTOMERS}")


# -- writing -----------------------------------------------------------------------------------------------------

DENIED = {
    "insert": f"INSERT INTO {CUSTOMERS} SELECT * FROM {CUSTOMERS} LIMIT 1",
    "delete": f"DELETE FROM {CUSTOMERS}",
    "update": f"UPDATE {CUSTOMERS} SET plan = 'enterprise'",
    "truncate": f"TRUNCATE TABLE {CUSTOMERS}",
    "add column": f"ALTER TABLE {CUSTOMERS} ADD COLUMN forged integer",
    "drop table": f"DROP TABLE {CUSTOMERS}",
    "replace the product by a view": f"CREATE OR REPLACE VIEW {CUSTOMERS} AS SELECT * FROM {CUSTOMERS}",
    "create view": f"CREATE VIEW lake.crm.customers_copy AS SELECT * FROM {CUSTOMERS}",
    "create table": f"CREATE TABLE lake.crm.customers_copy AS SELECT * FROM {CUSTOMERS}",
    "create schema": "CREATE SCHEMA lake.forged",
    "drop schema": "DROP SCHEMA lake.{empty_schema}",  # Trino refuses a non-empty schema before asking access
    "optimize": f"ALTER TABLE {CUSTOMERS} EXECUTE optimize",
    "expire_snapshots": f"ALTER TABLE {CUSTOMERS} EXECUTE expire_snapshots(retention_threshold => '7d')",
    "remove_orphan_files": f"ALTER TABLE {CUSTOMERS} EXECUTE remove_orphan_files(retention_threshold => '7d')",
    "procedure": "CALL lake.system.unregister_table('crm', 'customers')",
    "set properties": f"ALTER TABLE {CUSTOMERS} SET PROPERTIES format_version = 2",
}


@pytest.fixture(scope="module")
def empty_schema(native_stack: StackEndpoints) -> Iterator[str]:
    """A schema with no tables, made by the platform."""
    from pyiceberg.catalog.sql import SqlCatalog

    # Through the catalog, as the platform: Trino itself cannot create anything (read-only storage identity).
    catalog = SqlCatalog(native_stack.iceberg_catalog_name, uri=native_stack.iceberg_catalog_uri,
                         warehouse=native_stack.iceberg_warehouse, **native_stack.iceberg_s3_properties())
    name = f"empty_{uuid.uuid4().hex[:8]}"
    catalog.create_namespace(name)
    try:
        yield name
    finally:
        catalog.drop_namespace(name)
        catalog.close()


@pytest.mark.parametrize("user", ["analyst", "dana"])  # dana has no masks: only the row filter stops optimize
@pytest.mark.parametrize("action", sorted(DENIED))
def test_readers_change_nothing_through_trino(native_stack: StackEndpoints, customers: list[tuple[Any, ...]],
                                              empty_schema: str, user: str, action: str) -> None:
    before = fingerprint(native_stack)
    with pytest.raises(TrinoError, match=rf"Access denied: Trino user '{user}' may not .*Only the platform's "
                                         r"identities \(mesh_platform, ops_admin\) may"):
        client(native_stack, user).query(DENIED[action].format(empty_schema=empty_schema))
    assert fingerprint(native_stack) == before


def test_not_even_the_platform_changes_anything_through_trino(native_stack: StackEndpoints,
                                                             customers: list[tuple[Any, ...]]) -> None:
    """The rules allow platform identities everything, but Trino reaches S3 and the catalog as its read-only
    engine identity: a platform admin's DDL and writes fail in storage, and nothing changes."""
    admin = client(native_stack, "ops_admin")
    schema = f"scratch_{uuid.uuid4().hex[:8]}"
    before = fingerprint(native_stack)
    with pytest.raises(TrinoError, match="ICEBERG_CATALOG_ERROR|permission denied|Access Denied|AccessDenied"):
        admin.execute(f"CREATE SCHEMA lake.{schema}")
    with pytest.raises(TrinoError) as insert:
        admin.execute(f"INSERT INTO {CUSTOMERS} SELECT * FROM {CUSTOMERS} LIMIT 1")
    assert "Access denied: Trino user" not in str(insert.value)  # refused by storage, not by the rules
    assert rows(admin, f"SHOW SCHEMAS FROM lake LIKE '{schema}'") == []
    assert fingerprint(native_stack) == before


# -- queries and system information ------------------------------------------------------------------------------


def test_users_see_only_their_own_queries(native_stack: StackEndpoints) -> None:
    marker = f"marker_{uuid.uuid4().hex}"
    platform = client(native_stack, native_stack.principal_of("platform"))
    rows(platform, f"SELECT '{marker}'")
    analyst = client(native_stack, "analyst")
    rows(analyst, "SELECT 1")
    assert rows(analyst, 'SELECT DISTINCT "user" FROM system.runtime.queries') == [("analyst",)]
    assert rows(platform, f"SELECT DISTINCT \"user\" FROM system.runtime.queries "
                          f"WHERE query = 'SELECT ''{marker}'''") == [(platform.user,)]
    with pytest.raises(TrinoError, match="'analyst' may not select from table system.runtime.nodes"):
        analyst.query("SELECT * FROM system.runtime.nodes")
