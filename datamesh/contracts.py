"""Data product contracts: the one declaration every other artefact derives from.

A contract is a YAML file under ``data_products/<domain>/<product>.yaml``. Its
field names follow the Open Data Contract Standard (ODCS v3) where ODCS has
one (``apiVersion``, ``kind``, ``id``, ``version``, ``status``, ``domain``,
``description.purpose``, ``slaProperties``, ``quality`` with ``mustBe...``);
:func:`to_odcs` exports the ODCS document.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from datamesh.errors import ContractError, InvalidNameError, QueryError, UnknownProductError, did_you_mean
from datamesh.names import NAME_RULE, is_valid_name, snake_case, validate_name
from datamesh.sql_guard import ensure_single_select
from datamesh.types import ALLOWED_TYPES, ColumnType, ColumnTypeError  # ColumnType is re-exported: its home was here

#: What ``{product}`` in a SQL rule is replaced with when the rule is checked or run.
PRODUCT_RELATION = "__mesh_product"


class Classification(str, Enum):
    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    PII = "pii"


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


class RuleType(str, Enum):
    ROW_COUNT = "row_count"
    NOT_NULL = "not_null"
    UNIQUE = "unique"
    ACCEPTED_VALUES = "accepted_values"
    RANGE = "range"
    SQL = "sql"


class Status(str, Enum):
    DRAFT = "draft"
    ACTIVE = "active"
    DEPRECATED = "deprecated"
    RETIRED = "retired"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


SQL_RULE_HINT = ("A SQL rule is one query that returns one number, "
                 "e.g. `select count(*) from {product} where price < 0`.")


class QualityRule(_Model):
    """One quality rule. Column-level rules get ``column`` filled in on load."""

    rule: RuleType
    name: str | None = None
    description: str = ""
    severity: Severity = Severity.ERROR
    column: str | None = None
    columns: tuple[str, ...] | None = None
    values: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    query: str | None = None
    must_be: float | None = Field(default=None, alias="mustBe")
    must_be_less_than: float | None = Field(default=None, alias="mustBeLessThan")
    must_be_greater_than: float | None = Field(default=None, alias="mustBeGreaterThan")
    must_be_between: tuple[float, float] | None = Field(default=None, alias="mustBeBetween")

    @model_validator(mode="after")
    def _check_fields(self) -> QualityRule:
        rule = self.rule
        if rule is RuleType.ACCEPTED_VALUES and not self.values:
            raise ValueError("rule accepted_values needs a non-empty 'values' list")
        if rule in (RuleType.RANGE, RuleType.ROW_COUNT) and self.min is None and self.max is None:
            raise ValueError(f"rule {rule.value} needs 'min' and/or 'max'")
        if rule is RuleType.SQL:
            if not self.query or "{product}" not in self.query:
                raise ValueError("rule sql needs a 'query' that reads from '{product}'")
            bounds = [self.must_be, self.must_be_less_than, self.must_be_greater_than, self.must_be_between]
            if all(b is None for b in bounds):
                raise ValueError("rule sql needs one of mustBe, mustBeLessThan, mustBeGreaterThan, mustBeBetween")
            try:
                ensure_single_select(self.sql_for(PRODUCT_RELATION), where="the query", hint=SQL_RULE_HINT)
            except QueryError as exc:
                raise ValueError(str(exc).replace(PRODUCT_RELATION, "{product}")) from None
        if self.name is not None:
            validate_name(self.name, kind="rule name")
        return self

    def sql_for(self, relation: str) -> str:
        """The SQL rule's query with ``{product}`` replaced by ``relation``."""
        return (self.query or "").replace("{product}", relation)

    @property
    def key(self) -> str:
        """A stable, valid check name (used as Dagster asset check name)."""
        if self.name:
            return self.name
        target = "_".join(self.columns) if self.columns else (self.column or "table")
        return f"{target}_{self.rule.value}"

    def expectation(self) -> str:
        """Human-readable statement of what the rule expects."""
        r = self.rule
        if r is RuleType.ROW_COUNT:
            return "row count " + _bounds(self.min, self.max)
        if r is RuleType.NOT_NULL:
            return f"no nulls in '{self.column}'"
        if r is RuleType.UNIQUE:
            cols = ", ".join(self.columns or (self.column,))  # type: ignore[arg-type]
            return f"unique values of ({cols})"
        if r is RuleType.ACCEPTED_VALUES:
            return f"'{self.column}' in {list(self.values or ())}"
        if r is RuleType.RANGE:
            return f"'{self.column}' " + _bounds(self.min, self.max)
        return f"query result {self.sql_bound_text()}"

    def sql_bound_text(self) -> str:
        if self.must_be is not None:
            return f"= {_fmt(self.must_be)}"
        if self.must_be_between is not None:
            return f"between {_fmt(self.must_be_between[0])} and {_fmt(self.must_be_between[1])}"
        parts = []
        if self.must_be_greater_than is not None:
            parts.append(f"> {_fmt(self.must_be_greater_than)}")
        if self.must_be_less_than is not None:
            parts.append(f"< {_fmt(self.must_be_less_than)}")
        return " and ".join(parts)

    def sql_passes(self, observed: float) -> bool:
        if self.must_be is not None and observed != self.must_be:
            return False
        if self.must_be_less_than is not None and not observed < self.must_be_less_than:
            return False
        if self.must_be_greater_than is not None and not observed > self.must_be_greater_than:
            return False
        if self.must_be_between is not None:
            lo, hi = self.must_be_between
            if not lo <= observed <= hi:
                return False
        return True


