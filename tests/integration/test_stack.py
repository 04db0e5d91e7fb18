"""The native stack: lifecycle, PostgreSQL for the Iceberg catalog, Trino reading the Iceberg tables
pyiceberg writes on S3 (types, comments, version tags, views), and the coordinator + worker mode."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pyarrow as pa
import pytest
import trino
from pyarrow import fs as pafs
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import (
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestampType,
    TimestamptzType,
    TimeType,
)

import nativestack
from datamesh.errors import PlatformError, StackError
from nativestack import StackEndpoints, postgres
from nativestack.layout import Layout
from nativestack.lifecycle import wait_healthy
from nativestack.processes import spawn, terminate
from nativestack.services import Service
from tests.integration.conftest import STACK_START_TIMEOUT_S, free_ports, trino_connection

pytestmark = pytest.mark.integration


def query(cursor: trino.dbapi.Cursor, sql: str) -> list[list[object]]:
    cursor.execute(sql)
    return cursor.fetchall()


# --- lifecycle of the session stack -----------------------------------------------------


def test_status_reports_every_service_healthy(native_stack: StackEndpoints, native_stack_home: Path) -> None:
    report = nativestack.status(native_stack_home)

    assert report.running
    assert [s.name for s in report.services] == ["s3", "postgres", "trino-coordinator"]
    assert all(s.pid and s.log_file.is_file() for s in report.services)


def test_start_again_is_idempotent(native_stack: StackEndpoints, native_stack_home: Path) -> None:
    pids = {s.name: s.pid for s in nativestack.status(native_stack_home).services}

    again = nativestack.start(
        home=native_stack_home,
        s3_port=int(native_stack.s3_endpoint.rsplit(":", 1)[1]),
        trino_port=native_stack.trino_port,
        postgres_port=native_stack.catalog_port,
        echo=lambda _: None,
    )

    assert again == native_stack
    assert {s.name: s.pid for s in nativestack.status(native_stack_home).services} == pids


def test_start_with_other_settings_while_running_is_refused(
    native_stack: StackEndpoints, native_stack_home: Path
) -> None:
    s3_port, trino_port, postgres_port = free_ports(3)

    with pytest.raises(StackError, match="already runs"):
        nativestack.start(
            home=native_stack_home,
            s3_port=s3_port,
            trino_port=trino_port,
            postgres_port=postgres_port,
            echo=lambda _: None,
        )


def test_credentials_are_random_and_private(native_stack: StackEndpoints, native_stack_home: Path) -> None:
    credentials_file = native_stack_home / "credentials.json"

    data = json.loads(credentials_file.read_text())
    # Clients get the platform service user's key; the S3 root's stays in the file, for administration only.
    is_platform_key = data["principals"][native_stack.access_key]["s3_secret_key"] == native_stack.secret_key
    is_root_key = data["secret_key"] == native_stack.secret_key

    assert stat.S_IMODE(credentials_file.stat().st_mode) == 0o600
    assert native_stack.access_key == "mesh_platform" != data["access_key"]
    assert is_platform_key and not is_root_key
    assert len(native_stack.secret_key) >= 32
    assert native_stack.secret_key not in repr(native_stack)
    assert nativestack.endpoints(native_stack_home) == native_stack


def test_objects_persist_as_files_in_the_state_directory(
    lake_fs: pafs.S3FileSystem, native_stack: StackEndpoints, native_stack_home: Path, unique_prefix: str
) -> None:
    with lake_fs.open_output_stream(f"{native_stack.bucket}/{unique_prefix}/kept.txt") as out:
        out.write(b"on disk")

    assert (
        native_stack_home / "s3" / "data" / native_stack.bucket / unique_prefix / "kept.txt"
    ).read_bytes() == b"on disk"


def test_settings_env_points_the_platform_at_the_stack(native_stack: StackEndpoints) -> None:
    env = native_stack.as_settings_env()

    assert env["MESH_LAKE_URL"] == f"s3://{native_stack.bucket}/"
    assert env["MESH_S3_ENDPOINT_URL"] == native_stack.s3_endpoint
    assert env["MESH_TRINO_PORT"] == str(native_stack.trino_port)
    uri_is_the_platforms = env["MESH_ICEBERG_CATALOG_URI"] == (
        f"postgresql+psycopg2://mesh_platform:{native_stack.catalog_password}@127.0.0.1:{native_stack.catalog_port}/lake"
    )
    assert env["MESH_ACTOR"] == "platform" and env["MESH_S3_ACCESS_KEY_ID"] == "mesh_platform"
    assert uri_is_the_platforms


def test_cli_status_and_env(native_stack: StackEndpoints, native_stack_home: Path) -> None:
    home = ["--home", str(native_stack_home)]
    run = [sys.executable, "-m", "nativestack"]
    status_result = subprocess.run([*run, "status", *home], capture_output=True, text=True, check=False, timeout=60)
    env_result = subprocess.run([*run, "env", *home], capture_output=True, text=True, check=True, timeout=60)

    assert status_result.returncode == 0, status_result.stderr
    assert "trino-coordinator" in status_result.stdout and "healthy" in status_result.stdout
    assert f"export MESH_S3_ENDPOINT_URL={native_stack.s3_endpoint}" in env_result.stdout
    assert "postgres" in status_result.stdout
    assert native_stack.catalog_password not in status_result.stdout + status_result.stderr
    # `env` prints no secret: the credentials stay in the private file it points at.
    secrets = [s for p in native_stack.principals.values() for s in (p.trino_password, p.s3_secret_key, p.pg_password) if s]
    leaked = sum(s in env_result.stdout + env_result.stderr for s in secrets)
    assert leaked == 0, f"{leaked} secrets printed by `env`"
    assert f"export MESH_CREDENTIALS_FILE={native_stack.credentials_file}" in env_result.stdout
    assert "export MESH_ACTOR=platform" in env_result.stdout
    analyst_env = subprocess.run([*run, "env", "--as", "analyst", *home], capture_output=True, text=True, check=True,
                                 timeout=60)
    assert "export MESH_ACTOR=analyst" in analyst_env.stdout
    # `credentials` is the explicit command that prints one identity's secrets.
    creds = subprocess.run([*run, "credentials", "--as", "publisher:crm", *home], capture_output=True, text=True,
                           check=True, timeout=60)
    crm = native_stack.principals[native_stack.principal_of("publisher:crm")]
    assert crm.s3_secret_key in creds.stdout and "do not paste" in creds.stderr
    assert native_stack.secret_key not in creds.stdout  # never the platform's


# --- PostgreSQL: the Iceberg catalog's database -----------------------------------------


def catalog_connect(endpoints: StackEndpoints, **overrides: object) -> psycopg2.extensions.connection:
    params: dict[str, object] = {
        "host": endpoints.catalog_host,
        "port": endpoints.catalog_port,
        "dbname": endpoints.catalog_database,
        "user": endpoints.catalog_user,
        "password": endpoints.catalog_password,
        "connect_timeout": 10,
        **overrides,
    }
    return psycopg2.connect(**params)


def test_postgres_accepts_the_catalog_role_on_loopback(native_stack: StackEndpoints) -> None:
    connection = catalog_connect(native_stack)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_user, current_database(), rolsuper, rolcreatedb, rolcreaterole, rolreplication "
                "FROM pg_roles WHERE rolname = current_user"
            )
            role = cursor.fetchone()
            cursor.execute("SHOW listen_addresses")
            listen = cursor.fetchone()
            cursor.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'iceberg_tables'")
            owner = cursor.fetchone()
    finally:
        connection.close()

    assert native_stack.catalog_host == "127.0.0.1"
    assert (native_stack.catalog_database, native_stack.catalog_user) == ("lake", "mesh_platform")
    assert role == ("mesh_platform", "lake", False, False, False, False)  # the platform's own role, nothing more
    assert listen == ("127.0.0.1",)
    assert owner == ("lake",)  # the stack created pyiceberg's catalog tables as the owner role, not the platform


def test_postgres_refuses_a_wrong_password(native_stack: StackEndpoints) -> None:
    with pytest.raises(psycopg2.OperationalError, match='password authentication failed for user "mesh_platform"'):
        catalog_connect(native_stack, password=native_stack.catalog_password + "x")
    with pytest.raises(psycopg2.OperationalError, match='password authentication failed for user "lake"'):
        catalog_connect(native_stack, user="lake")  # the owner role's password is not the platform's


def test_postgres_superuser_is_not_reachable_without_its_password(
    native_stack: StackEndpoints, native_stack_home: Path
) -> None:
    socket_dir = str(postgres.socket_dir(Layout(native_stack_home)))

    # Over TCP there is no way in as the superuser at all, with or without a password.
    with pytest.raises(psycopg2.OperationalError, match='no pg_hba.conf entry for host "127.0.0.1", user "postgres"'):
        catalog_connect(native_stack, user="postgres", dbname="postgres", password="")
    # Over the (private) Unix socket it needs its password.
    with pytest.raises(psycopg2.OperationalError, match="no password supplied"):
        catalog_connect(native_stack, host=socket_dir, user="postgres", dbname="postgres", password="")
    with pytest.raises(psycopg2.OperationalError, match='password authentication failed for user "postgres"'):
        catalog_connect(native_stack, host=socket_dir, user="postgres", dbname="postgres", password="postgres")
    # The catalog role reaches its own database only.
    with pytest.raises(psycopg2.OperationalError, match="no pg_hba.conf entry"):
        catalog_connect(native_stack, dbname="postgres")


def test_postgres_passwords_are_generated_and_private(native_stack: StackEndpoints, native_stack_home: Path) -> None:
    data = json.loads((native_stack_home / "credentials.json").read_text())
    described = nativestack.status(native_stack_home).describe()

    is_the_platforms = data["principals"]["mesh_platform"]["pg_password"] == native_stack.catalog_password
    owner_differs = data["catalog_password"] != native_stack.catalog_password

    assert is_the_platforms and owner_differs
    assert len(data["catalog_password"]) >= 32 and len(data["postgres_superuser_password"]) >= 32
    assert data["catalog_password"] != data["postgres_superuser_password"]
    assert native_stack.catalog_password not in repr(native_stack)
    assert native_stack.catalog_password not in described
    assert data["postgres_superuser_password"] not in described


def test_postgres_runs_unprivileged_with_a_private_data_directory(native_stack_home: Path) -> None:
    (pg,) = [s for s in nativestack.status(native_stack_home).services if s.name == "postgres"]
    assert pg.pid is not None
    proc_status = Path(f"/proc/{pg.pid}/status").read_text()
    uid = int(next(line for line in proc_status.splitlines() if line.startswith("Uid:")).split()[1])
    groups = next(line for line in proc_status.splitlines() if line.startswith("Groups:")).split()[1:]
    data = Layout(native_stack_home).postgres_data

    assert uid != 0
    if os.geteuid() == 0:
        import pwd

        assert pwd.getpwuid(uid).pw_name == postgres.SYSTEM_USER
        assert groups == []  # no supplementary groups inherited from root
    else:
        assert uid == os.geteuid()
    assert data.stat().st_uid == uid
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert "scram-sha-256" in (data / "pg_hba.conf").read_text()
    assert "trust" not in (data / "pg_hba.conf").read_text()


# --- products: Iceberg tables pyiceberg writes, Trino reads --------------------------------


def open_catalog(endpoints: StackEndpoints) -> SqlCatalog:
    """pyiceberg's catalog of a running stack, as the platform opens it (``MESH_ICEBERG_CATALOG_URI``)."""
    return SqlCatalog(
        endpoints.iceberg_catalog_name,
        uri=endpoints.iceberg_catalog_uri,
        warehouse=endpoints.iceberg_warehouse,
        **endpoints.iceberg_s3_properties(),
    )


