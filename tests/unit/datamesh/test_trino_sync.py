"""Trino sync and parity over every version, against a DuckDB stand-in for Trino (no server needed)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from datamesh.names import sql_string
from datamesh.parity import check_all
from datamesh.trino import Registrar, sync, version_problem
from tests.conftest import widgets_table

_TABLE = re.compile(r'"lake"\."([a-z_]+)"\."([a-z0-9_]+)"')


class FakeTrino:
    """Understands the statements the registrar sends; answers queries from DuckDB over the same files."""

    catalog = "lake"

    def __init__(self, mesh: Any) -> None:
        self.mesh = mesh
        self.tables: dict[tuple[str, str], str] = {}  # (schema, table) -> external location
        self.views: dict[tuple[str, str], str] = {}
        self.con = duckdb.connect()
        self.con.execute("ATTACH ':memory:' AS lake")
        self.statements: list[str] = []

    def execute(self, sql: str) -> None:
        self.query(sql)

    def query(self, sql: str, params: list[Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        self.statements.append(sql)
        if sql.startswith("CREATE SCHEMA"):
            schema = re.search(r'"lake"\."([a-z_]+)"', sql).group(1)  # type: ignore[union-attr]
            self.con.execute(f'CREATE SCHEMA IF NOT EXISTS lake."{schema}"')
            return [], []
        if sql.startswith("CREATE TABLE IF NOT EXISTS"):
            schema, table = _TABLE.search(sql).groups()  # type: ignore[union-attr]
            location = re.search(r"external_location = '([^']*)'", sql).group(1)  # type: ignore[union-attr]
            if (schema, table) not in self.tables:
                self.tables[schema, table] = location
                files = sorted(str(p) for p in Path(location).glob("*.parquet"))
                listing = ", ".join(sql_string(f) for f in files)
                self.con.execute(f'CREATE VIEW lake."{schema}"."{table}" AS SELECT * FROM read_parquet([{listing}])')
            return [], []
        if sql.startswith("DROP TABLE IF EXISTS"):
            schema, table = _TABLE.search(sql).groups()  # type: ignore[union-attr]
            if self.tables.pop((schema, table), None) is not None:
                self.con.execute(f'DROP VIEW lake."{schema}"."{table}"')
            return [], []
        if sql.startswith("CREATE OR REPLACE VIEW"):
            (schema, view), (_, target) = _TABLE.findall(sql)[:2]
            self.views[schema, view] = target
            return [], []
        if "information_schema.tables" in sql:
            schema = re.search(r"table_schema = '([^']*)'", sql).group(1)  # type: ignore[union-attr]
            like = re.search(r"table_name LIKE '([^']*)'", sql).group(1)  # type: ignore[union-attr]
            pattern = re.compile(re.escape(like).replace("_", ".").replace("%", ".*") + "$")
            return ["table_name"], [(t,) for s, t in self.tables if s == schema and pattern.match(t)]
        rel = self.con.sql(sql)
        return rel.columns, rel.fetchall()


def _tamper_same_size(path: str) -> None:
    data = bytearray(Path(path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    Path(path).write_bytes(bytes(data))  # new mtime: readers hash the file


def test_sync_drops_tampered_and_invalid_versions(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    m2 = mesh.publish("widgets", widgets_table(4))
    mesh.publish("widgets", widgets_table(5))
    trino = FakeTrino(mesh)
    registrar = Registrar(trino, mesh.catalog)  # type: ignore[arg-type]
    first = sync(registrar)
    assert first.views == {"shop.widgets": 3} and not first.broken
    assert {t for _, t in trino.tables} == {"widgets__v1", "widgets__v2", "widgets__v3"}

    _tamper_same_size(mesh.catalog.file_paths(m2)[0])
    manifest3 = Path(mesh.catalog.paths("widgets").manifest(3))
    doc = json.loads(manifest3.read_text())
    doc["run_id"] = "../../widget_orders"
    manifest3.write_text(json.dumps(doc))
    assert version_problem(mesh.catalog, m2) is not None

    report = sync(registrar)
    broken = "\n".join(report.broken)
    assert "shop.widgets v2" in broken and "was overwritten" in broken and "was dropped" in broken
    assert "shop.widgets v3" in broken and "not a plain directory name" in broken
    assert {t for _, t in trino.tables} == {"widgets__v1"}
    assert report.views == {"shop.widgets": 1} and trino.views["shop", "widgets"] == "widgets__v1"
    assert any(line.startswith("BROKEN shop.widgets v2") for line in report.lines())


def test_registered_versions_are_exact(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    trino = FakeTrino(mesh)
    trino.tables["shop", "widgetsXXv7"] = "/nowhere"  # LIKE's '_' matches any character
    trino.tables["shop", "widgets__v2x"] = "/nowhere"
    trino.tables["shop", "widgets__v3"] = "/nowhere"
    assert Registrar(trino, mesh.catalog).registered_versions(mesh.contract("widgets")) == {3}  # type: ignore[arg-type]


def test_parity_checks_every_version(mesh) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(3))
    m2 = mesh.publish("widgets", widgets_table(4, color="green"))
    mesh.publish("widgets", widgets_table(5, price=20.0))
    trino = FakeTrino(mesh)
    registrar = Registrar(trino, mesh.catalog)  # type: ignore[arg-type]
    sync(registrar)
    with mesh.session() as session:
        reports = check_all(session, trino, mesh.catalog)  # type: ignore[arg-type]
    assert [(r.product, r.version, r.ok) for r in reports] == [("widgets", 1, True), ("widgets", 2, True),
                                                               ("widgets", 3, True)]
    assert all(r.compared > 10 for r in reports)

    # Drift: a version Trino lacks, one only Trino has, and one whose file changed in the lake.
    registrar.drop_version(mesh.contract("widgets"), 1)
    trino.tables["shop", "widgets__v9"] = "/nowhere"
    pq.write_table(widgets_table(4, color="blue"), mesh.catalog.file_paths(m2)[0])
    os.utime(mesh.catalog.file_paths(m2)[0])
    with mesh.session() as session:
        reports = check_all(session, trino, mesh.catalog, products=["widgets"])  # type: ignore[arg-type]
    by_version = {r.version: r for r in reports}
    assert sorted(by_version) == [1, 2, 3, 9]
    assert "Trino has no table shop.widgets__v1" in by_version[1].differences[0]
    assert "not compared" in by_version[2].differences[0] and "widgets' version 2" in by_version[2].differences[0]
    assert by_version[3].ok
    assert "no such committed version" in by_version[9].differences[0]
    assert by_version[3].lines()[0].endswith("same") and by_version[9].lines()[0].endswith("DIFFERENT")