def _bounds(low: float | None, high: float | None) -> str:
    """``between 1 and 10``, ``at least 1``, ``at most 10`` (never an infinite bound)."""
    if low is not None and high is not None:
        return f"between {_fmt(low)} and {_fmt(high)}"
    return f"at least {_fmt(low)}" if low is not None else f"at most {_fmt(high)}"


def _fmt(value: float | None) -> str:
    if value is None:
        return "-inf/inf"
    return str(int(value)) if float(value).is_integer() else str(value)


class Column(_Model):
    """One column. ``physicalName`` (ODCS) is the column's name in the files published as the product
    (``CustomerID``); ``name`` stays the product's snake_case name. ``trueValues`` / ``falseValues`` (boolean
    columns) are the words a CSV file writes for true and false, compared without regard to case."""

    name: str
    type: ColumnType
    physical_name: str | None = Field(default=None, alias="physicalName")
    required: bool = False
    unique: bool = False
    description: str = ""
    classification: Classification = Classification.INTERNAL
    true_values: tuple[str, ...] | None = Field(default=None, alias="trueValues")
    false_values: tuple[str, ...] | None = Field(default=None, alias="falseValues")
    quality: tuple[QualityRule, ...] = ()

    @field_validator("name")
    @classmethod
    def _valid_name(cls, v: str) -> str:
        return validate_name(v, kind="column name")

    @field_validator("physical_name")
    @classmethod
    def _valid_physical_name(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or v != v.strip() or any(c in v for c in "\r\n")):
            raise ValueError(f"physicalName {v!r} must be the file's column name as its header writes it: "
                             "not empty, no leading or trailing whitespace, no line break")
        return v

    @field_validator("true_values", "false_values", mode="before")
    @classmethod
    def _tokens_as_text(cls, v: Any) -> Any:
        return _boolean_tokens(v)

    @model_validator(mode="after")
    def _rules_fit_the_type(self) -> Column:
        for rule in self.quality:
            _check_rule_type(rule, self.name, self.type)
        _check_boolean_tokens(self)
        return self

    @property
    def source_name(self) -> str:
        """The column's name in a published file: ``physicalName`` if given, else ``name``."""
        return self.physical_name or self.name


#: What PyYAML makes of an unquoted yes/no/on/off/true/false: the words it may have been (compared without case).
_YAML_BOOLEAN_WORDS = {True: ("true", "yes", "on"), False: ("false", "no", "off")}


