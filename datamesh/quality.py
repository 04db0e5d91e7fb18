"""Checks a contract against exactly the files of one product version.

The schema is read from every file's Parquet footer; the rules run as SQL in
DuckDB over ``read_parquet([exact files])``. Simple rules are folded into one
aggregate query (one scan); SQL expectations and composite keys run alone.

A contract's SQL rule must be one SELECT (checked again here, not only when
the contract loads), and every rule runs on a connection locked down to the
files being checked (:func:`datamesh.sql_guard.lock_down`). A DuckDB error
while checking (a damaged Parquet page, a string that is not UTF-8, a file
gone missing) becomes a :class:`PublishError` naming the product, the file
and the rule, never a raw DuckDB traceback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from datamesh.contracts import PRODUCT_RELATION, SQL_RULE_HINT, Contract, QualityRule, RuleType, Severity
from datamesh.duckdb_engine import read_parquet_sql
from datamesh.errors import PublishError, QualityError, QueryError, SchemaMismatchError
from datamesh.names import quote_ident
from datamesh.sql_guard import ensure_single_select, lock_down
from datamesh.storage import Lake
from datamesh.types import ColumnType

_NOTHING_PUBLISHED = "Nothing was published; the previous version is still served."
_FILE_IN_ERROR = re.compile(r'file "([^"]+)"')


@dataclass(frozen=True)
class RuleResult:
    key: str
    rule: str
    column: str | None
    severity: str
    passed: bool
    observed: float
    expected: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def schema_differences(contract: Contract, schema: pa.Schema) -> list[str]:
    """Human-readable differences between a contract and an Arrow schema ([] if none)."""
    expected = contract.arrow_schema()
    problems: list[str] = []
    actual_names = schema.names
    for field, col in zip(expected, contract.columns, strict=True):
        if field.name not in actual_names:
            problems.append(f"missing column '{field.name}' (expected {_type_text(col.type)})")
        else:
            got = schema.field(field.name).type
            if not got.equals(field.type) and not _same_contract_type(got, col.type):
                problems.append(f"column '{field.name}' has type {got}, expected {_type_text(col.type)}")
    for name in actual_names:
        if name not in expected.names:
            problems.append(f"extra column '{name}' not in the contract")
    return problems


def _type_text(kind: ColumnType) -> str:
    """'timestamptz (timestamp[us, tz=UTC])': the contract's type and, where it reads differently, Arrow's."""
    arrow = str(kind.arrow)
    return kind.value if arrow == kind.value else f"{kind.value} ({arrow})"


def _same_contract_type(got: pa.DataType, kind: ColumnType) -> bool:
    """``got`` is another spelling of ``kind``: ``large_string`` for string, a UTC time zone spelt ``+00:00``,
    ``Etc/UTC`` or ``Z`` for timestamptz (:meth:`ColumnType.from_arrow`); a cast makes it the contract's type."""
    try:
        return ColumnType.from_arrow(got) == kind
    except ValueError:
        return False


def check_schema(contract: Contract, schema: pa.Schema, where: str) -> None:
    problems = schema_differences(contract, schema)
    if problems:
        raise SchemaMismatchError(
            f"Product '{contract.id}': {where} does not match contract {contract.source_path or contract.id} "
            f"v{contract.version}: " + "; ".join(problems)
            + ". Fix the data, or change the contract (and bump its version)."
        )


def read_footers(lake: Lake, contract: Contract, paths: list[str]) -> list[pq.FileMetaData]:
    """Read and check each file's footer; corrupt files get an error naming them."""
    metas = []
    for path in paths:
        try:
            with lake.fs.open_input_file(path) as f:
                meta = pq.ParquetFile(f).metadata
                schema = meta.schema.to_arrow_schema()
        except (pa.ArrowInvalid, OSError) as exc:
            raise PublishError(
                f"Product '{contract.id}': file {lake.uri(path)} is not a readable Parquet file ({exc}). "
                "Re-export it as Parquet (or CSV with `mesh publish --format csv`)."
            ) from None
        check_schema(contract, schema, f"file {lake.uri(path)}")
        metas.append(meta)
    return metas


