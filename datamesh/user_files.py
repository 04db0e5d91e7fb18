"""Reading a user's Parquet or CSV file for a publish, with errors a person can act on.

:func:`read_user_file` returns what :func:`datamesh.publish.publish_table`
accepts: a ``pa.Table`` (CSV) or an iterator of record batches (Parquet,
streamed). Every problem becomes a :class:`PublishError` (or
:class:`SchemaMismatchError`) naming the product, the file and, where one
exists, the row, column and value; never a pyarrow traceback:

* a missing file, a folder, an unknown format, a file that is not Parquet;
* a Parquet schema that differs from the contract;
* damaged Parquet pages (found while streaming: the iterator raises);
* strings that are not valid UTF-8 (every batch's string columns are checked);
* a CSV header that is empty, repeats a name or misses/adds columns (the
  header is parsed with :mod:`csv`: quotes, whitespace around names and a
  UTF-8 byte order mark are handled);
* a CSV value that does not parse as its column's type, or a row with too
  many or too few values: ``file x.csv could not be parsed: row 2 (line 3)
  column 'widget_id': value 'abc' is not a valid int64 (a whole number)``.

Damage that leaves a page decodable (e.g. flipped digits in an uncompressed
page without checksums) cannot be told from data; page checksums are verified
when the writer stored them.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from decimal import Decimal, localcontext
from enum import Enum
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from datamesh.contracts import ColumnType, Contract
from datamesh.errors import PublishError, SchemaMismatchError, did_you_mean
from datamesh.quality import check_schema

#: Rows per record batch when streaming a Parquet file.
BATCH_ROWS = 250_000


class FileFormat(str, Enum):
    PARQUET = "parquet"
    CSV = "csv"


_SUFFIXES = {".parquet": FileFormat.PARQUET, ".pq": FileFormat.PARQUET, ".parq": FileFormat.PARQUET,
             ".csv": FileFormat.CSV}


def file_format_of(contract: Contract, path: Path, file_format: str | None = None) -> FileFormat:
    """The format named by ``file_format`` ('parquet', 'pq', 'csv'), else the one the suffix says."""
    if file_format is None:
        found = _SUFFIXES.get(path.suffix.lower())
        told = f"suffix '{path.suffix}'" if path.suffix else "no suffix"
    else:
        found = _SUFFIXES.get("." + file_format.lower().lstrip("."))
        told = f"format '{file_format}'"
    if found is None:
        raise PublishError(
            f"Product '{contract.id}': cannot publish file {path}: unsupported file format ({told}); "
            "expected parquet or csv. Rename the file to .parquet/.csv or pass --format parquet|csv."
        )
    return found


def read_user_file(
    contract: Contract, path: Path | str, file_format: str | None = None
) -> pa.Table | Iterator[pa.RecordBatch]:
    """Open a user's file for publishing as ``contract``'s product; see the module docs for the checks."""
    path = Path(path)
    if not path.exists():
        raise PublishError(f"Product '{contract.id}': file {path} does not exist. Check the path and publish again.")
    if path.is_dir():
        raise PublishError(f"Product '{contract.id}': {path} is a folder, not a file. Publish one Parquet or CSV file.")
    fmt = file_format_of(contract, path, file_format)
    if fmt is FileFormat.PARQUET:
        return _read_parquet(contract, path)
    return _read_csv(contract, path)


# -- Parquet ----------------------------------------------------------------------------


def _read_parquet(contract: Contract, path: Path) -> Iterator[pa.RecordBatch]:
    try:
        pf = pq.ParquetFile(path, page_checksum_verification=True)
        schema = pf.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        raise PublishError(
            f"Product '{contract.id}': file {path} is not a readable Parquet file ({exc}). "
            "Check that the export finished, or publish a CSV instead."
        ) from None
    check_schema(contract, schema, f"file {path}")
    return _parquet_batches(contract, path, pf)


def _parquet_batches(contract: Contract, path: Path, pf: pq.ParquetFile) -> Iterator[pa.RecordBatch]:
    meta = pf.metadata
    group_start = 0
    for group in range(meta.num_row_groups):  # one row group at a time, so a damaged one can be named
        rows = meta.row_group(group).num_rows
        batches = pf.iter_batches(batch_size=BATCH_ROWS, row_groups=[group])
        offset = group_start
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except (pa.ArrowException, OSError) as exc:
                raise PublishError(
                    f"Product '{contract.id}': file {path} is damaged: reading rows {group_start + 1}-"
                    f"{group_start + rows} (row group {group + 1} of {meta.num_row_groups}) failed ({exc}). "
                    "Re-export the file and publish again. Nothing was published."
                ) from None
            check_utf8(contract, path, batch, first_row=offset + 1)
            offset += batch.num_rows
            yield batch
        group_start += rows


def check_utf8(contract: Contract, path: Path, batch: pa.RecordBatch | pa.Table, *, first_row: int = 1) -> None:
    """Raise naming the column, row and value of the first string that is not valid UTF-8."""
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        base = first_row
        for chunk in chunks:
            try:
                chunk.validate(full=True)
            except pa.ArrowInvalid:
                row, value = _first_bad_utf8(chunk)
                raise PublishError(
                    f"Product '{contract.id}': file {path} row {base + row} column '{name}': value {value} is not "
                    "valid UTF-8 text. Re-export the file with UTF-8 strings (or fix the value) and publish again."
                ) from None
            base += len(chunk)


def _first_bad_utf8(array: pa.Array) -> tuple[int, str]:
    raw = array.view(pa.binary() if pa.types.is_string(array.type) else pa.large_binary())
    for index, value in enumerate(raw.to_pylist()):
        if value is None:
            continue
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return index, _show_bytes(value)
    return 0, "(unknown)"


def _show_bytes(value: bytes, limit: int = 40) -> str:
    shown = repr(value[:limit])
    return shown + ("…" if len(value) > limit else "")


# -- CSV --------------------------------------------------------------------------------

_CONVERSION = re.compile(r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to ([^:]+): (.*)$", re.DOTALL)
_FIELD_COUNT = re.compile(r"Expected (\d+) columns, got (\d+)")
_QUOTED_VALUE = re.compile(r"'(.*)'\s*$", re.DOTALL)
_QUOTED_IN = re.compile(r"\bin '([^']*)'")


def read_csv_header(contract: Contract, path: Path) -> list[str]:
    """The header's column names: quotes handled, whitespace and a UTF-8 BOM stripped, repeats refused."""
    try:
        # surrogateescape: the decoder reads ahead, so a bad byte in a data row must not fail the header.
        with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
            header = next(csv.reader(fh), None)
    except csv.Error as exc:
        raise PublishError(f"Product '{contract.id}': file {path} has an unreadable CSV header: {exc}.") from None
    for cell in header or []:
        if _has_bad_bytes(cell):
            raise PublishError(
                f"Product '{contract.id}': file {path} is not a UTF-8 text CSV: header value "
                f"{_show_bytes(cell.encode('utf-8', 'surrogateescape'))} is not valid UTF-8. "
                "Save the CSV as UTF-8 and publish again."
            )
    expected = ", ".join(contract.column_names)
    if not header or all(not h.strip() for h in header):
        raise PublishError(
            f"Product '{contract.id}': file {path} has no header line. The first line must name the columns: {expected}."
        )
    names = [h.strip() for h in header]
    blanks = [str(i) for i, n in enumerate(names, start=1) if not n]
    if blanks:
        raise SchemaMismatchError(
            f"Product '{contract.id}': file {path}: header column {', '.join(blanks)} has no name "
            f"(a trailing comma?). Expected the columns {expected}."
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SchemaMismatchError(
            f"Product '{contract.id}': file {path}: the header names "
            + ", ".join(f"'{n}' {names.count(n)} times" for n in repeated)
            + ". Every column must appear once; rename or remove the repeats."
        )
    return names


def _read_csv(contract: Contract, path: Path) -> pa.Table:
    names = read_csv_header(contract, path)
    schema = contract.arrow_schema()
    missing = [n for n in schema.names if n not in names]
    extra = [n for n in names if n not in schema.names]
    if missing or extra:
        problems = [f"missing column '{m}'" for m in missing]
        problems += [f"extra column '{e}' not in the contract{_hint(did_you_mean(e, missing))}" for e in extra]
        raise SchemaMismatchError(
            f"Product '{contract.id}': file {path} does not match contract {contract.source_path or contract.id}: "
            + "; ".join(problems) + ". Fix the CSV header or the contract."
        )
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=16 << 20),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={f.name: f.type for f in schema}, include_columns=schema.names,
                strings_can_be_null=True, timestamp_parsers=[pacsv.ISO8601],
            ),
        )
    except (pa.ArrowException, OSError) as exc:
        raise _csv_error(contract, path, names, exc) from None
    table = table.select(schema.names)
    _check_decimal_precision(contract, path, names, table)
    return table