def _boolean_tokens(value: Any) -> Any:
    """``trueValues: [Yes, Y, 1]`` as YAML reads it (``[True, 'Y', 1]``) back to words: ``['true', 'yes', 'on',
    'Y', '1']`` (an unquoted Yes is a YAML boolean; every word YAML reads as that boolean is accepted)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        return value
    out: list[Any] = []
    for item in value:
        if isinstance(item, bool):
            out.extend(_YAML_BOOLEAN_WORDS[item])
        elif isinstance(item, int):
            out.append(str(item))
        else:
            out.append(item)
    return out


#: The words a CSV writes for true and false in a boolean column without ``trueValues`` / ``falseValues``.
DEFAULT_TRUE_WORDS, DEFAULT_FALSE_WORDS = ("true", "1"), ("false", "0")


def _check_boolean_tokens(column: Column) -> None:
    if column.true_values is None and column.false_values is None:
        return
    if column.type != ColumnType.BOOLEAN:
        raise ValueError(f"trueValues/falseValues apply to boolean columns; '{column.name}' is {column.type.value}")
    seen: dict[str, str] = {}
    # A list left out keeps its defaults, which then must not collide with the other list's words.
    words = (("trueValues", column.true_values if column.true_values is not None else DEFAULT_TRUE_WORDS),
             ("falseValues", column.false_values if column.false_values is not None else DEFAULT_FALSE_WORDS))
    for field, tokens in words:
        if tokens is not None and not tokens:
            raise ValueError(f"{field} of column '{column.name}' is empty; list the words, like {field}: ['Yes', 'Y']")
        for token in tokens or ():
            if not token.strip():
                raise ValueError(f"{field} of column '{column.name}' has an empty word; an empty cell is null")
            other = seen.get(token.strip().lower())
            if other is not None and other != field:
                raise ValueError(f"column '{column.name}': {token!r} is in both trueValues and falseValues "
                                 "(a list left out means its defaults: true, 1 / false, 0); give both lists")
            seen[token.strip().lower()] = field


class CsvDialect(_Model):
    """The ``csv`` block: how the product's CSV files are written. ``nullValues`` are the cells read as null
    (compared exactly; a cell of only whitespace is also null in a column that is not a string). A UTF-8 byte
    order mark is always accepted."""

    delimiter: str = ","
    quote: str = '"'
    encoding: str = "utf-8"
    null_values: tuple[str, ...] = Field(default=("",), alias="nullValues")

    @field_validator("delimiter", "quote")
    @classmethod
    def _one_character(cls, v: str, info: Any) -> str:
        if not isinstance(v, str) or len(v) != 1 or v in "\r\n":
            raise ValueError(f"csv.{info.field_name} must be one character (like ',' or ';' or a tab written \"\\t\"), "
                             f"got {v!r}")
        return v

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        import codecs

        try:
            codecs.lookup(v)
        except (LookupError, TypeError):
            raise ValueError(f"csv.encoding {v!r} is not a known text encoding (e.g. utf-8, latin-1, cp1252)") from None
        return v

    @field_validator("null_values", mode="before")
    @classmethod
    def _null_values_as_text(cls, v: Any) -> Any:
        if isinstance(v, list | tuple) and any(item is None for item in v):
            raise ValueError("csv.nullValues has an unquoted null, which YAML reads as no value; quote the "
                             "words, like nullValues: ['', 'NULL', 'N/A']")
        if isinstance(v, list | tuple):
            return [str(item) if isinstance(item, int | float) and not isinstance(item, bool) else item for item in v]
        return v

    @model_validator(mode="after")
    def _distinct(self) -> CsvDialect:
        if self.delimiter == self.quote:
            raise ValueError(f"csv.delimiter and csv.quote are both {self.delimiter!r}; they must differ")
        return self


def _check_physical_names(columns: Iterable[Column]) -> None:
    """No two columns read the same file column (``physicalName``, or the name of a column without one)."""
    by_source: dict[str, list[str]] = {}
    for col in columns:
        by_source.setdefault(col.source_name, []).append(col.name)
    for source, cols in by_source.items():
        if len(cols) > 1:
            raise ValueError(f"columns {', '.join(repr(c) for c in cols)} all read the file column '{source}' "
                             "(physicalName, or the name of a column without one); each file column maps to one "
                             "product column")


def _check_null_markers(contract: Contract) -> None:
    """A word of a boolean column that is also a null marker would silently read as null."""
    markers = {m.strip().lower() for m in (contract.csv.null_values if contract.csv else ("",))}
    for col in contract.columns:
        if col.type != ColumnType.BOOLEAN:
            continue
        words = [*(col.true_values or DEFAULT_TRUE_WORDS), *(col.false_values or DEFAULT_FALSE_WORDS)]
        clash = sorted({w for w in words if w.strip().lower() in markers})
        if clash:
            raise ValueError(f"column '{col.name}': {', '.join(repr(w) for w in clash)} is both a boolean word and "
                             "a null marker (csv.nullValues), so such cells would read as null; remove it from one")


_NUMBER_TYPES = "int32, int64, double or decimal(p,s)"


def _check_rule_type(rule: QualityRule, column: str, column_type: ColumnType) -> None:
    """A range rule compares numbers: its column must be one (a decimal is)."""
    if rule.rule is RuleType.RANGE and not column_type.is_numeric:
        raise ValueError(f"rule range on column '{column}' needs a number column ({_NUMBER_TYPES}); "
                         f"'{column}' is {column_type.value}")


class Owner(_Model):
    team: str
    contact: str


class Description(_Model):
    purpose: str
    grain: str
    usage: str = ""
    limitations: str = ""


class SlaProperty(_Model):
    """One service level. ``queryLatency`` is the p95 target of each latency probe (``datamesh/slo.py``), in
    ``s`` or ``ms``; its ``severity`` (default warning) is how a missed target is reported."""

    property: Literal["freshness", "queryLatency", "retention"]
    value: float
    unit: Literal["ms", "s", "m", "h", "d", "versions"]
    severity: Severity | None = None


class Lineage(_Model):
    inputs: tuple[str, ...] = ()


class ThresholdPolicy(_Model):
    recall_at_least: float | None = Field(default=None, alias="recallAtLeast")
    precision_at_least: float | None = Field(default=None, alias="precisionAtLeast")
    maximize: Literal["f1"] | None = None


class UnsupervisedSection(_Model):
    """Unsupervised work on the contract's product, published as the product ``product``.

    Features: ``featureColumns`` if given (numeric or boolean columns), else every
    numeric, non-boolean column of the ml block's features (``ml.featureColumns``
    or every column) except the id, the label, ``ml.excludeColumns`` and
    ``excludeColumns``. ``idColumn`` defaults to ``ml.idColumn``.
    """

    product: str
    id_column: str | None = Field(default=None, alias="idColumn")
    feature_columns: tuple[str, ...] | None = Field(default=None, alias="featureColumns")
    exclude_columns: tuple[str, ...] = Field(default=(), alias="excludeColumns")

    @field_validator("product")
    @classmethod
    def _valid_product(cls, v: str) -> str:
        return validate_name(v, kind="product id")


class SegmentsSection(UnsupervisedSection):
    """``ml.segments``: k-means segments of the rows (k by the silhouette score)."""


class AnomaliesSection(UnsupervisedSection):
    """``ml.anomalies``: log-likelihood of each row under a Gaussian mixture (components by
    BIC); rows below the ``percentile``-th percentile of the scores are flagged."""

    percentile: float = Field(default=1.0, gt=0, lt=100)


def _is_feature_type(column_type: ColumnType) -> bool:
    """A type an unsupervised feature may have: a number or a boolean."""
    return column_type.is_numeric or column_type == ColumnType.BOOLEAN


_FEATURE_TYPES = "int32, int64, double, decimal(p,s), boolean"


class MLSection(_Model):
    """Marks a product as labelled training data (or as a product to score), and declares
    the unsupervised products computed from it (``segments``, ``anomalies``)."""

    task: Literal["classification", "regression"] = "classification"
    id_column: str = Field(alias="idColumn")
    label_column: str | None = Field(default=None, alias="labelColumn")
    feature_columns: tuple[str, ...] | None = Field(default=None, alias="featureColumns")
    exclude_columns: tuple[str, ...] = Field(default=(), alias="excludeColumns")
    primary_metric: str | None = Field(default=None, alias="primaryMetric")
    #: Which value of a two-class label is the positive class (e.g. ``"Yes"``); needed when the label is
    #: neither boolean nor 0/1. Checked against the label's values at training time.
    positive_label: str | bool | int | float | None = Field(default=None, alias="positiveLabel")
    threshold_policy: ThresholdPolicy = Field(default_factory=ThresholdPolicy, alias="thresholdPolicy")
    champion_margin: float = Field(default=0.005, alias="championMargin")
    cv_folds: int = Field(default=5, alias="cvFolds", ge=2, le=20)
    max_training_rows: int | None = Field(default=None, alias="maxTrainingRows", ge=50)
    predictions_product: str | None = Field(default=None, alias="predictionsProduct")
    segments: SegmentsSection | None = None
    anomalies: AnomaliesSection | None = None

    @model_validator(mode="after")
    def _positive_label_is_for_classification(self) -> MLSection:
        if self.positive_label is not None and self.task != "classification":
            raise ValueError(f"'positiveLabel' ({self.positive_label!r}) names the positive class of a "
                             f"classification label; remove it for task: {self.task}.")
        return self

    def unsupervised_sections(self) -> list[tuple[str, UnsupervisedSection]]:
        """``[("segments", ...), ("anomalies", ...)]``, for the sections this block declares."""
        sections = (("segments", self.segments), ("anomalies", self.anomalies))
        return [(name, section) for name, section in sections if section is not None]

    def id_column_of(self, section: UnsupervisedSection) -> str:
        """The id column of an unsupervised section (``ml.idColumn`` unless it sets its own)."""
        return section.id_column or self.id_column


#: The units each service level may be written in (``ms`` only for query latency).
_SLA_UNITS: dict[str, tuple[str, ...]] = {
    "freshness": ("s", "m", "h", "d", "versions"), "queryLatency": ("s", "ms"), "retention": ("s", "m", "h", "d", "versions"),
}
_QUERY_LATENCY_EXAMPLE = "e.g. `- property: queryLatency`, `value: 500`, `unit: ms`"


def _check_sla(product: str, sla: SlaProperty) -> None:
    """A query latency is a positive time in s or ms; ``ms`` and ``severity`` belong to query latency only."""
    where = f"product '{product}' field 'slaProperties[{sla.property}]'"
    if sla.unit not in _SLA_UNITS[sla.property]:
        if sla.property == "queryLatency":
            raise ValueError(f"{where}: unit '{sla.unit}' is not a query latency unit; queryLatency is in s or ms "
                             f"({_QUERY_LATENCY_EXAMPLE}).")
        raise ValueError(f"{where}: unit '{sla.unit}' is for queryLatency only; {sla.property} is in "
                         f"{', '.join(_SLA_UNITS[sla.property])}.")
    if sla.property == "queryLatency" and not sla.value > 0:
        raise ValueError(f"{where}: value must be a time above 0, got {sla.value:g} ({_QUERY_LATENCY_EXAMPLE}).")
    if sla.severity is not None and sla.property != "queryLatency":
        raise ValueError(f"{where}: 'severity' applies to queryLatency only (how a missed latency target is "
                         f"reported); remove it from {sla.property}.")


_SEMVER = re.compile(r"(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})")


class Contract(_Model):
    """A data product contract."""

    api_version: Literal["datamesh/v1"] = Field(alias="apiVersion")
    kind: Literal["DataProduct"]
    id: str
    name: str
    domain: str
    version: str
    status: Status = Status.ACTIVE
    description: Description
    owner: Owner
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = Field(default=(), alias="primaryKey")
    quality: tuple[QualityRule, ...] = ()
    sla_properties: tuple[SlaProperty, ...] = Field(default=(), alias="slaProperties")
    lineage: Lineage = Field(default_factory=Lineage)
    ml: MLSection | None = None
    tags: tuple[str, ...] = ()
    csv: CsvDialect | None = None
    source_path: Path | None = Field(default=None, exclude=True)

    @field_validator("id")
    @classmethod
    def _valid_id(cls, v: str) -> str:
        return validate_name(v, kind="product id")

    @field_validator("domain")
    @classmethod
    def _valid_domain(cls, v: str) -> str:
        return validate_name(v, kind="domain")

    @field_validator("version")
    @classmethod
    def _valid_version(cls, v: str) -> str:
        if not isinstance(v, str) or not _SEMVER.fullmatch(v):
            raise ValueError(f"version must be semantic (MAJOR.MINOR.PATCH), got {v!r}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Contract:
        names = [c.name for c in self.columns]
        if not names:
            raise ValueError("a contract needs at least one column")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate column names: {dupes}")
        _check_physical_names(self.columns)
        _check_null_markers(self)
        known = set(names)

        def check(col: str, where: str) -> None:
            if col not in known:
                raise ValueError(f"{where} names unknown column '{col}'.{did_you_mean(col, known)}")

        for col in self.primary_key:
            check(col, "primaryKey")
        for sla in self.sla_properties:
            _check_sla(self.id, sla)
        for rule in self.quality:
            for col in (rule.columns or ()) + ((rule.column,) if rule.column else ()):
                check(col, f"quality rule '{rule.key}'")
            if rule.column:
                _check_rule_type(rule, rule.column, self.column(rule.column).type)
        if self.ml is not None:
            if self.ml.predictions_product is not None:
                validate_name(self.ml.predictions_product, kind="ml.predictionsProduct")
            for col in (self.ml.id_column, self.ml.label_column, *(self.ml.feature_columns or ()), *self.ml.exclude_columns):
                if col is not None:
                    check(col, "ml")
            self._check_unsupervised(self.ml, check)
        return self

    def _check_unsupervised(self, ml: MLSection, check: Callable[[str, str], None]) -> None:
        """``ml.segments`` / ``ml.anomalies``: known columns, numeric features, a distinct output product."""
        types = {c.name: c.type for c in self.columns}
        outputs: dict[str, str] = {}
        if ml.predictions_product is not None:
            outputs[ml.predictions_product] = "ml.predictionsProduct"
        for field, section in ml.unsupervised_sections():
            where = f"ml.{field}"
            if section.product == self.id:
                raise ValueError(f"{where}.product is '{self.id}', this product itself; name the product "
                                 f"the {field} are published as (a contract of its own).")
            if section.product in outputs:
                raise ValueError(f"{where}.product '{section.product}' is also {outputs[section.product]}; "
                                 f"each output needs a product of its own.")
            outputs[section.product] = f"{where}.product"
            for col in (section.id_column, *(section.feature_columns or ()), *section.exclude_columns):
                if col is not None:
                    check(col, where)
            roles = {ml.id_column_of(section): "id", ml.label_column: "label"}
            for col in section.feature_columns or ():
                if col in roles:
                    raise ValueError(f"{where}.featureColumns lists '{col}', the {roles[col]} column; remove it.")
                if not _is_feature_type(types[col]):
                    raise ValueError(f"{where}.featureColumns lists '{col}' of type {types[col].value}; "
                                     f"{field} use numeric columns ({_FEATURE_TYPES}).")

    # -- derived views of the contract -------------------------------------------------

    @property
    def key(self) -> tuple[str, str]:
        return (self.domain, self.id)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise ContractError(
            f"Product '{self.id}' has no column '{name}'.{did_you_mean(name, self.column_names)}"
        )

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type.arrow) for c in self.columns])

    def rules(self) -> list[QualityRule]:
        """Every rule: derived ones (required, unique, primary key) then declared ones."""
        out: list[QualityRule] = []
        for col in self.columns:
            if col.required:
                out.append(QualityRule(rule=RuleType.NOT_NULL, column=col.name))
            if col.unique:
                out.append(QualityRule(rule=RuleType.UNIQUE, column=col.name))
            for rule in col.quality:
                out.append(rule.model_copy(update={"column": col.name}))
        pk = self.primary_key
        if len(pk) > 1 or (len(pk) == 1 and not self.column(pk[0]).unique):
            out.append(QualityRule(rule=RuleType.UNIQUE, name="primary_key_unique", columns=pk))
        out.extend(self.quality)
        seen: set[str] = set()
        for rule in out:
            if rule.key in seen:
                raise ContractError(
                    f"Product '{self.id}' has two quality rules named '{rule.key}': give one a distinct 'name'."
                )
            seen.add(rule.key)
        return out

    def sla(self, prop: str) -> SlaProperty | None:
        return next((s for s in self.sla_properties if s.property == prop), None)

    @property
    def freshness_seconds(self) -> float | None:
        sla = self.sla("freshness")
        if sla is None:
            return None
        return sla.value * {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(sla.unit, 1)

    @property
    def query_latency_ms(self) -> float | None:
        """The p95 target of each query-latency probe, in milliseconds (None: no target)."""
        sla = self.sla("queryLatency")
        if sla is None:
            return None
        return sla.value * (1000.0 if sla.unit == "s" else 1.0)

    @property
    def query_latency_severity(self) -> Severity:
        """How a missed query-latency target is reported: the contract's ``severity``, else a warning."""
        sla = self.sla("queryLatency")
        return sla.severity if sla is not None and sla.severity is not None else Severity.WARNING

    @property
    def retention_versions(self) -> int | None:
        sla = self.sla("retention")
        return int(sla.value) if sla is not None else None


