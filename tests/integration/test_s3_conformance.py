"""The S3 behaviours the platform relies on, against the native stack's S3 server.

The commit point of a publish is the Iceberg catalog's compare-and-swap (in
PostgreSQL), not S3. The lake still needs from S3: create-only PUTs for the
side records ``_records/<run_id>.json`` (a run id publishes once) and for
quarantine moves, user metadata to settle a create-only PUT whose outcome is
unknown, listings (retention's orphan sweep of ``data/<run_id>/``, records and
Iceberg metadata), idempotent deletes, range reads (Parquet footers, Iceberg
manifests), multipart uploads, and modification times that are stable and
change on overwrite (readers hash a file only when its mtime moved).

Tested with both clients the platform uses: boto3 and pyarrow's S3FileSystem.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError
from pyarrow import fs as pafs

from nativestack import StackEndpoints
from tests.integration.conftest import s3_filesystem

pytestmark = pytest.mark.integration


def make_client(
    endpoints: StackEndpoints, *, access_key: str | None = None, secret_key: str | None = None
) -> BaseClient:
    return boto3.client(
        "s3",
        endpoint_url=endpoints.s3_endpoint,
        aws_access_key_id=access_key or endpoints.access_key,
        aws_secret_access_key=secret_key or endpoints.secret_key,
        region_name=endpoints.region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, max_pool_connections=16),
    )


@pytest.fixture(scope="module")
def s3(native_stack: StackEndpoints) -> Iterator[BaseClient]:
    client = make_client(native_stack)
    yield client
    client.close()


def error_code(exc: ClientError) -> str:
    return str(exc.response["Error"]["Code"])


def http_status(exc: ClientError) -> int:
    return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])


def read(s3: BaseClient, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


# --- conditional create: side records and quarantine moves --------------------------


def test_create_only_put_succeeds_once_then_412(
    s3: BaseClient, native_stack: StackEndpoints, unique_prefix: str
) -> None:
    key = f"{unique_prefix}/_records/20260101T000000Z-abc.json"
    first = s3.put_object(Bucket=native_stack.bucket, Key=key, Body=b'{"run": "a"}', IfNoneMatch="*")
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 200

    with pytest.raises(ClientError) as raised:
        s3.put_object(Bucket=native_stack.bucket, Key=key, Body=b'{"run": "b"}', IfNoneMatch="*")

    assert http_status(raised.value) == 412
    assert error_code(raised.value) == "PreconditionFailed"
    assert read(s3, native_stack.bucket, key) == b'{"run": "a"}'


def test_concurrent_create_only_puts_have_exactly_one_winner(
    s3: BaseClient, native_stack: StackEndpoints, unique_prefix: str
) -> None:
    key = f"{unique_prefix}/_records/20260101T000000Z-abc.json"
    outcomes: dict[int, str] = {}
    barrier = threading.Barrier(6)

    def commit(writer: int) -> None:
        body = f"writer-{writer}".encode() * 20_000  # large enough for the writes to overlap
        barrier.wait()
        try:
            s3.put_object(Bucket=native_stack.bucket, Key=key, Body=body, IfNoneMatch="*")
            outcomes[writer] = "committed"
        except ClientError as exc:
            outcomes[writer] = error_code(exc)

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    winners = [w for w, outcome in outcomes.items() if outcome == "committed"]
    assert len(winners) == 1, outcomes
    assert set(outcomes.values()) == {"committed", "PreconditionFailed"}
    assert read(s3, native_stack.bucket, key) == f"writer-{winners[0]}".encode() * 20_000


def test_create_only_put_keeps_its_user_metadata(
    s3: BaseClient, native_stack: StackEndpoints, unique_prefix: str
) -> None:
    """An unknown-outcome create-only PUT is settled by reading back the writer's token."""
    key = f"{unique_prefix}/_records/run.json"
    s3.put_object(Bucket=native_stack.bucket, Key=key, Body=b"{}", IfNoneMatch="*",
                  Metadata={"mesh-commit-token": "abc123"})

    head = s3.head_object(Bucket=native_stack.bucket, Key=key)

    assert head["Metadata"].get("mesh-commit-token") == "abc123"


# --- list, delete, range, modification times ---------------------------------------------