#: A product's schema with every column type the platform maps (and column docs).
ORDERS_SCHEMA = Schema(
    NestedField(1, "order_id", LongType(), doc="The order's key."),
    NestedField(2, "quantity", IntegerType()),
    NestedField(3, "customer", StringType(), doc="Who ordered."),
    NestedField(4, "amount", DoubleType()),
    NestedField(5, "is_gift", BooleanType()),
    NestedField(6, "ordered_date", DateType()),
    NestedField(7, "ordered_at", TimestampType()),
    NestedField(8, "paid_at", TimestamptzType()),
    NestedField(9, "price", DecimalType(12, 2)),
    NestedField(10, "pickup_time", TimeType()),
)

#: What Trino's DESCRIBE shows for ORDERS_SCHEMA.
ORDERS_TRINO_TYPES = [
    ["order_id", "bigint"],
    ["quantity", "integer"],
    ["customer", "varchar"],
    ["amount", "double"],
    ["is_gift", "boolean"],
    ["ordered_date", "date"],
    ["ordered_at", "timestamp(6)"],
    ["paid_at", "timestamp(6) with time zone"],
    ["price", "decimal(12,2)"],
    ["pickup_time", "time(6)"],
]


def orders_table(version: int) -> pa.Table:
    """Three rows of ``version``: extreme values, then a row of nulls (order ids ``version * 100 + i``)."""
    utc = dt.UTC
    return pa.table(
        {
            "order_id": pa.array([version * 100 + i for i in range(3)], pa.int64()),
            "quantity": pa.array([1, -(2**31), None], pa.int32()),
            "customer": pa.array(["ada", "gr\u00e2ce \U0001f642", None], pa.string()),
            "amount": pa.array([1.5, -3.0e300, None], pa.float64()),
            "is_gift": pa.array([True, False, None], pa.bool_()),
            "ordered_date": pa.array([dt.date(2024, 2, 29), dt.date(1899, 12, 31), None], pa.date32()),
            "ordered_at": pa.array(
                [dt.datetime(2024, 1, 1, 12, 30, 0, 123456), dt.datetime(1969, 12, 31, 23, 59, 59), None],
                pa.timestamp("us"),
            ),
            "paid_at": pa.array(
                [dt.datetime(2024, 1, 1, 12, 30, 0, 123456, tzinfo=utc), dt.datetime(1970, 1, 1, tzinfo=utc), None],
                pa.timestamp("us", tz="UTC"),
            ),
            "price": pa.array([decimal.Decimal("9999999999.99"), decimal.Decimal("-0.01"), None], pa.decimal128(12, 2)),
            "pickup_time": pa.array([dt.time(23, 59, 59, 999999), dt.time(0, 0), None], pa.time64("us")),
        }
    )