def _aggregate_expr(rule: QualityRule, params: list[Any]) -> str | None:
    col = quote_ident(rule.column) if rule.column else None
    if rule.rule is RuleType.ROW_COUNT:
        return "count(*)"
    if rule.rule is RuleType.NOT_NULL:
        return f"count(*) - count({col})"
    if rule.rule is RuleType.ACCEPTED_VALUES:
        params.append(list(rule.values or ()))
        return f"count_if({col} IS NOT NULL AND NOT list_contains(?, {col}))"
    if rule.rule is RuleType.RANGE:
        conds = []
        if rule.min is not None:
            params.append(rule.min)
            conds.append(f"{col} < ?")
        if rule.max is not None:
            params.append(rule.max)
            conds.append(f"{col} > ?")
        return f"count_if({' OR '.join(conds)})"
    return None


def _passes(rule: QualityRule, observed: float) -> bool:
    if rule.rule is RuleType.ROW_COUNT:
        return (rule.min is None or observed >= rule.min) and (rule.max is None or observed <= rule.max)
    if rule.rule is RuleType.SQL:
        return rule.sql_passes(observed)
    return observed == 0


def _message(contract: Contract, rule: QualityRule, observed: float, passed: bool, examples: list[Any]) -> str:
    if passed:
        return f"{rule.key}: ok ({rule.expectation()})"
    n = int(observed)
    what = {
        RuleType.ROW_COUNT: f"{n} rows",
        RuleType.NOT_NULL: f"{n} null values in '{rule.column}'",
        RuleType.UNIQUE: f"{n} duplicate values of ({', '.join(rule.columns or (rule.column or '',))})",
        RuleType.ACCEPTED_VALUES: f"{n} rows of '{rule.column}' outside the accepted values",
        RuleType.RANGE: f"{n} rows of '{rule.column}' out of range",
        RuleType.SQL: f"query returned {observed:g}",
    }[rule.rule]
    ex = f" (e.g. {', '.join(repr(e) for e in examples)})" if examples else ""
    return f"rule '{rule.key}' failed: {what}{ex}; expected {rule.expectation()}"


def run_rules(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    relation: str,
    *,
    files: Sequence[str] = (),
    allowed_paths: Sequence[str] = (),
    sorted_keys: Iterable[str] = (),
) -> list[RuleResult]:
    """Evaluate every contract rule on a relation (a registered table or ``read_parquet(...)``).

    ``files`` are the files behind the relation (named in errors);
    ``allowed_paths`` the folders they live in. The connection is locked down
    to those folders before any rule runs, so use a connection of its own.
    ``sorted_keys`` are columns the caller proved unique without a query
    (:func:`runs_prove_unique`): their one-column uniqueness rules pass
    without the grouped aggregate.
    """
    check = _Check(con, contract, files)
    check.run(f"CREATE OR REPLACE TEMP VIEW {PRODUCT_RELATION} AS SELECT * FROM {relation}", (), "reading the data")
    lock_down(con, list(allowed_paths))
    rules = contract.rules()
    proven = set(sorted_keys)
    observed: dict[str, float] = {r.key: 0.0 for r in rules if r.rule is RuleType.UNIQUE and _unique_column(r) in proven}
    params: list[Any] = []
    exprs = []
    for rule in rules:
        expr = _aggregate_expr(rule, params)
        if expr is not None:
            exprs.append((rule, expr))
    if exprs:
        sql = "SELECT " + ", ".join(f"{e} AS c{i}" for i, (_, e) in enumerate(exprs)) + f" FROM {PRODUCT_RELATION}"
        what = ("rule " if len(exprs) == 1 else "rules ") + ", ".join(f"'{r.key}'" for r, _ in exprs)
        row = check.run(sql, params, what)
        assert row is not None
        for (rule, _), value in zip(exprs, row, strict=True):
            observed[rule.key] = float(value or 0)
    results = []
    for rule in rules:
        if rule.key not in observed:
            if rule.rule is RuleType.UNIQUE:
                # A grouped aggregate (not count(DISTINCT)): DuckDB spills it to disk, so a
                # 66M-row key check stays within the memory limit.
                key = rule.columns or (rule.column or "",)
                cols = ", ".join(quote_ident(c) for c in key)
                not_null = " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in key) if rule.column else "TRUE"
                q = (f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {PRODUCT_RELATION} "
                     f"WHERE {not_null} GROUP BY {cols} HAVING count(*) > 1)")
            else:
                q = rule.sql_for(PRODUCT_RELATION)
                check.ensure_sql_rule(rule, q)
            value = check.run(q, (), f"rule '{rule.key}'", sql_rule=rule if rule.rule is RuleType.SQL else None)
            if value is None or len(value) != 1:
                raise QualityError(
                    f"Product '{contract.id}': SQL rule '{rule.key}' in {contract.source_path} returned "
                    f"{'no row' if value is None else f'{len(value)} columns'}; a rule must return exactly one "
                    f"row with one number (e.g. select count(*) from {{product}} where ...). {SQL_RULE_HINT}"
                )
            observed[rule.key] = float(_number(contract, rule, value[0]))
        value = observed[rule.key]
        passed = _passes(rule, value)
        examples: list[Any] = []
        if not passed and rule.column and rule.rule in (RuleType.ACCEPTED_VALUES, RuleType.RANGE, RuleType.UNIQUE):
            examples = _examples(check, rule)
        results.append(RuleResult(
            key=rule.key, rule=rule.rule.value, column=rule.column, severity=rule.severity.value,
            passed=passed, observed=value, expected=rule.expectation(),
            message=_message(contract, rule, value, passed, examples),
        ))
    return results


