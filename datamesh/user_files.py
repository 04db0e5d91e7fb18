"""Reading a user's Parquet or CSV file for a publish, with errors a person can act on.

:func:`read_user_file` returns what :func:`datamesh.publish.publish_table`
accepts: a ``pa.Table`` (CSV) or an iterator of record batches (Parquet,
streamed). Every problem becomes a :class:`PublishError` (or
:class:`SchemaMismatchError`) naming the product, the file and, where one
exists, the row, column and value; never a pyarrow traceback:

* a missing file, a folder, an unknown format, a file that is not Parquet;
* a Parquet schema that differs from the contract (columns are matched by
  their ``physicalName``, else their name; large strings, other time units and,
  for ``timestamptz``, any time zone are converted without loss);
* damaged Parquet pages (found while streaming: the iterator raises);
* strings that are not valid UTF-8 (every batch's string columns are checked);
* a CSV header that is empty, repeats a name or misses/adds columns (the
  header is parsed with :mod:`csv`: quotes, whitespace around names and a
  UTF-8 byte order mark are handled);
* a CSV value that does not parse as its column's type, or a row with too
  many or too few values: ``file x.csv could not be parsed: row 2 (line 3)
  column 'widget_id': value 'abc' is not a valid int64 (a whole number)``.

A CSV is read as the contract's ``csv`` block says (delimiter, quote, encoding,
``nullValues``; by default only the empty cell is null, so ``NA``, ``null`` or
``N/A`` stay text), every column first as text, then converted to its type:
surrounding whitespace is ignored and a whitespace-only cell is null in a
column that is not a string; a boolean column reads its ``trueValues`` /
``falseValues`` (default true/1 and false/0) in any case; a ``timestamptz``
value needs an offset and is stored in UTC; a ``timestamp`` value has none.

Damage that leaves a page decodable (e.g. flipped digits in an uncompressed
page without checksums) cannot be told from data; page checksums are verified
when the writer stored them.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Iterator
from decimal import Decimal, localcontext
from enum import Enum
from pathlib import Path
from typing import NamedTuple, TextIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from datamesh.contracts import DEFAULT_FALSE_WORDS, DEFAULT_TRUE_WORDS, Column, ColumnType, Contract, CsvDialect
from datamesh.errors import PublishError, SchemaMismatchError, did_you_mean

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


# -- names: the file's columns and the product's ----------------------------------------


def _label(contract: Contract, name: str) -> str:
    """``'customer_id' (file column 'CustomerID')``, or ``'price'`` when the file uses the product's name."""
    col = next((c for c in contract.columns if c.name == name), None)
    if col is not None and col.physical_name:
        return f"'{name}' (file column '{col.physical_name}')"
    return f"'{name}'"


def _name_problems(contract: Contract, names: list[str]) -> list[str]:
    """Missing and extra columns of a file whose columns are ``names`` (the files' names: ``physicalName``)."""
    present = set(names)
    by_source = {c.source_name: c for c in contract.columns}
    missing = [c for c in contract.columns if c.source_name not in present]
    problems = []
    for col in missing:
        if col.physical_name:
            problems.append(f"missing column '{col.physical_name}' (product column '{col.name}', physicalName "
                            f"'{col.physical_name}')")
        else:
            problems.append(f"missing column '{col.name}'")
    missing_sources = [c.source_name for c in missing]
    for name in names:
        if name in by_source:
            continue
        mapped = next((c for c in contract.columns if c.name == name and c.physical_name), None)
        if mapped is not None:
            hint = (f" (the contract reads product column '{name}' from file column '{mapped.physical_name}'; "
                    "rename the file's column or change physicalName)")
        else:
            hint = _hint(did_you_mean(name, missing_sources))
        problems.append(f"extra column '{name}' not in the contract{hint}")
    return problems


# -- Parquet ----------------------------------------------------------------------------


class _ParquetColumn(NamedTuple):
    source: str  # the file's column
    name: str  # the product's column
    target: pa.DataType
    cast: bool