def _check_decimal_precision(contract: Contract, path: Path, names: list[str], table: pa.Table) -> None:
    """Arrow's CSV reader checks a decimal's digits before scaling it: ``12345.5`` passes as decimal(6,2)
    though ``12345.50`` has 7 digits. Casting through decimal(38,s) back to decimal(p,s) checks them."""
    for field in table.schema:
        if not pa.types.is_decimal(field.type):
            continue
        column = table.column(field.name)
        try:
            pc.cast(pc.cast(column, pa.decimal128(38, field.type.scale)), field.type)
        except pa.ArrowInvalid:
            raise _decimal_error(contract, path, names, names.index(field.name), "") from None


def _hint(did_you_mean_text: str) -> str:
    return f" ({did_you_mean_text.strip().rstrip('?').lower()}?)" if did_you_mean_text else ""


def _csv_error(contract: Contract, path: Path, names: list[str], exc: Exception) -> PublishError:
    text = str(exc).strip()
    product = f"Product '{contract.id}'"
    fix = "Fix the value in the file (or the column's type in the contract) and publish again."
    decimal = _COLUMN_ERROR.search(text)
    if decimal and int(decimal.group(1)) < len(names) and _decimal_of(contract, names[int(decimal.group(1))]):
        return _decimal_error(contract, path, names, int(decimal.group(1)), text)
    conversion = _CONVERSION.search(text)
    if conversion:
        index, type_name, detail = int(conversion.group(1)), conversion.group(2), conversion.group(3)
        column = names[index] if index < len(names) else f"#{index + 1}"
        if "UTF8" in detail or "UTF-8" in detail:
            found = _find_row(path, lambda row: index < len(row) and _has_bad_bytes(row[index]))
            where, value = _where(found), _shown_cell(found, index)
            return PublishError(
                f"{product}: file {path} could not be parsed:{where} column '{column}': value {value} is not valid "
                "UTF-8 text. Save the CSV as UTF-8 and publish again."
            )
        # "invalid value 'abc'", "expected no zone offset in '...Z'", "expected a zone offset in '...'. If ..."
        quoted = _QUOTED_VALUE.search(detail) or _QUOTED_IN.search(detail)
        bad = quoted.group(1) if quoted else detail.strip()
        reason = detail[:quoted.start()].strip().removesuffix(" in") if quoted else ""
        because = f" ({reason})" if reason and reason != "invalid value" else ""
        found = _find_row(path, lambda row: index < len(row) and row[index] == bad)
        expected = _expected_value(contract, column, type_name)
        return PublishError(
            f"{product}: file {path} could not be parsed:{_where(found)} column '{column}': value "
            f"{bad!r} is not a valid {expected}{because}. {fix}"
        )
    counts = _FIELD_COUNT.search(text)
    if counts:
        want = int(counts.group(1))
        found = _find_row(path, lambda row: len(row) != want)
        got = f"{len(found[2])}" if found else counts.group(2)
        return PublishError(
            f"{product}: file {path} could not be parsed:{_where(found) or ' a row'} has {got} values, but the "
            f"header has {want} columns ({', '.join(names)}). Quote values that contain commas, and publish again."
        )
    return PublishError(
        f"{product}: file {path} could not be parsed with the contract's types: {text.splitlines()[0]}. {fix}"
    )


