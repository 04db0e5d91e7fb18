"""Contract column types: the one table from contract types to Iceberg, Arrow, DuckDB and Trino, both ways."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel, ValidationError
from pyiceberg import types as it

from datamesh.contracts import Column
from datamesh.contracts import ColumnType as ReExported
from datamesh.types import ALLOWED_TYPES, SIMPLE_TYPES, TYPE_NAMES, ColumnType, ColumnTypeError, is_widening

DECIMALS = [ColumnType.decimal(12, 2), ColumnType.decimal(38, 10), ColumnType.decimal(1, 0), ColumnType.decimal(38, 38),
            ColumnType.decimal(18, 0)]
ALL = [*SIMPLE_TYPES, *DECIMALS]

#: contract type → (Arrow, Iceberg, DuckDB as DESCRIBE shows it, Trino): written out, not derived from the module.
EXPECTED: dict[str, tuple[pa.DataType, it.IcebergType, str, str]] = {
    "string": (pa.string(), it.StringType(), "VARCHAR", "varchar"),
    "int32": (pa.int32(), it.IntegerType(), "INTEGER", "integer"),
    "int64": (pa.int64(), it.LongType(), "BIGINT", "bigint"),
    "double": (pa.float64(), it.DoubleType(), "DOUBLE", "double"),
    "boolean": (pa.bool_(), it.BooleanType(), "BOOLEAN", "boolean"),
    "date": (pa.date32(), it.DateType(), "DATE", "date"),
    "time": (pa.time64("us"), it.TimeType(), "TIME", "time(6)"),
    "timestamp": (pa.timestamp("us"), it.TimestampType(), "TIMESTAMP", "timestamp(6)"),
    "timestamptz": (pa.timestamp("us", tz="UTC"), it.TimestamptzType(), "TIMESTAMP WITH TIME ZONE",
                    "timestamp(6) with time zone"),
    "decimal(12,2)": (pa.decimal128(12, 2), it.DecimalType(12, 2), "DECIMAL(12,2)", "decimal(12,2)"),
    "decimal(38,10)": (pa.decimal128(38, 10), it.DecimalType(38, 10), "DECIMAL(38,10)", "decimal(38,10)"),
    "decimal(1,0)": (pa.decimal128(1, 0), it.DecimalType(1, 0), "DECIMAL(1,0)", "decimal(1,0)"),
    "decimal(38,38)": (pa.decimal128(38, 38), it.DecimalType(38, 38), "DECIMAL(38,38)", "decimal(38,38)"),
    "decimal(18,0)": (pa.decimal128(18, 0), it.DecimalType(18, 0), "DECIMAL(18,0)", "decimal(18,0)"),
}

#: A value of each type (and a null), for the round trips through files.
SAMPLES: dict[str, list[Any]] = {
    "string": ["snow ❄", None],
    "int32": [-(2**31), None],
    "int64": [2**62, None],
    "double": [2.5, None],
    "boolean": [True, None],
    "date": [date(2024, 1, 31), None],
    "time": [time(12, 30, 5, 123456), None],
    "timestamp": [datetime(2024, 1, 31, 12, 0, 0, 123456), None],
    "timestamptz": [datetime(2024, 1, 31, 12, 0, 0, 123456, tzinfo=UTC), None],
    "decimal(12,2)": [Decimal("-9999999999.99"), None],
    "decimal(38,10)": [Decimal("1234567890123456789012345678.0123456789"), None],
    "decimal(1,0)": [Decimal("7"), None],
    "decimal(38,38)": [Decimal("0." + "9" * 38), None],
    "decimal(18,0)": [Decimal("999999999999999999"), None],
}


def test_the_table_covers_every_type_name() -> None:
    assert [t.value for t in SIMPLE_TYPES] == ["string", "int32", "int64", "double", "boolean", "date", "time",
                                               "timestamp", "timestamptz"]
    assert set(TYPE_NAMES) == {t.value for t in SIMPLE_TYPES} | {"decimal(p,s)"}
    assert set(EXPECTED) == {t.value for t in ALL}


@pytest.mark.parametrize("column_type", ALL, ids=str)
def test_each_engine_type_and_back(column_type: ColumnType) -> None:
    arrow, iceberg, duck, trino = EXPECTED[column_type.value]
    assert ColumnType.parse(column_type.value) is column_type
    assert column_type.arrow.equals(arrow) and ColumnType.from_arrow(arrow) is column_type
    assert column_type.iceberg == iceberg and ColumnType.from_iceberg(iceberg) is column_type
    assert column_type.duckdb == duck and ColumnType.from_duckdb(duck) is column_type
    assert column_type.trino == trino and ColumnType.from_trino(trino) is column_type


@pytest.mark.parametrize("column_type", ALL, ids=str)
def test_duckdb_names_its_type_as_the_table_does(column_type: ColumnType) -> None:
    con = duckdb.connect()
    (_, described, *_), = con.sql(f"DESCRIBE SELECT CAST(NULL AS {column_type.duckdb}) AS x").fetchall()
    assert described == column_type.duckdb
    assert ColumnType.from_duckdb(described) is column_type


def test_arrow_values_round_trip_through_parquet_and_duckdb(tmp_path: Path) -> None:
    names = [f"c{i}" for i in range(len(ALL))]
    table = pa.table({name: pa.array(SAMPLES[t.value], t.arrow) for name, t in zip(names, ALL, strict=True)})
    pq.write_table(table, tmp_path / "all.parquet")
    back = pq.read_table(tmp_path / "all.parquet")
    assert back.schema.equals(table.schema)
    assert back.to_pylist() == table.to_pylist()
    assert [ColumnType.from_arrow(f.type) for f in back.schema] == ALL
    # A Parquet file written without the Arrow schema (as DuckDB, Trino and Iceberg writers do) reads the same.
    pq.write_table(table, tmp_path / "plain.parquet", store_schema=False)
    assert [ColumnType.from_arrow(f.type) for f in pq.read_schema(tmp_path / "plain.parquet")] == ALL
    con = duckdb.connect()
    described = con.sql(f"DESCRIBE SELECT * FROM read_parquet('{tmp_path / 'all.parquet'}')").fetchall()
    assert [ColumnType.from_duckdb(row[1]) for row in described] == ALL
    # DuckDB's Arrow output spells UTC its own way (Etc/UTC); it is still timestamptz.
    from_duckdb = con.sql(f"SELECT * FROM read_parquet('{tmp_path / 'all.parquet'}')").fetch_arrow_table()
    assert [ColumnType.from_arrow(f.type) for f in from_duckdb.schema] == ALL
    assert from_duckdb.cast(table.schema).to_pylist() == table.to_pylist()


def test_values_round_trip_through_an_iceberg_table(tmp_path: Path) -> None:
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.schema import Schema
    from pyiceberg.types import NestedField

    catalog = SqlCatalog("test", uri=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse=f"file://{tmp_path}")
    catalog.create_namespace("shop")
    schema = Schema(*[NestedField(i + 1, f"c{i}", t.iceberg, required=False) for i, t in enumerate(ALL)])
    table = catalog.create_table("shop.all_types", schema=schema)
    data = pa.table({f"c{i}": pa.array(SAMPLES[t.value], t.arrow) for i, t in enumerate(ALL)})
    table.append(data)
    assert [ColumnType.from_iceberg(f.field_type) for f in table.schema().fields] == ALL
    back = table.scan().to_arrow()
    assert [ColumnType.from_arrow(f.type) for f in back.schema] == ALL
    assert back.cast(data.schema).to_pylist() == data.to_pylist()


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("int64", "int64"), ("  timestamptz\n", "timestamptz"), ("decimal(12,2)", "decimal(12,2)"),
     ("decimal( 12 , 2 )", "decimal(12,2)"), ("decimal(012,02)", "decimal(12,2)"), ("decimal(38, 0)", "decimal(38,0)")],
)
def test_parse_gives_the_canonical_type(text: str, canonical: str) -> None:
    parsed = ColumnType.parse(text)
    assert parsed.value == canonical == str(parsed)
    assert parsed is ColumnType(text) is ColumnType.parse(canonical)
    assert repr(parsed) == f"ColumnType({canonical!r})"


@pytest.mark.parametrize(
    ("text", "reason"),
    [("money", "unknown type; did you mean 'decimal(p,s)'?"),
     ("float", "unknown type; did you mean 'double'?"),
     ("strng", "unknown type; did you mean 'string'?"),
     ("INT64", "types are lowercase; did you mean 'int64'?"),
     ("Decimal(12, 2)", "types are lowercase; did you mean 'decimal(12,2)'?"),
     ("numeric(12,2)", "did you mean 'decimal(12,2)'?"),
     ("decimal", "a decimal needs its precision and scale, like decimal(12,2)"),
     ("decimal(12)", "a decimal needs its precision and scale, like decimal(12,2)"),
     ("decimal(12", "in a {...} mapping a comma ends the value: quote the type, like type: 'decimal(12,2)'"),
     ("decimal(0,0)", "the precision must be 1 to 38 digits, not 0"),
     ("decimal(39,2)", "the precision must be 1 to 38 digits, not 39"),
     ("decimal(5,6)", "the scale must be 0 to the precision (5), not 6"),
     ("", "unknown type"),
     (5, "a column type is text, like int64 or decimal(12,2)"),
     (None, "a column type is text, like int64 or decimal(12,2)")],
)
def test_parse_errors_say_why_and_list_the_types(text: object, reason: str) -> None:
    with pytest.raises(ColumnTypeError) as info:
        ColumnType.parse(text)
    assert info.value.reason == reason and info.value.text == text
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert message.startswith(f"column type {text!r}") and reason in message
    assert message.endswith(f"Column types are {ALLOWED_TYPES}.")
    assert "decimal(p,s) (precision p 1-38, scale s 0-p, e.g. decimal(12,2))" in message


def test_decimal_constructor_checks_its_bounds() -> None:
    assert ColumnType.decimal(38, 38).value == "decimal(38,38)"
    for precision, scale in ((0, 0), (39, 0), (10, -1), (10, 11), (True, 0), (10, 2.0)):
        with pytest.raises(ColumnTypeError):
            ColumnType.decimal(precision, scale)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("function", "value", "fragment"),
    [(ColumnType.from_arrow, pa.timestamp("ns"), "Times are microseconds"),
     (ColumnType.from_arrow, pa.timestamp("us", tz="Europe/Paris"), "must be in UTC (got Europe/Paris)"),
     (ColumnType.from_arrow, pa.time32("ms"), "Times are microseconds"),
     (ColumnType.from_arrow, pa.float32(), "Arrow type float has no contract type"),
     (ColumnType.from_arrow, pa.decimal256(40, 2), "Decimals are decimal128"),
     (ColumnType.from_arrow, pa.list_(pa.int32()), "has no contract type"),
     (ColumnType.from_arrow, "int64", "has no contract type"),
     (ColumnType.from_iceberg, it.FloatType(), "Iceberg type float has no contract type"),
     (ColumnType.from_iceberg, it.TimestampNanoType(), "has no contract type"),
     (ColumnType.from_iceberg, it.UUIDType(), "has no contract type"),
     (ColumnType.from_duckdb, "HUGEINT", "DuckDB type 'HUGEINT' has no contract type"),
     (ColumnType.from_duckdb, "TIMESTAMP_NS", "has no contract type"),
     (ColumnType.from_duckdb, "DECIMAL(40,2)", "the precision must be 1 to 38"),
     (ColumnType.from_trino, "timestamp", "Trino type 'timestamp' has no contract type"),
     (ColumnType.from_trino, "timestamp(3)", "has no contract type"),
     (ColumnType.from_trino, "varchar(10)", "has no contract type"),
     (ColumnType.from_trino, "real", "has no contract type")],
)
def test_unmapped_engine_types_are_refused(function: Any, value: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match="contract type") as info:
        function(value)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("function", "value", "expected"),
    [(ColumnType.from_arrow, pa.large_string(), "string"),
     (ColumnType.from_arrow, pa.timestamp("us", tz="+00:00"), "timestamptz"),
     (ColumnType.from_arrow, pa.timestamp("us", tz="Etc/UTC"), "timestamptz"),
     (ColumnType.from_duckdb, "timestamptz", "timestamptz"),
     (ColumnType.from_duckdb, "timestamp  with time zone", "timestamptz"),
     (ColumnType.from_duckdb, " numeric( 12, 2 ) ", "decimal(12,2)"),
     (ColumnType.from_duckdb, "int", "int32"),
     (ColumnType.from_duckdb, "TEXT", "string"),
     (ColumnType.from_trino, "DECIMAL(12, 2)", "decimal(12,2)"),
     (ColumnType.from_trino, "Timestamp(6) With Time Zone", "timestamptz")],
)
def test_engine_spellings_of_a_type(function: Any, value: Any, expected: str) -> None:
    assert function(value) is ColumnType.parse(expected)


@pytest.mark.parametrize(
    ("old", "new", "widens"),
    [("int32", "int64", True), ("decimal(10,2)", "decimal(12,2)", True), ("decimal(1,0)", "decimal(38,0)", True),
     ("int64", "int32", False), ("int32", "double", False), ("int64", "double", False),
     ("decimal(12,2)", "decimal(10,2)", False), ("decimal(10,2)", "decimal(12,3)", False),
     ("decimal(10,2)", "decimal(10,1)", False), ("int32", "decimal(10,0)", False), ("double", "decimal(38,10)", False),
     ("date", "timestamp", False), ("timestamp", "timestamptz", False), ("string", "int64", False),
     ("int64", "int64", False), ("decimal(12,2)", "decimal( 12,2 )", False)],
)
def test_widening_is_what_iceberg_promotes(old: str, new: str, widens: bool) -> None:
    assert is_widening(ColumnType.parse(old), ColumnType.parse(new)) is widens


def test_values_behave_like_constants() -> None:
    assert ReExported is ColumnType
    assert ColumnType.INT64 == ColumnType("int64") and ColumnType.INT64 != ColumnType.INT32
    assert ColumnType.INT64 != "int64"  # a type, not a string: compare .value with strings
    assert len({ColumnType.DOUBLE, ColumnType("double"), ColumnType.decimal(12, 2), ColumnType("decimal(12, 2)")}) == 2
    assert {ColumnType.TIMESTAMP: 1}[ColumnType.parse("timestamp")] == 1
    for t in ALL:
        assert pickle.loads(pickle.dumps(t)) is t and copy.deepcopy(t) is t and copy.copy(t) is t
    with pytest.raises(AttributeError):
        ColumnType.INT64.value = "int32"  # type: ignore[misc]
    assert ColumnType.INT64.value == "int64"


def test_kinds_and_numbers() -> None:
    assert [t.value for t in ALL if t.is_numeric] == ["int32", "int64", "double", *(d.value for d in DECIMALS)]
    assert ColumnType.decimal(12, 2).kind == "decimal" and ColumnType.DATE.kind == "date"
    assert (ColumnType.decimal(12, 2).precision, ColumnType.decimal(12, 2).scale) == (12, 2)
    assert ColumnType.INT64.precision is None and not ColumnType.INT64.is_decimal


def test_a_pydantic_field_reads_and_writes_the_contract_string() -> None:
    column = Column.model_validate({"name": "price", "type": "decimal( 12, 2 )"})
    assert column.type is ColumnType.decimal(12, 2)
    assert column.model_dump(mode="json")["type"] == "decimal(12,2)"
    assert column.model_dump()["type"] == "decimal(12,2)"
    assert '"type":"decimal(12,2)"' in column.model_dump_json()
    assert Column.model_validate(column.model_dump(mode="json")) == column
    assert Column(name="at", type=ColumnType.TIMESTAMPTZ).type is ColumnType.TIMESTAMPTZ
    assert hash(column) == hash(Column.model_validate({"name": "price", "type": "decimal(12,2)"}))
    with pytest.raises(ValidationError, match="column type 'money' is not valid"):
        Column.model_validate({"name": "price", "type": "money"})


def test_json_schema_of_a_type_field() -> None:
    class Model(BaseModel):
        type: ColumnType

    schema = Model.model_json_schema()["properties"]["type"]
    assert schema["type"] == "string" and "decimal(p,s)" in schema["description"]