def _read_parquet(contract: Contract, path: Path) -> Iterator[pa.RecordBatch]:
    try:
        pf = pq.ParquetFile(path, page_checksum_verification=True)
        schema = pf.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        raise PublishError(
            f"Product '{contract.id}': file {path} is not a readable Parquet file ({exc}). "
            "Check that the export finished, or publish a CSV instead."
        ) from None
    plan = _parquet_plan(contract, path, schema)
    return _parquet_batches(contract, path, pf, plan)


def _parquet_plan(contract: Contract, path: Path, schema: pa.Schema) -> list[_ParquetColumn]:
    """Which file column each product column is read from, and whether its type needs a lossless cast."""
    names = list(schema.names)
    repeated = sorted({n for n in names if names.count(n) > 1})
    problems = [f"column '{n}' appears {names.count(n)} times" for n in repeated]
    problems += _name_problems(contract, names)
    plan: list[_ParquetColumn] = []
    for col in contract.columns:
        if col.source_name not in names or col.source_name in repeated:
            continue
        got = schema.field(col.source_name).type
        want = col.type.arrow
        if got.equals(want):
            plan.append(_ParquetColumn(col.source_name, col.name, want, False))
        elif _converts(got, col.type):
            plan.append(_ParquetColumn(col.source_name, col.name, want, True))
        else:
            problems.append(f"column {_label(contract, col.name)} has type {got}, expected {col.type.value} "
                            f"({want}){_type_hint(got, col.type)}")
    if problems:
        raise SchemaMismatchError(
            f"Product '{contract.id}': file {path} does not match contract {contract.source_path or contract.id} "
            f"v{contract.version}: " + "; ".join(problems)
            + ". Fix the data, or change the contract (and bump its version)."
        )
    return plan


def _converts(got: pa.DataType, kind: ColumnType) -> bool:
    """Types read without loss as ``kind``: dictionary-encoded values as their values; large strings as
    strings; times of any unit, and for
    ``timestamptz`` any time zone (an Arrow instant is stored in UTC: the zone is only its display)."""
    if pa.types.is_dictionary(got):  # e.g. a pandas category column: its values are what counts
        return _converts(got.value_type, kind) or got.value_type == kind.arrow
    if kind == ColumnType.STRING:
        return pa.types.is_large_string(got)
    if pa.types.is_timestamp(got):
        if kind == ColumnType.TIMESTAMPTZ:
            return got.tz is not None
        if kind == ColumnType.TIMESTAMP:
            return got.tz is None
    return False


def _type_hint(got: pa.DataType, kind: ColumnType) -> str:
    if pa.types.is_timestamp(got) and got.tz is not None and kind == ColumnType.TIMESTAMP:
        return (f" (the file's times carry the time zone {got.tz}: declare the column timestamptz, or write "
                "times without a zone)")
    if pa.types.is_timestamp(got) and got.tz is None and kind == ColumnType.TIMESTAMPTZ:
        return (" (the file's times have no time zone: declare the column timestamp, or write them with a zone, "
                "e.g. UTC)")
    return ""


def _parquet_batches(contract: Contract, path: Path, pf: pq.ParquetFile,
                     plan: list[_ParquetColumn]) -> Iterator[pa.RecordBatch]:
    meta = pf.metadata
    schema = contract.arrow_schema()
    sources = [c.source for c in plan]
    group_start = 0
    for group in range(meta.num_row_groups):  # one row group at a time, so a damaged one can be named
        rows = meta.row_group(group).num_rows
        batches = pf.iter_batches(batch_size=BATCH_ROWS, row_groups=[group], columns=sources)
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
            batch = _as_product_batch(contract, path, batch, plan, schema, offset + 1)
            check_utf8(contract, path, batch, first_row=offset + 1)
            check_decimals(contract, path, batch, first_row=offset + 1)
            offset += batch.num_rows
            yield batch
        group_start += rows


