"""Draft a contract from a CSV or Parquet file (``mesh contract infer``).

:func:`infer_contract` reads a sample of the file (the first
:data:`SAMPLE_ROWS` rows) and guesses, per column: a snake_case product name
(the file's name kept as ``physicalName`` when it differs), the type, whether
it is required, and value rules; for the file: a primary-key candidate and the
``csv`` block (delimiter sniffed, encoding tried). :meth:`Draft.yaml` writes
the contract as YAML with a comment on every guess. The draft validates, and
publishing the same file under it succeeds; guessed value rules are warnings
(a sample cannot know every future value), and the status is ``draft``.

The guesses follow how :mod:`datamesh.user_files` reads a CSV: only the empty
cell is null (a whitespace-only cell too, in a column that is not a string),
booleans are read through ``trueValues`` / ``falseValues``, a time with an
offset is a ``timestamptz``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

from datamesh.errors import PublishError
from datamesh.names import is_valid_name, snake_case
from datamesh.types import ColumnType

#: Rows read to guess from; a larger file is sampled (and the draft says so).
SAMPLE_ROWS = 100_000
#: A string column with at most this many distinct values gets an accepted_values rule.
MAX_ACCEPTED_VALUES = 12
_DELIMITERS = ",;\t|"
#: true word -> false word, compared lowercased: the pairs a boolean column may be written with.
_BOOLEAN_PAIRS = {"true": "false", "yes": "no", "y": "n", "t": "f"}
# ASCII digits only, and no leading '+': what the CSV reader accepts as a number (not Python's int()).
_INT = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"-?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)")
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(Z|[+-]\d{2}(?::?\d{2})?)?")
_MONEY_WORDS = ("price", "amount", "total", "spend", "revenue", "cost", "fee", "balance", "charge", "charges",
                "payment", "salary", "income", "paid", "value", "mrr", "arr")


@dataclass
class DraftColumn:
    name: str
    physical_name: str | None
    type: ColumnType
    required: bool
    comment: str
    true_values: tuple[str, ...] | None = None
    false_values: tuple[str, ...] | None = None
    rules: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (rule, comment)
    distinct: int = 0
    nulls: int = 0


@dataclass
class Draft:
    """A drafted contract: :meth:`yaml` is the text to review and save."""

    product_id: str
    domain: str
    owner_team: str
    source: Path
    rows: int
    sampled: bool
    columns: list[DraftColumn]
    primary_key: str | None
    primary_key_comment: str
    csv: dict[str, Any] | None
    csv_comment: str
    #: The ``ml`` block drafted for ``--label`` (keys in contract spelling), with a comment per key.
    ml: dict[str, tuple[Any, str]] | None = None
    #: The label's classes (sorted) when it is a classification label.
    classes: list[Any] | None = None

    @property
    def label_column(self) -> DraftColumn | None:
        name = self.ml["labelColumn"][0] if self.ml else None
        return next((c for c in self.columns if c.name == name), None)

    def yaml(self) -> str:
        sample = (f"the first {self.rows:,} rows (a sample; the file has more)" if self.sampled
                  else f"all {self.rows:,} rows")
        lines = [
            f"# Drafted by `mesh contract infer` from {self.source.name}, reading {sample}.",
            "# Every '# guessed:' line is a guess: check it, then remove 'status: draft'.",
            f"# Save as data_products/{self.domain}/{self.product_id}.yaml.",
            "apiVersion: datamesh/v1",
            "kind: DataProduct",
            f"id: {self.product_id}",
            f"name: {yaml_scalar(self.product_id.replace('_', ' ').title())}",
            f"domain: {self.domain}",
            "version: 0.1.0",
            "status: draft",
            "description:",
            f"  purpose: {yaml_scalar(f'Drafted from {self.source.name}; say what the product is for.')}",
            f"  grain: {yaml_scalar(f'One row per {self.primary_key}.' if self.primary_key else 'One row per <what>.')}",
            "owner:",
            f"  team: {yaml_scalar(self.owner_team)}",
            f"  contact: {yaml_scalar(self.owner_team + '@example.com')}",
        ]
        if self.csv:
            lines.append(f"csv:  # guessed: {self.csv_comment}")
            lines += [f"  {key}: {yaml_scalar(value)}" for key, value in self.csv.items()]
        lines.append("columns:")
        for col in self.columns:
            lines.append(f"  - name: {col.name}")
            if col.physical_name:
                lines.append(f"    physicalName: {yaml_scalar(col.physical_name)}")
            lines.append(f"    type: {yaml_scalar(col.type.value)}  # guessed: {col.comment}")
            if col.required:
                lines.append(f"    required: true  # guessed: no empty cells in {self.rows:,} rows")
            if col.true_values:
                lines.append(f"    trueValues: {yaml_scalar(list(col.true_values))}")
                lines.append(f"    falseValues: {yaml_scalar(list(col.false_values or ()))}")
            if col.rules:
                lines.append("    quality:")
                for rule, comment in col.rules:
                    first, *rest = rule.items()
                    lines.append(f"      - {first[0]}: {yaml_scalar(first[1])}  # guessed: {comment}")
                    lines += [f"        {key}: {yaml_scalar(value)}" for key, value in rest]
        if self.primary_key:
            lines.append(f"primaryKey: [{self.primary_key}]  # guessed: {self.primary_key_comment}")
        else:
            lines.append(f"# primaryKey: no column is unique and never empty in {self.rows:,} rows.")
        if self.ml:
            lines.append("ml:  # for the label named with --label")
            for key, (value, comment) in self.ml.items():
                lines.append(f"  {key}: {yaml_scalar(value)}" + (f"  # guessed: {comment}" if comment else ""))
        return "\n".join(lines) + "\n"


def yaml_scalar(value: Any) -> str:
    """``value`` as one line of YAML flow (quoted where YAML would read it as something else: 'Yes', '1')."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def infer_contract(path: Path | str, *, product_id: str | None = None, domain: str | None = None,
                   owner_team: str | None = None, file_format: str | None = None,
                   sample_rows: int = SAMPLE_ROWS, label: str | None = None,
                   predictions: str | None = None) -> Draft:
    """Draft a contract for the CSV or Parquet file ``path`` (see the module docs). With ``label`` (a
    column, by the file's name or the product's), an ``ml`` block makes it labelled training data:
    the task, the id column (the primary key), the label and, for a two-class text label, the
    positive class; ``predictions`` names the product its scores are published as."""
    path = Path(path)
    if not path.is_file():
        raise PublishError(f"Cannot draft a contract: {path} is not a file.")
    fmt = (file_format or path.suffix.lstrip(".")).lower()
    pid = product_id or snake_case(path.stem) or "new_product"
    if not is_valid_name(pid):
        pid = "new_product"
    if fmt in ("parquet", "pq", "parq"):
        table, total, sampled = _parquet_sample(path, sample_rows)
        csv_block, csv_comment = None, ""
    elif fmt in ("csv", "txt", "tsv"):
        table, sampled, csv_block, csv_comment = _csv_sample(path, sample_rows)
        total = table.num_rows
    else:
        raise PublishError(f"Cannot draft a contract from {path}: unsupported file format ('{fmt}'); expected "
                           "parquet or csv (or pass --format).")
    rows = table.num_rows
    names = _product_names(table.schema.names)
    from_csv = fmt not in ("parquet", "pq", "parq")
    columns = [_column(table.schema.names[i], names[i], table.column(i).combine_chunks(), rows, text=from_csv)
               for i in range(table.num_columns)]
    pk, pk_comment = _primary_key(columns, rows)
    if sampled:
        for col in columns:
            col.comment += f" (in a sample of {rows:,} rows)"
    draft = Draft(product_id=pid, domain=domain or "unassigned", owner_team=owner_team or "unassigned",
                  source=path, rows=total if not sampled else rows, sampled=sampled, columns=columns,
                  primary_key=pk, primary_key_comment=pk_comment, csv=csv_block, csv_comment=csv_comment)
    if label is not None:
        index = _label_index(path, label, table.schema.names, names)
        _add_ml_block(draft, columns[index], table.column(index).combine_chunks(), predictions)
    return draft


