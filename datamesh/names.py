"""Identifier rules shared by contracts, storage paths and SQL.

Names become directory names, DuckDB/Trino identifiers and Dagster asset keys,
so one strict rule applies everywhere: lowercase ASCII, starting with a
letter, at most 63 characters, no double underscore (reserved for version
suffixes such as ``customers__v3``).
"""

from __future__ import annotations

import re

from datamesh.errors import InvalidNameError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def validate_name(value: object, *, kind: str = "name", where: str = "") -> str:
    """Return ``value`` if it is a valid identifier, else raise a clear error."""
    location = f" in {where}" if where else ""
    if not isinstance(value, str) or not NAME_PATTERN.match(value) or "__" in value:
        raise InvalidNameError(
            f"Invalid {kind} {value!r}{location}: expected lowercase letters, digits and "
            "single underscores, starting with a letter, at most 63 characters "
            "(pattern ^[a-z][a-z0-9_]{0,62}$, no '__'). Rename it, e.g. 'customer_orders'."
        )
    return value


def quote_ident(name: str) -> str:
    """Quote a validated identifier for DuckDB or Trino SQL."""
    validate_name(name, kind="identifier")
    return f'"{name}"'


def sql_string(value: str) -> str:
    """Render a string literal (for DDL where parameters cannot be bound)."""
    return "'" + value.replace("'", "''") + "'"
