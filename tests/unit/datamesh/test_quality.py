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


# -- keys proved unique by their order (quality.files_sorted_keys / table_sorted_keys) ------


def test_increasing_runs_and_their_ranges() -> None:
    import datetime as dt
    from decimal import Decimal

    import pyarrow as pa

    from datamesh.quality import column_runs, runs_prove_unique, strictly_increasing

    def run(values: list, kind: pa.DataType | None = None):  # noqa: ANN001, ANN202
        return strictly_increasing(pa.array(values, kind))

    first, last = run([1, 2, 5])
    assert first.to_pylist() == [1] and last.to_pylist() == [5]
    assert [r[0].to_pylist() + r[1].to_pylist() for r in column_runs(pa.chunked_array([["a", "b"], [], ["c"]]))] \
        == [["a", "b"], ["c", "c"]]
    for increasing in ([7], [Decimal("1.10"), Decimal("1.20")], [dt.date(2026, 1, 1), dt.date(2026, 1, 2)],
                       [b"a", b"b"], ["a", "z", "é"]):  # text in byte (code point) order
        assert run(increasing) is not None, increasing
    assert strictly_increasing(pa.array([0, 1], pa.timestamp("us", tz="UTC"))) is not None
    for doubtful in ([1, 1, 2], [3, 2, 4], [1, None, 3], []):
        assert run(doubtful, pa.int64()) is None, doubtful
    # types whose order Arrow and DuckDB may not agree on are left to the aggregate
    assert run([0.0, 1.0]) is None and run([-0.0, 0.0]) is None and run([0.0, float("nan")]) is None
    assert strictly_increasing(pa.array([100, 200, 86_400_000_050], pa.time64("us"))) is None  # a time past 24 h
    assert strictly_increasing(pa.array(["a", "b"]).dictionary_encode()) is None
    assert run([{"a": 1}, {"a": 2}]) is None and run([False, True]) is None
    # text that is not UTF-8 (the aggregate's scan would refuse it) and dates Python cannot hold
    assert strictly_increasing(pa.array([b"a", b"b\xff\xfe", b"c"], pa.binary()).view(pa.string())) is None
    far = strictly_increasing(pa.array([3_000_000, 3_000_001], pa.date32()))  # year 10183
    assert far is not None and runs_prove_unique([far])
    assert runs_prove_unique([strictly_increasing(pa.array([2**60, 2**60 + 1], pa.timestamp("us")))])

    def ranges(*runs: list) -> list:
        return [run(r, pa.int64()) for r in runs]

    assert runs_prove_unique(ranges([0, 4], [5, 9], [10]))
    assert runs_prove_unique(ranges([10, 12], [0, 4]))  # the files' order does not matter
    assert not runs_prove_unique(ranges([0, 4], [4, 9]))  # a tie across runs
    assert not runs_prove_unique(ranges([0, 4], [2, 3]))  # overlapping ranges may share a value
    assert not runs_prove_unique(ranges([0, 4], [0, 9]))  # two runs starting at the same value
    assert not runs_prove_unique([*ranges([0, 4]), None])
    assert not runs_prove_unique([])


