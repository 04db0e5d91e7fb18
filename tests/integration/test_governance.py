"""The governance matrix, against the real servers: every role x action is allowed or denied as the policy says.

The whole demo pipeline runs first on the stack's S3 lake, each step as the identity that owns it
(``pipeline`` in conftest). Then every identity of the policy tries every action. After every denied
attempt the whole lake (every product's versions, row counts, checksums, every object's bytes, the
catalog's rows) is unchanged. The measured matrix is written to ``$MESH_GOVERNANCE_MATRIX`` (JSON) when set.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import psycopg2
import pytest
import trino
from botocore.config import Config
from botocore.exceptions import ClientError

from nativestack import StackEndpoints
from tests.integrity import lake_fingerprint

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ALLOWED, DENIED = "allowed", "denied"
#: Allowed or refused, either is fine; what matters is that nothing changed (the platform's table procedures:
#: the rules allow them, Trino's read-only storage identity refuses any write they attempt).
EITHER = "allowed or denied, lake unchanged"


@dataclass
class Outcome:
    role: str
    action: str
    expected: str
    measured: str
    how: str


RESULTS: list[Outcome] = []


def _trino(ep: StackEndpoints, user: str, password: str | None) -> trino.dbapi.Connection:
    from datamesh.trino import trino_session

    auth = trino.auth.BasicAuthentication(user, password) if password is not None else None
    return trino.dbapi.connect(host=ep.trino_host, port=ep.trino_port, user=user, catalog="lake",
                               http_scheme="https", auth=auth, http_session=trino_session(ep.trino_ca_file),
                               request_timeout=60)


def _run_sql(ep: StackEndpoints, user: str, password: str | None, sql: str) -> list[tuple[Any, ...]]:
    conn = _trino(ep, user, password)
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


def _s3(ep: StackEndpoints, name: str, secret: str | None = None) -> Any:
    return boto3.client(
        "s3", endpoint_url=ep.s3_endpoint, region_name=ep.region,
        aws_access_key_id=name, aws_secret_access_key=secret or ep.principals[name].s3_secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def _pg(ep: StackEndpoints, name: str) -> Any:
    return psycopg2.connect(host=ep.catalog_host, port=ep.catalog_port, dbname=ep.catalog_database, user=name,
                            password=ep.principals[name].pg_password, connect_timeout=10)


@pytest.fixture(scope="module")
def world(pipeline, native_stack: StackEndpoints) -> Iterator[dict[str, Any]]:  # noqa: ANN001
    from datamesh.policy import load_policy

    _, mesh = pipeline
    policy = load_policy(mesh.contracts)
    yield {"mesh": mesh, "ep": native_stack, "policy": policy, "root": mesh.lake.root.split("/", 1)[1]}
    if os.environ.get("MESH_GOVERNANCE_MATRIX"):
        with open(os.environ["MESH_GOVERNANCE_MATRIX"], "w") as f:
            json.dump([o.__dict__ for o in RESULTS], f, indent=1)


def attempt(world: dict[str, Any], role: str, action: str, expected: str, fn: Callable[[], Any], *,
            unchanged: bool = False) -> None:
    """Run ``fn`` as ``role``; record allowed/denied; after a denial (or with ``unchanged``, in any case)
    nothing in the lake may have changed. ``expected`` may be ``EITHER`` where only the lake matters."""
    mesh = world["mesh"]
    before = lake_fingerprint(mesh) if expected != ALLOWED or unchanged else None
    try:
        fn()
        measured, how = ALLOWED, "ok"
    except Denied as exc:
        measured, how = DENIED, str(exc)[:160]
    RESULTS.append(Outcome(role, action, expected, measured, how))
    assert expected in (measured, EITHER), f"{role} / {action}: expected {expected}, measured {measured} ({how})"
    if before is not None:
        assert lake_fingerprint(mesh) == before, f"{role} / {action}: {measured}, yet the lake changed"


class Denied(Exception):
    pass


def denied_by_trino(fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        try:
            return fn()
        except trino.exceptions.TrinoUserError as exc:  # the access rules (or the statement itself)
            raise Denied(f"Trino {exc.error_name}: {exc.message}") from None
        except trino.exceptions.HttpError as exc:
            raise Denied(f"HTTP {str(exc)[:80]}") from None
        except trino.exceptions.TrinoQueryError as exc:  # storage refused Trino's own read-only identity
            raise Denied(f"Trino {exc.error_name} (storage): {exc.message}") from None
    return run


def denied_by_s3(fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        try:
            return fn()
        except ClientError as exc:
            raise Denied(f"S3 {exc.response['Error']['Code']}") from None
    return run


# -- publishing ----------------------------------------------------------------------------------------------


def _publish_as(world: dict[str, Any], actor: str, product: str) -> None:
    from datamesh.errors import OwnershipError, StorageError
    from datamesh.platform import Mesh

    mesh = world["mesh"]
    actor_mesh = Mesh.from_settings(mesh.settings.as_actor(actor), contracts=mesh.contracts)
    latest = mesh.catalog.manifest(product)
    with mesh.session() as s:
        table = s.sql(f"select * from {mesh.contract(product).domain}.{product}").arrow()
    try:
        actor_mesh.publish(product, table, metadata={"test": "governance"})
    except (OwnershipError, StorageError) as exc:
        raise Denied(f"{type(exc).__name__}: {str(exc)[:120]}") from None
    assert actor_mesh.catalog.manifest(product).version == latest.version + 1


def test_publishers_publish_their_own_domain_only(world) -> None:  # noqa: ANN001
    attempt(world, "publisher:crm", "publish into its own domain (crm.customers)", ALLOWED,
            lambda: _publish_as(world, "publisher:crm", "customers"))
    attempt(world, "publisher:crm", "publish into another domain (billing.invoices)", DENIED,
            lambda: _publish_as(world, "publisher:crm", "invoices"))
    attempt(world, "analyst", "publish any product", DENIED, lambda: _publish_as(world, "analyst", "invoices"))


# -- S3 ------------------------------------------------------------------------------------------------------


def _s3_cases(world: dict[str, Any]) -> list[tuple[str, str, str, Callable[[], Any]]]:
    ep, root = world["ep"], world["root"]
    bucket = ep.bucket
    key = f"{root}/products/billing/invoices/data/forged-{uuid.uuid4().hex[:6]}.parquet"
    existing = next(o["Key"] for o in _s3(ep, "mesh_platform").list_objects_v2(
        Bucket=bucket, Prefix=f"{root}/products/billing/invoices/")["Contents"])
    crm_key = f"{root}/products/crm/customers/data/probe-{uuid.uuid4().hex[:6]}.txt"
    return [
        ("publisher:crm (svc_crm)", "S3 put into another domain's prefix", DENIED,
         lambda: _s3(ep, "svc_crm").put_object(Bucket=bucket, Key=key, Body=b"x")),
        ("publisher:crm (svc_crm)", "S3 delete in another domain's prefix", DENIED,
         lambda: _s3(ep, "svc_crm").delete_object(Bucket=bucket, Key=existing)),
        ("publisher:crm (svc_crm)", "S3 overwrite another domain's file", DENIED,
         lambda: _s3(ep, "svc_crm").put_object(Bucket=bucket, Key=existing, Body=b"forged")),
        ("analyst", "S3 put anywhere", DENIED,
         lambda: _s3(ep, "analyst").put_object(Bucket=bucket, Key=key, Body=b"x")),
        ("analyst", "S3 delete anywhere", DENIED,
         lambda: _s3(ep, "analyst").delete_object(Bucket=bucket, Key=existing)),
        ("analyst", "S3 read a product with PII columns (crm.customers)", DENIED,
         lambda: _s3(ep, "analyst").get_object(
             Bucket=bucket, Key=next(o["Key"] for o in _s3(ep, "mesh_platform").list_objects_v2(
                 Bucket=bucket, Prefix=f"{root}/products/crm/customers/data/")["Contents"]))["Body"].read()),
        ("analyst", "S3 read a product without PII (billing.invoices)", ALLOWED,
         lambda: _s3(ep, "analyst").get_object(Bucket=bucket, Key=existing)["Body"].read()),
        ("trino (engine)", "S3 put anywhere", DENIED,
         lambda: _s3(ep, "trino").put_object(Bucket=bucket, Key=key, Body=b"x")),
        ("wrong secret", "S3 read", DENIED,
         lambda: _s3(ep, "svc_crm", secret="not-the-secret").get_object(Bucket=bucket, Key=existing)),
        ("publisher:crm (svc_crm)", "S3 put and delete in its own prefix", ALLOWED,
         lambda: (_s3(ep, "svc_crm").put_object(Bucket=bucket, Key=crm_key, Body=b"x"),
                  _s3(ep, "svc_crm").delete_object(Bucket=bucket, Key=crm_key))),
    ]


def test_s3_matrix(world) -> None:  # noqa: ANN001
    for role, action, expected, fn in _s3_cases(world):
        attempt(world, role, action, expected, denied_by_s3(fn))


# -- the catalog database ------------------------------------------------------------------------------------


def _pg_update(world: dict[str, Any], name: str, namespace: str) -> None:
    conn = _pg(world["ep"], name)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE iceberg_tables SET metadata_location = metadata_location "
                        "WHERE table_namespace = %s", (namespace,))
            if cur.rowcount == 0:
                raise Denied(f"0 rows updatable by {name} in namespace {namespace} (row-level security)")
    except psycopg2.Error as exc:
        raise Denied(f"PostgreSQL {exc.pgcode}: {str(exc).splitlines()[0]}") from None
    finally:
        conn.close()


def test_catalog_matrix(world) -> None:  # noqa: ANN001
    attempt(world, "publisher:crm (svc_crm)", "catalog: commit a table of its own namespace", ALLOWED,
            lambda: _pg_update(world, "svc_crm", "crm"))
    attempt(world, "publisher:crm (svc_crm)", "catalog: commit a table of another namespace", DENIED,
            lambda: _pg_update(world, "svc_crm", "billing"))
    attempt(world, "analyst", "catalog: change any row", DENIED, lambda: _pg_update(world, "analyst", "billing"))
    attempt(world, "trino (engine)", "catalog: change any row", DENIED, lambda: _pg_update(world, "trino", "crm"))


# -- Trino ---------------------------------------------------------------------------------------------------

WRITES = [
    ("INSERT into a product", "INSERT INTO lake.crm.customers SELECT * FROM lake.crm.customers LIMIT 1"),
    ("DELETE from a product", "DELETE FROM lake.billing.invoices WHERE true"),
    ("UPDATE a product", "UPDATE lake.billing.invoices SET customer_id = 'forged'"),
    # Trino has no statement that writes into a tag; the branch syntax is the nearest (and is not a table).
    ("write into a pinned version (tag v1 as a branch)",
     "INSERT INTO lake.crm.\"customers@v1\" SELECT * FROM lake.crm.customers LIMIT 1"),
    ("table procedure rollback_to_snapshot (move the served version)",
     "ALTER TABLE lake.crm.customers EXECUTE rollback_to_snapshot(1)"),
    ("CREATE TABLE in a product's schema", "CREATE TABLE lake.crm.forged AS SELECT 1 AS x"),
    ("CREATE SCHEMA", "CREATE SCHEMA lake.forged"),
    ("CREATE OR REPLACE VIEW over a product", "CREATE OR REPLACE VIEW lake.crm.customers_view AS "
     "SELECT customer_id, 'enterprise' AS plan FROM lake.crm.customers"),
    ("ALTER TABLE ADD COLUMN", "ALTER TABLE lake.crm.customers ADD COLUMN forged integer"),
    ("DROP TABLE", "DROP TABLE lake.billing.invoices"),
    ("DROP SCHEMA", "DROP SCHEMA lake.billing CASCADE"),
    ("table procedure optimize", "ALTER TABLE lake.crm.customers EXECUTE optimize"),
    ("table procedure expire_snapshots", "ALTER TABLE lake.crm.customers EXECUTE expire_snapshots"),
]


def _login(world: dict[str, Any], name: str) -> tuple[str, str]:
    return name, world["ep"].principals[name].trino_password


@pytest.mark.parametrize("who", ["analyst", "alice", "dana", "svc_crm", "mesh_platform"])
def test_trino_writes_are_denied_to_everyone(world, who: str) -> None:  # noqa: ANN001
    """Readers and publishers by the access rules; the platform by Trino's read-only storage identity."""
    user, password = _login(world, who)
    for action, sql in WRITES:
        expected = EITHER if who == "mesh_platform" and "procedure" in action else DENIED
        attempt(world, who, f"Trino: {action}", expected,
                denied_by_trino(lambda sql=sql: _run_sql(world["ep"], user, password, sql)), unchanged=True)
        if who != "mesh_platform" and "pinned version" not in action:  # refused by the rules, not by accident
            assert re.search(r"PERMISSION_DENIED|with row filter", RESULTS[-1].how), (who, action, RESULTS[-1].how)