def expected_rows(table: pa.Table) -> list[list[object]]:
    return [list(row.values()) for row in table.to_pylist()]


def create_product(
    catalog: SqlCatalog,
    endpoints: StackEndpoints,
    domain: str,
    product: str,
    *,
    properties: dict[str, str] | None = None,
) -> Table:
    """An empty product table ``<domain>.<product>`` at ``s3://<bucket>/products/<domain>/<product>``."""
    catalog.create_namespace_if_not_exists(domain)
    return catalog.create_table(
        (domain, product),
        ORDERS_SCHEMA,
        location=f"s3://{endpoints.bucket}/products/{domain}/{product}",
        properties={"format-version": "2", **(properties or {})},
    )


def publish(table: Table, version: int, data: pa.Table) -> int:
    """Write ``data`` as the table's whole content and tag the snapshot ``v<version>``; its snapshot id."""
    if table.current_snapshot() is None:
        table.append(data)
    else:
        table.overwrite(data)
    snapshot = table.current_snapshot()
    assert snapshot is not None
    table.manage_snapshots().create_tag(snapshot.snapshot_id, f"v{version}").commit()
    return snapshot.snapshot_id


def drop_domain(catalog: SqlCatalog, cursor: trino.dbapi.Cursor, domain: str) -> None:
    """Drop the Trino views, then purge the tables (files included), then the namespace."""
    for (view,) in query(
        cursor, f"SELECT table_name FROM lake.information_schema.views WHERE table_schema = '{domain}'"
    ):
        query(cursor, f"DROP VIEW lake.{domain}.{view}")
    for identifier in catalog.list_tables(domain):
        catalog.purge_table(identifier)
    catalog.drop_namespace(domain)


