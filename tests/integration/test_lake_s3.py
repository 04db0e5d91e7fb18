"""The publish protocol on a real S3 server: DuckDB (httpfs + iceberg) and Trino read the same Iceberg versions."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

import nativestack
from datamesh.errors import ConflictError, QualityError, StorageError
from datamesh.parity import check_all, check_product
from datamesh.platform import Mesh
from datamesh.publish import Publisher
from datamesh.settings import Settings
from datamesh.trino import TrinoClient, trino_versions, version_relation
from nativestack import StackEndpoints
from tests.conftest import ORDERS_CONTRACT, WIDGETS_CONTRACT, widgets_table

pytestmark = pytest.mark.integration

COLOR_DOC = "The widget's paint colour."
PRICE_DOC = "List price in euros."


def s3_settings(ep: StackEndpoints, contracts: Path, prefix: str, *, trino: bool = True, **overrides: object) -> Settings:
    """The platform's settings on a lake at ``s3://<bucket>/<prefix>``: its S3 keys, catalog role and Trino login."""
    values: dict[str, object] = {
        k.removeprefix("MESH_").lower(): v for k, v in ep.as_settings_env("platform").items()
    }
    values.update({"lake_url": f"s3://{ep.bucket}/{prefix}", "contracts_dir": contracts})
    if not trino:
        values["trino_host"] = None
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture()
def domain(native_stack_home: Path) -> str:
    """A fresh domain per test: its Iceberg namespace in the stack's shared catalog, and its Trino schema.

    Its lake root ``tests/<domain>`` is granted on the stack, so Trino's read-only identity reads it."""
    name = f"t{uuid.uuid4().hex[:10]}"
    nativestack.grant_lake_root(native_stack_home, f"tests/{name}")
    return name


@pytest.fixture()
def s3_contracts(tmp_path: Path, domain: str) -> Path:
    root = tmp_path / "contracts"
    (root / domain).mkdir(parents=True)
    widgets = (WIDGETS_CONTRACT.replace("domain: shop", f"domain: {domain}")
               .replace("  - name: color\n    type: string\n",
                        f"  - name: color\n    type: string\n    description: {COLOR_DOC}\n")
               .replace("  - name: price\n    type: double\n",
                        f"  - name: price\n    type: double\n    description: {PRICE_DOC}\n"))
    assert COLOR_DOC in widgets and PRICE_DOC in widgets
    (root / domain / "widgets.yaml").write_text(widgets)
    (root / domain / "widget_orders.yaml").write_text(ORDERS_CONTRACT.replace("domain: shop", f"domain: {domain}"))
    return root


@pytest.fixture()
def s3_mesh(native_stack: StackEndpoints, s3_contracts: Path, domain: str) -> Mesh:
    return Mesh.from_settings(s3_settings(native_stack, s3_contracts, f"tests/{domain}"))


def trino(ep: StackEndpoints) -> TrinoClient:
    """The platform's Trino login on the stack (https, its password, the stack's CA)."""
    return TrinoClient.from_settings(Settings(**{  # type: ignore[arg-type]
        k.removeprefix("MESH_").lower(): v for k, v in ep.as_settings_env("platform").items()}))


def test_publish_read_back_in_duckdb_and_trino(s3_mesh: Mesh, native_stack: StackEndpoints, domain: str) -> None:
    m1 = s3_mesh.publish("widgets", widgets_table(10))
    m2 = s3_mesh.publish("widgets", widgets_table(25, color="green"))
    assert (m1.version, m2.version) == (1, 2)
    assert s3_mesh.catalog.file_uris(m2)[0].startswith("s3://")
    assert m2.metadata_location and m2.metadata_location.startswith(f"s3://{native_stack.bucket}/tests/{domain}/")
    with s3_mesh.session() as s:  # DuckDB over S3: httpfs + iceberg_scan, extensions from PyPI wheels
        assert s.sql("select count(*), min(color) from widgets").fetchone() == (25, "green")
        assert s.sql("select count(*), min(color) from widgets__v1").fetchone() == (10, "red")
    t = trino(native_stack)
    contract = s3_mesh.contract("widgets")
    assert t.query(f"select count(*), min(color) from {domain}.widgets")[1] == [(25, "green")]
    assert t.query(f"select count(*), min(color) from {version_relation('lake', contract, 1)}")[1] == [(10, "red")]
    assert t.query(f"select count(*) from {version_relation('lake', contract, 2)}")[1] == [(25,)]
    assert trino_versions(t, contract) == {1, 2}
    with s3_mesh.session() as s:
        for version in (1, 2):
            report = check_product(s, t, contract, version)
            assert report.ok, report.differences
            assert report.compared > 10