def test_trino_reads_pii_masks_and_queries(world) -> None:  # noqa: ANN001
    ep = world["ep"]
    emails = "SELECT email FROM lake.crm.customers LIMIT 5"

    def masked(who: str) -> None:
        rows = _run_sql(ep, *_login(world, who), emails)
        assert rows and all(r[0] != "" and "@" not in str(r[0]) for r in rows), rows

    def unmasked(who: str) -> None:
        rows = _run_sql(ep, *_login(world, who), emails)
        if not rows or not all("@" in str(r[0]) for r in rows):
            raise Denied(f"masked: {rows[:2]}")

    for who in ("analyst", "alice"):
        attempt(world, who, "Trino: SELECT a product and a pinned version", ALLOWED,
                lambda who=who: _run_sql(ep, *_login(world, who),
                                         "SELECT count(*) FROM lake.billing.invoices FOR VERSION AS OF 'v1'"))
        attempt(world, who, "Trino: read a PII column unmasked", DENIED, lambda who=who: unmasked(who))
        masked(who)
    attempt(world, "dana", "Trino: read a PII column unmasked (privacy_office)", ALLOWED, lambda: unmasked("dana"))
    attempt(world, "svc_billing", "Trino: SELECT a product it does not read", DENIED,
            denied_by_trino(lambda: _run_sql(ep, *_login(world, "svc_billing"),
                                             "SELECT count(*) FROM lake.crm.customers")))

    # Others' queries: the platform's query text must not be visible to an analyst.
    marker = f"marker_{uuid.uuid4().hex[:8]}"
    _run_sql(ep, *_login(world, "mesh_platform"), f"SELECT '{marker}' AS probe")

    def sees_others() -> None:
        rows = _run_sql(ep, *_login(world, "alice"), "SELECT \"user\", query FROM system.runtime.queries")
        if not any(marker in str(r[1]) and r[0] != "alice" for r in rows):
            raise Denied(f"sees {len(rows)} queries, all its own")
    attempt(world, "alice", "Trino: see other users' queries", DENIED, sees_others)