def test_list_by_prefix_with_pagination_and_delimiter(
    s3: BaseClient, native_stack: StackEndpoints, unique_prefix: str
) -> None:
    keys = [f"{unique_prefix}/orders/data/run-{r}/part-{p}.parquet" for r in (1, 2) for p in range(3)]
    keys.append(f"{unique_prefix}/orders/data-archive/x")  # shares the string prefix, not the "folder"
    for key in keys:
        s3.put_object(Bucket=native_stack.bucket, Key=key, Body=b"x")

    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=native_stack.bucket, Prefix=f"{unique_prefix}/orders/data/", PaginationConfig={"PageSize": 2}
    )
    listed = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
    folders = s3.list_objects_v2(Bucket=native_stack.bucket, Prefix=f"{unique_prefix}/orders/data/", Delimiter="/")

    assert sorted(listed) == sorted(k for k in keys if "/data/" in k)
    assert [p["Prefix"] for p in folders["CommonPrefixes"]] == [
        f"{unique_prefix}/orders/data/run-1/",
        f"{unique_prefix}/orders/data/run-2/",
    ]


def test_pyarrow_lists_a_prefix_recursively(
    lake_fs: pafs.S3FileSystem, native_stack: StackEndpoints, unique_prefix: str
) -> None:
    base = f"{native_stack.bucket}/{unique_prefix}"
    for name in ("a/1.bin", "a/b/2.bin", "c/3.bin"):
        with lake_fs.open_output_stream(f"{base}/{name}") as out:
            out.write(b"x")

    infos = lake_fs.get_file_info(pafs.FileSelector(f"{base}/a", recursive=True))

    assert sorted(i.path for i in infos if i.type == pafs.FileType.File) == [f"{base}/a/1.bin", f"{base}/a/b/2.bin"]


def test_pyarrow_lists_run_directories_as_directories(
    lake_fs: pafs.S3FileSystem, native_stack: StackEndpoints, unique_prefix: str
) -> None:
    """Retention's orphan sweep tells run directories (``data/<run_id>/``) from files in a listing."""
    base = f"{native_stack.bucket}/{unique_prefix}/data"
    for name in ("run-a/part-00000.parquet", "run-b/part-00000.parquet", "loose.parquet"):
        with lake_fs.open_output_stream(f"{base}/{name}") as out:
            out.write(b"x")

    infos = lake_fs.get_file_info(pafs.FileSelector(base, recursive=False))

    assert sorted((i.base_name, i.type) for i in infos) == [
        ("loose.parquet", pafs.FileType.File),
        ("run-a", pafs.FileType.Directory),
        ("run-b", pafs.FileType.Directory),
    ]


def test_delete_removes_object_and_is_idempotent(
    s3: BaseClient, native_stack: StackEndpoints, unique_prefix: str
) -> None:
    key = f"{unique_prefix}/tmp/part-0.parquet"
    s3.put_object(Bucket=native_stack.bucket, Key=key, Body=b"x")

    assert s3.delete_object(Bucket=native_stack.bucket, Key=key)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as raised:
        s3.head_object(Bucket=native_stack.bucket, Key=key)
    assert http_status(raised.value) == 404
    assert s3.delete_object(Bucket=native_stack.bucket, Key=key)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "Contents" not in s3.list_objects_v2(Bucket=native_stack.bucket, Prefix=f"{unique_prefix}/tmp/")


def test_missing_key_is_reported_as_not_found(s3: BaseClient, native_stack: StackEndpoints, unique_prefix: str) -> None:
    with pytest.raises(ClientError) as raised:
        s3.get_object(Bucket=native_stack.bucket, Key=f"{unique_prefix}/nothing-here")

    assert error_code(raised.value) == "NoSuchKey"