def test_trino_shows_the_contract_as_comments(s3_mesh: Mesh, native_stack: StackEndpoints, domain: str) -> None:
    s3_mesh.publish("widgets", widgets_table(3))
    t = trino(native_stack)
    _, comments = t.query(
        "select comment from system.metadata.table_comments where catalog_name = 'lake' "
        f"and schema_name = '{domain}' and table_name = 'widgets'")
    assert comments, f"Trino has no table {domain}.widgets"
    assert "Widgets for sale." in comments[0][0] and "One row per widget." in comments[0][0]
    assert "shop-team" in comments[0][0]
    _, described = t.query(f"describe {domain}.widgets")
    columns = {row[0]: (row[1], row[3]) for row in described}
    assert list(columns) == ["widget_id", "color", "price", "made_at"]
    assert columns["widget_id"][0] == "bigint" and columns["made_at"][0].startswith("timestamp")
    assert columns["color"] == ("varchar", COLOR_DOC)
    assert columns["price"] == ("double", PRICE_DOC)
    assert columns["widget_id"][1] in (None, "")


def test_snapshot_summary_in_trino_names_version_and_run(s3_mesh: Mesh, native_stack: StackEndpoints,
                                                         domain: str) -> None:
    m1 = s3_mesh.publish("widgets", widgets_table(3))
    m2 = s3_mesh.publish("widgets", widgets_table(5))
    _, rows = trino(native_stack).query(
        "select snapshot_id, summary['mesh.version'], summary['mesh.run-id'], summary['mesh.rows'] "
        f'from {domain}."widgets$snapshots" order by committed_at')
    assert [(r[1], r[2], r[3]) for r in rows] == [("1", m1.run_id, "3"), ("2", m2.run_id, "5")]
    assert [r[0] for r in rows] == [m1.snapshot_id, m2.snapshot_id]
    _, refs = trino(native_stack).query(f'select name, type, snapshot_id from {domain}."widgets$refs" order by name')
    assert ("v1", "TAG", m1.snapshot_id) in refs and ("v2", "TAG", m2.snapshot_id) in refs
    assert ("main", "BRANCH", m2.snapshot_id) in refs


def test_published_version_is_in_trino_with_no_registration_step(native_stack: StackEndpoints,
                                                                  s3_contracts: Path, domain: str) -> None:
    """Trino reads the catalog the platform commits to: a publish has nothing to register, even with Trino down."""
    prefix = f"tests/{domain}"
    without_trino = Mesh.from_settings(s3_settings(native_stack, s3_contracts, prefix, trino=False))
    assert without_trino.catalog.commit_hooks == []
    without_trino.publish("widgets", widgets_table(3))
    t = trino(native_stack)
    assert t.query(f"select count(*) from {domain}.widgets")[1] == [(3,)]
    trino_down = Mesh.from_settings(s3_settings(native_stack, s3_contracts, prefix, trino_port=1))
    m2 = trino_down.publish("widgets", widgets_table(6))  # no error: no Trino call in a publish
    assert m2.version == 2
    assert t.query(f"select count(*) from {domain}.widgets")[1] == [(6,)]
    assert trino_versions(t, without_trino.contract("widgets")) == {1, 2}


def test_failed_publish_keeps_previous_version_everywhere(s3_mesh: Mesh, native_stack: StackEndpoints,
                                                          domain: str) -> None:
    s3_mesh.publish("widgets", widgets_table(4))
    with pytest.raises(QualityError, match="color_accepted_values"):
        s3_mesh.publish("widgets", widgets_table(5, color="purple"))
    assert s3_mesh.catalog.versions("widgets") == [1]
    assert s3_mesh.catalog.latest_version("widgets") == 1
    with s3_mesh.session() as s:
        assert s.sql("select count(*) from widgets").fetchone() == (4,)
    t = trino(native_stack)
    assert t.query(f"select count(*) from {domain}.widgets")[1] == [(4,)]
    assert trino_versions(t, s3_mesh.contract("widgets")) == {1}
    paths = s3_mesh.catalog.paths("widgets")
    assert len(s3_mesh.lake.list_dir(paths.data)) == 1  # the failed publish's staged files are gone
    assert len(s3_mesh.lake.list_dir(paths.records)) == 1