_EXAMPLES = {
    ColumnType.INT32: "a whole number", ColumnType.INT64: "a whole number", ColumnType.DOUBLE: "a number like 2.5",
    ColumnType.BOOLEAN: "true or false", ColumnType.DATE: "a date like 2024-01-31",
    ColumnType.TIME: "a time of day like 12:30:00",
    ColumnType.TIMESTAMP: "a time like 2024-01-31T12:00:00 (UTC, no offset)",
    ColumnType.TIMESTAMPTZ: "a time with its offset like 2024-01-31T12:00:00Z or 2024-01-31T13:00:00+01:00",
}


def _expected_value(contract: Contract, column: str, arrow_type: str) -> str:
    """'int64 (a whole number)': the contract's type name and what a value looks like."""
    if column not in contract.column_names:
        return arrow_type
    kind = contract.column(column).type
    example = _decimal_example(kind) if kind.is_decimal else _EXAMPLES.get(kind)
    return f"{kind.value} ({example})" if example else kind.value


def _decimal_example(kind: ColumnType) -> str:
    """'a number with at most 10 digits before the point and 2 after, like 123.45'."""
    precision, scale = kind.precision or 1, kind.scale or 0
    whole = "123"[:precision - scale] or "0"
    example = whole + ("." + ("45" + "0" * scale)[:scale] if scale else "")
    after = f" and {scale} after" if scale else ", none after"
    return f"a number with at most {precision - scale} digits before the point{after}, like {example}"