def _number(contract: Contract, rule: QualityRule, value: Any) -> float:
    if value is None:
        return 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        raise QualityError(
            f"Product '{contract.id}': SQL rule '{rule.key}' in {contract.source_path} returned {value!r}, "
            f"not a number. {SQL_RULE_HINT}"
        ) from None


class _Check:
    """Runs the checking queries of one product; DuckDB errors become platform errors."""

    def __init__(self, con: duckdb.DuckDBPyConnection, contract: Contract, files: Sequence[str]) -> None:
        self.con = con
        self.contract = contract
        self.files = list(files)

    def ensure_sql_rule(self, rule: QualityRule, sql: str) -> None:
        try:
            ensure_single_select(sql, where=f"SQL rule '{rule.key}'", hint=SQL_RULE_HINT)
        except QueryError as exc:
            raise QualityError(
                f"Product '{self.contract.id}': contract {self.contract.source_path}: "
                f"{str(exc).replace(PRODUCT_RELATION, '{product}')} {_NOTHING_PUBLISHED}"
            ) from None

    def run(self, sql: str, params: Sequence[Any], what: str, *,
            sql_rule: QualityRule | None = None) -> tuple[Any, ...] | None:
        try:
            return self.con.execute(sql, list(params)).fetchone()
        except duckdb.Error as exc:
            raise self.error(exc, what, sql_rule) from None

    def rows(self, sql: str, params: Sequence[Any], what: str) -> list[tuple[Any, ...]]:
        try:
            return self.con.execute(sql, list(params)).fetchall()
        except duckdb.Error as exc:
            raise self.error(exc, what, None) from None

    def error(self, exc: duckdb.Error, what: str, sql_rule: QualityRule | None) -> PublishError:
        text = (str(exc).splitlines()[0] if str(exc) else type(exc).__name__).rstrip("!. ")
        product = f"Product '{self.contract.id}'"
        named = _FILE_IN_ERROR.search(text)
        if named:
            where = f"file {named.group(1)}"
        elif len(self.files) == 1:
            where = f"file {self.files[0]}"
        elif self.files:
            shown = ", ".join(self.files[:3]) + (f" and {len(self.files) - 3} more" if len(self.files) > 3 else "")
            where = f"files {shown}"
        else:
            where = "the data"
        if isinstance(exc, duckdb.PermissionException) and sql_rule is not None:
            return QualityError(
                f"{product}: SQL rule '{sql_rule.key}' in {self.contract.source_path} was refused: {text}. "
                "A rule reads only {product} (the data being checked), no other file or URL. "
                f"Fix the query in the contract. {_NOTHING_PUBLISHED}"
            )
        kind = _data_problem(exc, text)
        if kind is None and sql_rule is not None:
            return QualityError(
                f"{product}: SQL rule '{sql_rule.key}' in {self.contract.source_path} could not run: "
                f"{text.replace(PRODUCT_RELATION, '{product}')}. Fix the query in the contract. {_NOTHING_PUBLISHED}"
            )
        advice = {
            "encoding": "A string column holds bytes that are not valid UTF-8: re-export the file with UTF-8 "
                        "text (or fix the bad values), then publish again.",
            "missing": "A file went missing while it was checked: publish again, and do not change the lake "
                       "while a publish runs.",
            "corrupt": "The file is damaged or was not written completely: re-export it and publish again.",
        }.get(kind or "", "Check the data and publish again; if it persists, report this message.")
        return PublishError(f"{product}: {what} could not be checked on {where}: {text}. {advice} {_NOTHING_PUBLISHED}")