def test_range_read(
    s3: BaseClient, lake_fs: pafs.S3FileSystem, native_stack: StackEndpoints, unique_prefix: str
) -> None:
    key = f"{unique_prefix}/blob.bin"
    payload = bytes(range(256)) * 64
    s3.put_object(Bucket=native_stack.bucket, Key=key, Body=payload)

    ranged = s3.get_object(Bucket=native_stack.bucket, Key=key, Range="bytes=100-199")
    with lake_fs.open_input_file(f"{native_stack.bucket}/{key}") as handle:
        tail = handle.read_at(16, len(payload) - 16)  # how Parquet readers fetch the footer

    assert ranged["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert ranged["Body"].read() == payload[100:200]
    assert tail == payload[-16:]


def test_mtime_is_stable_and_changes_on_overwrite(
    lake_fs: pafs.S3FileSystem, native_stack: StackEndpoints, unique_prefix: str
) -> None:
    """Readers trust a file whose size and mtime match its record; a same-size overwrite must move the mtime."""
    path = f"{native_stack.bucket}/{unique_prefix}/part-00000.parquet"
    with lake_fs.open_output_stream(path) as out:
        out.write(b"a" * 1000)
    first = lake_fs.get_file_info([path])[0]
    again = lake_fs.get_file_info([path])[0]
    listed = [i for i in lake_fs.get_file_info(pafs.FileSelector(path.rsplit("/", 1)[0])) if i.path == path][0]
    time.sleep(1.1)  # S3 reports Last-Modified in whole seconds
    with lake_fs.open_output_stream(path) as out:
        out.write(b"b" * 1000)
    second = lake_fs.get_file_info([path])[0]

    assert first.mtime_ns is not None and first.size == 1000
    assert again.mtime_ns == first.mtime_ns and listed.mtime_ns == first.mtime_ns  # HEADs and a listing agree
    assert second.size == first.size and second.mtime_ns != first.mtime_ns


# --- large files and Parquet through pyarrow -------------------------------------------


def test_pyarrow_multipart_upload_of_a_large_object(
    s3: BaseClient, lake_fs: pafs.S3FileSystem, native_stack: StackEndpoints, unique_prefix: str
) -> None:
    key = f"{unique_prefix}/big.bin"
    payload = os.urandom(12 * 1024 * 1024)  # above pyarrow's 10 MB part size: two parts

    with lake_fs.open_output_stream(f"{native_stack.bucket}/{key}") as out:
        out.write(payload)

    head = s3.head_object(Bucket=native_stack.bucket, Key=key)
    assert head["ContentLength"] == len(payload)
    assert head["ETag"].strip('"').endswith("-2"), f"expected a 2-part multipart ETag, got {head['ETag']}"
    with lake_fs.open_input_stream(f"{native_stack.bucket}/{key}") as handle:
        assert hashlib.sha256(handle.read()).digest() == hashlib.sha256(payload).digest()


def test_parquet_dataset_roundtrip_with_pyarrow(
    lake_fs: pafs.S3FileSystem, native_stack: StackEndpoints, unique_prefix: str
) -> None:
    table = pa.table({"id": pa.array(range(1000), pa.int64()), "name": [f"n{i}" for i in range(1000)]})
    directory = f"{native_stack.bucket}/{unique_prefix}/orders/v1"
    pq.write_table(table.slice(0, 500), f"{directory}/part-0.parquet", filesystem=lake_fs)
    pq.write_table(table.slice(500), f"{directory}/part-1.parquet", filesystem=lake_fs)

    back = pq.read_table(directory, filesystem=lake_fs).sort_by("id")

    assert back.equals(table)


# --- errors ------------------------------------------------------------------------------


def test_wrong_secret_is_rejected(native_stack: StackEndpoints) -> None:
    client = make_client(native_stack, secret_key="not-the-secret")

    with pytest.raises(ClientError) as raised:
        client.list_objects_v2(Bucket=native_stack.bucket)

    assert http_status(raised.value) == 403
    assert error_code(raised.value) == "SignatureDoesNotMatch"


def test_unknown_access_key_is_rejected(native_stack: StackEndpoints) -> None:
    client = make_client(native_stack, access_key="nobody", secret_key="nothing")

    with pytest.raises(ClientError) as raised:
        client.put_object(Bucket=native_stack.bucket, Key="tests/should-not-exist", Body=b"x")

    assert http_status(raised.value) == 403
    assert error_code(raised.value) in {"InvalidAccessKeyId", "AccessDenied"}


def test_wrong_secret_is_rejected_by_pyarrow(native_stack: StackEndpoints) -> None:
    wrong = s3_filesystem(native_stack, secret_key="not-the-secret")

    with (
        pytest.raises(OSError, match=r"ACCESS_DENIED|SIGNATURE_DOES_NOT_MATCH|INVALID_ACCESS_KEY_ID"),
        wrong.open_output_stream(f"{native_stack.bucket}/tests/should-not-exist") as out,
    ):
        out.write(b"x")


def test_missing_bucket_is_an_error(s3: BaseClient, lake_fs: pafs.S3FileSystem) -> None:
    with pytest.raises(ClientError) as listed:
        s3.list_objects_v2(Bucket="no-such-bucket")
    with pytest.raises(ClientError) as put:
        s3.put_object(Bucket="no-such-bucket", Key="x", Body=b"x")
    with (
        pytest.raises(OSError, match=r"NO_SUCH_BUCKET|does not exist"),
        lake_fs.open_output_stream("no-such-bucket/x") as out,
    ):
        out.write(b"x")

    assert error_code(listed.value) == "NoSuchBucket"
    assert error_code(put.value) == "NoSuchBucket"