# -- loading --------------------------------------------------------------------------


def _format_validation_error(exc: ValidationError, path: Path, raw: dict[str, Any]) -> str:
    """One short line per problem; many problems of one kind (e.g. column names) share one line."""
    problems: list[str] = []
    bad_columns: list[str] = []
    bad_types: list[tuple[str, ColumnTypeError]] = []
    missing: list[str] = []
    for err in exc.errors():
        loc = _location(err.get("loc", ()), raw)
        error = (err.get("ctx") or {}).get("error")
        if _is_column_name(err.get("loc", ())) and isinstance(error, InvalidNameError):
            bad_columns.append(err.get("input"))  # type: ignore[arg-type]
        elif _is_column_type(err.get("loc", ())) and isinstance(error, ColumnTypeError):
            bad_types.append((_column_label(err["loc"][1], raw), error))
        elif err.get("type") == "extra_forbidden" and _is_split_decimal(err.get("loc", ()), raw):
            continue  # `{type: decimal(12,2)}`: YAML made '2)' a key; the type's error says to quote it
        elif err.get("type") == "extra_forbidden":
            field = str(err["loc"][-1])
            parent = _parent_model(err["loc"])
            hint = did_you_mean(field, _field_names(parent)) if parent else ""
            problems.append(f"unknown field '{loc}'.{hint}")
        elif err.get("type") == "missing":
            missing.append(loc)
        else:
            msg = err.get("msg", "invalid").removeprefix("Value error, ")
            value = err.get("input")
            quiet = isinstance(error, InvalidNameError) or isinstance(value, dict | list) or repr(value) in msg
            got = "" if quiet else f" (got {value!r})"
            problems.append(f"field '{loc}': {msg}{got}" if loc else msg)
    if missing:
        fields = ", ".join(f"'{m}'" for m in missing)
        problems.insert(0, f"missing required field{'s' if len(missing) > 1 else ''} {fields}")
    if bad_types:
        problems.insert(1 if missing else 0, _column_types_line(bad_types))
    if bad_columns:
        problems.insert(0, _column_names_line(bad_columns))
    if len(problems) == 1:
        return f"Invalid contract {path}: {problems[0]}"
    return f"Invalid contract {path}: {len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems)