def test_a_key_that_is_not_utf8_is_refused_though_it_is_in_order(tmp_path: Path, contracts_dir: Path) -> None:
    """The order proof skips the aggregate's scan of the key; it must not skip the scan's UTF-8 check."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # a string key that only its uniqueness rule reads (not required, no primary key)
    text = WIDGETS_CONTRACT.replace("  - name: widget_id\n    type: int64\n    required: true",
                                    "  - name: widget_id\n    type: string").replace("primaryKey: [widget_id]\n", "")
    assert "type: string\n    unique: true" in text and "primaryKey" not in text
    (contracts_dir / "shop" / "widgets.yaml").write_text(text)
    mesh = Mesh.from_settings(Settings(lake_url=str(tmp_path / "lake"), contracts_dir=contracts_dir))
    table = widgets_table(3)
    ids = pa.array([b"a", b"b\xff\xfe", b"c"], pa.binary()).view(pa.string())
    path = tmp_path / "bad-key.parquet"
    pq.write_table(table.set_column(0, "widget_id", ids), path)
    before = lake_fingerprint(mesh)
    with pytest.raises(PublishError, match="not valid UTF-8"):
        _stage_and_commit(mesh, path)
    assert lake_fingerprint(mesh) == before


def _sorted_ids(ids: list[int]):  # noqa: ANN202
    import pyarrow as pa

    table = widgets_table(len(ids))
    return table.set_column(0, "widget_id", pa.array(ids, pa.int64()))


@pytest.mark.parametrize(
    ("chunks", "rows_per_file"),
    [
        ([[0, 1, 2, 3, 4], [4, 5, 6]], 2_000_000),  # a tie where one row group ends and the next starts
        ([[0, 1, 2, 3, 4], [2, 7, 8]], 2_000_000),  # each row group in order, their ranges overlapping
        ([[0, 1, 1, 2]], 2_000_000),  # a tie inside a run
        ([[0, 1, 2], [2, 3, 4]], 3),  # a tie across two files
        ([[5, 6, 7], [0, 1, 5]], 3),  # a later file's key repeats an earlier one's
    ],
    ids=["tie_across_row_groups", "overlapping_row_groups", "tie_in_a_run", "tie_across_files", "overlapping_files"],
)
def test_a_repeated_key_in_sorted_runs_still_fails(mesh, chunks: list[list[int]], rows_per_file: int) -> None:  # noqa: ANN001
    """Keys in order are proved unique without the grouped aggregate; no arrangement of sorted runs
    that repeats a key gets through, and nothing is published."""
    mesh.publish("widgets", widgets_table(4))
    before = lake_fingerprint(mesh)
    with pytest.raises(QualityError, match="rule 'widget_id_unique' failed: 1 duplicate values of \\(widget_id\\)"):
        with Publisher(mesh.catalog, mesh.contract("widgets"), rows_per_file=rows_per_file) as pub:
            for ids in chunks:
                pub.write(_sorted_ids(ids))
            pub.commit()
    assert lake_fingerprint(mesh) == before
    with pytest.raises(QualityError, match="widget_id_unique"):  # one in-memory table: the early check's path
        mesh.publish("widgets", _sorted_ids([i for ids in chunks for i in ids]))
    assert lake_fingerprint(mesh) == before


def test_a_run_keeps_two_values_not_its_chunk() -> None:
    """A publisher keeps a run per written chunk until its commit: a run holding slices would keep every chunk's
    key column alive (1.2 GB of event ids at 67 M rows)."""
    import pyarrow as pa

    from datamesh.quality import strictly_increasing

    run = strictly_increasing(pa.array(range(100_000), pa.int64()))
    assert run is not None and [v.get_total_buffer_size() for v in run] == [8, 8]


DECIMAL_KEY_CONTRACT = """
apiVersion: datamesh/v1
kind: DataProduct
id: amounts
name: Amounts
domain: shop
version: 1.0.0
description:
  purpose: Codes with a decimal key.
  grain: One row per code.
owner:
  team: shop-team
  contact: shop@example.com
columns:
  - name: code
    type: decimal(5,0)
    required: true
    unique: true
"""


@pytest.mark.parametrize("shape", ["table", "batches", "file"])
def test_a_decimal_beyond_its_precision_is_refused_not_stored_cut(tmp_path: Path, shape: str) -> None:
    """Arrow can hold 16777217 as decimal(5,0) (an unchecked cast, a Parquet file storing decimals as integers);
    Parquet stores it cut to three bytes, as 1. In order in memory, [1, 2, 16777217] would prove the key unique while
    the file held 1 twice: the publish refuses the value, naming the column and rows, and nothing changes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from datamesh.quality import strictly_increasing

    contracts = tmp_path / "contracts"
    (contracts / "shop").mkdir(parents=True)
    (contracts / "shop" / "amounts.yaml").write_text(DECIMAL_KEY_CONTRACT)
    mesh = Mesh.from_settings(Settings(lake_url=str(tmp_path / "lake"), contracts_dir=contracts))
    mesh.publish("amounts", pa.table({"code": pa.array([7, 8], pa.decimal128(5, 0))}))
    before = lake_fingerprint(mesh)
    codes = pa.array([1, 2, 1 + (1 << 24)], pa.decimal128(38, 0)).cast(pa.decimal128(5, 0), safe=False)
    table = pa.table({"code": codes})
    path = tmp_path / "codes.parquet"
    pq.write_table(table, path, store_decimal_as_integer=True)
    expected = (r"file .*codes.parquet row 3 column 'code': value 16777217 does not fit decimal128\(5, 0\)"
                if shape == "file" else r"column 'code' \(decimal128\(5, 0\)\) in row 3 of .* beyond its precision")
    with pytest.raises(PublishError, match=expected):
        if shape == "table":
            mesh.publish("amounts", table)
        elif shape == "batches":
            mesh.publish("amounts", iter(table.to_batches(max_chunksize=2)))
        else:
            mesh.publish_file("amounts", path)
    assert lake_fingerprint(mesh) == before
    assert strictly_increasing(codes) is None  # and a file read back proves nothing with such a value


