"""Contract column types, and what each one is in Iceberg, Arrow, DuckDB and Trino.

A contract names a column's type with one word (``int64``, ``timestamptz``) or,
for decimals, ``decimal(p,s)``: precision ``p`` from 1 to 38 digits, of which
``s`` (0 to ``p``) are after the point. :class:`ColumnType` is that name parsed:
one interned, immutable value per type, with the type it is in each engine
(:attr:`~ColumnType.iceberg`, :attr:`~ColumnType.arrow`,
:attr:`~ColumnType.duckdb`, :attr:`~ColumnType.trino`) and the way back
(:meth:`~ColumnType.from_arrow`, :meth:`~ColumnType.from_iceberg`,
:meth:`~ColumnType.from_duckdb`, :meth:`~ColumnType.from_trino`). Every mapping
comes from the one table :data:`_TABLE` (decimals from :func:`_decimal_row`).

Times are microseconds everywhere. ``timestamp`` has no time zone (the
platform's convention: UTC wall time); ``timestamptz`` is an instant, stored in
UTC (Arrow ``timestamp[us, tz=UTC]``, Iceberg ``timestamptz``).

:func:`is_widening` says which type changes keep old data readable: exactly the
promotions Iceberg's schema evolution allows (``int32 → int64``, a decimal's
precision raised with its scale kept).
"""

from __future__ import annotations

import difflib
import re
from typing import Any, ClassVar, NamedTuple

import pyarrow as pa
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema
from pyiceberg.types import (
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    IcebergType,
    IntegerType,
    LongType,
    StringType,
    TimestampType,
    TimestamptzType,
    TimeType,
)

#: The largest decimal precision every engine supports (Iceberg, Arrow decimal128, DuckDB, Trino).
MAX_DECIMAL_PRECISION = 38


class _Row(NamedTuple):
    arrow: pa.DataType
    iceberg: IcebergType
    duckdb: str
    trino: str


#: Contract type → its type in each engine: the one mapping table (``decimal(p,s)`` is :func:`_decimal_row`).
_TABLE: dict[str, _Row] = {
    # contract       Arrow                            Iceberg            DuckDB                       Trino
    "string":      _Row(pa.string(),                  StringType(),      "VARCHAR",                   "varchar"),
    "int32":       _Row(pa.int32(),                   IntegerType(),     "INTEGER",                   "integer"),
    "int64":       _Row(pa.int64(),                   LongType(),        "BIGINT",                    "bigint"),
    "double":      _Row(pa.float64(),                 DoubleType(),      "DOUBLE",                    "double"),
    "boolean":     _Row(pa.bool_(),                   BooleanType(),     "BOOLEAN",                   "boolean"),
    "date":        _Row(pa.date32(),                  DateType(),        "DATE",                      "date"),
    "time":        _Row(pa.time64("us"),              TimeType(),        "TIME",                      "time(6)"),
    "timestamp":   _Row(pa.timestamp("us"),           TimestampType(),   "TIMESTAMP",                 "timestamp(6)"),
    "timestamptz": _Row(pa.timestamp("us", tz="UTC"), TimestamptzType(), "TIMESTAMP WITH TIME ZONE",  "timestamp(6) with time zone"),
}


def _decimal_row(precision: int, scale: int) -> _Row:
    """The row of ``decimal(precision,scale)``."""
    return _Row(pa.decimal128(precision, scale), DecimalType(precision, scale),
                f"DECIMAL({precision},{scale})", f"decimal({precision},{scale})")


#: Every contract type, as written in contracts and in error messages.
TYPE_NAMES: tuple[str, ...] = ("string", "int32", "int64", "double", "decimal(p,s)", "boolean", "date", "time",
                               "timestamp", "timestamptz")
#: The list of contract types for error messages.
ALLOWED_TYPES = ", ".join(TYPE_NAMES).replace(
    "decimal(p,s)", f"decimal(p,s) (precision p 1-{MAX_DECIMAL_PRECISION}, scale s 0-p, e.g. decimal(12,2))")

_DECIMAL = re.compile(r"decimal\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)")
#: Names people write for a type, for the "did you mean" hint of an unknown type.
_HINTS = {"float": "double", "float64": "double", "real": "double", "number": "double", "int": "int64",
          "integer": "int32", "bigint": "int64", "long": "int64", "smallint": "int32", "text": "string",
          "varchar": "string", "str": "string", "bool": "boolean", "datetime": "timestamp",
          "timestamp with time zone": "timestamptz", "timestamp_tz": "timestamptz", "money": "decimal(p,s)"}


