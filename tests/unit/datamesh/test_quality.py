from __future__ import annotations

from pathlib import Path

import pytest

from datamesh.contracts import QualityRule, RuleType
from datamesh.duckdb_engine import connect, read_parquet_sql
from datamesh.errors import PublishError, QualityError
from datamesh.platform import Mesh
from datamesh.publish import Publisher
from datamesh.quality import run_rules
from datamesh.settings import Settings
from tests.conftest import WIDGETS_CONTRACT, widgets_table
from tests.integrity import lake_fingerprint
from tests.unit.datamesh.damaged_files import write_bad_utf8, write_corrupt_pages


def _stage_and_commit(mesh: Mesh, path: Path) -> None:
    with Publisher(mesh.catalog, mesh.contract("widgets")) as pub:
        pub.add_file(str(path))  # staged as is: the DuckDB checks are the first to read the pages
        pub.commit()


@pytest.mark.parametrize(
    ("damage", "fragments"),
    [
        (write_corrupt_pages, ["could not be checked on file", "Snappy", "damaged"]),
        (write_bad_utf8, ["could not be checked on file", "not valid UTF-8", "UTF8"]),
    ],
    ids=["corrupt_pages", "invalid_utf8"],
)
def test_damaged_staged_files_are_a_clear_error(mesh, tmp_path: Path, damage, fragments: list[str]) -> None:  # noqa: ANN001
    mesh.publish("widgets", widgets_table(4))
    path = damage(tmp_path / "damaged.parquet")
    before = lake_fingerprint(mesh)
    with pytest.raises(PublishError) as info:
        _stage_and_commit(mesh, path)
    message = str(info.value)
    assert message.startswith("Product 'widgets': rules 'widget_id_not_null', ") and "'table_row_count'" in message
    assert "/data/" in message and "part-00000.parquet" in message  # the staged file is named
    assert "previous version is still served" in message
    for fragment in fragments:
        assert fragment in message
    assert "Traceback" not in message and "\n" not in message
    assert lake_fingerprint(mesh) == before


def test_a_missing_file_is_a_clear_error(mesh, tmp_path: Path) -> None:  # noqa: ANN001
    gone = str(tmp_path / "gone.parquet")
    con = connect()
    try:
        with pytest.raises(PublishError, match="went missing") as info:
            run_rules(con, mesh.contract("widgets"), read_parquet_sql([gone]), files=[gone])
    finally:
        con.close()
    assert "gone.parquet" in str(info.value) and "Product 'widgets'" in str(info.value)


def _with_rule(mesh: Mesh, rule: QualityRule):  # noqa: ANN202
    contract = mesh.contract("widgets")
    return contract.model_copy(update={"quality": (rule,)})


def test_a_smuggled_statement_is_refused_at_run_time(mesh, tmp_path: Path) -> None:  # noqa: ANN001
    """A rule that bypassed contract loading (model_construct) is still checked before it runs."""
    target = tmp_path / "stolen.csv"
    rule = QualityRule.model_construct(
        rule=RuleType.SQL, name="sneaky", severity="error", must_be=0.0,
        query=f"select 0 from {{product}}; COPY (select * from {{product}}) TO '{target}'; select 0",
    )
    contract = _with_rule(mesh, rule)
    before = lake_fingerprint(mesh)
    con = connect()
    try:
        con.register("__mesh_input", widgets_table(3))
        with pytest.raises(QualityError) as info:
            run_rules(con, contract, "__mesh_input")
    finally:
        con.close()
    message = str(info.value)
    assert "SQL rule 'sneaky'" in message and "statement 2 of 3 is COPY" in message
    assert "{product}" in message and "__mesh_product" not in message
    assert not target.exists()
    assert lake_fingerprint(mesh) == before


def test_a_rule_cannot_read_files_outside_the_data(tmp_path: Path, contracts_dir: Path) -> None:
    """A SELECT that reads another file passes the statement check; the locked connection refuses it."""
    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n")
    text = WIDGETS_CONTRACT.replace(
        "select count(*) from {product} where price > 900",
        f"select count(*) from {{product}}, read_csv('{secret}') where password = 'hunter2'",
    )
    (contracts_dir / "shop" / "widgets.yaml").write_text(text)
    mesh = Mesh.from_settings(Settings(lake_url=str(tmp_path / "lake"), contracts_dir=contracts_dir))
    before = lake_fingerprint(mesh)
    with pytest.raises(QualityError) as info:
        mesh.publish("widgets", widgets_table(3))
    message = str(info.value)
    assert "SQL rule 'few_expensive_widgets'" in message and "was refused" in message
    assert "reads only {product}" in message
    assert lake_fingerprint(mesh) == before
    # the streaming path (files staged first, checked by DuckDB over them) is locked down too
    with pytest.raises(QualityError, match="was refused"):
        mesh.publish("widgets", iter([widgets_table(3)]))
    assert lake_fingerprint(mesh) == before


def test_a_broken_sql_rule_names_the_rule(mesh) -> None:  # noqa: ANN001
    rule = QualityRule(rule=RuleType.SQL, name="typo", query="select count(*) from {product} where colour = 'x'",
                       mustBe=0)
    con = connect()
    try:
        con.register("__mesh_input", widgets_table(3))
        with pytest.raises(QualityError) as info:
            run_rules(con, _with_rule(mesh, rule), "__mesh_input")
    finally:
        con.close()
    message = str(info.value)
    assert "SQL rule 'typo'" in message and "could not run" in message and "colour" in message
    assert "Fix the query in the contract" in message


def test_a_sql_rule_returning_text_is_an_error(mesh) -> None:  # noqa: ANN001
    rule = QualityRule(rule=RuleType.SQL, name="texty", query="select 'many' from {product} limit 1", mustBe=0)
    con = connect()
    try:
        con.register("__mesh_input", widgets_table(3))
        with pytest.raises(QualityError, match="returned 'many', not a number"):
            run_rules(con, _with_rule(mesh, rule), "__mesh_input")
    finally:
        con.close()


def test_rules_still_pass_on_good_files(mesh, tmp_path: Path) -> None:  # noqa: ANN001
    import pyarrow.parquet as pq

    path = tmp_path / "good.parquet"
    pq.write_table(widgets_table(7), path)
    _stage_and_commit(mesh, path)
    manifest = mesh.catalog.manifest("widgets")
    assert manifest.row_count == 7
    assert all(q["passed"] for q in manifest.quality if q["severity"] == "error")
