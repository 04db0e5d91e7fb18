"""The whole pipeline against S3 and the stack's Iceberg catalog, then the analysts' view of it in both engines."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from datamesh.paths import DBT_PROJECT_DIR

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ANALYST_SQL = sorted((DBT_PROJECT_DIR / "analyst").glob("*.sql"))


def _normalise(rows: list[tuple]) -> list[tuple]:
    def value(v: object) -> object:
        if isinstance(v, float):
            return round(v, 6) if math.isfinite(v) else v
        if hasattr(v, "as_integer_ratio") and not isinstance(v, int | bool):
            return round(float(v), 6)  # Decimal
        return v

    return sorted((tuple(value(v) for v in row) for row in rows), key=repr)


def test_every_product_published_on_s3_and_in_trino(pipeline) -> None:  # noqa: ANN001
    from datamesh.trino import TrinoClient, trino_versions

    _, mesh = pipeline
    assert mesh.lake.is_s3
    trino = TrinoClient.from_settings(mesh.settings)
    for contract in mesh.contracts:
        manifest = mesh.catalog.manifest(contract.id)
        assert all(uri.startswith("s3://") for uri in mesh.catalog.file_uris(manifest))
        assert (manifest.metadata_location or "").startswith(mesh.lake.url), contract.id
        _, rows = trino.query(f"select count(*) from {contract.domain}.{contract.id}")
        assert rows == [(manifest.row_count,)], contract.id
        assert trino_versions(trino, contract) == set(mesh.catalog.versions(contract.id)), contract.id


def test_parity_duckdb_vs_trino_for_every_product(pipeline) -> None:  # noqa: ANN001
    from datamesh.parity import check_all
    from datamesh.trino import TrinoClient

    _, mesh = pipeline
    trino = TrinoClient.from_settings(mesh.settings)
    with mesh.session() as session:
        reports = check_all(session, trino, mesh.catalog)
    assert {r.product for r in reports} == {c.id for c in mesh.contracts}
    for report in reports:
        assert report.ok, report.lines()
        assert report.compared >= 1 + 3 * len(mesh.contract(report.product).columns), report.lines()


def test_trino_shows_every_contract_as_comments(pipeline) -> None:  # noqa: ANN001
    from datamesh.trino import TrinoClient

    _, mesh = pipeline
    trino = TrinoClient.from_settings(mesh.settings)
    for contract in mesh.contracts:
        _, tables = trino.query(
            "select comment from system.metadata.table_comments where catalog_name = 'lake' "
            f"and schema_name = '{contract.domain}' and table_name = '{contract.id}'")
        assert tables and contract.description.purpose.strip() in tables[0][0], contract.id
        _, columns = trino.query(
            "select column_name, comment from lake.information_schema.columns "
            f"where table_schema = '{contract.domain}' and table_name = '{contract.id}' order by ordinal_position")
        assert [(name, comment or "") for name, comment in columns] == [
            (c.name, c.description) for c in contract.columns], contract.id


@pytest.mark.parametrize("path", ANALYST_SQL, ids=[p.stem for p in ANALYST_SQL])
def test_analyst_queries_same_answer_in_trino_and_duckdb(pipeline, path: Path) -> None:  # noqa: ANN001
    from datamesh.trino import TrinoClient

    _, mesh = pipeline
    sql = path.read_text().strip().rstrip(";")
    _, trino_rows = TrinoClient.from_settings(mesh.settings).query(sql)
    with mesh.session() as session:
        duck_rows = session.sql(sql).fetchall()
    assert trino_rows, f"{path.name} returned no rows"
    assert _normalise(trino_rows) == _normalise(duck_rows)


def test_verify_finds_nothing_to_repair(pipeline) -> None:  # noqa: ANN001
    from datamesh.verify import verify

    _, mesh = pipeline
    report = verify(mesh.catalog)
    assert report.ok, report.problems
    assert {p.product for p in report.products} == {c.id for c in mesh.contracts}
    assert all(p.versions for p in report.products)


def test_model_registry_on_s3(pipeline) -> None:  # noqa: ANN001
    from ml.products import registry

    summary, mesh = pipeline
    champion = registry(mesh).champion("churn_features")
    assert champion is not None and 0.6 < champion.card.metrics["roc_auc"] < 0.98
    assert summary["lake"].startswith("s3://")


def test_each_step_published_as_the_identity_that_owns_it(pipeline) -> None:  # noqa: ANN001
    """With the credentials file, the orchestrator (the platform) published nothing itself: every product's
    versions were committed by its own domain's publisher, with that publisher's S3 and catalog credentials."""
    _, mesh = pipeline
    for contract in mesh.contracts:
        for version in mesh.catalog.versions(contract.id):
            manifest = mesh.catalog.manifest(contract.id, version)
            assert manifest.writer.get("actor") == f"publisher:{contract.domain}", (contract.id, manifest.writer)
