"""Trino's file-based access control and group file, rendered from the policy.

:func:`render_trino` returns the two files Trino reads (``access-control.name=file``
and ``group-provider.name=file`` in ``stack/trino/etc``), by name:

``trino-rules.json``
    Trino's rules (https://trino.io/docs/476/security/file-system-access-control.html):
    in each section the first rule matching the user (and its groups) wins,
    and nothing matching means denied. Every section is written out, because
    an absent section means "allow all". Trino refuses unknown keys, so this
    file carries no "generated" marker; the group file does.
``trino-groups.txt``
    ``group: user,user`` lines: one ``role_<role>`` group per policy role,
    ``role_reader_pii`` for readers whose group has ``pii: true``, and the
    governance file's own groups (informational; the rules use ``role_*`` only).

What the rules say, in order of evaluation:

* ``role_platform`` (the registrar service user and the platform admins) may do
  everything: create, replace, alter and drop schemas, tables and views, write
  rows, run procedures and table procedures, see and kill every query, read
  system information, set any session property.
* Everyone else reads only: catalogs ``lake`` and ``system`` read-only;
  ``system.jdbc``, ``system.metadata`` and ``system.runtime.queries`` (which
  Trino filters down to the user's own queries; only the platform may view or
  kill others'); ``information_schema`` (Trino filters it to what the user may
  see). No other ``system.runtime`` table, no procedure, no catalog function
  (built-in functions need no rule), no impersonation, no authorization change.
* Per product, ``SELECT`` only, for exactly the principals
  :meth:`Policy.trino_readable` lists: every reader the active products,
  publishers their own domains' products and their declared inputs, the engine
  everything. A reader for whom :meth:`Policy.sees_pii` is false gets the
  product's PII columns masked (strings ``'****'``, other types ``NULL`` of the
  column's type) and, of the Iceberg metadata tables, only those without column
  values (``$snapshots``, ``$refs``, ``$history``, ``$properties``,
  ``$metadata_log_entries``; ``$files``, ``$partitions`` and ``$entries`` carry
  per-column lower and upper bounds, i.e. PII). Everyone else reads the table,
  its pinned versions (``FOR VERSION AS OF``) and every metadata table.
* Trino 476's file-based access control allows every table procedure
  (``ALTER TABLE ... EXECUTE optimize``, ``expire_snapshots``,
  ``remove_orphan_files``, ``add_files``...) to anyone who can see the table:
  it has no rule section for them. But Trino refuses ``ALTER TABLE EXECUTE`` on
  a table with a row filter, so every non-platform table rule carries the
  always-true filter ``true``: it changes no result and denies table procedures.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from datamesh.errors import PolicyError
from datamesh.policy import Policy, PolicyRole, Principal, ProductAccess
from datamesh.types import ColumnType

__all__ = [
    "GROUPS_FILE",
    "MASKED_METADATA_TABLES",
    "READER_SESSION_PROPERTIES",
    "RULES_FILE",
    "column_mask",
    "render_trino",
    "role_group",
    "trino_groups",
    "trino_rules",
]

RULES_FILE = "trino-rules.json"
GROUPS_FILE = "trino-groups.txt"
PII_GROUP = "role_reader_pii"

#: Iceberg metadata tables without column values: what a reader with masked PII may still query.
MASKED_METADATA_TABLES: tuple[str, ...] = ("history", "metadata_log_entries", "properties", "refs", "snapshots")

#: System session properties anyone may set: tuning of their own queries (see stack/trino/etc/config.properties).
READER_SESSION_PROPERTIES: tuple[str, ...] = ("enable_dynamic_filtering", "query_max_execution_time",
                                              "query_max_run_time")

ALL_TABLE_PRIVILEGES = ["SELECT", "INSERT", "DELETE", "UPDATE", "OWNERSHIP", "GRANT_SELECT"]
#: Always true: no row is filtered, but Trino refuses table procedures on a table with a row filter.
NO_TABLE_PROCEDURES_FILTER = "true"

_MARKER = ("# Generated from the contracts and governance/governance.yaml by datamesh.policy.trino "
           "(mesh policy render). Do not edit.")


def role_group(role: PolicyRole) -> str:
    """The Trino group of every principal with ``role``: ``role_platform``, ``role_reader``..."""
    return f"role_{role.value}"


def column_mask(column_type: str) -> str:
    """The SQL that replaces a PII column of ``column_type`` (a contract type): same type, no value."""
    trino_type = ColumnType.parse(column_type).trino
    return "CAST('****' AS varchar)" if trino_type == "varchar" else f"CAST(NULL AS {trino_type})"


# -- groups --------------------------------------------------------------------------------------------------


def trino_groups(policy: Policy) -> dict[str, tuple[str, ...]]:
    """Group -> sorted members, for the group file (role groups first, then the governance groups)."""
    groups: dict[str, tuple[str, ...]] = {}
    for role in PolicyRole:
        groups[role_group(role)] = tuple(sorted(policy.names(role=role)))
    groups[PII_GROUP] = tuple(sorted(p.name for p in policy.principals if p.role is PolicyRole.READER and p.pii))
    for group, members in sorted(policy.groups.items()):
        if group in groups or group.startswith("role_"):
            raise PolicyError(
                f"{policy.source or 'the governance file'}: group name '{group}' is reserved: names starting with "
                "'role_' are the policy's own Trino groups. Rename the group."
            )
        groups[group] = tuple(sorted(members))
    return groups


def _render_groups(policy: Policy) -> str:
    lines = [_MARKER]
    # Trino's group file cannot express an empty group; such a group simply has no line.
    lines += [f"{group}: {','.join(members)}" for group, members in trino_groups(policy).items() if members]
    return "\n".join(lines) + "\n"


# -- rules ---------------------------------------------------------------------------------------------------


def _exactly(names: Iterable[str]) -> str:
    """A regex matching exactly ``names`` (Trino matches whole names; anchored anyway for readers)."""
    ordered = sorted(set(names))
    inner = "|".join(re.escape(n) for n in ordered)
    return f"^{inner}$" if len(ordered) == 1 else f"^({inner})$"


def _group(role: PolicyRole) -> str:
    return _exactly([role_group(role)])


def _product_rules(policy: Policy, product: ProductAccess, catalog: str) -> list[dict[str, Any]]:
    """The rules of one product: who reads it unmasked, who masked, in first-match order."""
    # The engine identity is Trino's own way into S3 and the catalog: it has no Trino login and no rule.
    readers = [p for p in policy.principals
               if p.role not in (PolicyRole.PLATFORM, PolicyRole.ENGINE) and product in policy.trino_readable(p)]
    full = [p for p in readers if not product.pii_columns or policy.sees_pii(p, product)]
    masked = [p for p in readers if p not in full]
    where = {"catalog": _exactly([catalog]), "schema": _exactly([product.domain])}
    table = re.escape(product.product)

    all_readers = set(policy.names(role=PolicyRole.READER))
    pii_readers = {p.name for p in policy.principals if p.role is PolicyRole.READER and p.pii}
    matched: set[str] = set()  # readers an earlier rule of this product already matched (first match wins)

    def subjects(principals: list[Principal]) -> list[dict[str, str]]:
        """Who a rule is for: non-readers by name; readers as a group when the group (less the readers matched
        by an earlier rule) is exactly them, else by name."""
        out: list[dict[str, str]] = []
        named = [p.name for p in principals if p.role is not PolicyRole.READER]
        if named:
            out.append({"user": _exactly(named)})
        people = {p.name for p in principals if p.role is PolicyRole.READER}
        if people and people | matched == all_readers:
            out.append({"group": _exactly([role_group(PolicyRole.READER)])})
        elif people and people == pii_readers:
            out.append({"group": _exactly([PII_GROUP])})
        elif people:
            out.append({"user": _exactly(people)})
        matched.update(people)
        return out

    rules: list[dict[str, Any]] = []
    for subject in subjects(full):
        rules.append({**subject, **where, "table": f"^{table}(\\$.*)?$", "privileges": ["SELECT"],
                      "filter": NO_TABLE_PROCEDURES_FILTER})
    masks = [{"name": column, "mask": column_mask(column_type)} for column, column_type in product.pii_columns]
    for subject in subjects(masked):
        rules.append({**subject, **where, "table": f"^{table}$", "privileges": ["SELECT"], "columns": masks,
                      "filter": NO_TABLE_PROCEDURES_FILTER})
        rules.append({**subject, **where, "table": f"^{table}\\$({'|'.join(MASKED_METADATA_TABLES)})$",
                      "privileges": ["SELECT"], "filter": NO_TABLE_PROCEDURES_FILTER})
    return rules


def trino_rules(policy: Policy, catalog: str = "lake") -> dict[str, Any]:
    """Trino's access rules as a JSON-ready structure (see the module docstring for what they say)."""
    platform = _group(PolicyRole.PLATFORM)
    platform_users = policy.names(role=PolicyRole.PLATFORM)
    if not platform_users:
        raise PolicyError("The policy has no platform identity; Trino would have no one to administer it.")
    tables: list[dict[str, Any]] = [
        {"group": platform, "privileges": ALL_TABLE_PRIVILEGES},
        {"catalog": "^system$", "schema": "^(jdbc|metadata)$", "privileges": ["SELECT"]},
        {"catalog": "^system$", "schema": "^runtime$", "table": "^queries$", "privileges": ["SELECT"]},
    ]
    for product in sorted(policy.products, key=lambda a: (a.domain, a.product)):
        tables += _product_rules(policy, product, catalog)
    # Last: any other table of the catalog matches a rule with no privilege and a row filter, because Trino 476
    # checks table procedures (ALTER TABLE ... EXECUTE) only through row filters.
    tables.append({"catalog": _exactly([catalog]), "privileges": [], "filter": NO_TABLE_PROCEDURES_FILTER})
    return {
        "catalogs": [
            {"group": platform, "allow": "all"},
            {"catalog": _exactly([catalog, "system"]), "allow": "read-only"},
        ],
        "schemas": [
            {"group": platform, "owner": True},
            {"owner": False},
        ],
        "tables": tables,
        "functions": [
            {"group": platform, "privileges": ["EXECUTE", "GRANT_EXECUTE", "OWNERSHIP"]},
        ],
        "procedures": [
            {"group": platform, "privileges": ["EXECUTE", "GRANT_EXECUTE"]},
        ],
        "queries": [
            {"group": platform, "allow": ["execute", "kill", "view"]},
            {"allow": ["execute"]},
        ],
        # This section matches users and roles only (no groups).
        "system_information": [
            {"user": _exactly(platform_users), "allow": ["read", "write"]},
        ],
        "impersonation": [],
        "authorization": [],
        "system_session_properties": [
            {"group": platform, "allow": True},
            {"property": _exactly(READER_SESSION_PROPERTIES), "allow": True},
        ],
        "catalog_session_properties": [
            {"group": platform, "allow": True},
        ],
    }


def render_trino(policy: Policy, catalog: str = "lake") -> dict[str, str]:
    """The generated Trino files by name (:data:`RULES_FILE`, :data:`GROUPS_FILE`), deterministic."""
    return {RULES_FILE: _render_rules(trino_rules(policy, catalog)), GROUPS_FILE: _render_groups(policy)}


def _render_rules(rules: dict[str, Any]) -> str:
    """JSON with one rule per line: a change to the policy is a one-line diff of the committed file."""
    sections = []
    for name, section in rules.items():
        body = ",\n".join(f"    {json.dumps(rule)}" for rule in section)
        sections.append(f'  {json.dumps(name)}: [\n{body}\n  ]' if section else f"  {json.dumps(name)}: []")
    text = "{\n" + ",\n".join(sections) + "\n}\n"
    assert json.loads(text) == rules
    return text