class ColumnTypeError(ValueError):
    """A contract type that is not one: ``text`` is what was written, ``reason`` a short why."""

    def __init__(self, text: object, reason: str) -> None:
        self.text, self.reason = text, reason
        shown = repr(text) if isinstance(text, str) else f"{text!r} (not text)"
        stop = "" if reason.endswith("?") else "."
        super().__init__(f"column type {shown} is not valid: {reason}{stop} Column types are {ALLOWED_TYPES}.")


class ColumnType:
    """One contract column type (``ColumnType.INT64``, ``ColumnType.decimal(12, 2)``, ``ColumnType("date")``).

    Values are interned: each type exists once, so ``is``, ``==``, sets and dict
    keys all work. ``value`` is the canonical name (``decimal(12,2)``, no spaces);
    a pydantic field of this type accepts the name and serializes to it.
    """

    __slots__ = ("value", "precision", "scale", "_row")

    value: str
    precision: int | None  # decimals only
    scale: int | None  # decimals only
    _row: _Row

    _interned: ClassVar[dict[str, ColumnType]] = {}
    STRING: ClassVar[ColumnType]
    INT32: ClassVar[ColumnType]
    INT64: ClassVar[ColumnType]
    DOUBLE: ClassVar[ColumnType]
    BOOLEAN: ClassVar[ColumnType]
    DATE: ClassVar[ColumnType]
    TIME: ClassVar[ColumnType]
    TIMESTAMP: ClassVar[ColumnType]
    TIMESTAMPTZ: ClassVar[ColumnType]

    def __new__(cls, text: str | ColumnType) -> ColumnType:
        return text if isinstance(text, ColumnType) else cls.parse(text)

    @classmethod
    def _make(cls, value: str, row: _Row, precision: int | None = None, scale: int | None = None) -> ColumnType:
        found = cls._interned.get(value)
        if found is None:
            made = object.__new__(cls)
            for name, item in (("value", value), ("precision", precision), ("scale", scale), ("_row", row)):
                object.__setattr__(made, name, item)
            found = cls._interned.setdefault(value, made)  # atomic: two threads making one type get the same
        return found

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def parse(cls, text: object) -> ColumnType:
        """The type a contract names: ``"int64"``, ``"decimal(12,2)"`` (spaces allowed: ``"decimal(12, 2)"``).

        Raises :class:`ColumnTypeError` (a ValueError) naming the text and listing the types.
        """
        if isinstance(text, ColumnType):
            return text
        if not isinstance(text, str):
            raise ColumnTypeError(text, "a column type is text, like int64 or decimal(12,2)")
        name = text.strip()
        if name in _TABLE:
            return cls._make(name, _TABLE[name])
        match = _DECIMAL.fullmatch(name)
        if match:
            return cls.decimal(int(match.group(1)), int(match.group(2)), text=text)
        raise ColumnTypeError(text, _unknown_reason(name))

    @classmethod
    def decimal(cls, precision: int, scale: int, *, text: object = None) -> ColumnType:
        """``decimal(precision,scale)``: 1 <= precision <= 38, 0 <= scale <= precision."""
        shown = text if text is not None else f"decimal({precision},{scale})"
        if isinstance(precision, bool) or not isinstance(precision, int) or not 1 <= precision <= MAX_DECIMAL_PRECISION:
            raise ColumnTypeError(shown, f"the precision must be 1 to {MAX_DECIMAL_PRECISION} digits, not {precision}")
        if isinstance(scale, bool) or not isinstance(scale, int) or not 0 <= scale <= precision:
            raise ColumnTypeError(shown, f"the scale must be 0 to the precision ({precision}), not {scale}")
        return cls._make(f"decimal({precision},{scale})", _decimal_row(precision, scale), precision, scale)

    # -- the engines' types -----------------------------------------------------------------

    @property
    def arrow(self) -> pa.DataType:
        return self._row.arrow

    @property
    def iceberg(self) -> IcebergType:
        return self._row.iceberg

    @property
    def duckdb(self) -> str:
        return self._row.duckdb

    @property
    def trino(self) -> str:
        return self._row.trino

    @property
    def kind(self) -> str:
        """The name without parameters: ``decimal`` for every decimal, else :attr:`value`."""
        return "decimal" if self.precision is not None else self.value

    @property
    def is_decimal(self) -> bool:
        return self.precision is not None

    @property
    def is_numeric(self) -> bool:
        """A number (int32, int64, double, decimal): what range rules and sums need. Not boolean."""
        return self.is_decimal or self.value in ("int32", "int64", "double")

    # -- the way back ----------------------------------------------------------------------

    @classmethod
    def from_arrow(cls, arrow_type: pa.DataType) -> ColumnType:
        """The contract type of an Arrow type. ``large_string`` is string; a UTC time zone may be spelt
        ``UTC``, ``+00:00``, ``Etc/UTC`` or ``Z`` (as pyiceberg accepts)."""
        if isinstance(arrow_type, pa.DataType):
            if pa.types.is_decimal128(arrow_type):
                return cls.decimal(arrow_type.precision, arrow_type.scale)
            if pa.types.is_large_string(arrow_type):
                return cls.STRING
            if pa.types.is_timestamp(arrow_type) and arrow_type.unit == "us" and arrow_type.tz in _UTC_ALIASES:
                return cls.TIMESTAMPTZ
            found = _BY_ARROW.get(arrow_type)
            if found is not None:
                return found
        raise ValueError(f"Arrow type {arrow_type} has no contract type; the contract types are "
                         f"{_listing(lambda t: str(t.arrow), 'decimal128(p, s)')}.{_unit_hint(arrow_type)}")

    @classmethod
    def from_iceberg(cls, iceberg_type: IcebergType) -> ColumnType:
        """The contract type of an Iceberg type."""
        if isinstance(iceberg_type, DecimalType):
            return cls.decimal(iceberg_type.precision, iceberg_type.scale)
        found = next((t for t in _SIMPLE if t.iceberg == iceberg_type), None) if isinstance(iceberg_type, IcebergType) else None
        if found is None:
            raise ValueError(f"Iceberg type {iceberg_type} has no contract type; the contract types are "
                             f"{_listing(lambda t: str(t.iceberg), 'decimal(p, s)')}.")
        return found

    @classmethod
    def from_duckdb(cls, duckdb_type: str) -> ColumnType:
        """The contract type of a DuckDB type name as ``DESCRIBE`` shows it (case and spaces do not matter;
        the aliases ``TIMESTAMPTZ``, ``NUMERIC(p,s)``, ``INT``, ``TEXT`` and the like are understood)."""
        name = _normalized(duckdb_type).upper()
        name = _DUCKDB_ALIASES.get(name, name)
        match = re.fullmatch(r"(?:DECIMAL|NUMERIC)\((\d+),(\d+)\)", name)
        if match:
            return _decimal_or_error(match, f"DuckDB type {duckdb_type!r}")
        found = _BY_DUCKDB.get(name)
        if found is None:
            raise ValueError(f"DuckDB type {duckdb_type!r} has no contract type; the contract types are "
                             f"{_listing(lambda t: t.duckdb, 'DECIMAL(p,s)')}.")
        return found

    @classmethod
    def from_trino(cls, trino_type: str) -> ColumnType:
        """The contract type of a Trino type name (case and spaces do not matter). Precisions must be
        the contract's: ``timestamp(6)``, not ``timestamp`` (which is milliseconds in Trino)."""
        name = _normalized(trino_type).lower()
        match = re.fullmatch(r"decimal\((\d+),(\d+)\)", name)
        if match:
            return _decimal_or_error(match, f"Trino type {trino_type!r}")
        found = _BY_TRINO.get(name)
        if found is None:
            raise ValueError(f"Trino type {trino_type!r} has no contract type; the contract types are "
                             f"{_listing(lambda t: t.trino, 'decimal(p,s)')}.")
        return found

    # -- value behaviour -------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"ColumnType is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"ColumnType is immutable (cannot delete {name!r})")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ColumnType):
            return self.value == other.value
        return NotImplemented

    def __hash__(self) -> int:
        return hash((ColumnType, self.value))

    def __repr__(self) -> str:
        return f"ColumnType({self.value!r})"

    def __str__(self) -> str:
        return self.value

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (ColumnType.parse, (self.value,))

    def __copy__(self) -> ColumnType:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> ColumnType:
        return self

    # -- pydantic --------------------------------------------------------------------------

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls.parse,
            json_schema_input_schema=core_schema.str_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(lambda t: t.value, return_schema=core_schema.str_schema()),
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {"type": "string", "description": f"A column type: {ALLOWED_TYPES}.",
                "examples": ["int64", "decimal(12,2)", "timestamptz"]}


