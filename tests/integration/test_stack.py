"""The native stack: lifecycle, Trino over Parquet on S3, and the coordinator + worker mode."""

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

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import trino
from pyarrow import fs as pafs

import nativestack
from datamesh.errors import PlatformError, StackError
from nativestack import StackEndpoints
from nativestack.layout import Layout
from nativestack.lifecycle import wait_healthy
from nativestack.processes import spawn, terminate
from nativestack.services import Service
from tests.integration.conftest import STACK_START_TIMEOUT_S, free_ports, s3_filesystem, trino_connection

pytestmark = pytest.mark.integration


def query(cursor: trino.dbapi.Cursor, sql: str) -> list[list[object]]:
    cursor.execute(sql)
    return cursor.fetchall()


# --- lifecycle of the session stack -----------------------------------------------------


def test_status_reports_both_services_healthy(native_stack: StackEndpoints, native_stack_home: Path) -> None:
    report = nativestack.status(native_stack_home)

    assert report.running
    assert [s.name for s in report.services] == ["s3", "trino-coordinator"]
    assert all(s.pid and s.log_file.is_file() for s in report.services)


def test_start_again_is_idempotent(native_stack: StackEndpoints, native_stack_home: Path) -> None:
    pids = {s.name: s.pid for s in nativestack.status(native_stack_home).services}

    again = nativestack.start(
        home=native_stack_home,
        s3_port=int(native_stack.s3_endpoint.rsplit(":", 1)[1]),
        trino_port=native_stack.trino_port,
        echo=lambda _: None,
    )

    assert again == native_stack
    assert {s.name: s.pid for s in nativestack.status(native_stack_home).services} == pids


def test_start_with_other_settings_while_running_is_refused(
    native_stack: StackEndpoints, native_stack_home: Path
) -> None:
    s3_port, trino_port = free_ports(2)

    with pytest.raises(StackError, match="already runs"):
        nativestack.start(home=native_stack_home, s3_port=s3_port, trino_port=trino_port, echo=lambda _: None)


def test_credentials_are_random_and_private(native_stack: StackEndpoints, native_stack_home: Path) -> None:
    credentials_file = native_stack_home / "credentials.json"

    assert stat.S_IMODE(credentials_file.stat().st_mode) == 0o600
    assert json.loads(credentials_file.read_text())["secret_key"] == native_stack.secret_key
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


def test_cli_status_and_env(native_stack: StackEndpoints, native_stack_home: Path) -> None:
    home = ["--home", str(native_stack_home)]
    run = [sys.executable, "-m", "nativestack"]
    status_result = subprocess.run([*run, "status", *home], capture_output=True, text=True, check=False, timeout=60)
    env_result = subprocess.run([*run, "env", *home], capture_output=True, text=True, check=True, timeout=60)

    assert status_result.returncode == 0, status_result.stderr
    assert "trino-coordinator" in status_result.stdout and "healthy" in status_result.stdout
    assert f"export MESH_S3_ENDPOINT_URL={native_stack.s3_endpoint}" in env_result.stdout


# --- Trino over Parquet files on S3 ------------------------------------------------------


def test_trino_answers_select_1(trino_cursor: trino.dbapi.Cursor) -> None:
    assert query(trino_cursor, "SELECT 1") == [[1]]


def orders_table(version: int) -> pa.Table:
    rows = 3
    return pa.table(
        {
            "order_id": pa.array([version * 100 + i for i in range(rows)], pa.int64()),
            "quantity": pa.array([1, 2, 3], pa.int32()),
            "customer_name": pa.array(["ada", None, "grace"], pa.string()),
            "amount": pa.array([1.5, 2.25, -3.0], pa.float64()),
            "price": pa.array([decimal.Decimal("9.99"), decimal.Decimal("0.01"), None], pa.decimal128(10, 2)),
            "is_gift": pa.array([True, False, None], pa.bool_()),
            "ordered_date": pa.array([dt.date(2024, 1, 1), dt.date(2024, 2, 29), dt.date(1999, 12, 31)], pa.date32()),
            "ordered_at": pa.array(
                [dt.datetime(2024, 1, 1, 12, 30, 0, 123456), None, dt.datetime(1999, 12, 31, 23, 59, 59)],
                pa.timestamp("us"),
            ),
            "tags": pa.array([["a", "b"], [], None], pa.list_(pa.string())),
        }
    )