def _as_product_batch(contract: Contract, path: Path, batch: pa.RecordBatch, plan: list[_ParquetColumn],
                      schema: pa.Schema, first_row: int) -> pa.RecordBatch:
    """The batch with the product's column names and types (file columns renamed, lossless casts done)."""
    arrays = []
    for col in plan:
        array = batch.column(col.source)
        if col.cast:
            try:
                array = array.cast(col.target)
            except pa.ArrowInvalid:
                index, value = _finer_than_microseconds(array)
                raise PublishError(
                    f"Product '{contract.id}': file {path} row {first_row + index} column {_label(contract, col.name)}: "
                    f"value {value} is finer than microseconds, the precision of the contract's times. Round the "
                    "times to microseconds and publish again."
                ) from None
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _finer_than_microseconds(array: pa.Array) -> tuple[int, str]:
    rounded = pc.cast(pc.cast(array, pa.timestamp("us", tz=array.type.tz), safe=False), array.type)
    differs = pc.fill_null(pc.not_equal(rounded, array), False)
    index = pc.index(differs, True).as_py()
    return max(index, 0), str(array[max(index, 0)])


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
                    f"Product '{contract.id}': file {path} row {base + row} column {_label(contract, name)}: value "
                    f"{value} is not valid UTF-8 text. Re-export the file with UTF-8 strings (or fix the value) and "
                    "publish again."
                ) from None
            base += len(chunk)


def first_beyond_precision(chunk: pa.Array) -> int | None:
    """Index of the first value of a decimal ``chunk`` that does not fit its precision, if one is found."""
    kind = chunk.type
    wide = pa.decimal256(76, kind.scale) if pa.types.is_decimal256(kind) else pa.decimal128(38, kind.scale)
    try:
        with localcontext() as exact:
            exact.prec = 100  # the default 28 digits would round the largest value of a wider precision
            largest = pa.scalar(Decimal(10 ** kind.precision - 1).scaleb(-kind.scale), wide)
        beyond = pc.greater(pc.abs(chunk.cast(wide)), largest)
        index = pc.index(beyond, True).as_py()
    except (pa.ArrowException, ArithmeticError, ValueError):
        return None
    return index if index is not None and index >= 0 else None


def decimal_beyond_precision(data: pa.RecordBatch | pa.Table) -> tuple[str, int, int] | None:
    """The column and 0-based rows [first, last] of the first decimal beyond its column's precision (first == last
    when the value itself is found, else the rows of the chunk holding it), or None when every decimal fits."""
    for name, column in zip(data.schema.names, data.columns, strict=True):
        if not pa.types.is_decimal(column.type):
            continue
        base = 0
        for chunk in column.chunks if isinstance(column, pa.ChunkedArray) else [column]:
            try:
                chunk.validate(full=True)
            except pa.ArrowInvalid:
                index = first_beyond_precision(chunk)
                return (name, base + index, base + index) if index is not None else (name, base, base + len(chunk) - 1)
            base += len(chunk)
    return None


def rows_text(first: int, last: int) -> str:
    """``row N`` or ``rows N-M`` (1-based, as given)."""
    return f"row {first:,}" if first == last else f"rows {first:,}-{last:,}"


def check_decimals(contract: Contract, path: Path, batch: pa.RecordBatch, *, first_row: int = 1) -> None:
    """Raise naming the column, row and value of the first decimal beyond its column's precision (a file storing
    decimals as integers can hold one; Parquet would store it cut to the precision's width, another number)."""
    found = decimal_beyond_precision(batch)
    if found is None:
        return
    name, first, last = found
    column = batch.column(name)
    value = f"value {column[first]} " if first == last else "a value "
    raise PublishError(
        f"Product '{contract.id}': file {path} {rows_text(first_row + first, first_row + last)} column "
        f"{_label(contract, name)}: {value}does not fit {column.type} (the contract's precision). Fix the value, or "
        f"widen the column's type in {contract.source_path or 'the contract'} (a breaking change needs a major "
        "version), and publish again. Nothing was published."
    )


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
#: Words files write for "no value". By default they are values (``NA`` may be Namibia); a bad value that is one
#: of them gets the hint to list it in ``csv.nullValues``.
_NULL_LOOKING = frozenset({"NA", "N/A", "n/a", "#N/A", "null", "NULL", "Null", "None", "none", "nan", "NaN", "-",
                           "?", "na", "nil"})


