from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from datamesh.contracts import Contract, parse_contract
from datamesh.errors import PublishError, SchemaMismatchError
from datamesh.user_files import FileFormat, file_format_of, read_user_file
from tests.conftest import WIDGETS_CONTRACT, widgets_table
from tests.integrity import lake_fingerprint
from tests.unit.datamesh.damaged_files import bad_utf8_strings, write_bad_utf8, write_corrupt_pages

HEADER = "widget_id,color,price,made_at\n"
ROW = "1,red,2.5,2024-01-01T00:00:00\n"


def _refused(mesh, path: Path, error: type[Exception] = PublishError, **kwargs: str) -> str:  # noqa: ANN001
    """Publish ``path``; assert a clear error and an unchanged lake; return the message."""
    before = lake_fingerprint(mesh)
    with pytest.raises(error) as info:
        mesh.publish_file("widgets", path, **kwargs)
    message = str(info.value)
    assert "Product 'widgets'" in message
    assert "Traceback" not in message and "pyarrow" not in message
    assert lake_fingerprint(mesh) == before
    return message


@pytest.fixture()
def published(mesh):  # noqa: ANN001, ANN201
    """A mesh whose widgets already have a version, so a refused publish must leave it served."""
    mesh.publish("widgets", widgets_table(4))
    return mesh


# -- files that are read ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        HEADER + ROW,
        "widget_id, color , price,\tmade_at\n" + ROW,
        '"widget_id","color","price","made_at"\n1,"red",2.5,2024-01-01\n',
        "made_at,price,color,widget_id\n2024-01-01,2.5,red,1\n",
        HEADER + '1,"red",2.5,2024-01-01\n2,"green",,2024-01-02 10:00:00\n',
    ],
    ids=["plain", "spaces_in_header", "quoted", "other_order", "null_price"],
)
def test_csv_variants_publish(mesh, tmp_path: Path, text: str) -> None:  # noqa: ANN001
    path = tmp_path / "w.csv"
    path.write_text(text)
    manifest = mesh.publish_file("widgets", path)
    assert manifest.row_count == text.count("\n") - 1
    assert manifest.metadata["source_file"] == "w.csv"