ORDERS_COLUMNS_DDL = """
    order_id bigint,
    quantity integer,
    customer_name varchar,
    amount double,
    price decimal(10, 2),
    is_gift boolean,
    ordered_date date,
    ordered_at timestamp(6),
    tags array(varchar)
"""


def expected_rows(table: pa.Table) -> list[list[object]]:
    return [list(row.values()) for row in table.to_pylist()]


@pytest.fixture()
def trino_schema(trino_cursor: trino.dbapi.Cursor, unique_prefix: str) -> Iterator[str]:
    schema = "t_" + unique_prefix.rsplit("-", 1)[1]
    query(trino_cursor, f"CREATE SCHEMA lake.{schema}")
    yield schema
    for (name,) in query(
        trino_cursor, f"SELECT table_name FROM lake.information_schema.views WHERE table_schema = '{schema}'"
    ):
        query(trino_cursor, f"DROP VIEW lake.{schema}.{name}")
    for (name,) in query(trino_cursor, f"SHOW TABLES FROM lake.{schema}"):
        query(trino_cursor, f"DROP TABLE lake.{schema}.{name}")  # external: files stay
    query(trino_cursor, f"DROP SCHEMA lake.{schema}")


def write_version(fs: pafs.S3FileSystem, location: str, table: pa.Table) -> None:
    """Two files per version directory, like a product publish."""
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), f"{location}/part-0.parquet", filesystem=fs)
    pq.write_table(table.slice(half), f"{location}/part-1.parquet", filesystem=fs)


def test_external_table_over_parquet_reads_every_column(
    trino_cursor: trino.dbapi.Cursor,
    lake_fs: pafs.S3FileSystem,
    native_stack: StackEndpoints,
    unique_prefix: str,
    trino_schema: str,
) -> None:
    table = orders_table(1)
    location = f"{native_stack.bucket}/{unique_prefix}/orders/v1"
    write_version(lake_fs, location, table)

    query(
        trino_cursor,
        f"CREATE TABLE lake.{trino_schema}.orders__v1 ({ORDERS_COLUMNS_DDL}) "
        f"WITH (external_location = 's3://{location}/', format = 'PARQUET')",
    )
    rows = query(trino_cursor, f"SELECT * FROM lake.{trino_schema}.orders__v1 ORDER BY order_id")

    assert rows == expected_rows(table)


