"""The publish protocol, DuckDB (httpfs) and Trino registration on a real S3 server."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from datamesh.errors import ConflictError, QualityError, RegistrationError, StorageError
from datamesh.parity import check_product
from datamesh.platform import Mesh
from datamesh.publish import Publisher
from datamesh.settings import Settings
from datamesh.trino import Registrar, TrinoClient, sync
from nativestack import StackEndpoints
from tests.conftest import ORDERS_CONTRACT, WIDGETS_CONTRACT, widgets_table

pytestmark = pytest.mark.integration


def s3_settings(ep: StackEndpoints, contracts: Path, prefix: str, *, trino: bool = True, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "lake_url": f"s3://{ep.bucket}/{prefix}",
        "contracts_dir": contracts,
        "s3_endpoint_url": ep.s3_endpoint,
        "s3_access_key_id": ep.access_key,
        "s3_secret_access_key": ep.secret_key,
        "s3_region": ep.region,
        "trino_host": ep.trino_host if trino else None,
        "trino_port": ep.trino_port,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture()
def domain() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture()
def s3_contracts(tmp_path: Path, domain: str) -> Path:
    root = tmp_path / "contracts"
    (root / domain).mkdir(parents=True)
    (root / domain / "widgets.yaml").write_text(WIDGETS_CONTRACT.replace("domain: shop", f"domain: {domain}"))
    (root / domain / "widget_orders.yaml").write_text(ORDERS_CONTRACT.replace("domain: shop", f"domain: {domain}"))
    return root


@pytest.fixture()
def s3_mesh(native_stack: StackEndpoints, s3_contracts: Path, domain: str) -> Mesh:
    return Mesh.from_settings(s3_settings(native_stack, s3_contracts, f"tests/{domain}"))


def trino(ep: StackEndpoints) -> TrinoClient:
    return TrinoClient(ep.trino_host, ep.trino_port)


def test_publish_read_back_and_register(s3_mesh: Mesh, native_stack: StackEndpoints, domain: str) -> None:
    m1 = s3_mesh.publish("widgets", widgets_table(10))
    m2 = s3_mesh.publish("widgets", widgets_table(25, color="green"))
    assert (m1.version, m2.version) == (1, 2)
    assert s3_mesh.catalog.file_uris(m2)[0].startswith("s3://")
    with s3_mesh.session() as s:  # DuckDB over S3 through the httpfs extension from PyPI
        assert s.sql("select count(*), min(color) from widgets").fetchone() == (25, "green")
        assert s.sql("select count(*) from widgets__v1").fetchone()[0] == 10
    t = trino(native_stack)
    assert t.query(f'select count(*), min(color) from {domain}.widgets')[1] == [(25, "green")]
    assert t.query(f'select count(*) from {domain}."widgets__v1"')[1] == [(10,)]
    _, comments = t.query(
        "select comment from system.metadata.table_comments where catalog_name = 'lake' "
        f"and schema_name = '{domain}' and table_name = 'widgets__v2'")
    assert "Widgets v2" in comments[0][0] and "One row per widget" in comments[0][0]
    _, described = t.query(f'describe {domain}."widgets__v2"')
    assert {row[0] for row in described} == {"widget_id", "color", "price", "made_at"}
    with s3_mesh.session() as s:
        report = check_product(s, t, s3_mesh.contract("widgets"), 2)
    assert report.ok, report.differences
    assert report.compared > 10


def test_failed_publish_keeps_previous_version_everywhere(s3_mesh: Mesh, native_stack: StackEndpoints,
                                                          domain: str) -> None:
    s3_mesh.publish("widgets", widgets_table(4))
    with pytest.raises(QualityError, match="color_accepted_values"):
        s3_mesh.publish("widgets", widgets_table(5, color="purple"))
    assert s3_mesh.catalog.latest_version("widgets") == 1
    assert trino(native_stack).query(f"select count(*) from {domain}.widgets")[1] == [(4,)]
    staged = s3_mesh.lake.list_dir(s3_mesh.catalog.paths("widgets").data)
    assert len(staged) == 1


def test_commit_race_on_s3_has_one_winner(s3_mesh: Mesh) -> None:
    contract = s3_mesh.contract("widgets")
    barrier = threading.Barrier(3)
    outcomes: list[object] = []

    def writer(n: int) -> None:
        pub = Publisher(s3_mesh.catalog, contract)
        try:
            pub.write(widgets_table(n))
            original = pub._next_version
            # every writer picks its version before any of them commits
            pub._next_version = lambda: (v := original(), barrier.wait(), v)[2]  # type: ignore[method-assign]
            outcomes.append(pub.commit())
        except (ConflictError, RegistrationError) as exc:
            outcomes.append(exc)
        finally:
            pub.abort()

    threads = [threading.Thread(target=writer, args=(n,)) for n in (3, 5, 7)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(isinstance(o, ConflictError) for o in outcomes) == 2, outcomes
    assert s3_mesh.catalog.versions("widgets") == [1]


def test_trino_down_during_publish_then_sync_repairs(native_stack: StackEndpoints, s3_contracts: Path,
                                                     domain: str) -> None:
    good = Mesh.from_settings(s3_settings(native_stack, s3_contracts, f"tests/{domain}"))
    good.publish("widgets", widgets_table(3))
    dead = Mesh.from_settings(s3_settings(native_stack, s3_contracts, f"tests/{domain}", trino_port=1))
    with pytest.raises(RegistrationError, match="committed in the lake") as info:
        dead.publish("widgets", widgets_table(6))
    assert "mesh trino sync" in str(info.value)
    t = trino(native_stack)
    assert t.query(f"select count(*) from {domain}.widgets")[1] == [(3,)]  # view still on a complete version
    report = sync(Registrar(t, good.catalog))
    assert f"{domain}.widgets" in report.views and report.views[f"{domain}.widgets"] == 2
    assert t.query(f"select count(*) from {domain}.widgets")[1] == [(6,)]


def test_sync_reports_files_deleted_out_of_band(s3_mesh: Mesh, native_stack: StackEndpoints,
                                                domain: str) -> None:
    s3_mesh.publish("widgets", widgets_table(3))
    m2 = s3_mesh.publish("widgets", widgets_table(8))
    s3_mesh.lake.delete_file(s3_mesh.catalog.file_paths(m2)[0])
    t = trino(native_stack)
    report = sync(Registrar(t, s3_mesh.catalog))
    assert any("v2" in b and "files missing" in b for b in report.broken)
    assert report.views[f"{domain}.widgets"] == 1
    assert t.query(f"select count(*) from {domain}.widgets")[1] == [(3,)]


def test_wrong_credentials(native_stack: StackEndpoints, s3_contracts: Path, domain: str) -> None:
    with pytest.raises(StorageError, match="credentials were rejected"):
        Mesh.from_settings(s3_settings(native_stack, s3_contracts, f"tests/{domain}", trino=False,
                                       s3_secret_access_key="not-the-secret"))


def test_missing_bucket(native_stack: StackEndpoints, s3_contracts: Path, domain: str) -> None:
    with pytest.raises(StorageError, match="Bucket 'no-such-bucket-here' of lake .* does not exist"):
        Mesh.from_settings(s3_settings(native_stack, s3_contracts, "x", trino=False,
                                       lake_url="s3://no-such-bucket-here/lake"))


def test_s3_server_unreachable(native_stack: StackEndpoints, s3_contracts: Path, domain: str) -> None:
    with pytest.raises(StorageError, match="Is the S3 server at http://127.0.0.1:1 running"):
        Mesh.from_settings(s3_settings(native_stack, s3_contracts, "x", trino=False,
                                       s3_endpoint_url="http://127.0.0.1:1"))


def test_streamed_publish_to_s3_rolls_files(s3_mesh: Mesh) -> None:
    contract = s3_mesh.contract("widgets")
    with Publisher(s3_mesh.catalog, contract, rows_per_file=30) as pub:
        for i in range(3):
            pub.write(widgets_table(20, start=i * 20))
        m = pub.commit()
    assert [f.rows for f in m.files] == [30, 30]
    with s3_mesh.session() as s:
        assert s.sql("select count(distinct widget_id) from widgets").fetchone()[0] == 60


def test_composite_key_product_registers(s3_mesh: Mesh, native_stack: StackEndpoints, domain: str) -> None:
    s3_mesh.publish("widgets", widgets_table(2))
    table = pa.table({"order_id": pa.array([1, 1, 2], pa.int64()), "line_number": pa.array([1, 2, 1], pa.int32()),
                      "widget_id": pa.array([0, 1, 1], pa.int64())})
    s3_mesh.publish("widget_orders", table, inputs={"widgets": 1})
    rows = trino(native_stack).query(
        f"select o.order_id, count(*) from {domain}.widget_orders o join {domain}.widgets w using (widget_id) "
        "group by 1 order by 1")[1]
    assert rows == [(1, 2), (2, 1)]