#: Values that name the positive class of a two-class text label when one of them is among its values.
_POSITIVE_WORDS = ("yes", "y", "true", "t", "1", "positive", "pos", "churn", "churned", "converted", "won",
                   "fraud", "default", "defaulted", "left", "cancelled", "canceled")
#: A whole-number label with at most this many values is classes, not a quantity.
MAX_INTEGER_CLASSES = 20
MAX_TEXT_CLASSES = 50


def _label_index(path: Path, label: str, physical: list[str], names: list[str]) -> int:
    for candidates in (names, physical):
        if label in candidates:
            return candidates.index(label)
    lowered = [n.lower() for n in physical]
    if label.lower() in lowered:
        return lowered.index(label.lower())
    from datamesh.errors import did_you_mean

    raise PublishError(f"Cannot draft the ml block: {path.name} has no column '{label}' (the label named with "
                       f"--label); its columns are {', '.join(physical)}." + did_you_mean(label, physical))


def _add_ml_block(draft: Draft, col: DraftColumn, cells: pa.Array, predictions: str | None) -> None:
    """The ``ml`` block of labelled training data whose label is ``col`` (``cells``: its values)."""
    if draft.primary_key is None:
        raise PublishError(f"Cannot draft the ml block of {draft.source.name}: ml.idColumn needs a column that is "
                           "unique and never empty, and none is in the file. Add an id column and draft again.")
    if draft.primary_key == col.name:
        raise PublishError(f"Cannot use '{col.name}' as the label: it is the id column (unique in every row).")
    values = cells.cast(pa.string()) if not pa.types.is_string(cells.type) else cells
    stripped = pc.utf8_trim_whitespace(values.drop_null())
    counts = {str(v["values"]): int(v["counts"]) for v in pc.value_counts(pc.filter(stripped, pc.not_equal(stripped, "")))
              .to_pylist()}
    shown = ", ".join(f"{k} ({n:,})" for k, n in sorted(counts.items(), key=lambda kv: -kv[1])[:6])
    ml: dict[str, tuple[Any, str]] = {}
    if col.type == ColumnType.BOOLEAN:
        ml["task"] = ("classification", f"a two-class label: {shown}")
        draft.classes = [False, True]
    elif col.type == ColumnType.STRING and len(counts) <= MAX_TEXT_CLASSES:
        ml["task"] = ("classification", f"{len(counts)} classes: {shown}")
        draft.classes = sorted(counts)
    elif col.type in (ColumnType.INT64, ColumnType.INT32) and len(counts) <= MAX_INTEGER_CLASSES:
        ml["task"] = ("classification", f"{len(counts)} whole-number classes: {shown}")
        draft.classes = sorted(int(v) for v in counts)
    elif col.type.is_numeric:
        ml["task"] = ("regression", f"a number with {len(counts):,} distinct values")
    else:
        raise PublishError(f"Cannot use '{(col.physical_name or col.name)}' as a label: it is {col.type.value} with "
                           f"{len(counts):,} distinct values; a label is a class (at most {MAX_TEXT_CLASSES} values) "
                           "or a number.")
    ml["idColumn"] = (draft.primary_key, "")
    ml["labelColumn"] = (col.name, "")
    if ml["task"][0] == "classification" and len(counts) < 2:
        raise PublishError(f"Cannot use '{(col.physical_name or col.name)}' as a label: it has {len(counts)} value(s) ({shown}); a "
                           "classifier needs at least two classes.")
    if col.type in (ColumnType.INT64, ColumnType.INT32) and len(counts) == 2 and set(counts) != {"0", "1"}:
        positive = str(max(int(v) for v in counts))
        ml["positiveLabel"] = (int(positive), f"the larger of the two values; the model predicts the probability "
                                              f"of {positive}")
    if col.type == ColumnType.STRING and len(counts) == 2:
        named = [v for v in counts if v.lower() in _POSITIVE_WORDS]
        positive = named[0] if len(named) == 1 else min(counts, key=lambda v: (counts[v], v))
        why = f"'{positive}' names the positive class" if len(named) == 1 else f"'{positive}' is the rarer class"
        ml["positiveLabel"] = (positive, f"{why}; the model predicts the probability of '{positive}'")
    if predictions:
        ml["predictionsProduct"] = (predictions, "the product its scores are published as")
    draft.ml = ml