def test_csv_with_a_byte_order_mark(mesh, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "bom.csv"
    path.write_bytes(("\ufeff" + HEADER + ROW).encode("utf-8"))
    assert mesh.publish_file("widgets", path).row_count == 1


def test_csv_values_with_commas_and_newlines_in_quotes(mesh, tmp_path: Path) -> None:  # noqa: ANN001
    table = read_user_file(mesh.contract("widgets"), _write(tmp_path / "q.csv",
                           HEADER + '1,"red",1.0,2024-01-01\n2,"gr,een\nish",2.0,2024-01-01\n'))
    assert isinstance(table, pa.Table)
    assert table["color"].to_pylist() == ["red", "gr,een\nish"]


def test_format_from_option_or_suffix(mesh, tmp_path: Path) -> None:  # noqa: ANN001
    contract = mesh.contract("widgets")
    assert file_format_of(contract, Path("x.PARQUET")) is FileFormat.PARQUET
    assert file_format_of(contract, Path("x.pq")) is FileFormat.PARQUET
    assert file_format_of(contract, Path("x.txt"), "csv") is FileFormat.CSV
    path = _write(tmp_path / "export.txt", HEADER + ROW)
    assert mesh.publish_file("widgets", path, file_format="csv").row_count == 1


def test_parquet_streams_batches(mesh, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "w.parquet"
    pq.write_table(widgets_table(10), path)
    batches = read_user_file(mesh.contract("widgets"), path)
    assert not isinstance(batches, pa.Table)
    assert sum(b.num_rows for b in batches) == 10
    assert mesh.publish_file("widgets", path).row_count == 10


# -- files that are refused, with the lake unchanged ------------------------------------


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_missing_file(published, tmp_path: Path) -> None:  # noqa: ANN001
    message = _refused(published, tmp_path / "nope.parquet")
    assert "nope.parquet does not exist" in message


def test_folder_instead_of_file(published, tmp_path: Path) -> None:  # noqa: ANN001
    assert "is a folder" in _refused(published, tmp_path)


@pytest.mark.parametrize(("name", "option"), [("w.txt", None), ("w.parquet", "xlsx"), ("w", None)])
def test_unknown_format(published, tmp_path: Path, name: str, option: str | None) -> None:  # noqa: ANN001
    path = _write(tmp_path / name, HEADER + ROW)
    kwargs = {"file_format": option} if option else {}
    message = _refused(published, path, **kwargs)
    assert "unsupported file format" in message and "expected parquet or csv" in message


@pytest.mark.parametrize("content", [b"", b"hello", b"PAR1" + b"\0" * 100])
def test_not_parquet(published, tmp_path: Path, content: bytes) -> None:  # noqa: ANN001
    path = _write(tmp_path / "fake.parquet", content)
    assert "fake.parquet is not a readable Parquet file" in _refused(published, path)


def test_parquet_schema_mismatch(published, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "drift.parquet"
    pq.write_table(widgets_table(3).drop_columns(["price"]), path)
    message = _refused(published, path, SchemaMismatchError)
    assert "missing column 'price'" in message and str(path) in message


def test_parquet_with_corrupt_pages(published, tmp_path: Path) -> None:  # noqa: ANN001
    path = write_corrupt_pages(tmp_path / "corrupt.parquet")
    message = _refused(published, path)
    assert f"file {path} is damaged" in message
    assert "rows 1-5000 (row group 1 of 1)" in message and "Re-export" in message


def test_parquet_with_corrupt_pages_in_a_later_row_group(published, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "late.parquet"
    table = pa.concat_tables([widgets_table(3000, start=0), widgets_table(3000, start=3000)])
    table = table.set_column(1, "color", pa.array([f"c{i}" for i in range(6000)]))
    pq.write_table(table, path, row_group_size=3000)
    data = bytearray(path.read_bytes())
    chunk = pq.ParquetFile(path).metadata.row_group(1).column(1)
    middle = (chunk.dictionary_page_offset or chunk.data_page_offset) + chunk.total_compressed_size // 2
    data[middle:middle + 64] = b"\xab" * 64
    path.write_bytes(bytes(data))
    assert "rows 3001-6000 (row group 2 of 2)" in _refused(published, path)


def test_parquet_with_invalid_utf8(published, tmp_path: Path) -> None:  # noqa: ANN001
    path = write_bad_utf8(tmp_path / "utf8.parquet")
    message = _refused(published, path)
    assert f"file {path} row 2 column 'color': value b'\\xff\\xfe' is not valid UTF-8" in message


def test_parquet_with_invalid_utf8_made_by_an_unsafe_cast(published, tmp_path: Path) -> None:  # noqa: ANN001
    colors = pa.array([b"red"] * 5 + [b"gr\xc3\x28en"], pa.binary()).cast(pa.string(), safe=False)
    path = tmp_path / "cast.parquet"
    pq.write_table(widgets_table(6).set_column(1, "color", colors), path)
    assert "row 6 column 'color'" in _refused(published, path)


def test_invalid_utf8_row_counts_across_batches(mesh, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    import datamesh.user_files as user_files

    monkeypatch.setattr(user_files, "BATCH_ROWS", 2)
    path = tmp_path / "late.parquet"
    colors = pa.concat_arrays([pa.array(["red"] * 4), bad_utf8_strings()])  # bad value is row 6
    pq.write_table(widgets_table(7).set_column(1, "color", colors), path)
    with pytest.raises(PublishError, match="row 6 column 'color'"):
        list(read_user_file(mesh.contract("widgets"), path))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (HEADER + ROW + "2,red,2.5,2024-01-01\nabc,red,2.5,2024-01-01\n",
         ["could not be parsed: row 3 (line 4) column 'widget_id': value 'abc' is not a valid int64 (a whole number)"]),
        (HEADER + "1,red,2.5,yesterday\n",
         ["row 1 (line 2) column 'made_at': value 'yesterday' is not a valid timestamp (a time like 2024-01-31T12:00:00"]),
        (HEADER + "1,red,cheap,2024-01-01\n", ["column 'price': value 'cheap' is not a valid double (a number like 2.5)"]),
        (HEADER + "1,red,2.5,2024-01-01T00:00:00Z\n",
         ["row 1 (line 2) column 'made_at': value '2024-01-01T00:00:00Z' is not a valid timestamp", "zone offset"]),
        (HEADER + '1,"multi\nline",2.5,2024-01-01\nx,red,2.5,2024-01-01\n',
         ["row 2 (line 4) column 'widget_id': value 'x'"]),
        (HEADER + ROW + "2,red,2.5,2024-01-01,surplus\n",
         ["row 2 (line 3) has 5 values, but the header has 4 columns"]),
        (HEADER + ROW + "2,red\n", ["row 2 (line 3) has 2 values"]),
        (HEADER.encode() + b"1,r\xffd,2.5,2024-01-01\n",
         ["row 1 (line 2) column 'color': value b'r\\xffd' is not valid UTF-8"]),
    ],
    ids=["bad_int", "bad_timestamp", "bad_double", "timestamp_with_offset", "after_quoted_newline", "too_many_values", "too_few_values",
         "invalid_utf8"],
)
def test_csv_values_that_do_not_parse(published, tmp_path: Path, text: str | bytes, fragments: list[str]) -> None:  # noqa: ANN001
    path = _write(tmp_path / "bad.csv", text)
    message = _refused(published, path)
    assert f"file {path}" in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("text", "error", "fragments"),
    [
        ("", PublishError, ["has no header line", "widget_id, color, price, made_at"]),
        ("\n\n", PublishError, ["has no header line"]),
        ("widget_id,color,color,price,made_at\n1,red,red,2.5,2024-01-01\n", SchemaMismatchError,
         ["the header names 'color' 2 times"]),
        ("widget_id, color,color ,price,made_at\n", SchemaMismatchError, ["'color' 2 times"]),
        ("widget_id,colour,price,made_at\n" + ROW, SchemaMismatchError,
         ["missing column 'color'", "extra column 'colour' not in the contract (did you mean 'color'?)"]),
        ("widget_id,color,price\n1,red,2.5\n", SchemaMismatchError, ["missing column 'made_at'"]),
        ("widget_id,color,price,made_at,discount\n", SchemaMismatchError, ["extra column 'discount'"]),
        ("widget_id,color,price,made_at,\n1,red,2.5,2024-01-01,\n", SchemaMismatchError,
         ["header column 5 has no name"]),
        (b"PAR1\x00\xff\xfe\x00", PublishError, ["is not a UTF-8 text CSV"]),
    ],
    ids=["empty", "blank_lines", "repeated", "repeated_after_strip", "misspelt", "missing", "extra",
         "trailing_comma", "binary"],
)
def test_csv_headers_that_do_not_fit(published, tmp_path: Path, text: str | bytes, error: type[Exception],  # noqa: ANN001
                                     fragments: list[str]) -> None:
    path = _write(tmp_path / "header.csv", text)
    message = _refused(published, path, error)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


# -- decimals, instants and times in CSV ---------------------------------------------------

TYPED_CONTRACT = (WIDGETS_CONTRACT.replace("    type: double", "    type: decimal(6,2)", 1)
                  .replace("    type: timestamp", "    type: timestamptz", 1)
                  .replace("primaryKey:", "  - name: opens_at\n    type: time\nprimaryKey:", 1))
TYPED_HEADER = "widget_id,color,price,made_at,opens_at\n"


def _typed() -> Contract:
    return parse_contract(yaml.safe_load(TYPED_CONTRACT), Path("data_products/shop/widgets.yaml"))


def test_csv_reads_decimals_instants_and_times(tmp_path: Path) -> None:
    contract = _typed()
    path = _write(tmp_path / "typed.csv", TYPED_HEADER + "1,red,12.5,2024-01-31T12:00:00Z,08:30:00\n"
                                                         "2,red,,2024-01-31T13:00:00.5+01:00,\n"
                                                         "3,red, -9999.99 ,2024-01-31 12:00:00+00:00,23:59:59.999999\n")
    table = read_user_file(contract, path)
    assert isinstance(table, pa.Table) and table.schema.equals(contract.arrow_schema())
    noon = datetime(2024, 1, 31, 12, tzinfo=UTC)
    assert table.to_pylist() == [
        {"widget_id": 1, "color": "red", "price": Decimal("12.50"), "made_at": noon, "opens_at": time(8, 30)},
        {"widget_id": 2, "color": "red", "price": None, "made_at": noon.replace(microsecond=500000), "opens_at": None},
        {"widget_id": 3, "color": "red", "price": Decimal("-9999.99"), "made_at": noon,
         "opens_at": time(23, 59, 59, 999999)},
    ]


@pytest.mark.parametrize(
    ("row", "fragment"),
    [("1,red,12345.5,2024-01-31T12:00:00Z,08:30:00\n",  # passes Arrow's own CSV check, which looks before scaling
      "row 2 (line 3) column 'price': value '12345.5' is not a valid decimal(6,2) (a number with at most 4 digits "
      "before the point and 2 after, like 123.45): it has more than 4 digits before the point."),
     ("1,red,2.555,2024-01-31T12:00:00Z,08:30:00\n",
      "row 2 (line 3) column 'price': value '2.555' is not a valid decimal(6,2) (a number with at most 4 digits before "
      "the point and 2 after, like 123.45): it has more than 2 digits after the point."),
     ("1,red,-99999.99,2024-01-31T12:00:00Z,08:30:00\n", "value '-99999.99' is not a valid decimal(6,2)"),
     ("1,red,1.5€,2024-01-31T12:00:00Z,08:30:00\n",
      "value '1.5€' is not a valid decimal(6,2) (a number with at most 4 digits before the point and 2 after, like "
      "123.45). Fix the value"),
     ("1,red,2.5,2024-01-31T12:00:00,08:30:00\n",
      "row 2 (line 3) column 'made_at': value '2024-01-31T12:00:00' is not a valid timestamptz (a time with its offset "
      "like 2024-01-31T12:00:00Z or 2024-01-31T13:00:00+01:00) (expected a zone offset)."),
     ("1,red,2.5,2024-01-31T12:00:00Z,25:00\n",
      "row 2 (line 3) column 'opens_at': value '25:00' is not a valid time (a time of day like 12:30:00)")],
    ids=["too_many_digits_after_scaling", "too_many_decimals", "too_many_digits", "not_a_number", "instant_without_offset",
         "bad_time"],
)
def test_csv_values_that_do_not_fit_decimals_instants_or_times(tmp_path: Path, row: str, fragment: str) -> None:
    path = _write(tmp_path / "typed.csv", TYPED_HEADER + "9,red,1.25,2024-01-31T12:00:00Z,08:30:00\n" + row)
    with pytest.raises(PublishError) as info:
        read_user_file(_typed(), path)
    message = str(info.value)
    assert message.startswith(f"Product 'widgets': file {path} could not be parsed:")
    assert fragment in message
    assert "pyarrow" not in message and "Traceback" not in message and "If these timestamps" not in message