def test_commit_race_on_s3_has_one_winner(s3_mesh: Mesh, native_stack: StackEndpoints, domain: str) -> None:
    contract = s3_mesh.contract("widgets")
    barrier = threading.Barrier(3)
    outcomes: list[object] = []

    def writer(n: int) -> None:
        pub = Publisher(s3_mesh.catalog, contract)
        try:
            pub.write(widgets_table(n))
            original = pub._next_version
            # every writer picks its version before any of them commits
            pub._next_version = lambda state: (v := original(state), barrier.wait(), v)[2]  # type: ignore[method-assign]
            outcomes.append(pub.commit())
        except ConflictError as exc:
            outcomes.append(exc)
        finally:
            pub.abort()

    threads = [threading.Thread(target=writer, args=(n,)) for n in (3, 5, 7)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert len(outcomes) == 3, outcomes
    assert sum(isinstance(o, ConflictError) for o in outcomes) == 2, outcomes
    (winner,) = [o for o in outcomes if not isinstance(o, ConflictError)]
    assert s3_mesh.catalog.versions("widgets") == [1]
    paths = s3_mesh.catalog.paths("widgets")
    assert [i.base_name for i in s3_mesh.lake.list_dir(paths.data)] == [winner.run_id]  # type: ignore[attr-defined]
    assert [i.base_name for i in s3_mesh.lake.list_dir(paths.records)] == [f"{winner.run_id}.json"]  # type: ignore[attr-defined]
    t = trino(native_stack)
    assert t.query(f"select count(*) from {domain}.widgets")[1] == [(winner.row_count,)]  # type: ignore[attr-defined]
    assert trino_versions(t, contract) == {1}


def test_wrong_credentials(native_stack: StackEndpoints, s3_contracts: Path, domain: str) -> None:
    with pytest.raises(StorageError, match="credentials were rejected"):
        Mesh.from_settings(s3_settings(native_stack, s3_contracts, f"tests/{domain}", trino=False,
                                       credentials_file=None, s3_secret_access_key="not-the-secret"))


def test_missing_bucket(native_stack: StackEndpoints, s3_contracts: Path, domain: str) -> None:
    with pytest.raises(StorageError, match="Bucket 'no-such-bucket-here' of lake .* does not exist"):
        Mesh.from_settings(s3_settings(native_stack, s3_contracts, "x", trino=False,
                                       lake_url="s3://no-such-bucket-here/lake"))


def test_s3_server_unreachable(native_stack: StackEndpoints, s3_contracts: Path, domain: str) -> None:
    with pytest.raises(StorageError, match="Is the S3 server at http://127.0.0.1:1 running"):
        Mesh.from_settings(s3_settings(native_stack, s3_contracts, "x", trino=False,
                                       s3_endpoint_url="http://127.0.0.1:1"))


def test_streamed_publish_to_s3_rolls_files(s3_mesh: Mesh, native_stack: StackEndpoints, domain: str) -> None:
    contract = s3_mesh.contract("widgets")
    with Publisher(s3_mesh.catalog, contract, rows_per_file=30) as pub:
        for i in range(3):
            pub.write(widgets_table(20, start=i * 20))
        m = pub.commit()
    assert [f.rows for f in m.files] == [30, 30]
    with s3_mesh.session() as s:
        assert s.sql("select count(distinct widget_id) from widgets").fetchone()[0] == 60
    _, rows = trino(native_stack).query(f'select count(*), count(distinct "$path") from {domain}.widgets')
    assert rows == [(60, 2)]


def test_composite_key_product_joins_in_trino(s3_mesh: Mesh, native_stack: StackEndpoints, domain: str) -> None:
    s3_mesh.publish("widgets", widgets_table(2))
    table = pa.table({"order_id": pa.array([1, 1, 2], pa.int64()), "line_number": pa.array([1, 2, 1], pa.int32()),
                      "widget_id": pa.array([0, 1, 1], pa.int64())})
    s3_mesh.publish("widget_orders", table, inputs={"widgets": 1})
    t = trino(native_stack)
    rows = t.query(
        f"select o.order_id, count(*) from {domain}.widget_orders o join {domain}.widgets w using (widget_id) "
        "group by 1 order by 1")[1]
    assert rows == [(1, 2), (2, 1)]
    with s3_mesh.session() as s:
        reports = check_all(s, t, s3_mesh.catalog)
    assert {(r.product, r.version) for r in reports} == {("widgets", 1), ("widget_orders", 1)}
    assert all(r.ok for r in reports), [r.lines() for r in reports]


def test_query_latency_probes_run_in_both_engines(s3_mesh: Mesh, native_stack: StackEndpoints) -> None:
    from datamesh.slo import Engine, Probe, measure

    s3_mesh.publish("widgets", widgets_table(40))
    with s3_mesh.session() as s:
        results = measure(s, s3_mesh.contract("widgets"), trino=trino(native_stack), runs=3)
    assert {(r.engine, r.probe) for r in results} == {(e, p) for e in Engine for p in Probe}
    for r in results:  # each engine read the same version: the scan counted every row, the lookup found one
        assert r.version == 1 and r.runs == 3
        assert r.rows == (40 if r.probe is Probe.SCAN else 1), r
