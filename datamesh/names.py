"""Identifier rules shared by contracts, storage paths and SQL.

Names become directory names, DuckDB/Trino identifiers and Dagster asset keys,
so one strict rule applies everywhere: lowercase ASCII, starting with a
letter, at most 63 characters, no double underscore (reserved for version
suffixes such as ``customers__v3``). The whole string must match: a trailing
newline or space is an error, never a look-alike name.
"""

from __future__ import annotations

import re
import unicodedata

from datamesh.errors import InvalidNameError

#: Matched with ``fullmatch`` (never ``match``: ``$`` would accept a trailing newline).
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,62}")
MAX_NAME_LENGTH = 63
#: The rule in words, for messages.
NAME_RULE = (
    "lowercase letters, digits and single underscores, starting with a letter, "
    f"at most {MAX_NAME_LENGTH} characters"
)


def is_valid_name(value: object) -> bool:
    return isinstance(value, str) and NAME_PATTERN.fullmatch(value) is not None and "__" not in value


def name_problem(value: object) -> str | None:
    """What is wrong with ``value`` as a name, in a few words (None if it is valid)."""
    if not isinstance(value, str):
        return f"it is a {type(value).__name__}, not text"
    if is_valid_name(value):
        return None
    if not value:
        return "it is empty"
    if any(c in value for c in "\r\n"):
        return "it contains a line break"
    if value != value.strip():
        return "it has leading or trailing whitespace"
    if len(value) > MAX_NAME_LENGTH:
        return f"it is {len(value)} characters long"
    if any("A" <= c <= "Z" for c in value):
        return "it contains uppercase letters"
    if not ("a" <= value[0] <= "z"):
        return "it does not start with a lowercase letter"
    if "__" in value:
        return "it contains '__' (reserved for version suffixes)"
    return "it contains characters other than a-z, 0-9 and _"


def snake_case(value: str) -> str:
    """The closest valid name for ``value`` ('customerID' -> 'customer_id'), or '' if none."""
    text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii").strip()
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"[^a-z0-9]+", "_", text.lower())
    text = re.sub(r"^[^a-z]+", "", text)
    return text[:MAX_NAME_LENGTH].rstrip("_")


def validate_name(value: object, *, kind: str = "name", where: str = "") -> str:
    """Return ``value`` if it is a valid identifier, else raise a clear error."""
    if is_valid_name(value):
        return value  # type: ignore[return-value]
    location = f" in {where}" if where else ""
    suggestion = snake_case(value) if isinstance(value, str) else ""
    example = suggestion if is_valid_name(suggestion) else "customer_orders"
    raise InvalidNameError(
        f"Invalid {kind} {value!r}{location}: {name_problem(value)}; expected {NAME_RULE}. "
        f"Rename it, e.g. '{example}'."
    )


def quote_ident(name: str) -> str:
    """Quote a validated identifier for DuckDB or Trino SQL."""
    validate_name(name, kind="identifier")
    return f'"{name}"'


def sql_string(value: str) -> str:
    """Render a string literal (for DDL where parameters cannot be bound)."""
    return "'" + value.replace("'", "''") + "'"