def dialect_of(contract: Contract) -> CsvDialect:
    """The contract's ``csv`` block, or the defaults (comma, double quote, UTF-8, only the empty cell is null)."""
    return contract.csv or CsvDialect()


def _is_utf8(dialect: CsvDialect) -> bool:
    return codecs.lookup(dialect.encoding).name == "utf-8"


def _open_text(path: Path, dialect: CsvDialect) -> TextIO:
    # surrogateescape: the decoder reads ahead, so a bad byte in a data row must not fail the header.
    encoding = "utf-8-sig" if _is_utf8(dialect) else dialect.encoding
    return open(path, encoding=encoding, errors="surrogateescape", newline="")


def _rows(fh: TextIO, dialect: CsvDialect) -> Iterator[list[str]]:
    return csv.reader(fh, delimiter=dialect.delimiter, quotechar=dialect.quote)


def read_csv_header(contract: Contract, path: Path) -> list[str]:
    """The header's column names: quotes handled, whitespace and a byte order mark stripped, repeats refused."""
    dialect = dialect_of(contract)
    try:
        with _open_text(path, dialect) as fh:
            header = next(_rows(fh, dialect), None)
    except csv.Error as exc:
        raise PublishError(f"Product '{contract.id}': file {path} has an unreadable CSV header: {exc}.") from None
    if header:
        header[0] = header[0].removeprefix("\ufeff")
    shown_encoding = "UTF-8" if _is_utf8(dialect) else dialect.encoding
    for cell in header or []:
        if _has_bad_bytes(cell):
            raise PublishError(
                f"Product '{contract.id}': file {path} is not a {shown_encoding} text CSV: header value "
                f"{_show_bytes(cell.encode('utf-8', 'surrogateescape'))} is not valid {shown_encoding}. "
                f"Save the CSV as {shown_encoding} (or set the contract's csv.encoding) and publish again."
            )
    expected = ", ".join(c.source_name for c in contract.columns)
    if not header or all(not h.strip() for h in header):
        raise PublishError(
            f"Product '{contract.id}': file {path} has no header line. The first line must name the columns: {expected}."
        )
    broken = [i for i, h in enumerate(header, start=1) if "\n" in h or "\r" in h]
    if broken:  # the data would then start inside the header (a quoted line break), a row off
        raise SchemaMismatchError(
            f"Product '{contract.id}': file {path}: header column {broken[0]} holds a line break inside quotes "
            f"({header[broken[0] - 1]!r}). A column name is one line; fix the header and publish again."
        )
    names = [h.strip() for h in header]
    blanks = [str(i) for i, n in enumerate(names, start=1) if not n]
    if blanks:
        raise SchemaMismatchError(
            f"Product '{contract.id}': file {path}: header column {', '.join(blanks)} has no name "
            f"(a trailing {_delimiter_name(dialect)}?). Expected the columns {expected}."
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SchemaMismatchError(
            f"Product '{contract.id}': file {path}: the header names "
            + ", ".join(f"'{n}' {names.count(n)} times" for n in repeated)
            + ". Every column must appear once; rename or remove the repeats."
        )
    if len(names) == 1 and len(contract.columns) > 1:
        other = next((d for d in ",;\t|" if d != dialect.delimiter and d in names[0]), None)
        if other is not None:
            raise SchemaMismatchError(
                f"Product '{contract.id}': file {path}: the header is one column '{names[0]}'; the file seems "
                f"delimited by {other!r}, not {dialect.delimiter!r}. Set the contract's csv.delimiter "
                f"(csv: {{delimiter: {other!r}}}) or save the file with {dialect.delimiter!r}."
            )
    return names


def _delimiter_name(dialect: CsvDialect) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab"}.get(dialect.delimiter, repr(dialect.delimiter))


def _read_csv(contract: Contract, path: Path) -> pa.Table:
    dialect = dialect_of(contract)
    names = read_csv_header(contract, path)
    problems = _name_problems(contract, names)
    if problems:
        raise SchemaMismatchError(
            f"Product '{contract.id}': file {path} does not match contract {contract.source_path or contract.id}: "
            + "; ".join(problems) + ". Fix the CSV header or the contract."
        )
    sources = [c.source_name for c in contract.columns]
    try:
        # Every column is read as text, nothing as null: the contract's rules (csv.nullValues, the column's
        # type and boolean words) decide, not pyarrow's defaults (which would read 'NA', 'null', 'NaN' as null).
        raw = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=16 << 20,
                                           encoding="utf8" if _is_utf8(dialect) else dialect.encoding),
            parse_options=pacsv.ParseOptions(delimiter=dialect.delimiter, quote_char=dialect.quote,
                                             newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in sources}, include_columns=sources, null_values=[],
                strings_can_be_null=False, quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, OSError) as exc:
        raise _csv_error(contract, path, names, exc) from None
    columns = [_convert(contract, path, col, raw.column(col.source_name).combine_chunks(), dialect)
               for col in contract.columns]
    return pa.Table.from_arrays(columns, schema=contract.arrow_schema())


