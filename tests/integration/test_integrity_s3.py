"""Integrity on the native stack: every publish path registers in Trino, pins reach Trino,
reads cannot write to S3, and a tampered version is refused everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from datamesh.errors import QueryError, TamperedError
from datamesh.platform import Mesh
from datamesh.trino import Registrar, TrinoClient, sync
from meshcli import app
from nativestack import StackEndpoints
from tests.conftest import widgets_table
from tests.integration.test_lake_s3 import domain, s3_contracts, s3_mesh, s3_settings  # noqa: F401
from tests.integrity import lake_fingerprint

pytestmark = pytest.mark.integration


@pytest.fixture()
def cli_env(native_stack: StackEndpoints, s3_contracts: Path, domain: str,  # noqa: F811
            monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """`mesh ...` with the stack settings in the environment, as an operator would run it."""
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


def test_cli_publish_registers_in_trino_and_pins_reach_trino(cli_env, s3_mesh: Mesh,  # noqa: ANN001, F811
                                                             native_stack: StackEndpoints,
                                                             domain: str, tmp_path: Path) -> None:  # noqa: F811
    s3_mesh.publish("widgets", widgets_table(3))
    data = tmp_path / "w.csv"
    data.write_text("widget_id,color,price,made_at\n" + "".join(
        f"{i},green,1.5,2026-01-01T00:00:00\n" for i in range(7)))
    result = cli_env("publish", "widgets", str(data))
    assert result.exit_code == 0, result.output
    t = TrinoClient(native_stack.trino_host, native_stack.trino_port)
    assert t.query(f"select count(*) from {domain}.widgets")[1] == [(7,)]  # the CLI publish was registered
    pinned = cli_env("query", "--engine", "trino", "-f", "json", "--pin", f"{domain}.widgets=1",
                     f"select count(*) as n from {domain}.widgets")
    assert pinned.exit_code == 0, pinned.output
    assert json.loads(pinned.output) == [{"n": 3}]
    latest = cli_env("query", "--engine", "trino", "-f", "json", f"select count(*) as n from {domain}.widgets")
    assert json.loads(latest.output) == [{"n": 7}]
    refused = cli_env("query", "--engine", "trino", f"insert into {domain}.\"widgets__v1\" select * from "
                      f"{domain}.\"widgets__v1\" limit 1")
    assert refused.exit_code == 1 and "read-only" in refused.output
    assert t.query(f'select count(*) from {domain}."widgets__v1"')[1] == [(3,)]


def test_copy_through_query_cannot_overwrite_a_version_on_s3(cli_env, s3_mesh: Mesh) -> None:  # noqa: ANN001, F811
    m = s3_mesh.publish("widgets", widgets_table(5))
    target = s3_mesh.catalog.file_uris(m)[0]
    before = lake_fingerprint(s3_mesh)
    result = cli_env("query", f"COPY (select * from widgets limit 1) TO '{target}' (FORMAT parquet)")
    assert result.exit_code == 1 and "read-only" in result.output
    assert lake_fingerprint(s3_mesh) == before
    ok = cli_env("query", "-f", "json", "select count(*) as n from widgets")
    assert ok.exit_code == 0 and json.loads(ok.output) == [{"n": 5}], ok.output


def test_tampered_version_on_s3_is_refused_reported_and_dropped(s3_mesh: Mesh,  # noqa: F811
                                                                native_stack: StackEndpoints,
                                                                domain: str) -> None:  # noqa: F811
    s3_mesh.publish("widgets", widgets_table(3))
    m2 = s3_mesh.publish("widgets", widgets_table(4))
    path = s3_mesh.catalog.file_paths(m2)[0]
    with s3_mesh.lake.fs.open_output_stream(path) as out:  # an out-of-band overwrite of a committed file
        pq.write_table(widgets_table(4, color="blue"), out)
    with pytest.raises((TamperedError, QueryError), match=Path(path).name), s3_mesh.session() as s:
        s.sql("select count(*) from widgets").fetchone()
    t = TrinoClient(native_stack.trino_host, native_stack.trino_port)
    report = sync(Registrar(t, s3_mesh.catalog))
    assert any("v2" in b for b in report.broken), report.broken
    assert report.views[f"{domain}.widgets"] == 1
    assert t.query(f"select count(*) from {domain}.widgets")[1] == [(3,)]
