"""Read product contracts straight from their YAML, independently of the platform loader.

The demo tests compare the generator and the dbt mart with the contract files
themselves, so a drift shows up even if the loader had a bug.
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import yaml

from datamesh.paths import CONTRACTS_DIR

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
}
_DECIMAL = re.compile(r"decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)")


def _arrow_type(name: str) -> pa.DataType:
    decimal = _DECIMAL.fullmatch(name.strip())
    return pa.decimal128(int(decimal.group(1)), int(decimal.group(2))) if decimal else _ARROW_TYPES[name.strip()]


def contract_yaml(product_id: str) -> dict[str, Any]:
    """The parsed contract file of ``product_id`` (searched across domains)."""
    matches = sorted(CONTRACTS_DIR.glob(f"*/{product_id}.yaml"))
    if len(matches) != 1:
        raise LookupError(f"expected one contract for {product_id!r} under {CONTRACTS_DIR}, found {matches}")
    return yaml.safe_load(matches[0].read_text())


def arrow_schema_for(product_id: str) -> pa.Schema:
    """The Arrow schema the contract of ``product_id`` declares (names, order, types)."""
    columns = contract_yaml(product_id)["columns"]
    return pa.schema([pa.field(column["name"], _arrow_type(column["type"])) for column in columns])


def column_rules(product_id: str, rule: str) -> dict[str, dict[str, Any]]:
    """Column name -> the column's quality rule of kind ``rule`` (e.g. accepted_values)."""
    found = {}
    for column in contract_yaml(product_id)["columns"]:
        for declared in column.get("quality", ()):
            if declared["rule"] == rule:
                found[column["name"]] = declared
    return found


def required_columns(product_id: str) -> list[str]:
    return [c["name"] for c in contract_yaml(product_id)["columns"] if c.get("required")]


def unique_columns(product_id: str) -> list[str]:
    return [c["name"] for c in contract_yaml(product_id)["columns"] if c.get("unique")]