def _is_column_name(loc: tuple[Any, ...]) -> bool:
    return len(loc) == 3 and loc[0] == "columns" and isinstance(loc[1], int) and loc[2] == "name"


def _is_column_type(loc: tuple[Any, ...]) -> bool:
    return len(loc) == 3 and loc[0] == "columns" and isinstance(loc[1], int) and loc[2] == "type"


def _is_split_decimal(loc: tuple[Any, ...], raw: dict[str, Any]) -> bool:
    """``columns[i].'2)'`` next to ``type: 'decimal(12'``: a decimal written unquoted in a YAML flow mapping."""
    if not (len(loc) == 3 and loc[0] == "columns" and isinstance(loc[1], int) and re.fullmatch(r"\s*\d+\s*\)", str(loc[2]))):
        return False
    columns = raw.get("columns")
    entry = columns[loc[1]] if isinstance(columns, list) and loc[1] < len(columns) else None
    written = entry.get("type") if isinstance(entry, dict) else None
    return isinstance(written, str) and re.fullmatch(r"\s*(decimal|numeric)\s*\(\s*\d+\s*", written.lower()) is not None


def _column_label(index: int, raw: dict[str, Any]) -> str:
    """The column's name as written (or its position, if it has none)."""
    columns = raw.get("columns")
    entry = columns[index] if isinstance(columns, list) and index < len(columns) else None
    name = entry.get("name") if isinstance(entry, dict) else None
    return name if isinstance(name, str) and name else f"#{index + 1}"