# -- reading a sample --------------------------------------------------------------------------


def _parquet_sample(path: Path, limit: int) -> tuple[pa.Table, int, bool]:
    try:
        pf = pq.ParquetFile(path)
        batches, rows = [], 0
        for batch in pf.iter_batches(batch_size=min(limit, 65_536)):
            batches.append(batch)
            rows += batch.num_rows
            if rows >= limit:
                break
        table = pa.Table.from_batches(batches, schema=pf.schema_arrow).slice(0, limit)
    except (pa.ArrowException, OSError) as exc:
        raise PublishError(f"Cannot draft a contract: {path} is not a readable Parquet file ({exc}).") from None
    return table, pf.metadata.num_rows, pf.metadata.num_rows > limit


def _csv_sample(path: Path, limit: int) -> tuple[pa.Table, bool, dict[str, Any] | None, str]:
    head = path.read_bytes()[: 1 << 20]
    encoding = "utf-8"
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not only a character cut by the sample's end
            encoding = "cp1252" if _decodes(head, "cp1252") else "latin-1"
        text = head.decode(encoding, errors="ignore").removeprefix("\ufeff")
    first_lines = "\n".join(text.splitlines()[:50])
    try:
        delimiter = csv.Sniffer().sniff(first_lines, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(text.splitlines()[:1], delimiter=delimiter)
    header = [h.strip() for h in next(reader, [])]
    if not header or not any(header):
        raise PublishError(f"Cannot draft a contract: {path} has no header line naming the columns.")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated or not all(header):
        raise PublishError(f"Cannot draft a contract: the header of {path} names "
                           + (", ".join(f"'{h}' {header.count(h)} times" for h in repeated) or "a column with no name")
                           + "; every column needs one distinct name.")
    reader_options = pacsv.ReadOptions(column_names=header, skip_rows=1, block_size=1 << 20,
                                       encoding="utf8" if encoding == "utf-8" else encoding)
    try:
        stream = pacsv.open_csv(
            path, read_options=reader_options,
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in header}, null_values=[],
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False))
        batches, rows, more = [], 0, False
        for batch in stream:
            batches.append(batch)
            rows += batch.num_rows
            if rows >= limit:
                more = rows > limit or _has_more(stream)
                break
    except (pa.ArrowException, OSError) as exc:
        raise PublishError(f"Cannot draft a contract: {path} could not be read as CSV "
                           f"({str(exc).splitlines()[0]}).") from None
    schema = pa.schema([(h, pa.string()) for h in header])
    table = pa.Table.from_batches(batches, schema=schema).slice(0, limit)
    block: dict[str, Any] = {}
    notes = []
    if delimiter != ",":
        block["delimiter"] = delimiter
        notes.append(f"the header and first lines are delimited by {delimiter!r}")
    if encoding != "utf-8":
        block["encoding"] = encoding
        notes.append(f"the file is not UTF-8; it decodes as {encoding}")
    return table, more, block or None, "; ".join(notes)