def _hint(did_you_mean_text: str) -> str:
    return f" ({did_you_mean_text.strip().rstrip('?').lower()}?)" if did_you_mean_text else ""


# -- CSV values: text to the column's type ------------------------------------------------------------


class _BadValue(Exception):
    """A cell that is not a value of its column's type: the cell's index and why (may be empty)."""

    def __init__(self, index: int, reason: str = "") -> None:
        super().__init__(reason)
        self.index, self.reason = index, reason


def _convert(contract: Contract, path: Path, col: Column, text: pa.Array, dialect: CsvDialect) -> pa.Array:
    """``text`` (a CSV column read as strings) as ``col``'s type; a bad cell raises naming row, column, value."""
    try:
        return _typed(col, text, dialect)
    except _BadValue as bad:
        raise _value_error(contract, path, col, text[bad.index].as_py(), bad.index, bad.reason, dialect) from None


def _typed(col: Column, text: pa.Array, dialect: CsvDialect) -> pa.Array:
    kind = col.type
    null = pa.scalar(None, pa.string())
    if kind == ColumnType.STRING:
        if not dialect.null_values:
            return text
        return pc.if_else(pc.is_in(text, value_set=pa.array(dialect.null_values, pa.string())), null, text)
    # Not a string: surrounding whitespace is ignored, and an empty (or whitespace-only) cell is null.
    trimmed = pc.utf8_trim_whitespace(text)
    markers = pa.array(sorted({"", *dialect.null_values, *(v.strip() for v in dialect.null_values)}), pa.string())
    cells = pc.if_else(pc.or_(pc.is_in(text, value_set=markers), pc.is_in(trimmed, value_set=markers)), null, trimmed)
    if kind == ColumnType.BOOLEAN:
        return _booleans(col, cells)
    if kind == ColumnType.TIME:
        return _cast_each(cells, lambda a: pc.binary_join_element_wise("1970-01-01T", a, "").cast(pa.timestamp("us"))
                          .cast(pa.time64("us")), explain=False)
    return _cast_each(cells, lambda a: a.cast(kind.arrow))