# -- decimals: Arrow's messages rarely name the value, so the failure-only pass finds it ----------------

_COLUMN_ERROR = re.compile(r"In CSV column #(\d+): ")
_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NULL_VALUES = frozenset(pacsv.ConvertOptions().null_values)


def _decimal_of(contract: Contract, column: str) -> ColumnType | None:
    if column not in contract.column_names:
        return None
    kind = contract.column(column).type
    return kind if kind.is_decimal else None


def _decimal_problem(cell: str, kind: ColumnType) -> str | None:
    """Why ``cell`` is not a value of the decimal type ``kind`` (None if it is one, or null)."""
    text = cell.strip()
    if cell in _NULL_VALUES or text in _NULL_VALUES:
        return None
    if not _DECIMAL_TEXT.fullmatch(text):
        return "not a number"
    precision, scale = kind.precision or 1, kind.scale or 0
    whole = precision - scale
    with localcontext() as context:
        context.prec = 200
        value = Decimal(text)
        if value and value.adjusted() >= whole:  # checked first: quantizing 1e500 would overflow the context
            return f"more than {whole} digit{'s' if whole != 1 else ''} before the point"
        if value.adjusted() < -200 or value != value.quantize(Decimal(1).scaleb(-scale)):
            return f"more than {scale} digit{'s' if scale != 1 else ''} after the point"
    return None


def _decimal_error(contract: Contract, path: Path, names: list[str], index: int, text: str) -> PublishError:
    column = names[index]
    kind = _decimal_of(contract, column)
    assert kind is not None
    found = _find_row(path, lambda row: index < len(row) and _decimal_problem(row[index], kind) is not None)
    if found is None:
        first = text.splitlines()[0] if text else f"a value of column '{column}' does not fit {kind.value}"
        return PublishError(f"Product '{contract.id}': file {path} could not be parsed with the contract's types: "
                            f"{first}. Fix the value in the file (or the column's type in the contract) and publish again.")
    bad = found[2][index]
    problem = _decimal_problem(bad, kind)
    because = f": it has {problem}" if problem and problem != "not a number" else ""
    return PublishError(
        f"Product '{contract.id}': file {path} could not be parsed:{_where(found)} column '{column}': value {bad!r} "
        f"is not a valid {_expected_value(contract, column, str(kind.arrow))}{because}. Fix the value in the file "
        "(or the column's type in the contract) and publish again."
    )


#: (data row counted from 1 after the header, line in the file, cells), or None if not found.
_Found = tuple[int, int, list[str]] | None


def _find_row(path: Path, bad: Callable[[list[str]], bool]) -> _Found:
    """The first row after the header for which ``bad(cells)`` holds (a second, failure-only pass)."""
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        line = reader.line_num + 1
        for row_number, row in enumerate(reader, start=1):
            if bad(row):
                return row_number, line, row
            line = reader.line_num + 1
    return None


def _where(found: _Found) -> str:
    if found is None:
        return ""
    row, line, _ = found
    return f" row {row} (line {line})"


def _has_bad_bytes(cell: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in cell)


def _shown_cell(found: _Found, index: int) -> str:
    if found is None or index >= len(found[2]):
        return "(unknown)"
    return _show_bytes(found[2][index].encode("utf-8", "surrogateescape"))