for _name in _TABLE:
    setattr(ColumnType, _name.upper(), ColumnType._make(_name, _TABLE[_name]))  # class attributes, not instance ones

#: The types without parameters (every type but ``decimal(p,s)``), in the table's order.
SIMPLE_TYPES: tuple[ColumnType, ...] = tuple(ColumnType.parse(name) for name in _TABLE)
_SIMPLE = SIMPLE_TYPES
_BY_ARROW = {t.arrow: t for t in _SIMPLE}
_BY_DUCKDB = {t.duckdb: t for t in _SIMPLE}
_BY_TRINO = {t.trino: t for t in _SIMPLE}
_UTC_ALIASES = frozenset({"UTC", "+00:00", "Etc/UTC", "Z"})
_DUCKDB_ALIASES = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE", "INT": "INTEGER", "INT4": "INTEGER",
                   "SIGNED": "INTEGER", "INT8": "BIGINT", "LONG": "BIGINT", "TEXT": "VARCHAR", "STRING": "VARCHAR",
                   "CHAR": "VARCHAR", "BPCHAR": "VARCHAR", "FLOAT8": "DOUBLE", "BOOL": "BOOLEAN",
                   "LOGICAL": "BOOLEAN", "DATETIME": "TIMESTAMP", "TIMESTAMP_US": "TIMESTAMP"}