def _has_more(stream: Any) -> bool:
    try:
        return next(iter(stream)).num_rows > 0
    except StopIteration:
        return False


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
        return True
    except UnicodeDecodeError:
        return False


def _product_names(names: list[str]) -> list[str]:
    """snake_case names, distinct and valid ('CustomerID' -> 'customer_id', '2nd' -> 'col_2nd')."""
    out: list[str] = []
    for index, name in enumerate(names, start=1):
        base = snake_case(name).replace("__", "_")
        if not is_valid_name(base):
            digits = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
            base = f"col_{digits}" if digits and is_valid_name(f"col_{digits}") else f"column_{index}"
        candidate, n = base, 2
        while candidate in out:
            candidate, n = f"{base[:58]}_{n}", n + 1
        out.append(candidate)
    return out


# -- guessing a column ------------------------------------------------------------------------


def _column(source: str, name: str, array: pa.Array, rows: int, *, text: bool) -> DraftColumn:
    """A CSV column (``text``: every cell read as text) is guessed from its values; a Parquet one has its type."""
    physical = source if source != name else None
    if not text:
        return _typed_column(physical, name, array, rows)
    values = array.cast(pa.string())
    empty = pc.equal(values, "")
    blank = pc.equal(pc.utf8_trim_whitespace(values), "")
    text_cells = [v for v in pc.filter(values, pc.invert(empty)).to_pylist()]
    stripped = [v.strip() for v in pc.filter(values, pc.invert(blank)).to_pylist()]
    distinct = sorted(set(stripped))
    col = DraftColumn(name=name, physical_name=physical, type=ColumnType.STRING, required=False, comment="")
    kind, comment, extra = _guess(distinct, name)
    nulls = rows - len(stripped) if kind != ColumnType.STRING else rows - len(text_cells)
    col.type, col.comment, col.nulls = kind, comment, nulls
    col.required = rows > 0 and nulls == 0
    if kind == ColumnType.BOOLEAN:
        col.true_values, col.false_values = extra or (None, None)
    blanks = rows - len(stripped) - (rows - len(text_cells))
    if kind != ColumnType.STRING and blanks:
        col.comment += f"; {blanks:,} whitespace-only cell{'s' if blanks != 1 else ''} read as null"
    if kind == ColumnType.STRING:
        col.distinct = len(set(text_cells))
        if 0 < col.distinct <= MAX_ACCEPTED_VALUES and col.distinct * 2 <= len(text_cells):
            col.rules.append(({"rule": "accepted_values", "values": sorted(set(text_cells)), "severity": "warning"},
                              f"{col.distinct} distinct values in {rows:,} rows"))
    else:
        col.distinct = len(distinct)
    if kind.is_numeric and stripped:
        _add_range(col, values, kind, rows)
    return col