@pytest.mark.parametrize(("who", "password"), [("analyst", "wrong-password"), ("analyst", None),
                                                ("nobody", "anything")])
def test_trino_refuses_wrong_or_missing_passwords(world, who: str, password: str | None) -> None:  # noqa: ANN001
    label = {"wrong-password": "wrong password", None: "no password"}.get(password, "unknown user")
    attempt(world, label, "Trino: SELECT", DENIED,
            denied_by_trino(lambda: _run_sql(world["ep"], who, password, "SELECT 1")))


def test_mesh_query_runs_as_the_analyst_unless_told_otherwise(world, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """The CLI with only the stack's public env (no secret in the environment): credentials come from the
    private credentials file, selected by the acting identity."""
    from typer.testing import CliRunner

    from datamesh.settings import get_settings
    from meshcli import app
    from nativestack.identities import public_env

    mesh, ep = world["mesh"], world["ep"]
    for key in list(os.environ):
        if key.startswith("MESH_"):
            monkeypatch.delenv(key)
    for key, value in public_env(ep, "platform").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MESH_LAKE_URL", mesh.settings.lake_url)
    runner = CliRunner()

    def run(*args: str) -> Any:
        get_settings.cache_clear()
        result = runner.invoke(app, list(args))
        assert "Traceback" not in result.output, result.output
        return result

    try:
        sql = "select email from crm.customers order by customer_id limit 3"
        as_analyst = run("query", "--engine", "trino", "-f", "csv", sql)
        assert as_analyst.exit_code == 0, as_analyst.output
        assert "****" in as_analyst.output and "@" not in as_analyst.output
        as_platform = run("query", "--engine", "trino", "--as", "platform", "-f", "csv", sql)
        assert as_platform.exit_code == 0 and "@" in as_platform.output, as_platform.output
        # DuckDB on S3: the query identity cannot read the files of a product with PII columns at all.
        duck = run("query", "-f", "csv", "select count(*) from crm.customers")
        assert duck.exit_code == 1 and "access denied" in duck.output and "Trino" in duck.output, duck.output
        ok = run("query", "-f", "csv", "select count(*) from billing.invoices")
        assert ok.exit_code == 0, ok.output
        secrets = [s for p in ep.principals.values() for s in (p.trino_password, p.s3_secret_key, p.pg_password) if s]
        outputs = as_analyst.output + as_platform.output + duck.output + ok.output
        assert not any(s in outputs for s in secrets)
    finally:
        get_settings.cache_clear()