def _column_types_line(bad: list[tuple[str, ColumnTypeError]]) -> str:
    """'1 column type is not valid: price is 'float' (unknown type; did you mean 'double'?). Column types
    are ...' (one line for all, the allowed types listed once)."""
    def item(column: str, error: ColumnTypeError) -> str:
        shown = repr(error.text) if isinstance(error.text, str) else f"{error.text!r}"
        return f"{column} is {shown} ({error.reason})"

    subject = "1 column type is" if len(bad) == 1 else f"{len(bad)} column types are"
    return f"{subject} not valid: {', '.join(item(c, e) for c, e in bad)}. Column types are {ALLOWED_TYPES}."


def _column_names_line(names: list[object]) -> str:
    """'2 column names are not snake_case: customerID → customer_id, ...' (one line for all)."""
    def suggestion(name: object) -> str:
        if not isinstance(name, str):
            return f"{name!r} (not text)"
        shown = name if name and name.isprintable() and name == name.strip() else repr(name)
        better = snake_case(name)
        return f"{shown} → {better}" if is_valid_name(better) else shown

    count = len(names)
    subject = "1 column name is" if count == 1 else f"{count} column names are"
    return (f"{subject} not snake_case: {', '.join(suggestion(n) for n in names)}. "
            f"Names are {NAME_RULE}.")


def _location(loc: tuple[Any, ...], raw: Any) -> str:
    parts: list[str] = []
    node = raw
    for item in loc:
        if isinstance(item, int):
            name = node[item].get("name") if isinstance(node, list) and item < len(node) and isinstance(node[item], dict) else None
            parts[-1:] = [f"{parts[-1] if parts else ''}[{name or item}]"]
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(p for p in parts if p)