@pytest.fixture()
def lake_catalog(native_stack: StackEndpoints) -> Iterator[SqlCatalog]:
    catalog = open_catalog(native_stack)
    try:
        yield catalog
    finally:
        catalog.close()


@pytest.fixture()
def domain(lake_catalog: SqlCatalog, trino_cursor: trino.dbapi.Cursor, unique_prefix: str) -> Iterator[str]:
    """A fresh namespace (a product domain) of the catalog, dropped with its tables and views afterwards."""
    name = "d_" + unique_prefix.rsplit("-", 1)[1]
    lake_catalog.create_namespace(name)
    try:
        yield name
    finally:
        drop_domain(lake_catalog, trino_cursor, name)


def test_trino_lists_the_iceberg_catalog(trino_cursor: trino.dbapi.Cursor) -> None:
    assert ["lake"] in query(trino_cursor, "SHOW CATALOGS")
    assert ["information_schema"] in query(trino_cursor, "SHOW SCHEMAS FROM lake")


def test_trino_answers_select_1(trino_cursor: trino.dbapi.Cursor) -> None:
    assert query(trino_cursor, "SELECT 1") == [[1]]


def test_trino_reads_an_iceberg_table_pyiceberg_wrote(
    native_stack: StackEndpoints, trino_cursor: trino.dbapi.Cursor
) -> None:
    catalog = open_catalog(native_stack)
    try:
        catalog.create_namespace("probe")
        # Under products/: the only prefix Trino's read-only storage identity may read.
        table = catalog.create_table("probe.t", schema=pa.schema([pa.field("n", pa.int64())]),
                                     location=f"s3://{native_stack.bucket}/products/probe/t")
        table.append(pa.table({"n": pa.array([1, 2, 3], pa.int64())}))

        schemas = query(trino_cursor, "SHOW SCHEMAS FROM lake")
        counted = query(trino_cursor, "SELECT count(*), sum(n) FROM lake.probe.t")

        assert ["probe"] in schemas
        assert counted == [[3, 6]]
        assert table.metadata_location.startswith(f"s3://{native_stack.bucket}/products/probe/t/")
    finally:
        if catalog.table_exists("probe.t"):
            catalog.purge_table("probe.t")
        if ("probe",) in catalog.list_namespaces():
            catalog.drop_namespace("probe")
        catalog.close()
    assert ["probe"] not in query(trino_cursor, "SHOW SCHEMAS FROM lake")


