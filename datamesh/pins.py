"""Pinned product versions: ``--pin customers=3`` / ``--pin crm.customers=3``.

DuckDB sessions pin by building the product's view over that version. In
Trino a version is the tag ``v<N>`` of the product's Iceberg table, so a
pinned query is rewritten: every reference to ``<domain>.<product>``
(optionally catalog-qualified, optionally quoted) outside string literals and
comments becomes ``lake.<domain>.<product> FOR VERSION AS OF 'v<N>'``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from datamesh.contracts import ContractRegistry
from datamesh.errors import PlatformError, VersionNotFoundError

_VERSION = re.compile(r"[0-9]{1,9}")


class PinError(PlatformError):
    """A ``--pin`` value is malformed or names an unknown product."""


def parse_pins(texts: Iterable[str], contracts: ContractRegistry) -> dict[str, int]:
    """``["customers=3", "crm.usage_events=2"]`` → ``{"customers": 3, "usage_events": 2}``."""
    out: dict[str, int] = {}
    for text in texts:
        name, sep, version = text.partition("=")
        name, version = name.strip(), version.strip()
        if not sep or not name or not _VERSION.fullmatch(version):
            raise PinError(
                f"--pin expects PRODUCT=VERSION with VERSION a whole number, e.g. customers=3 or "
                f"crm.customers=3; got {text!r}."
            )
        contract = contracts.get(name)  # UnknownProductError (with did-you-mean) for bad names
        number = int(version)
        if number < 1:
            raise VersionNotFoundError(f"--pin {text!r}: versions start at 1.")
        if contract.id in out and out[contract.id] != number:
            raise PinError(f"--pin names product '{contract.id}' twice with different versions.")
        out[contract.id] = number
    return out


# Tokens that must be skipped (strings, quoted identifiers are handled, comments) or rewritten.
_TOKEN = re.compile(
    r"""
    (?P<string>'(?:[^']|'')*')
  | (?P<line_comment>--[^\n]*)
  | (?P<block_comment>/\*.*?\*/)
  | (?P<chain>(?:(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_]*)\s*\.\s*)+(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_]*))
    """,
    re.VERBOSE | re.DOTALL,
)


def _parts(chain: str) -> list[str]:
    parts = re.findall(r'"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_]*)', chain)
    return [q.replace('""', '"') if q else bare.lower() for q, bare in parts]


def pin_trino_sql(sql: str, pins: dict[str, int], contracts: ContractRegistry, catalog: str) -> str:
    """Rewrite references to pinned products into Trino time travel to their version tags."""
    if not pins:
        return sql
    targets = {(contracts.get(p).domain, contracts.get(p).id): v for p, v in pins.items()}
    found: set[tuple[str, str]] = set()

    def replace(match: re.Match[str]) -> str:
        chain = match.group("chain")
        if chain is None:
            return match.group(0)
        parts = _parts(chain)
        if len(parts) == 3 and parts[0] == catalog:
            parts = parts[1:]
        if len(parts) == 2 and (parts[0], parts[1]) in targets:
            key = (parts[0], parts[1])
            found.add(key)
            return f"{catalog}.{key[0]}.{key[1]} FOR VERSION AS OF 'v{targets[key]}'"
        return chain

    out = _TOKEN.sub(replace, sql)
    unused = sorted(f"{d}.{p}" for d, p in set(targets) - found)
    if unused:
        raise PinError(
            f"--pin names {', '.join(unused)}, but the query never refers to it as <domain>.<product> "
            "(Trino needs the domain, e.g. crm.customers). Qualify the table or drop the pin."
        )
    return out