def _data_problem(exc: duckdb.Error, text: str) -> str | None:
    """'encoding', 'missing' or 'corrupt' when a DuckDB error is about the data, else None."""
    lowered = text.lower()
    if "utf8" in lowered or "utf-8" in lowered or "string encoding" in lowered:
        return "encoding"
    if "no files found" in lowered or "no such file" in lowered or ("does not exist" in lowered and "file" in lowered):
        return "missing"
    if isinstance(exc, duckdb.IOException) or any(
        word in lowered for word in ("parquet", "failed to read file", "decompress", "corrupt", "snappy", "zstd",
                                     "checksum", "thrift")
    ):
        return "corrupt"
    return None


def _examples(check: _Check, rule: QualityRule) -> list[Any]:
    col = quote_ident(rule.column or "")
    what = f"rule '{rule.key}'"
    if rule.rule is RuleType.ACCEPTED_VALUES:
        rows = check.rows(
            f"SELECT DISTINCT {col} FROM {PRODUCT_RELATION} WHERE {col} IS NOT NULL AND NOT list_contains(?, {col}) "
            "LIMIT 3", [list(rule.values or ())], what)
    elif rule.rule is RuleType.RANGE:
        lo = rule.min if rule.min is not None else float("-inf")
        hi = rule.max if rule.max is not None else float("inf")
        rows = check.rows(f"SELECT DISTINCT {col} FROM {PRODUCT_RELATION} WHERE {col} < ? OR {col} > ? LIMIT 3",
                          [lo, hi], what)
    else:
        rows = check.rows(f"SELECT {col} FROM {PRODUCT_RELATION} WHERE {col} IS NOT NULL GROUP BY {col} "
                          "HAVING count(*) > 1 LIMIT 3", [], what)
    return [r[0] for r in rows]


def enforce(contract: Contract, results: list[RuleResult], version: int | None = None) -> None:
    """Raise QualityError listing every failed blocking rule."""
    failed = [r for r in results if not r.passed and r.severity == Severity.ERROR.value]
    if failed:
        label = f" version {version}" if version is not None else ""
        raise QualityError(
            f"Product '{contract.id}'{label} violates its contract ({contract.source_path}): "
            + "; ".join(r.message for r in failed)
            + ". Nothing was published; the previous version is still served. Fix the data or the contract.",
            failures=failed,
        )


def check_files(con: duckdb.DuckDBPyConnection, lake: Lake, contract: Contract, paths: list[str], *,
                sorted_keys: Sequence[str] | None = None) -> list[RuleResult]:
    """Schema (footers) and rules over exactly these files. ``sorted_keys``: the key columns the caller
    proved unique from the very values it wrote into them (:func:`column_runs`); by default the proof
    reads the key columns back from the files (:func:`files_sorted_keys`)."""
    read_footers(lake, contract, paths)
    uris = [lake.uri(p) for p in paths]
    folders = sorted({uri.rsplit("/", 1)[0] + "/" for uri in uris})
    proven = files_sorted_keys(lake, contract, paths) if sorted_keys is None else sorted_keys
    return run_rules(con, contract, read_parquet_sql(uris), files=uris, allowed_paths=folders, sorted_keys=proven)


# -- keys proved unique by their order --------------------------------------------------
#
# A unique key checked by DuckDB is a grouped aggregate over every value: 24 s of the 28 s
# that checking 67 M usage events took (the hash table of 67 M strings spills past the
# memory limit). Keys are often written in order (an extract by primary key, a sequence,
# a generator): a run of values each greater than the one before holds no repeat, and runs
# whose [first, last] ranges do not overlap share none. Proving that from the files reads the
# key column once (2.7 s on two cores); the publisher proves it from the tables it writes, which
# it has in hand (0.35 s, no read), and reads back only files it staged as given. Every
# comparison is Arrow's, on the stored values (no Python conversion, which wraps a time past
# 24 h and cannot hold every date), and only for types whose Arrow order and DuckDB equality
# agree: integers, decimals (checked to fit their precision), dates, timestamps, text
# (checked to be valid UTF-8, which the aggregate's scan would otherwise have refused) and
# bytes. Any doubt (a null, a step down or a tie, another type, a file that does not read)
# leaves the rule to the aggregate, which also names the problem.

#: Values per run read from a file: bounds the proof's memory whatever a file's row groups are.
RUN_ROWS = 1 << 20


def unique_key_columns(contract: Contract) -> list[str]:
    """Columns of the contract's one-column uniqueness rules (``unique: true``, a one-column primary key)."""
    return sorted({c for r in contract.rules() if r.rule is RuleType.UNIQUE and (c := _unique_column(r))})