_NESTED: dict[str, type[BaseModel]] = {
    "columns": Column, "quality": QualityRule, "owner": Owner, "description": Description,
    "slaProperties": SlaProperty, "lineage": Lineage, "ml": MLSection, "thresholdPolicy": ThresholdPolicy,
    "segments": SegmentsSection, "anomalies": AnomaliesSection, "csv": CsvDialect,
}


def _parent_model(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    names = [p for p in loc[:-1] if isinstance(p, str)]
    return _NESTED.get(names[-1]) if names else Contract


def _field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items() if name != "source_path"]


def parse_contract(raw: Any, path: Path) -> Contract:
    """Validate a parsed YAML document as a contract; errors name the file and field."""
    if not isinstance(raw, dict):
        raise ContractError(f"Invalid contract {path}: expected a YAML mapping at the top level.")
    try:
        contract = Contract.model_validate(raw)
    except ValidationError as exc:
        raise ContractError(_format_validation_error(exc, path, raw)) from None
    except ContractError:
        raise
    except Exception as exc:  # e.g. InvalidNameError raised inside a validator
        raise ContractError(f"Invalid contract {path}: {exc}") from None
    contract = contract.model_copy(update={"source_path": path})
    try:
        contract.rules()
    except ContractError as exc:
        raise ContractError(f"Invalid contract {path}: {exc}") from None
    return contract