def is_widening(old: ColumnType, new: ColumnType) -> bool:
    """True if ``old → new`` is a different type that reads every ``old`` value unchanged, as Iceberg's
    schema evolution allows: ``int32 → int64`` and ``decimal(p,s) → decimal(p2,s)`` with ``p2 > p``.
    Every other change of type (int to double, a decimal's scale, date to timestamp, ...) is not."""
    if old == new:
        return False
    if old == ColumnType.INT32 and new == ColumnType.INT64:
        return True
    if old.is_decimal and new.is_decimal:
        return old.scale == new.scale and (new.precision or 0) > (old.precision or 0)
    return False


def _unknown_reason(name: str) -> str:
    lowered = " ".join(name.lower().split())
    if lowered in _TABLE or _DECIMAL.fullmatch(lowered):
        return f"types are lowercase; did you mean '{lowered.replace(' ', '')}'?"
    if re.fullmatch(r"(decimal|numeric)\s*\(\s*\d+", lowered):  # YAML flow style split decimal(12,2) at the comma
        return "in a {...} mapping a comma ends the value: quote the type, like type: 'decimal(12,2)'"
    numeric = re.fullmatch(r"numeric\s*(\(.*)", lowered)
    if numeric and _DECIMAL.fullmatch("decimal" + numeric.group(1)):
        return f"did you mean '{'decimal' + numeric.group(1).replace(' ', '')}'?"
    if lowered.split("(")[0].strip() in ("decimal", "numeric"):
        return "a decimal needs its precision and scale, like decimal(12,2)"
    suggestion = _HINTS.get(lowered)
    if suggestion is None:
        close = difflib.get_close_matches(lowered, [n for n in TYPE_NAMES if "(" not in n], n=1, cutoff=0.6)
        suggestion = close[0] if close else None
    return "unknown type" + (f"; did you mean '{suggestion}'?" if suggestion else "")


def _normalized(name: object) -> str:
    if not isinstance(name, str):
        raise ValueError(f"a type name is text, got {name!r}")
    text = " ".join(name.split())
    return re.sub(r"\s*\)", ")", re.sub(r"\s*([(,])\s*", r"\1", text))


def _decimal_or_error(match: re.Match[str], what: str) -> ColumnType:
    try:
        return ColumnType.decimal(int(match.group(1)), int(match.group(2)))
    except ColumnTypeError as exc:
        raise ValueError(f"{what} has no contract type: {exc.reason}.") from None


def _listing(engine_name: Any, decimal_name: str) -> str:
    return ", ".join([engine_name(t) for t in _SIMPLE] + [decimal_name])


def _unit_hint(arrow_type: object) -> str:
    if isinstance(arrow_type, pa.DataType) and (pa.types.is_timestamp(arrow_type) or pa.types.is_time(arrow_type)):
        tz = getattr(arrow_type, "tz", None)
        if getattr(arrow_type, "unit", "us") != "us":
            return " Times are microseconds: cast to unit 'us'."
        if tz is not None:
            return f" A timestamp with a time zone must be in UTC (got {tz}): convert it to UTC."
    if isinstance(arrow_type, pa.DataType) and pa.types.is_decimal(arrow_type):
        return " Decimals are decimal128 with precision 1 to 38."
    return ""
