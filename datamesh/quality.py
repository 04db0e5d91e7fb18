"""Checks a contract against exactly the files of one product version.

The schema is read from every file's Parquet footer; the rules run as SQL in
DuckDB over ``read_parquet([exact files])``. Simple rules are folded into one
aggregate query (one scan); SQL expectations and composite keys run alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from datamesh.contracts import Contract, QualityRule, RuleType, Severity
from datamesh.duckdb_engine import read_parquet_sql
from datamesh.errors import PublishError, QualityError, SchemaMismatchError
from datamesh.names import quote_ident
from datamesh.storage import Lake


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
    for field in expected:
        if field.name not in actual_names:
            problems.append(f"missing column '{field.name}' (expected {field.type})")
        else:
            got = schema.field(field.name).type
            if not got.equals(field.type):
                problems.append(f"column '{field.name}' has type {got}, expected {field.type}")
    for name in actual_names:
        if name not in expected.names:
            problems.append(f"extra column '{name}' not in the contract")
    return problems


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


def run_rules(con: duckdb.DuckDBPyConnection, contract: Contract, relation: str) -> list[RuleResult]:
    """Evaluate every contract rule on a relation (a view or ``read_parquet(...)``)."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW __mesh_product AS SELECT * FROM {relation}")
    rules = contract.rules()
    observed: dict[str, float] = {}
    params: list[Any] = []
    exprs = []
    for rule in rules:
        expr = _aggregate_expr(rule, params)
        if expr is not None:
            exprs.append((rule, expr))
    if exprs:
        sql = "SELECT " + ", ".join(f"{e} AS c{i}" for i, (_, e) in enumerate(exprs)) + " FROM __mesh_product"
        row = con.execute(sql, params).fetchone()
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
                q = (f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM __mesh_product "
                     f"WHERE {not_null} GROUP BY {cols} HAVING count(*) > 1)")
            else:
                q = (rule.query or "").replace("{product}", "__mesh_product")
            try:
                value = con.execute(q).fetchone()
            except duckdb.Error as exc:
                raise QualityError(
                    f"Product '{contract.id}': SQL rule '{rule.key}' in {contract.source_path} could not run: "
                    f"{str(exc).splitlines()[0]}. Fix the query in the contract."
                ) from None
            observed[rule.key] = float((value or [0])[0] or 0)
        value = observed[rule.key]
        passed = _passes(rule, value)
        examples: list[Any] = []
        if not passed and rule.column and rule.rule in (RuleType.ACCEPTED_VALUES, RuleType.RANGE, RuleType.UNIQUE):
            examples = _examples(con, rule)
        results.append(RuleResult(
            key=rule.key, rule=rule.rule.value, column=rule.column, severity=rule.severity.value,
            passed=passed, observed=value, expected=rule.expectation(),
            message=_message(contract, rule, value, passed, examples),
        ))
    return results


def _examples(con: duckdb.DuckDBPyConnection, rule: QualityRule) -> list[Any]:
    col = quote_ident(rule.column or "")
    if rule.rule is RuleType.ACCEPTED_VALUES:
        rows = con.execute(
            f"SELECT DISTINCT {col} FROM __mesh_product WHERE {col} IS NOT NULL AND NOT list_contains(?, {col}) LIMIT 3",
            [list(rule.values or ())]).fetchall()
    elif rule.rule is RuleType.RANGE:
        lo = rule.min if rule.min is not None else float("-inf")
        hi = rule.max if rule.max is not None else float("inf")
        rows = con.execute(f"SELECT DISTINCT {col} FROM __mesh_product WHERE {col} < ? OR {col} > ? LIMIT 3", [lo, hi]).fetchall()
    else:
        rows = con.execute(f"SELECT {col} FROM __mesh_product WHERE {col} IS NOT NULL GROUP BY {col} HAVING count(*) > 1 LIMIT 3").fetchall()
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


def check_files(con: duckdb.DuckDBPyConnection, lake: Lake, contract: Contract, paths: list[str]) -> list[RuleResult]:
    """Schema (footers) and rules over exactly these files."""
    read_footers(lake, contract, paths)
    return run_rules(con, contract, read_parquet_sql([lake.uri(p) for p in paths]))