def _guess(distinct: list[str], name: str) -> tuple[ColumnType, str, Any]:
    """The type of a text column whose distinct non-empty (stripped) values are ``distinct``."""
    if not distinct:
        return ColumnType.STRING, "every cell is empty", None
    lowered = {v.lower() for v in distinct}
    for true_word, false_word in _BOOLEAN_PAIRS.items():
        if lowered == {true_word, false_word}:
            if true_word == "true":
                return ColumnType.BOOLEAN, "true/false values", None
            trues = tuple(dict.fromkeys(v for v in distinct if v.lower() == true_word))[:1]
            falses = tuple(dict.fromkeys(v for v in distinct if v.lower() == false_word))[:1]
            return ColumnType.BOOLEAN, f"only {trues[0]}/{falses[0]} values", (trues, falses)
    if all(_INT.fullmatch(v) for v in distinct):
        if any(len(v.lstrip("+-")) > 1 and v.lstrip("+-").startswith("0") for v in distinct):
            return ColumnType.STRING, "whole numbers with leading zeros (codes, kept as text)", None
        if all(-(2**63) <= int(v) < 2**63 for v in distinct):
            return ColumnType.INT64, "whole numbers", None
        return ColumnType.STRING, "whole numbers too large for int64 (kept as text)", None
    if all(_NUMBER.fullmatch(v) for v in distinct) and _casts(distinct, pa.float64()):
        scale = max(len(v.split(".")[1]) if "." in v else 0 for v in distinct)
        whole = max(len(v.lstrip("+-").split(".")[0].lstrip("0") or "0") for v in distinct)
        words = set(snake_case(name).split("_"))
        if scale <= 4 and words & set(_MONEY_WORDS) and whole + scale <= 18:
            precision = max(18, whole + scale)
            return (ColumnType.decimal(precision, scale),
                    f"amounts with up to {scale} decimals and {whole} digits before the point", None)
        return ColumnType.DOUBLE, "numbers with a decimal point", None
    if all(_FLOAT.fullmatch(v) for v in distinct) and _casts(distinct, pa.float64()):
        return ColumnType.DOUBLE, "numbers", None
    if all(_DATE.fullmatch(v) for v in distinct) and _casts(distinct, pa.date32()):
        return ColumnType.DATE, "dates (YYYY-MM-DD)", None
    matches = [_TIMESTAMP.fullmatch(v) for v in distinct]
    if all(matches):
        zoned = [m.group(1) is not None for m in matches if m]
        if all(zoned) and _casts(distinct, pa.timestamp("us", tz="UTC")):
            return ColumnType.TIMESTAMPTZ, "times with a zone offset (stored in UTC)", None
        if not any(zoned) and _casts(distinct, pa.timestamp("us")):
            return ColumnType.TIMESTAMP, "times without a zone offset", None
        return ColumnType.STRING, "times, some with and some without a zone offset (kept as text)", None
    if all(_TIME.fullmatch(v) for v in distinct) and _casts(["1970-01-01T" + v for v in distinct], pa.timestamp("us")):
        return ColumnType.TIME, "times of day", None
    return ColumnType.STRING, "text", None