def test_every_column_type_round_trips_from_pyiceberg_to_trino(
    lake_catalog: SqlCatalog,
    native_stack: StackEndpoints,
    trino_cursor: trino.dbapi.Cursor,
    lake_fs: pafs.S3FileSystem,
    domain: str,
) -> None:
    table = create_product(lake_catalog, native_stack, domain, "orders")
    table.append(orders_table(1))

    described = query(trino_cursor, f"DESCRIBE lake.{domain}.orders")
    rows = query(trino_cursor, f"SELECT * FROM lake.{domain}.orders ORDER BY order_id")
    data_files = lake_fs.get_file_info(
        pafs.FileSelector(f"{native_stack.bucket}/products/{domain}/orders/data", recursive=True)
    )

    assert [[column, type_] for column, type_, *_ in described] == ORDERS_TRINO_TYPES
    assert rows == expected_rows(orders_table(1))
    assert [f.path for f in data_files if f.path.endswith(".parquet")]  # under the product's own location


def test_table_and_column_comments_show_in_trino(
    lake_catalog: SqlCatalog, native_stack: StackEndpoints, trino_cursor: trino.dbapi.Cursor, domain: str
) -> None:
    table = create_product(
        lake_catalog, native_stack, domain, "orders", properties={"comment": "Orders: one row per order."}
    )
    table.append(orders_table(1))

    def comments() -> tuple[list[list[object]], list[list[object]], list[list[object]]]:
        table_comments = query(
            trino_cursor,
            "SELECT table_name, comment FROM system.metadata.table_comments "
            f"WHERE catalog_name = 'lake' AND schema_name = '{domain}'",
        )
        column_comments = query(
            trino_cursor,
            "SELECT column_name, comment FROM lake.information_schema.columns "
            f"WHERE table_schema = '{domain}' AND table_name = 'orders' AND comment IS NOT NULL "
            "ORDER BY ordinal_position",
        )
        shown = query(trino_cursor, f"SHOW COLUMNS FROM lake.{domain}.orders")
        return table_comments, column_comments, [[column, comment] for column, _, _, comment in shown[:3]]

    before = comments()
    with table.transaction() as tx:
        tx.set_properties(comment="Orders, version 2.")
        with tx.update_schema() as update:
            update.update_column("quantity", doc="Items ordered.")
    after = comments()

    assert before == (
        [["orders", "Orders: one row per order."]],
        [["order_id", "The order's key."], ["customer", "Who ordered."]],
        [["order_id", "The order's key."], ["quantity", ""], ["customer", "Who ordered."]],
    )
    assert after == (
        [["orders", "Orders, version 2."]],
        [["order_id", "The order's key."], ["quantity", "Items ordered."], ["customer", "Who ordered."]],
        [["order_id", "The order's key."], ["quantity", "Items ordered."], ["customer", "Who ordered."]],
    )


