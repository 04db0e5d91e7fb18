"""Per-identity S3 users and catalog roles on the real stack: versitygw's bucket policy and PostgreSQL's RLS.

Every identity uses its own generated credentials (``StackEndpoints.principals``). After every denied
attempt the object or catalog row it aimed at is read back (as the platform) and must be unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg2
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError
from pyarrow import fs as pafs

from datamesh.policy import load_policy
from datamesh.policy.storage import postgres_roles_sql
from nativestack import StackEndpoints, iam, postgres
from nativestack.credentials import load_catalog_credentials, load_or_create_credentials
from nativestack.layout import Layout

pytestmark = [pytest.mark.integration]

PLATFORM, CRM, ANALYST, ENGINE = "mesh_platform", "svc_crm", "analyst", "trino"


def client(ep: StackEndpoints, name: str, secret: str | None = None) -> BaseClient:
    return boto3.client(
        "s3", endpoint_url=ep.s3_endpoint, region_name=ep.region,
        aws_access_key_id=name, aws_secret_access_key=secret or ep.principals[name].s3_secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def denied(fn: Callable[[], Any]) -> str:
    """Run ``fn``; it must fail with an S3 error: return its code."""
    with pytest.raises(ClientError) as raised:
        fn()
    return str(raised.value.response["Error"]["Code"])


@pytest.fixture(scope="module")
def s3(native_stack: StackEndpoints) -> Iterator[dict[str, BaseClient]]:
    clients = {name: client(native_stack, name) for name in (PLATFORM, CRM, ANALYST, ENGINE)}
    yield clients
    for c in clients.values():
        c.close()


@pytest.fixture()
def keys(s3: dict[str, BaseClient], native_stack: StackEndpoints) -> Iterator[dict[str, str]]:
    """One seeded object (written by the platform) per area a test aims at; removed afterwards."""
    run = uuid.uuid4().hex[:8]
    seeded = {
        "crm": f"products/crm/customers/iam-{run}/seed.txt",
        "billing": f"products/billing/invoices/iam-{run}/seed.txt",
        "models": f"models/iam-{run}/seed.txt",
        "root": f"tests/iam-{run}/seed.txt",
    }
    for area, key in seeded.items():
        s3[PLATFORM].put_object(Bucket=native_stack.bucket, Key=key, Body=f"seed {area}".encode())
    yield seeded
    for key in seeded.values():
        s3[PLATFORM].delete_object(Bucket=native_stack.bucket, Key=key)


def body(s3: dict[str, BaseClient], ep: StackEndpoints, key: str) -> bytes:
    return bytes(s3[PLATFORM].get_object(Bucket=ep.bucket, Key=key)["Body"].read())


# --- S3: the policy as measured -----------------------------------------------------------------------


def test_endpoints_carry_the_platform_user_not_the_root(native_stack: StackEndpoints, native_stack_home: Path) -> None:
    root = load_or_create_credentials(Layout(native_stack_home), None)

    root_secret_handed_out = root.secret_key == native_stack.secret_key or any(
        root.secret_key in v for v in native_stack.as_settings_env().values())  # computed apart: never printed

    assert native_stack.access_key == PLATFORM and native_stack.catalog_user == PLATFORM
    assert root.access_key != native_stack.access_key
    assert not root_secret_handed_out
    assert native_stack.as_settings_env("publisher:crm")["MESH_S3_ACCESS_KEY_ID"] == CRM
    assert native_stack.as_settings_env("analyst")["MESH_ICEBERG_CATALOG_URI"].startswith(
        "postgresql+psycopg2://analyst:")


def test_publisher_writes_its_own_domain_only(
    s3: dict[str, BaseClient], native_stack: StackEndpoints, keys: dict[str, str]
) -> None:
    bucket, crm = native_stack.bucket, s3[CRM]
    own = keys["crm"].replace("seed.txt", "own.txt")

    crm.put_object(Bucket=bucket, Key=own, Body=b"mine")
    assert crm.get_object(Bucket=bucket, Key=own)["Body"].read() == b"mine"
    crm.delete_object(Bucket=bucket, Key=own)
    crm.delete_object(Bucket=bucket, Key=keys["crm"])
    assert denied(lambda: s3[PLATFORM].head_object(Bucket=bucket, Key=keys["crm"])) == "404"

    for area in ("billing", "models", "root"):
        key = keys[area]
        assert denied(lambda k=key: crm.put_object(Bucket=bucket, Key=k, Body=b"forged")) == "AccessDenied"
        assert denied(lambda k=key: crm.delete_object(Bucket=bucket, Key=k)) == "AccessDenied"
        assert denied(lambda k=key: crm.get_object(Bucket=bucket, Key=k)) == "AccessDenied"
        assert body(s3, native_stack, key) == f"seed {area}".encode()
    # A sibling prefix that merely starts with the domain's name is another domain's.
    assert denied(lambda: crm.put_object(Bucket=bucket, Key="products/crmx/x.txt", Body=b"x")) == "AccessDenied"
    # Batch deletes are authorized per key.
    result = crm.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": keys["billing"]}]})
    assert [e["Code"] for e in result.get("Errors", [])] == ["AccessDenied"]
    assert body(s3, native_stack, keys["billing"]) == b"seed billing"
    # A copy needs read access to the source.
    assert denied(lambda: crm.copy_object(Bucket=bucket, Key=own, CopySource=f"{bucket}/{keys['billing']}")) \
        == "AccessDenied"


def test_publisher_multipart_and_create_only_puts_follow_the_same_prefixes(
    s3: dict[str, BaseClient], native_stack: StackEndpoints, keys: dict[str, str]
) -> None:
    bucket, crm = native_stack.bucket, s3[CRM]
    own = keys["crm"].replace("seed.txt", "big.bin")
    part = b"x" * (5 * 1024 * 1024)

    upload = crm.create_multipart_upload(Bucket=bucket, Key=own)["UploadId"]
    etag = crm.upload_part(Bucket=bucket, Key=own, UploadId=upload, PartNumber=1, Body=part)["ETag"]
    crm.complete_multipart_upload(Bucket=bucket, Key=own, UploadId=upload,
                                  MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert crm.head_object(Bucket=bucket, Key=own)["ContentLength"] == len(part)
    aborted = crm.create_multipart_upload(Bucket=bucket, Key=own + ".2")["UploadId"]
    crm.abort_multipart_upload(Bucket=bucket, Key=own + ".2", UploadId=aborted)
    assert denied(lambda: crm.create_multipart_upload(Bucket=bucket, Key=keys["billing"])) == "AccessDenied"

    record = keys["crm"].replace("seed.txt", "_records/r.json")
    crm.put_object(Bucket=bucket, Key=record, Body=b"1", IfNoneMatch="*")
    assert denied(lambda: crm.put_object(Bucket=bucket, Key=record, Body=b"2", IfNoneMatch="*")) \
        == "PreconditionFailed"
    assert denied(lambda: crm.put_object(Bucket=bucket, Key=keys["billing"], Body=b"2", IfNoneMatch="*")) \
        == "AccessDenied"
    assert body(s3, native_stack, record) == b"1"
    assert body(s3, native_stack, keys["billing"]) == b"seed billing"
    for key in (own, record):
        crm.delete_object(Bucket=bucket, Key=key)


def test_analyst_reads_products_without_pii_and_writes_nothing(
    s3: dict[str, BaseClient], native_stack: StackEndpoints, keys: dict[str, str]
) -> None:
    policy = load_policy()
    customers, invoices = policy.product("crm", "customers"), policy.product("billing", "invoices")
    assert customers is not None and customers.pii_columns and invoices is not None and not invoices.pii_columns
    bucket, analyst = native_stack.bucket, s3[ANALYST]

    assert analyst.get_object(Bucket=bucket, Key=keys["billing"])["Body"].read() == b"seed billing"
    assert denied(lambda: analyst.get_object(Bucket=bucket, Key=keys["crm"])) == "AccessDenied"  # PII product
    assert denied(lambda: analyst.head_object(Bucket=bucket, Key=keys["crm"])) == "403"
    for area, key in keys.items():
        assert denied(lambda k=key: analyst.put_object(Bucket=bucket, Key=k, Body=b"forged")) == "AccessDenied"
        assert denied(lambda k=key: analyst.delete_object(Bucket=bucket, Key=k)) == "AccessDenied"
        assert body(s3, native_stack, key) == f"seed {area}".encode()
    assert denied(lambda: analyst.put_object(Bucket=bucket, Key="products/billing/new.txt", Body=b"x")) \
        == "AccessDenied"
    # A missing object in a readable product is "not found"; outside its products, "forbidden".
    assert denied(lambda: analyst.head_object(Bucket=bucket, Key="products/billing/invoices/none.txt")) == "404"
    assert denied(lambda: analyst.head_object(Bucket=bucket, Key="products/billing/none.txt")) == "403"


def test_trino_engine_reads_products_and_writes_nothing(
    s3: dict[str, BaseClient], native_stack: StackEndpoints, keys: dict[str, str]
) -> None:
    bucket, engine = native_stack.bucket, s3[ENGINE]

    assert engine.get_object(Bucket=bucket, Key=keys["crm"])["Body"].read() == b"seed crm"
    assert denied(lambda: engine.get_object(Bucket=bucket, Key=keys["root"])) == "AccessDenied"
    assert denied(lambda: engine.put_object(Bucket=bucket, Key=keys["crm"], Body=b"forged")) == "AccessDenied"
    assert body(s3, native_stack, keys["crm"]) == b"seed crm"


def test_every_user_lists_the_bucket_but_only_root_changes_it(
    s3: dict[str, BaseClient], native_stack: StackEndpoints, keys: dict[str, str]
) -> None:
    bucket = native_stack.bucket
    for name in (PLATFORM, CRM, ANALYST, ENGINE):
        listed = s3[name].list_objects_v2(Bucket=bucket, Prefix=keys["billing"].rsplit("/", 1)[0] + "/")
        assert [o["Key"] for o in listed.get("Contents", [])] == [keys["billing"]]
        s3[name].head_bucket(Bucket=bucket)
    for name in (PLATFORM, CRM):
        assert denied(lambda n=name: s3[n].put_bucket_policy(Bucket=bucket, Policy='{"Statement": []}')) \
            == "AccessDenied"
        assert denied(lambda n=name: s3[n].delete_bucket_policy(Bucket=bucket)) == "AccessDenied"
        assert denied(lambda n=name: s3[n].delete_bucket(Bucket=bucket)) == "AccessDenied"
        assert denied(lambda n=name: s3[n].create_bucket(Bucket=f"other-{n.replace('_', '-')}")) == "AccessDenied"
    assert denied(lambda: s3[CRM].list_multipart_uploads(Bucket=bucket)) == "AccessDenied"
    s3[PLATFORM].list_multipart_uploads(Bucket=bucket)


def test_pyarrow_works_within_a_publishers_prefixes(native_stack: StackEndpoints, keys: dict[str, str]) -> None:
    fs = pafs.S3FileSystem(access_key=CRM, secret_key=native_stack.principals[CRM].s3_secret_key,
                           endpoint_override=native_stack.s3_endpoint, scheme="http", region=native_stack.region,
                           allow_bucket_creation=False)
    folder = f"{native_stack.bucket}/{keys['crm'].rsplit('/', 1)[0]}"

    assert fs.get_file_info(native_stack.bucket).type == pafs.FileType.Directory  # HeadBucket
    assert fs.get_file_info(f"{native_stack.bucket}/products/crm/customers").type == pafs.FileType.Directory
    with fs.open_output_stream(f"{folder}/part-0.parquet") as out:
        out.write(b"data")
    assert sorted(i.base_name for i in fs.get_file_info(pafs.FileSelector(folder))) == ["part-0.parquet", "seed.txt"]
    fs.delete_file(f"{folder}/part-0.parquet")
    with pytest.raises(OSError, match="ACCESS_DENIED|Access Denied"):
        with fs.open_output_stream(f"{native_stack.bucket}/{keys['billing']}") as out:
            out.write(b"forged")


def test_wrong_secret_and_unknown_user_are_refused(
    s3: dict[str, BaseClient], native_stack: StackEndpoints, keys: dict[str, str]
) -> None:
    wrong = client(native_stack, CRM, secret="not-the-secret-" + uuid.uuid4().hex)
    unknown = client(native_stack, "svc_nobody", secret="whatever-" + uuid.uuid4().hex)

    assert denied(lambda: wrong.put_object(Bucket=native_stack.bucket, Key=keys["crm"], Body=b"x")) \
        == "SignatureDoesNotMatch"
    assert denied(lambda: unknown.get_object(Bucket=native_stack.bucket, Key=keys["crm"])) == "InvalidAccessKeyId"
    # Another service user's secret does not make one that user.
    borrowed = client(native_stack, CRM, secret=native_stack.principals[ANALYST].s3_secret_key)
    assert denied(lambda: borrowed.get_object(Bucket=native_stack.bucket, Key=keys["crm"])) == "SignatureDoesNotMatch"
    assert body(s3, native_stack, keys["crm"]) == b"seed crm"


def test_a_granted_lake_root_gets_the_same_prefixes(
    s3: dict[str, BaseClient], native_stack: StackEndpoints, native_stack_home: Path
) -> None:
    root = f"iam-root-{uuid.uuid4().hex[:8]}"
    bucket, crm = native_stack.bucket, s3[CRM]
    key = f"{root}/products/crm/customers/x.txt"
    assert denied(lambda: crm.put_object(Bucket=bucket, Key=key, Body=b"x")) == "AccessDenied"

    assert iam.grant_lake_root(native_stack_home, f"/{root}/") == f"{root}/"
    crm.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert denied(lambda: crm.put_object(Bucket=bucket, Key=f"{root}/products/billing/x.txt", Body=b"x")) \
        == "AccessDenied"
    recorded = iam.StackAccess.load(Layout(native_stack_home))
    assert recorded is not None and {"", f"{root}/"} <= set(recorded.lake_roots)
    crm.delete_object(Bucket=bucket, Key=key)


def test_users_no_longer_in_the_policy_are_removed(native_stack: StackEndpoints, native_stack_home: Path) -> None:
    layout = Layout(native_stack_home)
    root = load_or_create_credentials(layout, None)
    admin = iam.AdminClient(native_stack.s3_endpoint, native_stack.region, root)
    admin.create_user("svc_retired", "retired-secret-" + uuid.uuid4().hex)
    retired = client(native_stack, "svc_retired", secret="irrelevant")
    access = iam.StackAccess.load(layout)
    assert access is not None

    removed = iam.apply(native_stack.s3_endpoint, native_stack.region, root, native_stack.bucket, access,
                        native_stack.principals)

    assert removed == ["svc_retired"]
    assert "svc_retired" not in admin.users()
    assert denied(lambda: retired.list_objects_v2(Bucket=native_stack.bucket)) == "InvalidAccessKeyId"
    assert {u.role for u in admin.users().values()} == {"user"}


# --- the catalog database: roles and row-level security -------------------------------------------------------


def pg(ep: StackEndpoints, name: str, **overrides: Any) -> psycopg2.extensions.connection:
    params: dict[str, Any] = {"host": ep.catalog_host, "port": ep.catalog_port, "dbname": ep.catalog_database,
                              "user": name, "password": ep.principals[name].pg_password, "connect_timeout": 10,
                              **overrides}
    connection = psycopg2.connect(**params)
    connection.autocommit = True
    return connection


#: A catalog name no engine uses, so the test rows are invisible to pyiceberg and Trino (catalog 'lake').
TEST_CATALOG = "iam_test"


@pytest.fixture()
def rows(native_stack: StackEndpoints) -> Iterator[dict[str, str]]:
    """One catalog row in namespace crm and one in billing (written by the platform); removed afterwards."""
    name = f"t_{uuid.uuid4().hex[:8]}"
    platform = pg(native_stack, PLATFORM)
    with platform.cursor() as cur:
        for ns in ("crm", "billing"):
            cur.execute("INSERT INTO iceberg_tables VALUES (%s, %s, %s, %s, NULL, 'TABLE')",
                        (TEST_CATALOG, ns, name, f"s3://lake/products/{ns}/{name}/metadata/1.json"))
    try:
        yield {"name": name}
    finally:
        with platform.cursor() as cur:
            cur.execute("DELETE FROM iceberg_tables WHERE catalog_name = %s AND table_name = %s", (TEST_CATALOG, name))
        platform.close()


def location(ep: StackEndpoints, ns: str, name: str) -> str | None:
    with pg(ep, PLATFORM) as conn, conn.cursor() as cur:
        cur.execute("SELECT metadata_location FROM iceberg_tables WHERE catalog_name = %s AND table_namespace = %s "
                    "AND table_name = %s", (TEST_CATALOG, ns, name))
        row = cur.fetchone()
    return None if row is None else str(row[0])


UPDATE = ("UPDATE iceberg_tables SET metadata_location = %s, previous_metadata_location = metadata_location "
          "WHERE catalog_name = %s AND table_namespace = %s AND table_name = %s AND metadata_location = %s")


def test_publisher_commits_rows_of_its_own_namespace_only(native_stack: StackEndpoints, rows: dict[str, str]) -> None:
    name = rows["name"]
    before = {ns: location(native_stack, ns, name) for ns in ("crm", "billing")}
    crm = pg(native_stack, CRM)
    try:
        with crm.cursor() as cur:
            own = f"s3://lake/products/crm/{name}/metadata/2.json"
            cur.execute(UPDATE, (own, TEST_CATALOG, "crm", name, before["crm"]))
            assert cur.rowcount == 1  # pyiceberg's compare-and-swap commit
            for elsewhere in ("s3://lake/products/billing/invoices/metadata/1.json",  # another domain's table
                              f"s3://lake/products/crm/{name}/metadata/../../../billing/x/metadata/1.json"):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="row-level security"):
                    cur.execute(UPDATE, (elsewhere, TEST_CATALOG, "crm", name, own))
                crm.rollback()
            cur.execute(UPDATE, ("s3://forged/2.json", TEST_CATALOG, "billing", name, before["billing"]))
            assert cur.rowcount == 0  # the row is not visible to the update: no error, nothing changed
            cur.execute("DELETE FROM iceberg_tables WHERE catalog_name = %s AND table_namespace = 'billing'",
                        (TEST_CATALOG,))
            assert cur.rowcount == 0
            cur.execute("SELECT count(*) FROM iceberg_tables WHERE catalog_name = %s", (TEST_CATALOG,))
            assert cur.fetchone() == (2,)  # it reads every row
            for statement, params in [
                ("INSERT INTO iceberg_tables VALUES (%s, 'billing', 'forged', 's3://x', NULL, 'TABLE')", (TEST_CATALOG,)),
                ("UPDATE iceberg_tables SET table_namespace = 'billing' WHERE catalog_name = %s AND table_name = %s",
                 (TEST_CATALOG, name)),
                ("INSERT INTO iceberg_namespace_properties VALUES (%s, 'billing', 'exists', 'true')", (TEST_CATALOG,)),
            ]:
                with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="row-level security"):
                    cur.execute(statement, params)
            for statement in ("ALTER TABLE iceberg_tables DISABLE ROW LEVEL SECURITY", "TRUNCATE iceberg_tables",
                              "CREATE TABLE forged (a int)", "SET ROLE mesh_platform"):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(statement)
    finally:
        crm.close()

    assert location(native_stack, "crm", name) == f"s3://lake/products/crm/{name}/metadata/2.json"
    assert location(native_stack, "billing", name) == before["billing"]
    assert location(native_stack, "billing", "forged") is None


@pytest.mark.parametrize("reader", [ANALYST, ENGINE])
def test_readers_only_select(native_stack: StackEndpoints, rows: dict[str, str], reader: str) -> None:
    name = rows["name"]
    before = location(native_stack, "crm", name)
    conn = pg(native_stack, reader)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM iceberg_tables WHERE catalog_name = %s", (TEST_CATALOG,))
            assert cur.fetchone() == (2,)
            for statement, params in [
                (UPDATE, ("s3://forged", TEST_CATALOG, "crm", name, before)),
                ("INSERT INTO iceberg_tables VALUES (%s, 'crm', 'forged', 's3://x', NULL, 'TABLE')", (TEST_CATALOG,)),
                ("DELETE FROM iceberg_tables WHERE catalog_name = %s", (TEST_CATALOG,)),
                ("INSERT INTO iceberg_namespace_properties VALUES (%s, 'crm', 'k', 'v')", (TEST_CATALOG,)),
            ]:
                with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="permission denied"):
                    cur.execute(statement, params)
    finally:
        conn.close()

    assert location(native_stack, "crm", name) == before
    assert location(native_stack, "crm", "forged") is None


def test_catalog_roles_log_in_only_to_the_catalog_database(native_stack: StackEndpoints) -> None:
    with pytest.raises(psycopg2.OperationalError, match='password authentication failed for user "svc_crm"'):
        pg(native_stack, CRM, password=native_stack.principals[CRM].pg_password + "x")
    with pytest.raises(psycopg2.OperationalError, match="no pg_hba.conf entry"):
        pg(native_stack, CRM, dbname="postgres")
    with pg(native_stack, PLATFORM) as conn, conn.cursor() as cur:
        cur.execute("SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls "
                    "FROM pg_roles WHERE rolname = ANY(%s) ORDER BY rolname", ([PLATFORM, CRM, ANALYST, ENGINE],))
        roles = cur.fetchall()
        cur.execute("SELECT tableowner FROM pg_tables WHERE tablename IN ('iceberg_tables', "
                    "'iceberg_namespace_properties')")
        owners = {r[0] for r in cur.fetchall()}

    assert roles == [(n, False, False, False, False, False) for n in sorted([PLATFORM, CRM, ANALYST, ENGINE])]
    assert owners == {postgres.CATALOG_ROLE}  # the platform role does not own the tables (no DDL, RLS applies)


def test_roles_no_longer_in_the_policy_are_dropped(native_stack: StackEndpoints, native_stack_home: Path) -> None:
    from datamesh.policy.storage import ROLE_MARKER

    layout = Layout(native_stack_home)
    catalog = load_catalog_credentials(layout)
    assert catalog is not None
    admin = postgres._superuser_connection(layout, native_stack.catalog_port, catalog, postgres.CATALOG_DATABASE)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("CREATE ROLE svc_retired LOGIN")
            cur.execute("COMMENT ON ROLE svc_retired IS %s", (ROLE_MARKER,))
            cur.execute("GRANT SELECT ON iceberg_tables TO svc_retired")
            cur.execute("CREATE ROLE unmanaged_role")
        passwords = {n: s.pg_password for n, s in native_stack.principals.items() if s.pg_password}
        dropped = postgres.apply_roles(layout, postgres.account(lambda _: None), native_stack.catalog_port, catalog,
                                       postgres_roles_sql(load_policy()), passwords)
        with admin.cursor() as cur:
            cur.execute("SELECT rolname FROM pg_roles WHERE rolname IN ('svc_retired', 'unmanaged_role')")
            left = [r[0] for r in cur.fetchall()]
    finally:
        with admin.cursor() as cur:
            cur.execute("DROP ROLE IF EXISTS unmanaged_role")
        admin.close()

    assert dropped == ["svc_retired"]
    assert left == ["unmanaged_role"]  # only roles the rendered SQL made are ever dropped
    pg(native_stack, CRM).close()  # the policy's roles still log in after the re-apply