def test_view_swap_and_comments(
    trino_cursor: trino.dbapi.Cursor,
    lake_fs: pafs.S3FileSystem,
    native_stack: StackEndpoints,
    unique_prefix: str,
    trino_schema: str,
) -> None:
    for version in (1, 2):
        location = f"{native_stack.bucket}/{unique_prefix}/orders/v{version}"
        write_version(lake_fs, location, orders_table(version))
        query(
            trino_cursor,
            f"CREATE TABLE lake.{trino_schema}.orders__v{version} ({ORDERS_COLUMNS_DDL}) "
            f"WITH (external_location = 's3://{location}/', format = 'PARQUET')",
        )
    view = f"lake.{trino_schema}.orders"

    query(trino_cursor, f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM lake.{trino_schema}.orders__v1")
    before = query(trino_cursor, f"SELECT min(order_id) FROM {view}")
    query(trino_cursor, f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM lake.{trino_schema}.orders__v2")
    after = query(trino_cursor, f"SELECT * FROM {view} ORDER BY order_id")
    query(trino_cursor, f"COMMENT ON TABLE lake.{trino_schema}.orders__v2 IS 'Orders, version 2'")
    query(trino_cursor, f"COMMENT ON VIEW {view} IS 'One row per order.'")
    comments = query(
        trino_cursor,
        "SELECT table_name, comment FROM system.metadata.table_comments "
        f"WHERE catalog_name = 'lake' AND schema_name = '{trino_schema}' ORDER BY table_name",
    )

    assert before == [[100]]
    assert after == expected_rows(orders_table(2))
    assert comments == [["orders", "One row per order."], ["orders__v1", None], ["orders__v2", "Orders, version 2"]]


def test_external_table_reads_nested_directories(
    trino_cursor: trino.dbapi.Cursor,
    lake_fs: pafs.S3FileSystem,
    native_stack: StackEndpoints,
    unique_prefix: str,
    trino_schema: str,
) -> None:
    location = f"{native_stack.bucket}/{unique_prefix}/events/v1"
    for day in ("2024-01-01", "2024-01-02"):
        pq.write_table(
            pa.table({"n": pa.array([1, 2], pa.int64())}), f"{location}/day={day}/part-0.parquet", filesystem=lake_fs
        )

    query(
        trino_cursor,
        f"CREATE TABLE lake.{trino_schema}.events__v1 (n bigint) "
        f"WITH (external_location = 's3://{location}/', format = 'PARQUET')",
    )

    assert query(trino_cursor, f"SELECT count(*), sum(n) FROM lake.{trino_schema}.events__v1") == [[4, 6]]


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
    s3_port, trino_port, worker_port = free_ports(3)
    return nativestack.start(
        workers=1,
        home=two_node_home,
        s3_port=s3_port,
        trino_port=trino_port,
        worker_ports=[worker_port],
        timeout=STACK_START_TIMEOUT_S,
    )


def test_two_node_mode_shows_both_nodes_active(two_node_stack: StackEndpoints) -> None:
    with trino_connection(two_node_stack) as connection:
        nodes = query(
            connection.cursor(), "SELECT node_id, coordinator, state FROM system.runtime.nodes ORDER BY node_id"
        )

    assert nodes == [["trino-coordinator", True, "active"], ["trino-worker-1", False, "active"]]


def test_two_node_mode_runs_table_scans_on_the_worker(two_node_stack: StackEndpoints) -> None:
    fs = s3_filesystem(two_node_stack)
    location = f"{two_node_stack.bucket}/products/shop/orders/v1"
    write_version(fs, location, orders_table(1))

    with trino_connection(two_node_stack) as connection:
        cursor = connection.cursor()
        query(cursor, "CREATE SCHEMA IF NOT EXISTS lake.shop")
        query(
            cursor,
            f"CREATE TABLE lake.shop.orders__v1 ({ORDERS_COLUMNS_DDL}) "
            f"WITH (external_location = 's3://{location}/', format = 'PARQUET')",
        )
        rows = query(cursor, "SELECT * FROM lake.shop.orders__v1 ORDER BY order_id")
        query_id = cursor.query_id
        tasks = query(cursor, f"SELECT DISTINCT node_id FROM system.runtime.tasks WHERE query_id = '{query_id}'")

    assert rows == expected_rows(orders_table(1))
    assert tasks == [["trino-worker-1"]]  # the coordinator does not execute tasks in this mode


def test_restart_keeps_data_and_metastore(two_node_stack: StackEndpoints, two_node_home: Path) -> None:
    """Stop the two-node stack and start a single node on the same state: tables survive."""
    location = f"{two_node_stack.bucket}/products/shop/returns/v1"
    write_version(s3_filesystem(two_node_stack), location, orders_table(1))
    with trino_connection(two_node_stack) as connection:
        cursor = connection.cursor()
        query(cursor, "CREATE SCHEMA IF NOT EXISTS lake.shop")
        query(
            cursor,
            f"CREATE TABLE lake.shop.returns__v1 ({ORDERS_COLUMNS_DDL}) "
            f"WITH (external_location = 's3://{location}/', format = 'PARQUET')",
        )

    nativestack.stop(two_node_home)
    assert not nativestack.status(two_node_home).running

    started = time.monotonic()
    single = nativestack.start(
        home=two_node_home,
        s3_port=int(two_node_stack.s3_endpoint.rsplit(":", 1)[1]),
        trino_port=two_node_stack.trino_port,
        timeout=STACK_START_TIMEOUT_S,
    )
    with trino_connection(single) as connection:
        rows = query(connection.cursor(), "SELECT count(*) FROM lake.shop.returns__v1")
    print(f"restart took {time.monotonic() - started:.1f}s")

    assert single.secret_key == two_node_stack.secret_key
    assert rows == [[3]]
    assert [s.name for s in nativestack.status(two_node_home).services] == ["s3", "trino-coordinator"]


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
        (trino_port,) = free_ports(1)
        with pytest.raises(StackError, match=rf"Cannot start s3: port {port} .* in use"):
            nativestack.start(home=tmp_path, s3_port=port, trino_port=trino_port, echo=lambda _: None)

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