def test_time_travel_to_a_version_tag(
    lake_catalog: SqlCatalog, native_stack: StackEndpoints, trino_cursor: trino.dbapi.Cursor, domain: str
) -> None:
    table = create_product(lake_catalog, native_stack, domain, "orders")
    v1 = publish(table, 1, orders_table(1))
    v2 = publish(table, 2, orders_table(2))
    orders = f"lake.{domain}.orders"

    at_v1 = query(trino_cursor, f"SELECT * FROM {orders} FOR VERSION AS OF 'v1' ORDER BY order_id")
    at_v2 = query(trino_cursor, f"SELECT * FROM {orders} FOR VERSION AS OF 'v2' ORDER BY order_id")
    latest = query(trino_cursor, f"SELECT * FROM {orders} ORDER BY order_id")
    refs = query(trino_cursor, f'SELECT name, type, snapshot_id FROM lake.{domain}."orders$refs" ORDER BY name')

    assert at_v1 == expected_rows(orders_table(1))
    assert at_v2 == latest == expected_rows(orders_table(2))
    assert refs == [["main", "BRANCH", v2], ["v1", "TAG", v1], ["v2", "TAG", v2]]


def test_trino_creates_no_views_not_even_for_the_platform(
    lake_catalog: SqlCatalog, native_stack: StackEndpoints, trino_cursor: trino.dbapi.Cursor, domain: str
) -> None:
    """Trino 476 could store views in the JDBC catalog, but it reaches the catalog and S3 as the policy's
    read-only engine identity: even the platform's CREATE VIEW fails, and the catalog is unchanged."""
    table = create_product(lake_catalog, native_stack, domain, "orders")
    publish(table, 1, orders_table(1))
    with pytest.raises(trino.exceptions.TrinoQueryError):
        query(
            trino_cursor,
            f"CREATE VIEW lake.{domain}.orders__v1 AS SELECT * FROM lake.{domain}.orders FOR VERSION AS OF 'v1'",
        )
    views = query(trino_cursor, f"SELECT table_name FROM lake.information_schema.views WHERE table_schema = '{domain}'")
    assert views == []
    assert lake_catalog.list_tables(domain) == [(domain, "orders")]
    assert query(trino_cursor, f"SELECT count(*) FROM lake.{domain}.orders FOR VERSION AS OF 'v1'") == [[3]]