def _casts(values: list[str], arrow_type: pa.DataType) -> bool:
    try:
        pa.array(values, pa.string()).cast(arrow_type)
        return True
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False


def _typed_column(physical: str | None, name: str, array: pa.Array, rows: int) -> DraftColumn:
    """A Parquet column: its type is the file's (the contract type of the Arrow type)."""
    arrow_type = array.type
    if pa.types.is_timestamp(arrow_type):
        kind = ColumnType.TIMESTAMPTZ if arrow_type.tz else ColumnType.TIMESTAMP
    elif pa.types.is_dictionary(arrow_type):
        array, arrow_type = array.cast(arrow_type.value_type), arrow_type.value_type
        kind = ColumnType.from_arrow(arrow_type)
    else:
        try:
            kind = ColumnType.from_arrow(arrow_type)
        except ValueError as exc:
            raise PublishError(f"Cannot draft a contract: column '{physical or name}' {exc}") from None
    nulls = array.null_count
    col = DraftColumn(name=name, physical_name=physical, type=kind, required=rows > 0 and nulls == 0,
                      comment=f"the file's type {arrow_type}", nulls=nulls)
    col.distinct = pc.count_distinct(array).as_py()
    if kind == ColumnType.STRING:
        valid = array.drop_null()
        if 0 < col.distinct <= MAX_ACCEPTED_VALUES and col.distinct * 2 <= len(valid):
            values = sorted(pc.unique(valid).cast(pa.string()).to_pylist())
            col.rules.append(({"rule": "accepted_values", "values": values, "severity": "warning"},
                              f"{col.distinct} distinct values in {rows:,} rows"))
    if kind.is_numeric and col.distinct:
        _add_range(col, array, kind, rows)
    return col


def _add_range(col: DraftColumn, values: pa.Array, kind: ColumnType, rows: int) -> None:
    if pa.types.is_string(values.type):
        cells = pc.utf8_trim_whitespace(values)
        cells = pc.filter(cells, pc.not_equal(cells, ""))
        numbers = [_number(v) for v in cells.to_pylist()]
        found = [n for n in numbers if n is not None and n == n and abs(n) != float("inf")]
    else:
        found = [float(v) for v in values.drop_null().to_pylist() if v == v and abs(float(v)) != float("inf")]
    if not found:
        return
    low, high = min(found), max(found)
    col.rules.append(({"rule": "range", "min": _plain(low), "max": _plain(high), "severity": "warning"},
                      f"the smallest and largest values in {rows:,} rows; widen to the real bounds"))


def _number(text: str) -> float | None:
    try:
        return float(Decimal(text))
    except (InvalidOperation, ValueError):
        return None


def _plain(value: float) -> float | int:
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def _primary_key(columns: list[DraftColumn], rows: int) -> tuple[str | None, str]:
    """A unique, never-empty column of a type a key may have; names ending in id first."""
    if rows == 0:
        return None, ""
    keyish = (ColumnType.INT64, ColumnType.INT32, ColumnType.STRING)
    candidates = [c for c in columns if c.required and c.distinct == rows and c.type in keyish]
    if not candidates:
        return None, ""
    candidates.sort(key=lambda c: (not (c.name == "id" or c.name.endswith("_id")), columns.index(c)))
    best = candidates[0]
    others = [c.name for c in candidates[1:]]
    also = f"; also unique: {', '.join(others)}" if others else ""
    return best.name, f"'{best.name}' is unique and never empty in {rows:,} rows{also}"