def boolean_words(col: Column) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The words a CSV writes for true and for false in ``col`` (compared without regard to case)."""
    return col.true_values or DEFAULT_TRUE_WORDS, col.false_values or DEFAULT_FALSE_WORDS


def _booleans(col: Column, cells: pa.Array) -> pa.Array:
    true_words, false_words = boolean_words(col)
    lowered = pc.utf8_lower(cells)
    is_true = pc.is_in(lowered, value_set=pa.array([w.strip().lower() for w in true_words], pa.string()))
    is_false = pc.is_in(lowered, value_set=pa.array([w.strip().lower() for w in false_words], pa.string()))
    bad = pc.and_(pc.is_valid(cells), pc.invert(pc.or_(is_true, is_false)))
    if pc.any(bad).as_py():
        raise _BadValue(pc.index(bad, True).as_py())
    return pc.if_else(pc.is_null(cells), pa.scalar(None, pa.bool_()), is_true)


def _cast_each(cells: pa.Array, convert: Callable[[pa.Array], pa.Array], *, explain: bool = True) -> pa.Array:
    """``convert(cells)``; if it fails, the first cell that fails (by halving: about two passes over the column)."""
    try:
        return convert(cells)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    lo, hi = 0, len(cells)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            convert(cells.slice(lo, mid - lo))
            lo = mid
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            hi = mid
    reason = ""
    try:
        convert(cells.slice(lo, 1))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        reason = _reason(str(exc)) if explain else ""
    raise _BadValue(lo, reason)


def _reason(message: str) -> str:
    """'expected no zone offset' from Arrow's "Failed to parse string: '…' as a scalar of type …: expected no
    zone offset. If these timestamps …" (and '' when Arrow says only that it failed)."""
    if not message.startswith("Failed to parse string"):
        return ""
    tail = message.rsplit(" as a scalar of type ", 1)[-1]
    return tail.split(": ", 1)[1].split(". ")[0].strip().rstrip(".") if ": " in tail else ""


_EXAMPLES = {
    ColumnType.INT32: "a whole number", ColumnType.INT64: "a whole number", ColumnType.DOUBLE: "a number like 2.5",
    ColumnType.BOOLEAN: "true or false", ColumnType.DATE: "a date like 2024-01-31",
    ColumnType.TIME: "a time of day like 12:30:00",
    ColumnType.TIMESTAMP: "a time like 2024-01-31T12:00:00 (UTC, no offset)",
    ColumnType.TIMESTAMPTZ: "a time with its offset like 2024-01-31T12:00:00Z or 2024-01-31T13:00:00+01:00",
}


def _value_error(contract: Contract, path: Path, col: Column, value: str, index: int, reason: str,
                 dialect: CsvDialect) -> PublishError:
    kind = col.type
    where = _where(_locate(path, dialect, index + 1)) or f" row {index + 1}"
    fix = "Fix the value in the file (or the column's type in the contract) and publish again."
    because = f" ({reason})" if reason else ""
    if kind == ColumnType.TIMESTAMP and "no zone offset" in reason:
        because = (" (it has a zone offset, and a timestamp column has none: declare the column timestamptz to keep "
                   "the instant, or write UTC times without an offset)")
    if kind.is_decimal:
        problem = _decimal_problem(value, kind)
        because = f": it has {problem}" if problem and problem != "not a number" else ""
    if kind == ColumnType.BOOLEAN:
        true_words, false_words = boolean_words(col)
        because = (f" (the column reads {', '.join(true_words)} as true and {', '.join(false_words)} as false, "
                   "in any case)")
        fix = ("Add the word to the column's trueValues or falseValues in the contract (or fix the value) and "
               "publish again.")
    if value.strip() in _NULL_LOOKING:
        fix = (f"If {value.strip()!r} means no value, add it to the contract's csv.nullValues (e.g. csv: "
               f"{{nullValues: ['', {value.strip()!r}]}}); else fix the value. Then publish again.")
    return PublishError(
        f"Product '{contract.id}': file {path} could not be parsed:{where} column {_label(contract, col.name)}: "
        f"value {value!r} is not a valid {_expected_value(kind)}{because}. {fix}"
    )