# --- coordinator + worker ----------------------------------------------------------------


@pytest.fixture(scope="module")
def two_node_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("two-node-stack")
    try:
        yield home
    finally:
        nativestack.stop(home)


@pytest.fixture(scope="module")
def two_node_stack(two_node_home: Path) -> StackEndpoints:
    s3_port, trino_port, worker_port, postgres_port = free_ports(4)
    return nativestack.start(
        workers=1,
        home=two_node_home,
        s3_port=s3_port,
        trino_port=trino_port,
        worker_ports=[worker_port],
        postgres_port=postgres_port,
        timeout=STACK_START_TIMEOUT_S,
    )


def test_two_node_mode_shows_both_nodes_active(two_node_stack: StackEndpoints) -> None:
    with trino_connection(two_node_stack) as connection:
        nodes = query(
            connection.cursor(), "SELECT node_id, coordinator, state FROM system.runtime.nodes ORDER BY node_id"
        )

    assert nodes == [["trino-coordinator", True, "active"], ["trino-worker-1", False, "active"]]


def test_two_node_mode_runs_table_scans_on_the_worker(two_node_stack: StackEndpoints) -> None:
    catalog = open_catalog(two_node_stack)
    try:
        publish(create_product(catalog, two_node_stack, "shop", "orders"), 1, orders_table(1))
    finally:
        catalog.close()

    with trino_connection(two_node_stack) as connection:
        cursor = connection.cursor()
        rows = query(cursor, "SELECT * FROM lake.shop.orders ORDER BY order_id")
        query_id = cursor.query_id
        tasks = query(cursor, f"SELECT DISTINCT node_id FROM system.runtime.tasks WHERE query_id = '{query_id}'")

    assert rows == expected_rows(orders_table(1))
    assert tasks == [["trino-worker-1"]]  # the coordinator does not execute tasks in this mode


def test_restart_keeps_data_and_catalog(two_node_stack: StackEndpoints, two_node_home: Path) -> None:
    """Stop the two-node stack and start a single node on the same state: tables pyiceberg and Trino wrote survive."""
    catalog = open_catalog(two_node_stack)
    try:
        returns = create_product(catalog, two_node_stack, "shop", "returns")
        publish(returns, 1, orders_table(1))
        publish(returns, 2, orders_table(2))
        refunds_table = create_product(catalog, two_node_stack, "shop", "refunds")
        publish(refunds_table, 1, orders_table(2))
    finally:
        catalog.close()
    with trino_connection(two_node_stack) as connection:  # the two-node stack reads what pyiceberg wrote
        assert query(connection.cursor(), "SELECT count(*) FROM lake.shop.refunds") == [[3]]

    nativestack.stop(two_node_home)
    assert not nativestack.status(two_node_home).running

    started = time.monotonic()
    single = nativestack.start(
        home=two_node_home,
        s3_port=int(two_node_stack.s3_endpoint.rsplit(":", 1)[1]),
        trino_port=two_node_stack.trino_port,
        postgres_port=two_node_stack.catalog_port,
        timeout=STACK_START_TIMEOUT_S,
    )
    with trino_connection(single) as connection:
        cursor = connection.cursor()
        latest = query(cursor, "SELECT * FROM lake.shop.returns ORDER BY order_id")
        at_v1 = query(cursor, "SELECT * FROM lake.shop.returns FOR VERSION AS OF 'v1' ORDER BY order_id")
        refunds = query(cursor, "SELECT count(*), min(order_id) FROM lake.shop.refunds")
    print(f"restart took {time.monotonic() - started:.1f}s")
    reopened = open_catalog(single)
    try:
        tags = sorted(name for name in reopened.load_table("shop.returns").metadata.refs if name != "main")
    finally:
        reopened.close()

    assert single.secret_key == two_node_stack.secret_key
    assert single.catalog_password == two_node_stack.catalog_password
    assert latest == expected_rows(orders_table(2))
    assert at_v1 == expected_rows(orders_table(1))
    assert refunds == [[3, 200]]
    assert tags == ["v1", "v2"]
    assert [s.name for s in nativestack.status(two_node_home).services] == ["s3", "postgres", "trino-coordinator"]