def test_the_first_decimal_beyond_its_precision_is_found_at_the_edge() -> None:
    from decimal import Decimal

    import pyarrow as pa

    from datamesh.user_files import first_beyond_precision

    def cut(values: list, precision: int, scale: int = 0) -> pa.Array:  # noqa: ANN001
        return pa.array(values, pa.decimal128(38, scale)).cast(pa.decimal128(precision, scale), safe=False)

    assert first_beyond_precision(cut([Decimal(10**37 - 1), Decimal(10**37)], 37)) == 1  # 37 digits, then 38
    assert first_beyond_precision(cut([Decimal(10**37 - 1), Decimal(-(10**37 - 1))], 37)) is None
    assert first_beyond_precision(cut([Decimal("999.99"), Decimal("-1000.00")], 5, 2)) == 1


def test_keys_written_in_order_are_proved_from_the_written_tables_not_read_back(
        mesh, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # noqa: ANN001
    """Rows written through the publisher were in hand: their key order is proved from those tables (no second
    read of the key column, 3 s at 67 M events); a staged file's were not, and are read back from the files."""
    import pyarrow.parquet as pq

    from datamesh import quality

    read_back: list[int] = []
    real = quality.files_sorted_keys

    def counted(lake, contract, paths):  # noqa: ANN001, ANN202
        read_back.append(len(paths))
        return real(lake, contract, paths)

    monkeypatch.setattr(quality, "files_sorted_keys", counted)
    with Publisher(mesh.catalog, mesh.contract("widgets"), rows_per_file=3) as pub:
        for ids in ([6, 7, 8], [0, 1, 2], [3, 4]):
            pub.write(_sorted_ids(ids))
        manifest = pub.commit()
    assert read_back == [] and len(manifest.files) == 3
    assert next(q for q in manifest.quality if q["key"] == "widget_id_unique")["passed"]
    path = tmp_path / "staged.parquet"
    pq.write_table(_sorted_ids([10, 11, 12]), path)
    with Publisher(mesh.catalog, mesh.contract("widgets")) as pub:
        pub.write(_sorted_ids([0, 1]))
        pub.add_file(str(path))
        staged = pub.commit()
    assert read_back == [2] and next(q for q in staged.quality if q["key"] == "widget_id_unique")["passed"]


def test_sorted_files_skip_the_aggregate_and_unsorted_ones_do_not(mesh) -> None:  # noqa: ANN001
    from datamesh.quality import files_sorted_keys, table_sorted_keys

    contract = mesh.contract("widgets")
    with Publisher(mesh.catalog, contract, rows_per_file=3) as pub:
        for ids in ([6, 7, 8], [0, 1, 2], [3, 4]):  # files out of order, each in order
            pub.write(_sorted_ids(ids))
        manifest = pub.commit()
    paths = [mesh.lake.path(f.path) for f in manifest.files]
    assert len(paths) == 3 and files_sorted_keys(mesh.lake, contract, paths) == ["widget_id"]
    assert next(q for q in manifest.quality if q["key"] == "widget_id_unique")["passed"]
    unsorted = mesh.publish("widgets", iter([_sorted_ids([3, 1, 2])]))
    assert files_sorted_keys(mesh.lake, contract, [mesh.lake.path(f.path) for f in unsorted.files]) == []
    assert table_sorted_keys(contract, _sorted_ids([1, 5, 9])) == ["widget_id"]
    assert table_sorted_keys(contract, _sorted_ids([1, 9, 5])) == []
    # the proof is the caller's: given one, run_rules does not query the key at all
    con = connect()
    try:
        con.register("__mesh_input", _sorted_ids([1, 1]))
        trusted = run_rules(con, contract, "__mesh_input", sorted_keys=["widget_id"])
        checked = run_rules(con, contract, "__mesh_input")
    finally:
        con.close()
    assert next(r for r in trusted if r.key == "widget_id_unique").passed
    assert not next(r for r in checked if r.key == "widget_id_unique").passed