def _expected_value(kind: ColumnType) -> str:
    """'int64 (a whole number)': the contract's type name and what a value looks like."""
    example = _decimal_example(kind) if kind.is_decimal else _EXAMPLES.get(kind)
    return f"{kind.value} ({example})" if example else kind.value


def _decimal_example(kind: ColumnType) -> str:
    """'a number with at most 10 digits before the point and 2 after, like 123.45'."""
    precision, scale = kind.precision or 1, kind.scale or 0
    whole = "123"[:precision - scale] or "0"
    example = whole + ("." + ("45" + "0" * scale)[:scale] if scale else "")
    after = f" and {scale} after" if scale else ", none after"
    return f"a number with at most {precision - scale} digits before the point{after}, like {example}"


_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _decimal_problem(cell: str, kind: ColumnType) -> str | None:
    """Why ``cell`` is not a value of the decimal type ``kind`` (None if it is one)."""
    text = cell.strip()
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


# -- errors of the CSV reader itself (rows of the wrong length, bad UTF-8) ----------------------------


def _csv_error(contract: Contract, path: Path, names: list[str], exc: Exception) -> PublishError:
    text = str(exc).strip()
    dialect = dialect_of(contract)
    product = f"Product '{contract.id}'"
    conversion = _CONVERSION.search(text)
    if conversion and ("UTF8" in conversion.group(3) or "UTF-8" in conversion.group(3)):
        index = int(conversion.group(1))
        column = names[index] if index < len(names) else f"#{index + 1}"
        found = _find_row(path, dialect, lambda row: index < len(row) and _has_bad_bytes(row[index]))
        return PublishError(
            f"{product}: file {path} could not be parsed:{_where(found)} column {_file_label(contract, column)}: "
            f"value {_shown_cell(found, index)} is not valid UTF-8 text. Save the CSV as UTF-8 (or set the "
            "contract's csv.encoding) and publish again."
        )
    counts = _FIELD_COUNT.search(text)
    if counts:
        want = int(counts.group(1))
        found = _find_row(path, dialect, lambda row: bool(row) and len(row) != want)
        got = f"{len(found[2])}" if found else counts.group(2)
        return PublishError(
            f"{product}: file {path} could not be parsed:{_where(found) or ' a row'} has {got} values, but the "
            f"header has {want} columns ({', '.join(names)}). Quote values that contain a {_delimiter_name(dialect)} "
            "(or set the contract's csv.delimiter), and publish again."
        )
    return PublishError(
        f"{product}: file {path} could not be read as CSV: {text.splitlines()[0] if text else type(exc).__name__}. "
        "Check the file (and the contract's csv block) and publish again."
    )


def _file_label(contract: Contract, source: str) -> str:
    col = next((c for c in contract.columns if c.source_name == source), None)
    return _label(contract, col.name) if col is not None else f"'{source}'"


#: (data row counted from 1 after the header, line in the file, cells), or None if not found.
_Found = tuple[int, int, list[str]] | None


def _find_row(path: Path, dialect: CsvDialect, bad: Callable[[list[str]], bool]) -> _Found:
    """The first data row for which ``bad(cells)`` holds (a second, failure-only pass; blank lines skipped, as
    the reader skips them)."""
    with _open_text(path, dialect) as fh:
        reader = _rows(fh, dialect)
        next(reader, None)
        line = reader.line_num + 1
        row_number = 0
        for row in reader:
            if row:
                row_number += 1
                if bad(row):
                    return row_number, line, row
            line = reader.line_num + 1
    return None


def _locate(path: Path, dialect: CsvDialect, row_number: int) -> _Found:
    """Data row ``row_number`` (from 1), with its line in the file."""
    seen = 0

    def nth(_row: list[str]) -> bool:
        nonlocal seen
        seen += 1
        return seen == row_number

    try:
        return _find_row(path, dialect, nth)
    except (csv.Error, OSError):
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
