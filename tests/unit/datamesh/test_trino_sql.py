"""The Trino SQL the platform writes for a product's table, its versions and its tags."""

from __future__ import annotations

from typing import Any

from datamesh.trino import trino_versions, version_relation


class RecordingClient:
    """Stands in for Trino: records the SQL and answers like Trino's ``$refs`` table."""

    catalog = "lake"

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows
        self.sql: list[str] = []

    def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        self.sql.append(sql)
        return ["name"], self.rows


def test_version_relation_is_time_travel_to_the_tag(mesh) -> None:  # noqa: ANN001
    contract = mesh.contract("widgets")
    assert version_relation("lake", contract) == '"lake"."shop"."widgets"'
    assert version_relation("lake", contract, 3) == "\"lake\".\"shop\".\"widgets\" FOR VERSION AS OF 'v3'"


def test_trino_versions_reads_only_version_tags(mesh) -> None:  # noqa: ANN001
    client = RecordingClient([("v1",), ("v12",), ("main",), ("v1x",), ("vv2",), (None,)])
    assert trino_versions(client, mesh.contract("widgets")) == {1, 12}  # type: ignore[arg-type]
    assert client.sql == ['SELECT name FROM "lake"."shop"."widgets$refs" WHERE type = \'TAG\'']
