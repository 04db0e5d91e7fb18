"""Real-world files become products without hand edits: physical names, the csv block, boolean words,
null markers, time zones, and errors that name file, row, line, column and value."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from datamesh.contracts import Contract, parse_contract
from datamesh.errors import ContractError, PublishError, SchemaMismatchError
from datamesh.user_files import read_user_file

BASE = {
    "apiVersion": "datamesh/v1", "kind": "DataProduct", "id": "customers", "name": "Customers", "domain": "crm",
    "version": "1.0.0", "description": {"purpose": "p", "grain": "g"},
    "owner": {"team": "crm-team", "contact": "crm@example.com"},
}
COLUMNS = [
    {"name": "customer_id", "physicalName": "CustomerID", "type": "string", "required": True},
    {"name": "country", "physicalName": "Country", "type": "string", "required": True},
    {"name": "total_spend", "physicalName": "TotalSpend", "type": "decimal(10,2)"},
    {"name": "partner", "physicalName": "Partner", "type": "boolean", "trueValues": ["Yes", "Y", "1"],
     "falseValues": ["No", "N", "0"]},
    {"name": "visits", "physicalName": "Visits", "type": "int64"},
    {"name": "notes", "type": "string"},
]
HEADER = "CustomerID,Country,TotalSpend,Partner,Visits,notes"


def _contract(columns: list[dict] | None = None, **extra: object) -> Contract:  # type: ignore[type-arg]
    return parse_contract({**BASE, "columns": columns or COLUMNS, **extra}, Path("data_products/crm/customers.yaml"))


def _yaml_contract(text: str) -> Contract:
    return parse_contract({**BASE, **yaml.safe_load(text)}, Path("data_products/crm/customers.yaml"))


def _write(path: Path, text: str, *, bom: bool = False, crlf: bool = False, encoding: str = "utf-8") -> Path:
    if crlf:
        text = text.replace("\n", "\r\n")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))
    return path


def _error(contract: Contract, path: Path, error: type[Exception] = PublishError) -> str:
    with pytest.raises(error) as info:
        table = read_user_file(contract, path)
        if not isinstance(table, pa.Table):
            list(table)
    message = str(info.value)
    assert str(path) in message and "Traceback" not in message and "pyarrow" not in message
    return message


# -- physical names and null markers ---------------------------------------------------------


def test_camelcase_csv_with_bom_crlf_blanks_yes_no_and_null_looking_strings(tmp_path: Path) -> None:
    """The real-world file: BOM, CRLF, CamelCase header, a whitespace-only number, Yes/No, and 'NA' (Namibia),
    'null', 'N/A', 'NULL', 'NaN' as values that must stay text."""
    path = _write(tmp_path / "c.csv", HEADER + "\n"
                  "A1,NA,29.85,Yes,3,null\n"
                  "A2,DE,   ,no,  ,N/A\n"
                  "A3,NA, 108.15 ,Y,\t,NULL\n"
                  "A4,FR,1840.75,0,7,NaN\n"
                  "A5,NA,,N,,\n", bom=True, crlf=True)
    table = read_user_file(_contract(), path)
    assert isinstance(table, pa.Table)
    assert table.schema.names == ["customer_id", "country", "total_spend", "partner", "visits", "notes"]
    assert table["country"].to_pylist() == ["NA", "DE", "NA", "FR", "NA"]
    assert table["notes"].to_pylist() == ["null", "N/A", "NULL", "NaN", None]  # only the empty cell is null
    assert table["total_spend"].to_pylist() == [Decimal("29.85"), None, Decimal("108.15"), Decimal("1840.75"), None]
    assert table["partner"].to_pylist() == [True, False, True, False, False]
    assert table["visits"].to_pylist() == [3, None, None, 7, None]
    assert table["customer_id"].to_pylist()[0] == "A1"  # no BOM in the first value, no \r in the last


def test_whitespace_in_a_string_column_is_kept(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.csv", HEADER + "\nA1, ,1,Yes,1,  \n")
    table = read_user_file(_contract(), path)
    assert table["country"].to_pylist() == [" "] and table["notes"].to_pylist() == ["  "]  # type: ignore[index]


def test_null_values_of_the_csv_block_apply(tmp_path: Path) -> None:
    contract = _contract(csv={"nullValues": ["", "N/A", "-"]})
    path = _write(tmp_path / "c.csv", HEADER + "\nA1,DE,N/A,Yes,-,N/A\nA2,NA,1.5,No,2,NA\n")
    table = read_user_file(contract, path)
    assert table["total_spend"].to_pylist() == [None, Decimal("1.50")]  # type: ignore[index]
    assert table["visits"].to_pylist() == [None, 2]  # type: ignore[index]
    assert table["notes"].to_pylist() == [None, "NA"]  # type: ignore[index]


def test_semicolon_delimited_file_with_single_quote(tmp_path: Path) -> None:
    contract = _contract(csv={"delimiter": ";", "quote": "'"})
    path = _write(tmp_path / "c.csv", HEADER.replace(",", ";") + "\nA1;'Cote; d''Ivoire';1.5;Yes;2;x\n")
    table = read_user_file(contract, path)
    assert table["country"].to_pylist() == ["Cote; d'Ivoire"]  # type: ignore[index]


def test_semicolon_file_without_the_csv_block_says_what_to_set(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.csv", HEADER.replace(",", ";") + "\nA1;DE;1.5;Yes;2;x\n")
    message = _error(_contract(), path, SchemaMismatchError)
    assert "delimited by ';'" in message and "csv.delimiter" in message


def test_latin1_encoding(tmp_path: Path) -> None:
    contract = _contract(csv={"encoding": "latin-1"})
    path = _write(tmp_path / "c.csv", HEADER + "\nA1,Côte,1,Yes,1,é\n", encoding="latin-1")
    assert read_user_file(contract, path)["country"].to_pylist() == ["Côte"]  # type: ignore[index]


def test_missing_and_extra_columns_name_the_physical_and_product_names(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.csv", "customer_id,Country,TotalSpend,Partner,Visits,notes\nA1,DE,1,Yes,1,x\n")
    message = _error(_contract(), path, SchemaMismatchError)
    assert "missing column 'CustomerID' (product column 'customer_id'" in message
    assert "extra column 'customer_id' not in the contract (the contract reads product column 'customer_id' from " \
           "file column 'CustomerID'" in message


def test_parquet_with_physical_names_and_other_spellings_of_types(tmp_path: Path) -> None:
    contract = _contract([{"name": "customer_id", "physicalName": "CustomerID", "type": "string"},
                          {"name": "seen_at", "physicalName": "SeenAt", "type": "timestamptz"},
                          {"name": "made_at", "type": "timestamp"}])
    path = tmp_path / "c.parquet"
    instant = datetime(2024, 1, 31, 12, tzinfo=UTC)
    pq.write_table(pa.table({
        "made_at": pa.array([datetime(2024, 1, 1)], pa.timestamp("ms")),
        "SeenAt": pa.array([instant], pa.timestamp("ns", tz="Europe/Paris")),
        "CustomerID": pa.array(["A1"], pa.large_string()),
    }), path)
    batches = list(read_user_file(contract, path))  # type: ignore[arg-type]
    table = pa.Table.from_batches(batches)
    assert table.schema.equals(contract.arrow_schema())
    assert table.to_pylist() == [{"customer_id": "A1", "seen_at": instant, "made_at": datetime(2024, 1, 1)}]


def test_parquet_timestamp_utc_is_accepted_for_timestamptz_and_refused_for_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"at": pa.array([0], pa.timestamp("us", tz="UTC"))}), path)
    ok = _contract([{"name": "at", "type": "timestamptz"}])
    assert pa.Table.from_batches(list(read_user_file(ok, path))).num_rows == 1  # type: ignore[arg-type]
    message = _error(_contract([{"name": "at", "type": "timestamp"}]), path, SchemaMismatchError)
    assert "column 'at' has type timestamp[us, tz=UTC], expected timestamp" in message
    assert "declare the column timestamptz" in message


def test_parquet_missing_physical_column(tmp_path: Path) -> None:
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"customer_id": ["A1"]}), path)
    message = _error(_contract([{"name": "customer_id", "physicalName": "CustomerID", "type": "string"}]), path,
                     SchemaMismatchError)
    assert "missing column 'CustomerID' (product column 'customer_id'" in message


def test_in_memory_table_with_a_utc_alias_is_accepted() -> None:
    from datamesh.quality import schema_differences

    contract = _contract([{"name": "at", "type": "timestamptz"}, {"name": "s", "type": "string"}])
    schema = pa.schema([("at", pa.timestamp("us", tz="+00:00")), ("s", pa.large_string())])
    assert schema_differences(contract, schema) == []


# -- time zones in CSV -----------------------------------------------------------------------------


def test_timestamptz_values_with_offsets_are_stored_in_utc(tmp_path: Path) -> None:
    contract = _contract([{"name": "at", "type": "timestamptz"}])
    path = _write(tmp_path / "t.csv", "at\n2024-01-31T12:00:00+02:00\n2024-01-31T10:00:00Z\n 2024-01-31 05:00:00-05:00 \n")
    table = read_user_file(contract, path)
    assert table.schema.field("at").type == pa.timestamp("us", tz="UTC")  # type: ignore[union-attr]
    assert set(table["at"].to_pylist()) == {datetime(2024, 1, 31, 10, tzinfo=UTC)}  # type: ignore[index]


# -- every parse error names file, row, line, column (both names) and value -----------------------


@pytest.mark.parametrize(
    ("row", "fragments"),
    [
        ("A2,DE,1.5,Yes,abc,x", ["row 2 (line 3) column 'visits' (file column 'Visits'): value 'abc' is not a valid "
                                 "int64 (a whole number)"]),
        ("A2,DE,1.5,maybe,1,x", ["row 2 (line 3) column 'partner' (file column 'Partner'): value 'maybe' is not a "
                                 "valid boolean", "Yes, Y, 1 as true and No, N, 0 as false", "trueValues"]),
        ("A2,DE,123456789.5,Yes,1,x", ["column 'total_spend' (file column 'TotalSpend'): value '123456789.5'",
                                       "more than 8 digits before the point"]),
        ("A2,DE,1.555,Yes,1,x", ["value '1.555'", "more than 2 digits after the point"]),
        ("A2,DE,1.5,Yes,N/A,x", ["value 'N/A' is not a valid int64", "add it to the contract's csv.nullValues"]),
    ],
    ids=["bad_int", "unknown_boolean_word", "decimal_too_many_digits", "decimal_too_many_decimals", "null_marker"],
)
def test_bad_values(tmp_path: Path, row: str, fragments: list[str]) -> None:
    path = _write(tmp_path / "c.csv", HEADER + "\nA1,DE,1.5,Yes,1,x\n" + row + "\n", crlf=True)
    message = _error(_contract(), path)
    assert message.startswith(f"Product 'customers': file {path} could not be parsed:")
    for fragment in fragments:
        assert fragment in message


def test_bad_value_after_a_quoted_newline_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.csv", HEADER + '\nA1,DE,1.5,Yes,1,"two\nlines"\nA2,DE,1.5,Yes,x,y\n')
    assert "row 2 (line 4) column 'visits' (file column 'Visits'): value 'x'" in _error(_contract(), path)


def test_bad_value_deep_in_a_large_file(tmp_path: Path) -> None:
    rows = "".join(f"A{i},DE,1.5,Yes,{i},x\n" for i in range(20_000))
    path = _write(tmp_path / "c.csv", HEADER + "\n" + rows + "A,DE,1.5,Yes,7.5,x\n")
    assert "row 20001 (line 20002) column 'visits' (file column 'Visits'): value '7.5'" in _error(_contract(), path)


@pytest.mark.parametrize(
    ("kind", "value", "fragment"),
    [("timestamp", "2024-01-31T12:00:00+02:00", "it has a zone offset, and a timestamp column has none"),
     ("timestamptz", "2024-01-31T12:00:00", "expected a zone offset"),
     ("timestamptz", "yesterday", "value 'yesterday' is not a valid timestamptz"),
     ("date", "31/01/2024", "value '31/01/2024' is not a valid date (a date like 2024-01-31)")],
)
def test_times_that_do_not_parse(tmp_path: Path, kind: str, value: str, fragment: str) -> None:
    path = _write(tmp_path / "t.csv", f"At\n2024-01-31T12:00:00Z\n{value}\n")
    contract = _contract([{"name": "at", "physicalName": "At", "type": kind}])
    if kind == "timestamp":
        path = _write(tmp_path / "t.csv", f"At\n2024-01-31T12:00:00\n{value}\n")
    elif kind == "date":
        path = _write(tmp_path / "t.csv", f"At\n2024-01-31\n{value}\n")
    message = _error(contract, path)
    assert "row 2 (line 3) column 'at' (file column 'At')" in message and fragment in message


def test_default_boolean_words_any_case(tmp_path: Path) -> None:
    contract = _contract([{"name": "flag", "type": "boolean"}])
    table = read_user_file(contract, _write(tmp_path / "b.csv", "flag\nTRUE\nfalse\n1\n0\nTrue\n\n"))
    assert table["flag"].to_pylist() == [True, False, True, False, True]  # type: ignore[index]
    assert "value 'Yes' is not a valid boolean" in _error(contract, _write(tmp_path / "b.csv", "flag\ntrue\nYes\n"))


# -- the contract: physicalName, csv block, boolean words -----------------------------------------


def test_unquoted_yaml_yes_no_are_boolean_words() -> None:
    contract = _yaml_contract("columns:\n  - {name: partner, type: boolean, trueValues: [Yes, Y, 1], "
                              "falseValues: [No, N, 0]}\n")
    col = contract.column("partner")
    assert "yes" in col.true_values and "Y" in col.true_values and "1" in col.true_values  # type: ignore[operator]
    assert "no" in col.false_values and "0" in col.false_values  # type: ignore[operator]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [({"csv": {"delimiter": ";;"}}, "csv.delimiter must be one character"),
     ({"csv": {"quote": ""}}, "csv.quote must be one character"),
     ({"csv": {"encoding": "klingon"}}, "csv.encoding 'klingon' is not a known text encoding"),
     ({"csv": {"delimter": ";"}}, "unknown field 'csv.delimter'. Did you mean 'delimiter'?"),
     ({"csv": {"nullValues": ["", None]}}, "quote the words"),
     ({"csv": {"delimiter": '"'}}, "csv.delimiter and csv.quote are both"),
     ({"columns": [{"name": "a", "physicalName": "X", "type": "string"},
                   {"name": "b", "physicalName": "X", "type": "string"}]}, "columns 'a', 'b' all read the file column 'X'"),
     ({"columns": [{"name": "a", "physicalName": "b", "type": "string"}, {"name": "b", "type": "string"}]},
      "all read the file column 'b'"),
     ({"columns": [{"name": "a", "physicalName": " A ", "type": "string"}]}, "no leading or trailing whitespace"),
     ({"columns": [{"name": "a", "type": "string", "trueValues": ["Yes"]}]}, "apply to boolean columns"),
     ({"columns": [{"name": "a", "type": "boolean", "trueValues": ["Yes"], "falseValues": ["yes"]}]},
      "in both trueValues and falseValues")],
    ids=["delimiter", "quote", "encoding", "unknown_key", "unquoted_null", "delimiter_is_quote", "shared_physical",
         "physical_is_another_name", "physical_whitespace", "tokens_on_string", "token_both"],
)
def test_contract_errors(extra: dict, fragment: str) -> None:  # type: ignore[type-arg]
    doc = {**BASE, "columns": [{"name": "a", "type": "string"}], **extra}
    with pytest.raises(ContractError) as info:
        parse_contract(doc, Path("data_products/crm/customers.yaml"))
    assert fragment in str(info.value)


def test_publish_through_the_mesh_with_physical_names(tmp_path: Path, contracts_dir: Path) -> None:
    from datamesh.platform import Mesh
    from datamesh.settings import Settings

    doc = {**BASE, "domain": "shop", "columns": COLUMNS, "primaryKey": ["customer_id"]}
    (contracts_dir / "shop" / "customers.yaml").write_text(yaml.safe_dump(doc))
    mesh = Mesh.from_settings(Settings(lake_url=str(tmp_path / "lake2"), contracts_dir=contracts_dir))
    path = _write(tmp_path / "c.csv", HEADER + "\nA1,NA,29.85,Yes,3,null\nA2,DE, ,No,,\n", bom=True, crlf=True)
    manifest = mesh.publish_file("customers", path)
    assert manifest.row_count == 2
    with mesh.session() as s:
        rows = s.sql("select customer_id, country, partner, total_spend from customers order by 1").fetchall()
    assert rows == [("A1", "NA", True, Decimal("29.85")), ("A2", "DE", False, None)]



def test_a_header_with_a_quoted_line_break_is_refused(tmp_path: Path) -> None:
    """csv reads the quoted break as part of the name; the CSV reader would skip one line only and
    take the rest of the header for a row."""
    contract = _contract([{"name": "name", "type": "string"}])
    path = _write(tmp_path / "broken.csv", '"name\n "\nalice\nbob\n')
    assert "line break inside quotes" in _error(contract, path, SchemaMismatchError)


def test_boolean_words_may_not_collide_with_defaults_or_null_markers() -> None:
    with pytest.raises(ContractError, match="in both trueValues and falseValues"):
        _contract([{"name": "flag", "type": "boolean", "trueValues": ["0"]}])
    with pytest.raises(ContractError, match="both a boolean word and a null marker"):
        _contract([{"name": "flag", "type": "boolean", "trueValues": ["Y"], "falseValues": ["N"]}],
                  csv={"nullValues": ["", "N"]})


def test_dictionary_encoded_parquet_strings_are_read_as_their_values(tmp_path: Path) -> None:
    """pandas writes a category column dictionary-encoded; `infer` drafts it as string, so it must publish."""
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "c"], "plan": pa.array(["x", "y", "x"]).dictionary_encode()}), path)
    contract = _contract([{"name": "id", "type": "string"}, {"name": "plan", "type": "string"}])
    read = read_user_file(contract, path)
    table = read if isinstance(read, pa.Table) else pa.Table.from_batches(list(read))
    assert table.schema.field("plan").type == pa.string() and table.column("plan").to_pylist() == ["x", "y", "x"]
