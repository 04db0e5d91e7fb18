"""Integrity on the native stack: every publish path is visible in Trino, pins reach Trino, reads cannot
write to S3, and a table written behind the platform's back or a tampered version is refused, then repaired
so that DuckDB and Trino serve the published rows again."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from datamesh.errors import BrokenProductError, QueryError, TamperedError, TrinoError
from datamesh.parity import check_all
from datamesh.pins import pin_trino_sql
from datamesh.platform import Mesh
from datamesh.trino import TrinoClient, trino_versions, version_relation
from datamesh.verify import repair, verify
from meshcli import app
from nativestack import StackEndpoints
from tests.conftest import widgets_table
from tests.integration.test_lake_s3 import domain, s3_contracts, s3_mesh, s3_settings  # noqa: F401
from tests.integration.test_lake_s3 import trino as platform_trino
from tests.integrity import lake_fingerprint

pytestmark = pytest.mark.integration


@pytest.fixture()
def cli_env(native_stack: StackEndpoints, s3_contracts: Path, domain: str,  # noqa: F811
            monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """`mesh ...` with the stack settings in the environment, as an operator would run it.

    The test domains are not in the repository's policy, so only the platform reads them: queries say
    `--as platform` (the CLI's default identity is the analyst)."""
    from datamesh.settings import get_settings

    for key, value in native_stack.as_settings_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MESH_LAKE_URL", f"s3://{native_stack.bucket}/tests/{domain}")
    monkeypatch.setenv("MESH_CONTRACTS_DIR", str(s3_contracts))
    runner = CliRunner()

    def invoke(*args: str):  # noqa: ANN202
        get_settings.cache_clear()
        result = runner.invoke(app, list(args))
        assert "Traceback" not in result.output, result.output
        return result

    yield invoke
    get_settings.cache_clear()


def trino(ep: StackEndpoints) -> TrinoClient:
    return platform_trino(ep)


def count(t: TrinoClient, relation: str) -> int:
    return t.query(f"select count(*) from {relation}")[1][0][0]


def test_cli_publish_is_in_trino_and_pins_reach_trino(cli_env, s3_mesh: Mesh,  # noqa: ANN001, F811
                                                      native_stack: StackEndpoints,
                                                      domain: str, tmp_path: Path) -> None:  # noqa: F811
    s3_mesh.publish("widgets", widgets_table(3))
    data = tmp_path / "w.csv"
    data.write_text("widget_id,color,price,made_at\n" + "".join(
        f"{i},green,1.5,2026-01-01T00:00:00\n" for i in range(7)))
    result = cli_env("publish", "widgets", str(data))
    assert result.exit_code == 0, result.output
    t = trino(native_stack)
    assert count(t, f"{domain}.widgets") == 7  # the CLI publish is in Trino: nothing to register
    pinned = cli_env("query", "--as", "platform", "--engine", "trino", "-f", "json", "--pin", f"{domain}.widgets=1",
                     f"select count(*) as n, min(color) as c from {domain}.widgets")
    assert pinned.exit_code == 0, pinned.output
    assert json.loads(pinned.output) == [{"n": 3, "c": "red"}]
    qualified = cli_env("query", "--as", "platform", "--engine", "trino", "-f", "json", "--pin", "widgets=2",
                        f'select count(*) as n from lake."{domain}".widgets')
    assert qualified.exit_code == 0, qualified.output
    assert json.loads(qualified.output) == [{"n": 7}]
    latest = cli_env("query", "--as", "platform", "--engine", "trino", "-f", "json", f"select count(*) as n from {domain}.widgets")
    assert json.loads(latest.output) == [{"n": 7}]
    refused = cli_env("query", "--as", "platform", "--engine", "trino", f"insert into {domain}.widgets select * from "
                      f"{domain}.widgets limit 1")
    assert refused.exit_code == 1 and "read-only" in refused.output
    assert count(t, f"{domain}.widgets") == 7
    assert trino_versions(t, s3_mesh.contract("widgets")) == {1, 2}


def test_pinned_trino_sql_reads_the_pinned_version(s3_mesh: Mesh, native_stack: StackEndpoints,  # noqa: F811
                                                   domain: str) -> None:  # noqa: F811
    s3_mesh.publish("widgets", widgets_table(2))
    s3_mesh.publish("widgets", widgets_table(5, color="blue"))
    orders = pa.table({"order_id": pa.array([1, 2, 3], pa.int64()), "line_number": pa.array([1, 1, 1], pa.int32()),
                       "widget_id": pa.array([0, 1, 4], pa.int64())})
    s3_mesh.publish("widget_orders", orders, inputs={"widgets": 2})
    t = trino(native_stack)
    sql = (f"select count(*), min(w.color), '{domain}.widgets' as label from {domain}.widget_orders o "
           f"join {domain}.widgets w using (widget_id) -- {domain}.widgets in a comment stays")
    rewritten = pin_trino_sql(sql, {"widgets": 1}, s3_mesh.contracts, t.catalog)
    assert rewritten.count("FOR VERSION AS OF 'v1'") == 1 and f"'{domain}.widgets' as label" in rewritten
    assert t.query(rewritten)[1] == [(2, "red", f"{domain}.widgets")]  # v1 has widgets 0 and 1 only
    assert t.query(sql)[1] == [(3, "blue", f"{domain}.widgets")]  # latest: v2


def test_copy_through_query_cannot_overwrite_a_version_on_s3(cli_env, s3_mesh: Mesh) -> None:  # noqa: ANN001, F811
    m = s3_mesh.publish("widgets", widgets_table(5))
    target = s3_mesh.catalog.file_uris(m)[0]
    before = lake_fingerprint(s3_mesh)
    result = cli_env("query", "--as", "platform", f"COPY (select * from widgets limit 1) TO '{target}' (FORMAT parquet)")
    assert result.exit_code == 1 and "read-only" in result.output
    assert lake_fingerprint(s3_mesh) == before
    ok = cli_env("query", "--as", "platform", "-f", "json", "select count(*) as n from widgets")
    assert ok.exit_code == 0 and json.loads(ok.output) == [{"n": 5}], ok.output


def test_foreign_insert_breaks_the_product_until_repair(s3_mesh: Mesh,  # noqa: F811
                                                         native_stack: StackEndpoints,
                                                         domain: str) -> None:  # noqa: F811
    import datetime as dt

    m1 = s3_mesh.publish("widgets", widgets_table(3))
    t = trino(native_stack)
    before = lake_fingerprint(s3_mesh)
    # Through Trino nothing can be written, not even as the platform (read-only storage identity)...
    with pytest.raises(TrinoError):
        t.execute(f"insert into lake.{domain}.widgets values (100, 'red', 1.0, timestamp '2026-01-01 00:00:00')")
    assert lake_fingerprint(s3_mesh) == before and count(t, f"{domain}.widgets") == 3
    # ...but an engine holding write credentials can append behind the platform's back.
    table = s3_mesh.catalog.tables.load(s3_mesh.contract("widgets"))
    row = {"widget_id": 100, "color": "red", "price": 1.0, "made_at": dt.datetime(2026, 1, 1)}
    arrow_schema = table.schema().as_arrow()
    table.append(pa.Table.from_pylist([{f.name: row.get(f.name) for f in arrow_schema}], schema=arrow_schema))
    assert count(t, f"{domain}.widgets") == 4  # Trino serves the foreign write...
    with pytest.raises(BrokenProductError, match="mesh repair widgets"):  # ...the platform refuses it
        s3_mesh.catalog.latest_version("widgets")
    with pytest.raises(BrokenProductError, match="mesh repair widgets"):
        s3_mesh.catalog.manifest("widgets")
    with s3_mesh.session() as s:
        assert "widgets" in s.broken
        with pytest.raises(BrokenProductError, match="not a published version"):
            s.sql("select count(*) from widgets").fetchone()
        assert s.sql("select count(*) from widgets__v1").fetchone() == (3,)  # the tagged version is intact
    assert count(t, version_relation("lake", s3_mesh.contract("widgets"), 1)) == 3
    report = verify(s3_mesh.catalog, ["widgets"])
    assert not report.ok and any("not a published version" in p for p in report.problems), report.problems

    repaired = repair(s3_mesh.catalog, "widgets")
    assert repaired.head_changed and repaired.head_after == 1 and not repaired.untagged, repaired.lines()
    assert s3_mesh.catalog.latest_version("widgets") == 1
    assert s3_mesh.catalog.manifest("widgets").snapshot_id == m1.snapshot_id
    with s3_mesh.session() as s:
        assert not s.broken
        assert s.sql("select count(*), max(widget_id) from widgets").fetchone() == (3, 2)
        reports = check_all(s, t, s3_mesh.catalog, ["widgets"])
    assert t.query(f"select count(*), max(widget_id) from {domain}.widgets")[1] == [(3, 2)]
    assert [r.version for r in reports] == [1] and all(r.ok for r in reports), [r.lines() for r in reports]
    assert verify(s3_mesh.catalog, ["widgets"]).ok
    m2 = s3_mesh.publish("widgets", widgets_table(6))  # publishing works again, on top of v1
    assert m2.version == 2 and count(t, f"{domain}.widgets") == 6


def test_tampered_version_on_s3_is_refused_reported_and_repaired(s3_mesh: Mesh,  # noqa: F811
                                                                 native_stack: StackEndpoints,
                                                                 domain: str) -> None:  # noqa: F811
    s3_mesh.publish("widgets", widgets_table(3))
    m2 = s3_mesh.publish("widgets", widgets_table(4))
    path = s3_mesh.catalog.file_paths(m2)[0]
    with s3_mesh.lake.fs.open_output_stream(path) as out:  # an out-of-band overwrite of a committed file
        pq.write_table(widgets_table(4, color="blue"), out)
    with pytest.raises((TamperedError, QueryError), match=Path(path).name), s3_mesh.session() as s:
        s.sql("select count(*) from widgets").fetchone()
    report = verify(s3_mesh.catalog, ["widgets"])
    assert [v.version for v in report.products[0].versions if not v.ok] == [2], report.lines()

    repaired = repair(s3_mesh.catalog, "widgets")
    assert [v for v, _ in repaired.untagged] == [2] and repaired.head_after == 1, repaired.lines()
    assert len(repaired.quarantined) == 1 and "/_quarantine/" in repaired.quarantined[0][1]
    assert s3_mesh.catalog.versions("widgets") == [1]
    with s3_mesh.session() as s:
        assert s.sql("select count(*), min(color) from widgets").fetchone() == (3, "red")
    t = trino(native_stack)
    assert t.query(f"select count(*), min(color) from {domain}.widgets")[1] == [(3, "red")]
    assert trino_versions(t, s3_mesh.contract("widgets")) == {1}  # Trino cannot time-travel to the bad version
    assert verify(s3_mesh.catalog, ["widgets"]).ok


def test_files_deleted_out_of_band_are_refused_then_repaired(s3_mesh: Mesh,  # noqa: F811
                                                             native_stack: StackEndpoints,
                                                             domain: str) -> None:  # noqa: F811
    s3_mesh.publish("widgets", widgets_table(3))
    m2 = s3_mesh.publish("widgets", widgets_table(8))
    s3_mesh.lake.delete_file(s3_mesh.catalog.file_paths(m2)[0])
    with pytest.raises(TamperedError, match="is missing"), s3_mesh.session() as s:
        s.sql("select count(*) from widgets").fetchone()
    repaired = repair(s3_mesh.catalog, "widgets")
    assert [v for v, _ in repaired.untagged] == [2] and repaired.head_after == 1, repaired.lines()
    t = trino(native_stack)
    assert count(t, f"{domain}.widgets") == 3
    with s3_mesh.session() as s:
        assert s.sql("select count(*) from widgets").fetchone() == (3,)
        reports = check_all(s, t, s3_mesh.catalog, ["widgets"])
    assert [r.version for r in reports] == [1] and all(r.ok for r in reports), [r.lines() for r in reports]


def test_platform_and_trino_settings_agree(native_stack: StackEndpoints, s3_contracts: Path,  # noqa: F811
                                           domain: str) -> None:  # noqa: F811
    """The stack's MESH_ICEBERG_CATALOG_URI is the database Trino's `lake` catalog reads."""
    env = native_stack.as_settings_env()
    assert env["MESH_ICEBERG_CATALOG_URI"] == native_stack.iceberg_catalog_uri
    mesh = Mesh.from_settings(s3_settings(native_stack, s3_contracts, f"tests/{domain}"))
    mesh.publish("widgets", widgets_table(2))
    _, tables = trino(native_stack).query(f"show tables from lake.{domain}")
    assert ("widgets",) in tables