def _unique_column(rule: QualityRule) -> str | None:
    key = rule.columns or ((rule.column,) if rule.column else ())
    return key[0] if len(key) == 1 else None


def _ordered_type(kind: pa.DataType) -> bool:
    """Arrow orders these as DuckDB tells their values apart (not floats: NaN, -0.0; not times: past 24 h)."""
    return (pa.types.is_integer(kind) or pa.types.is_decimal(kind) or pa.types.is_date32(kind)
            or pa.types.is_timestamp(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)
            or pa.types.is_binary(kind) or pa.types.is_large_binary(kind))


#: A run: its first and last values, each a one-value array of the column's type.
Run = tuple[pa.Array, pa.Array]


def strictly_increasing(values: pa.Array) -> Run | None:
    """(first, last) of ``values`` when each is greater than the one before it (so none repeats), else None
    (a null, a tie or a step down, text that is not UTF-8, a type outside :func:`_ordered_type`; no values)."""
    if len(values) == 0 or values.null_count or not _ordered_type(values.type):
        return None
    try:
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type) or pa.types.is_decimal(values.type):
            # Text that is not UTF-8 (the aggregate's scan refuses it, naming the file), or a decimal beyond its
            # precision (Parquet stores it cut to the precision's width, so its order here is not the file's).
            values.validate(full=True)
        if len(values) > 1 and not pc.all(pc.greater(values.slice(1), values.slice(0, len(values) - 1)),
                                          skip_nulls=False).as_py():
            return None
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None
    # Copies of the two values, not slices: a slice would keep the whole chunk's buffers alive for as long as the
    # run is kept (a publisher keeps one per written chunk until its commit).
    return values.take(pa.array([0])), values.take(pa.array([len(values) - 1]))


def column_runs(column: pa.ChunkedArray) -> list[Run | None]:
    """:func:`strictly_increasing` of each non-empty chunk (no copy into one array)."""
    return [strictly_increasing(chunk) for chunk in column.chunks if len(chunk)]


def runs_prove_unique(runs: Iterable[Run | None]) -> bool:
    """Strictly increasing runs (:func:`strictly_increasing`) hold no value twice when their ranges,
    ordered by their first values, each end before the next begins (Arrow's comparisons throughout)."""
    ranges = list(runs)
    if not ranges or any(r is None for r in ranges):
        return False
    try:
        firsts = pa.concat_arrays([r[0] for r in ranges if r is not None])
        lasts = pa.concat_arrays([r[1] for r in ranges if r is not None])
        if len(firsts) == 1:
            return True
        order = pc.sort_indices(firsts)
        firsts, lasts = firsts.take(order), lasts.take(order)
        return bool(pc.all(pc.less(lasts.slice(0, len(lasts) - 1), firsts.slice(1)), skip_nulls=False).as_py())
    except (pa.ArrowException, TypeError, ValueError):
        return False


def table_sorted_keys(contract: Contract, table: pa.Table) -> list[str]:
    """The key columns an in-memory table proves unique by their order (see above)."""
    return [c for c in unique_key_columns(contract) if c in table.column_names
            and runs_prove_unique(column_runs(table.column(c)))]


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def files_sorted_keys(lake: Lake, contract: Contract, paths: Sequence[str]) -> list[str]:
    """The key columns these Parquet files prove unique by their order, each batch of at most
    :data:`RUN_ROWS` values read from a file a run (see above)."""
    columns = unique_key_columns(contract)
    if not columns or not paths:
        return []

    def runs(path: str, column: str) -> list[Run | None]:
        out: list[Run | None] = []
        try:
            with lake.fs.open_input_file(path) as f:
                for batch in pq.ParquetFile(f).iter_batches(batch_size=RUN_ROWS, columns=[column]):
                    if len(batch):
                        out.append(strictly_increasing(batch.column(0)))
                        if out[-1] is None:
                            break  # not in order: the aggregate decides
        except (pa.ArrowException, OSError, KeyError, ValueError):
            return [None]
        return out

    proven = []
    with ThreadPoolExecutor(max_workers=min(len(paths), _usable_cpus())) as pool:
        for column in columns:
            found = [r for rs in pool.map(runs, paths, [column] * len(paths)) for r in rs]
            # No run at all (no rows): nothing proved; the aggregate of nothing is quick.
            if runs_prove_unique(found):
                proven.append(column)
    return proven