# --- errors ------------------------------------------------------------------------------


def test_stack_error_belongs_to_the_platform_hierarchy() -> None:
    assert issubclass(StackError, PlatformError)


def test_status_and_stop_of_an_empty_home(tmp_path: Path) -> None:
    nativestack.stop(tmp_path, echo=lambda _: None)

    assert nativestack.status(tmp_path).services == ()
    assert not nativestack.status(tmp_path).running
    with pytest.raises(StackError, match="No stack has been started"):
        nativestack.endpoints(tmp_path)


def test_busy_port_names_the_service_and_port(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind((nativestack.HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        trino_port, postgres_port = free_ports(2)
        with pytest.raises(StackError, match=rf"Cannot start s3: port {port} .* in use"):
            nativestack.start(
                home=tmp_path, s3_port=port, trino_port=trino_port, postgres_port=postgres_port, echo=lambda _: None
            )

    assert nativestack.status(tmp_path).running is False


def test_missing_jdk_is_reported(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="MESH_JAVA_HOME"):
        nativestack.start(home=tmp_path, java_home=tmp_path / "no-jdk", echo=lambda _: None)


def test_service_that_dies_while_starting_reports_its_log(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    service = Service(
        name="broken",
        url="http://127.0.0.1:1",
        argv=["/bin/sh", "-c", "echo 'config error: no such property foo.bar' >&2; exit 3"],
        env=dict(os.environ),
        cwd=tmp_path,
        program="/bin/sh",
        healthy=lambda: False,
    )
    service.process, service.log_offset = spawn(
        service.argv,
        env=service.env,
        log_file=layout.log_file("broken"),
        pid_file=layout.pid_file("broken"),
        cwd=tmp_path,
    )

    with pytest.raises(StackError) as raised:
        wait_healthy([service], layout, timeout=30, echo=lambda _: None)

    message = str(raised.value)
    assert "broken exited with code 3" in message
    assert str(layout.log_file("broken")) in message
    assert "config error: no such property foo.bar" in message


def test_service_that_never_gets_healthy_times_out_with_its_log(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    service = Service(
        name="slow",
        url="http://127.0.0.1:1",
        argv=["/bin/sh", "-c", "echo still warming up; exec sleep 60"],
        env=dict(os.environ),
        cwd=tmp_path,
        program="sleep",
        healthy=lambda: False,
    )
    service.process, service.log_offset = spawn(
        service.argv, env=service.env, log_file=layout.log_file("slow"), pid_file=layout.pid_file("slow"), cwd=tmp_path
    )
    try:
        with pytest.raises(StackError, match=r"slow did not become healthy within 1s(.|\n)*still warming up"):
            wait_healthy([service], layout, timeout=1, echo=lambda _: None)
    finally:
        terminate(service.process.pid, timeout=5)

    assert service.process.poll() is not None