def load_contract(path: Path | str) -> Contract:
    """Load and validate one contract file.

    The file is read every time; its parse is kept per (path, exact text), so a
    process that opens the mesh again and again (every Dagster step does) parses
    an unchanged contract once. Any change to the text parses it again; an
    invalid contract is never kept. Contracts are frozen, so sharing one is safe.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContractError(f"Contract file {path} does not exist.") from None
    return _parsed(path, text)


@functools.lru_cache(maxsize=1024)
def _parsed(path: Path, text: str) -> Contract:
    try:
        raw = yaml.load(text, Loader=_FAST_LOADER)  # noqa: S506 (a safe loader: libyaml's SafeLoader)
    except yaml.YAMLError:
        try:  # the pure-Python parser says where the error is, with the line quoted
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ContractError(f"Invalid contract {path}: not valid YAML ({exc}).") from None
    return parse_contract(raw, path)


#: libyaml's safe loader when PyYAML was built with it (ten times faster: every CLI call parses every
#: contract), else the pure-Python one; both resolve the same YAML 1.1 tags.
_FAST_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ContractRegistry:
    """Every contract under a folder, checked for consistency across the mesh."""

    def __init__(self, contracts: Iterable[Contract]) -> None:
        self._by_id: dict[str, Contract] = {}
        for contract in contracts:
            if contract.id in self._by_id:
                other = self._by_id[contract.id].source_path
                raise ContractError(
                    f"Product id '{contract.id}' is declared twice: {other} and {contract.source_path}. "
                    "Product ids are unique across the mesh; rename one."
                )
            self._by_id[contract.id] = contract
        for contract in self._by_id.values():
            for upstream in contract.lineage.inputs:
                if upstream not in self._by_id:
                    raise ContractError(
                        f"Invalid contract {contract.source_path}: lineage input '{upstream}' is not a known product."
                        f"{did_you_mean(upstream, self._by_id)}"
                    )
        self._check_ml_outputs()

    def _check_ml_outputs(self) -> None:
        """Every product an ``ml.segments`` / ``ml.anomalies`` block names is declared, lists its
        source in ``lineage.inputs``, has the id column, and has no other producer."""
        producers: dict[str, str] = {}
        for contract in self._by_id.values():
            if contract.ml is None:
                continue
            for field, section in contract.ml.unsupervised_sections():
                where = f"Invalid contract {contract.source_path}: ml.{field}.product"
                output = self._by_id.get(section.product)
                if output is None:
                    raise ContractError(
                        f"{where} '{section.product}' is not a known product."
                        f"{did_you_mean(section.product, self._by_id)} Add a contract for it under "
                        f"data_products/<domain>/."
                    )
                if contract.id not in output.lineage.inputs:
                    raise ContractError(
                        f"{where} is '{output.id}', but {output.source_path} does not list '{contract.id}' in "
                        f"lineage.inputs; add it there."
                    )
                id_column = contract.ml.id_column_of(section)
                if id_column not in output.column_names:
                    raise ContractError(
                        f"{where} is '{output.id}', which has no column '{id_column}' (the id column of the "
                        f"{field}); add it to {output.source_path} or set ml.{field}.idColumn."
                    )
                if output.id in producers:
                    raise ContractError(
                        f"{where} is '{output.id}', which {producers[output.id]} already produces; "
                        f"a product has one producer."
                    )
                producers[output.id] = f"ml.{field} of {contract.source_path}"

    @classmethod
    def from_dir(cls, root: Path | str) -> ContractRegistry:
        root = Path(root)
        if not root.is_dir():
            raise ContractError(f"Contracts folder {root} does not exist; set MESH_CONTRACTS_DIR.")
        contracts = []
        for path in sorted(root.glob("*/*.yaml")) + sorted(root.glob("*/*.yml")):
            contract = load_contract(path)
            if contract.domain != path.parent.name:
                raise ContractError(
                    f"Invalid contract {path}: field 'domain' is '{contract.domain}' but the file lives in "
                    f"folder '{path.parent.name}'. Move the file to data_products/{contract.domain}/ or fix 'domain'."
                )
            contracts.append(contract)
        return cls(contracts)

    def get(self, product_id: str) -> Contract:
        try:
            return self._by_id[product_id]
        except KeyError:
            pass
        bare = product_id.split(".", 1)[-1]
        if bare in self._by_id and product_id == f"{self._by_id[bare].domain}.{bare}":
            return self._by_id[bare]
        raise UnknownProductError(
            f"Unknown product '{product_id}'.{did_you_mean(bare, self._by_id)} "
            f"Known products: {', '.join(sorted(self._by_id))}."
        )

    def __iter__(self) -> Iterator[Contract]:
        return iter(sorted(self._by_id.values(), key=lambda c: (c.domain, c.id)))

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, product_id: object) -> bool:
        return product_id in self._by_id

    @property
    def domains(self) -> list[str]:
        return sorted({c.domain for c in self._by_id.values()})

    def downstream(self, product_id: str) -> list[Contract]:
        return [c for c in self if product_id in c.lineage.inputs]


def to_odcs(contract: Contract) -> dict[str, Any]:
    """Export a contract as an ODCS v3.0.2 document (a plain dict, ready for YAML)."""

    def rule_doc(rule: QualityRule) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": rule.key, "description": rule.description or rule.expectation(),
                               "severity": rule.severity.value, "dimension": "conformity"}
        if rule.rule is RuleType.SQL:
            doc.update(type="sql", query=rule.query)
        else:
            metric = {RuleType.ROW_COUNT: "rowCount", RuleType.NOT_NULL: "nullValues", RuleType.UNIQUE: "duplicateValues",
                      RuleType.ACCEPTED_VALUES: "invalidValues", RuleType.RANGE: "invalidValues"}[rule.rule]
            doc.update(type="library", metric=metric)
            if rule.rule is RuleType.ACCEPTED_VALUES:
                doc["arguments"] = {"validValues": list(rule.values or ())}
        for ours, theirs in (("must_be", "mustBe"), ("must_be_less_than", "mustBeLessThan"),
                             ("must_be_greater_than", "mustBeGreaterThan"), ("must_be_between", "mustBeBetween")):
            if getattr(rule, ours) is not None:
                value = getattr(rule, ours)
                doc[theirs] = list(value) if isinstance(value, tuple) else value
        if rule.rule in (RuleType.NOT_NULL, RuleType.UNIQUE, RuleType.ACCEPTED_VALUES, RuleType.RANGE):
            doc["mustBe"] = 0
        if rule.rule is RuleType.ROW_COUNT:
            doc["mustBeBetween"] = [rule.min or 0, rule.max if rule.max is not None else 2**63 - 1]
        return doc

    props = []
    pk = list(contract.primary_key)
    for col in contract.columns:
        prop: dict[str, Any] = {
            "name": col.name, "logicalType": _ODCS_LOGICAL[col.type.kind], "physicalType": col.type.trino,
            "required": col.required, "unique": col.unique, "description": col.description,
            "classification": col.classification.value,
        }
        if col.name in pk:
            prop.update(primaryKey=True, primaryKeyPosition=pk.index(col.name) + 1)
        col_rules = [r for r in contract.rules() if r.column == col.name and r.rule not in (RuleType.NOT_NULL, RuleType.UNIQUE)]
        if col_rules:
            prop["quality"] = [rule_doc(r) for r in col_rules]
        props.append(prop)
    table_rules = [r for r in contract.rules() if r.column is None]
    return {
        "apiVersion": "v3.0.2",
        "kind": "DataContract",
        "id": f"{contract.domain}.{contract.id}",
        "name": contract.name,
        "version": contract.version,
        "status": contract.status.value,
        "domain": contract.domain,
        "dataProduct": contract.id,
        "description": {"purpose": contract.description.purpose, "usage": contract.description.usage,
                        "limitations": contract.description.limitations},
        "team": [{"username": contract.owner.contact, "role": "owner", "name": contract.owner.team}],
        "schema": [{
            "name": contract.id, "physicalName": f"{contract.domain}.{contract.id}", "logicalType": "object",
            "physicalType": "table", "description": contract.description.grain, "properties": props,
            "quality": [rule_doc(r) for r in table_rules],
        }],
        "slaProperties": [{"property": {"freshness": "latency", "queryLatency": "queryLatency",
                                        "retention": "retention"}[s.property], "value": s.value, "unit": s.unit}
                          for s in contract.sla_properties],
        "customProperties": [{"property": "lineageInputs", "value": list(contract.lineage.inputs)}],
    }


#: ODCS v3.0.2 logical type of each contract type (by kind: every decimal is a number). ODCS 3.0 has
#: no time-of-day type: a time is exchanged as a string like 12:30:00.
_ODCS_LOGICAL = {
    "string": "string", "int32": "integer", "int64": "integer", "double": "number", "decimal": "number",
    "boolean": "boolean", "date": "date", "time": "string", "timestamp": "date", "timestamptz": "date",
}
