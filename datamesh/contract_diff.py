"""What changed between the contract a product was last published under and the current one.

Modelled on datacontract-cli's ``breaking`` / ``changelog``: every change is a
:class:`Change` with a kind, a path into the contract (``columns.price.type``),
a sentence, and whether it breaks consumers of the published version.

Breaking: a column removed or renamed; a required column added; a type
narrowed or changed incompatibly (only widening is compatible, as Iceberg's
schema evolution defines it: ``int32 → int64`` and a decimal's precision raised
with its scale kept, see :func:`datamesh.types.is_widening`; ``int → double``
changes the type); a column made required or unique, or
no longer required or unique (consumers relied on it); the primary key
changed; a blocking quality rule removed, loosened or changed so that the
direction cannot be told. Compatible: a column added, a rule added or
tightened, a warning-only rule changed. Information: descriptions, owner,
name, status, tags, SLAs, lineage, classifications.

Manifests written before contracts were stored in them have only the column
names and Arrow types (``schema_``); for them only columns are compared.
:func:`ensure_compatible` refuses breaking changes unless the contract's
major version was bumped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from datamesh.contracts import Contract, QualityRule, RuleType, Severity, SlaProperty, parse_contract
from datamesh.errors import BreakingChangeError, ContractError
from datamesh.types import SIMPLE_TYPES, ColumnType, is_widening


class ChangeKind(str, Enum):
    COLUMN_REMOVED = "column_removed"
    COLUMN_RENAMED = "column_renamed"
    COLUMN_ADDED = "column_added"
    TYPE_CHANGED = "type_changed"
    REQUIRED_CHANGED = "required_changed"
    UNIQUE_CHANGED = "unique_changed"
    PRIMARY_KEY_CHANGED = "primary_key_changed"
    RULE_REMOVED = "rule_removed"
    RULE_LOOSENED = "rule_loosened"
    RULE_CHANGED = "rule_changed"
    RULE_ADDED = "rule_added"
    RULE_TIGHTENED = "rule_tightened"
    DESCRIPTION_CHANGED = "description_changed"
    OWNER_CHANGED = "owner_changed"
    METADATA_CHANGED = "metadata_changed"


_INFO_KINDS = frozenset({ChangeKind.DESCRIPTION_CHANGED, ChangeKind.OWNER_CHANGED, ChangeKind.METADATA_CHANGED})


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    path: str
    text: str
    breaking: bool

    @property
    def level(self) -> str:
        """'breaking', 'compatible' or 'info'."""
        if self.breaking:
            return "breaking"
        return "info" if self.kind in _INFO_KINDS else "compatible"


@dataclass(frozen=True)
class ContractDiff:
    """The changes from the published contract to the current one."""

    product: str
    published_version: str | None
    current_version: str
    changes: tuple[Change, ...]
    columns_only: bool = False

    @property
    def breaking(self) -> bool:
        return any(c.breaking for c in self.changes)

    @property
    def breaking_changes(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]

    @property
    def blocking(self) -> bool:
        """Breaking changes without a major version bump: the next publish would be refused."""
        return self.breaking and not self.major_bumped

    @property
    def major_bumped(self) -> bool:
        if self.published_version is None:
            return True
        return major_version(self.current_version) > major_version(self.published_version)

    def lines(self) -> list[str]:
        """Plain-text lines for the CLI: a summary, then one line per change."""
        old = self.published_version or "unknown"
        head = f"{self.product}: published contract {old} → current {self.current_version}"
        if not self.changes:
            return [f"{head}: no changes"]
        n_breaking = len(self.breaking_changes)
        out = [f"{head}: {len(self.changes)} change{'s' if len(self.changes) != 1 else ''}, {n_breaking} breaking"]
        if self.columns_only:
            out.append("  (the published version recorded only its columns; only columns were compared)")
        width = max(len(c.level) for c in self.changes)
        out += [f"  {c.level:<{width}}  {c.path}: {c.text}" for c in self.changes]
        if self.blocking:
            out.append(f"  {_bump_advice(self)}")
        return out


_SEMVER = re.compile(r"(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})")


def major_version(version: str) -> int:
    match = _SEMVER.fullmatch(version)
    if not match:
        raise ContractError(f"Contract version {version!r} is not semantic (MAJOR.MINOR.PATCH).")
    return int(match.group(1))


def _bump_advice(diff: ContractDiff) -> str:
    old = diff.published_version or diff.current_version
    return (f"Bump the contract's major version (e.g. {old} → {major_version(old) + 1}.0.0) "
            "or revert the breaking changes.")


def published_doc(manifest: Any) -> dict[str, Any]:
    """The contract document of a manifest; for old manifests, its version and columns only."""
    doc = getattr(manifest, "contract_doc", None)
    if doc:
        return dict(doc)
    return {"version": getattr(manifest, "contract_version", None), "schema_": list(getattr(manifest, "schema_", ()))}


# -- comparison ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Col:
    name: str
    type: str
    required: bool | None = None
    unique: bool | None = None
    description: str | None = None
    classification: str | None = None


#: Arrow type names of legacy manifests (``schema_``) → contract type names; those manifests predate decimals.
_ARROW_TO_TYPE = {str(t.arrow): t.value for t in SIMPLE_TYPES}


def _widens(old: str, new: str) -> bool:
    """``old → new`` (contract type names; a legacy manifest's may be any Arrow name) is a widening."""
    try:
        return is_widening(ColumnType.parse(old), ColumnType.parse(new))
    except ValueError:
        return False


def diff_contracts(published: Mapping[str, Any], current: Contract) -> ContractDiff:
    """Compare the published contract document (``Manifest.contract_doc`` or a legacy one) with ``current``."""
    version = published.get("version")
    old_version = str(version) if version else None
    if not published or (not published.get("columns") and not published.get("schema_")):
        return ContractDiff(current.id, old_version, current.version, ())
    old: Contract | None = None
    if published.get("columns"):
        try:
            old = parse_contract(dict(published), Path(f"<contract {old_version} of published {current.id}>"))
        except ContractError:
            old = None  # a document this code no longer reads: compare what every version has, its columns
    if old is None:
        old_cols = _legacy_columns(published.get("schema_") or published.get("columns") or [])
        changes = _diff_columns(old_cols, _columns(current), full=False)
        return ContractDiff(current.id, old_version, current.version, tuple(changes), columns_only=True)
    changes = _diff_columns(_columns(old), _columns(current), full=True)
    changes += _diff_primary_key(old, current)
    changes += _diff_rules(old, current)
    changes += _diff_metadata(old, current)
    return ContractDiff(current.id, old.version, current.version, tuple(changes))


def diff_published(manifest: Any, current: Contract) -> ContractDiff:
    """Compare ``current`` with the contract a manifest was published under (see :func:`published_doc`)."""
    return diff_contracts(published_doc(manifest), current)


def semantic_version(version: str) -> tuple[int, int, int]:
    match = _SEMVER.fullmatch(version)
    if not match:
        raise ContractError(f"Contract version {version!r} is not semantic (MAJOR.MINOR.PATCH).")
    return (int(match.group(1)), int(match.group(2)), int(match.group(3)))


def ensure_compatible(published_doc: Mapping[str, Any], current: Contract) -> ContractDiff:
    """The diff, or :class:`BreakingChangeError` if it breaks consumers and the major version was not bumped.

    A contract's version never goes down: a downgrade to 0.x followed by a
    "major" bump to 1.0.0 would otherwise slip a breaking change through under
    the number consumers already know.
    """
    diff = diff_contracts(published_doc, current)
    if diff.published_version is not None and (
            semantic_version(current.version) < semantic_version(diff.published_version)):
        where = current.source_path or current.id
        raise BreakingChangeError(
            f"Product '{current.id}': contract {where} has version {current.version}, lower than "
            f"{diff.published_version}, the version the last publish used. Contract versions only go up: "
            "patch for descriptions, minor for compatible changes, major for breaking ones "
            "(`mesh contract diff` shows which)."
        )
    if diff.blocking:
        listed = "\n".join(f"  - {c.path}: {c.text}" for c in diff.breaking_changes)
        where = current.source_path or current.id
        raise BreakingChangeError(
            f"Product '{current.id}': contract {where} (version {current.version}) breaks consumers of the "
            f"version published under contract {diff.published_version}:\n{listed}\n{_bump_advice(diff)}"
        )
    return diff


def _columns(contract: Contract) -> list[_Col]:
    return [_Col(c.name, c.type.value, c.required, c.unique, c.description, c.classification.value)
            for c in contract.columns]


def _legacy_columns(schema: Sequence[Any]) -> list[_Col]:
    out = []
    for entry in schema:
        if isinstance(entry, Mapping) and "name" in entry:
            raw = str(entry.get("type", ""))
            out.append(_Col(str(entry["name"]), _ARROW_TO_TYPE.get(raw, raw)))
    return out


def _diff_columns(old: list[_Col], new: list[_Col], *, full: bool) -> list[Change]:
    changes: list[Change] = []
    new_by_name = {c.name: c for c in new}
    old_names = {c.name for c in old}
    removed = [c for c in old if c.name not in new_by_name]
    added = [c for c in new if c.name not in old_names]
    renamed: dict[str, _Col] = {}
    for col in removed:
        # Same slot and same type: most likely a rename (reported once, not as removed + added).
        slot = old.index(col)
        if slot < len(new) and new[slot] in added and new[slot].type == col.type and new[slot] not in renamed.values():
            renamed[col.name] = new[slot]
    for col in removed:
        if col.name in renamed:
            to = renamed[col.name]
            changes.append(Change(ChangeKind.COLUMN_RENAMED, f"columns.{col.name}",
                                  f"column '{col.name}' was renamed to '{to.name}' (or removed, with "
                                  f"'{to.name}' added in its place); consumers reading '{col.name}' break", True))
        else:
            changes.append(Change(ChangeKind.COLUMN_REMOVED, f"columns.{col.name}",
                                  f"column '{col.name}' ({col.type}) was removed", True))
    renamed_to = {c.name for c in renamed.values()}
    for col in added:
        if col.name in renamed_to:
            continue
        if col.required:
            changes.append(Change(ChangeKind.COLUMN_ADDED, f"columns.{col.name}",
                                  f"required column '{col.name}' ({col.type}) was added: data shaped like the "
                                  "published version does not have it", True))
        else:
            changes.append(Change(ChangeKind.COLUMN_ADDED, f"columns.{col.name}",
                                  f"column '{col.name}' ({col.type}) was added", False))
    for before in old:
        after = new_by_name.get(before.name)
        if after is None:
            continue
        changes += _diff_column(before, after, full=full)
    return changes


def _diff_column(before: _Col, after: _Col, *, full: bool) -> list[Change]:
    path = f"columns.{before.name}"
    out: list[Change] = []
    if before.type != after.type:
        if _widens(before.type, after.type):
            out.append(Change(ChangeKind.TYPE_CHANGED, f"{path}.type",
                              f"column '{before.name}' widened {before.type} → {after.type}", False))
        else:
            how = "narrowed" if _widens(after.type, before.type) else "changed incompatibly"
            out.append(Change(ChangeKind.TYPE_CHANGED, f"{path}.type",
                              f"column '{before.name}' type {how}: {before.type} → {after.type}", True))
    if not full:
        return out
    if before.required != after.required:
        text = (f"column '{before.name}' is now required (no nulls): data valid under the published contract "
                "may be refused" if after.required else
                f"column '{before.name}' is no longer required: consumers relied on it having no nulls")
        out.append(Change(ChangeKind.REQUIRED_CHANGED, f"{path}.required", text, True))
    if before.unique != after.unique:
        text = (f"column '{before.name}' is now unique: data valid under the published contract may be refused"
                if after.unique else f"column '{before.name}' is no longer unique: consumers relied on unique values")
        out.append(Change(ChangeKind.UNIQUE_CHANGED, f"{path}.unique", text, True))
    if before.description != after.description:
        out.append(Change(ChangeKind.DESCRIPTION_CHANGED, f"{path}.description",
                          f"description of column '{before.name}' changed", False))
    if before.classification != after.classification:
        out.append(Change(ChangeKind.METADATA_CHANGED, f"{path}.classification",
                          f"classification of column '{before.name}' changed {before.classification} → "
                          f"{after.classification}", False))
    return out


def _diff_primary_key(old: Contract, new: Contract) -> list[Change]:
    if old.primary_key == new.primary_key:
        return []
    def show(pk: tuple[str, ...]) -> str:
        return f"({', '.join(pk)})" if pk else "(none)"
    return [Change(ChangeKind.PRIMARY_KEY_CHANGED, "primaryKey",
                   f"primary key changed {show(old.primary_key)} → {show(new.primary_key)}: joins and "
                   "de-duplication on the old key break", True)]


# -- rules ----------------------------------------------------------------------------------------


def _declared_rules(contract: Contract) -> dict[str, QualityRule]:
    """Rules written in the contract (column rules with their column), by key; not the derived ones."""
    rules = [r.model_copy(update={"column": c.name}) for c in contract.columns for r in c.quality]
    rules += list(contract.quality)
    return {r.key: r for r in rules}


def _rule_path(rule: QualityRule) -> str:
    return f"columns.{rule.column}.quality.{rule.key}" if rule.column and not rule.columns else f"quality.{rule.key}"


def _diff_rules(old: Contract, new: Contract) -> list[Change]:
    old_rules, new_rules = _declared_rules(old), _declared_rules(new)
    new_columns = set(new.column_names)
    out: list[Change] = []
    for key, rule in old_rules.items():
        if rule.column and rule.column not in new_columns:
            continue  # reported as the column's removal
        blocking = rule.severity is Severity.ERROR
        after = new_rules.get(key)
        if after is None:
            text = (f"rule '{key}' ({rule.expectation()}) was removed"
                    + (": it blocked bad data, consumers relied on it" if blocking else " (it only warned)"))
            out.append(Change(ChangeKind.RULE_REMOVED, _rule_path(rule), text, blocking))
            continue
        direction, details = _compare_rule(rule, after)
        if direction == "same":
            continue
        if direction == "looser":
            out.append(Change(ChangeKind.RULE_LOOSENED, _rule_path(rule),
                              f"rule '{key}' was loosened: {details}", blocking))
        elif direction == "tighter":
            out.append(Change(ChangeKind.RULE_TIGHTENED, _rule_path(rule),
                              f"rule '{key}' was tightened: {details} (consumers get a stronger guarantee; "
                              "data valid before may now be refused)", False))
        else:
            out.append(Change(ChangeKind.RULE_CHANGED, _rule_path(rule),
                              f"rule '{key}' changed: {details}; it cannot be told whether it is looser", blocking))
    for key, rule in new_rules.items():
        if key not in old_rules:
            out.append(Change(ChangeKind.RULE_ADDED, _rule_path(rule),
                              f"rule '{key}' was added ({rule.expectation()}); data valid before may now be refused",
                              False))
    return out


_Bound = tuple[float, bool]  # (value, inclusive)


def _lower_looser(old: _Bound, new: _Bound) -> int:
    """1 if the new lower bound admits more than the old, -1 if less, 0 if the same."""
    if new[0] != old[0]:
        return 1 if new[0] < old[0] else -1
    return 0 if new[1] == old[1] else (1 if new[1] else -1)


def _upper_looser(old: _Bound, new: _Bound) -> int:
    if new[0] != old[0]:
        return 1 if new[0] > old[0] else -1
    return 0 if new[1] == old[1] else (1 if new[1] else -1)


def _interval(rule: QualityRule) -> tuple[_Bound, _Bound]:
    """The accepted values of a rule's observed number as (lower, upper) bounds."""
    lo: _Bound = (-math.inf, True)
    hi: _Bound = (math.inf, True)
    if rule.rule in (RuleType.ROW_COUNT, RuleType.RANGE):
        if rule.min is not None:
            lo = (rule.min, True)
        if rule.max is not None:
            hi = (rule.max, True)
        return lo, hi
    if rule.must_be is not None:
        lo = hi = (rule.must_be, True)
    if rule.must_be_between is not None:
        lo, hi = (rule.must_be_between[0], True), (rule.must_be_between[1], True)
    if rule.must_be_greater_than is not None:
        lo = max(lo, (rule.must_be_greater_than, False), key=lambda b: (b[0], not b[1]))
    if rule.must_be_less_than is not None:
        hi = min(hi, (rule.must_be_less_than, False), key=lambda b: (b[0], b[1]))
    return lo, hi


def _compare_rule(old: QualityRule, new: QualityRule) -> tuple[str, str]:
    """('same' | 'looser' | 'tighter' | 'changed', what differs)."""
    if old.rule is not new.rule:
        return "changed", f"{old.rule.value} → {new.rule.value}"
    if (old.columns or ()) != (new.columns or ()):
        return "changed", f"columns ({', '.join(old.columns or ())}) → ({', '.join(new.columns or ())})"
    if (old.query or "").split() != (new.query or "").split():
        return "changed", "its query changed"
    votes: list[int] = []
    details: list[str] = []
    if old.severity is not new.severity:
        votes.append(1 if new.severity is Severity.WARNING else -1)
        details.append(f"severity {old.severity.value} → {new.severity.value}")
    if old.rule is RuleType.ACCEPTED_VALUES:
        before, after = set(old.values or ()), set(new.values or ())
        if before != after:
            gained, lost = sorted(map(str, after - before)), sorted(map(str, before - after))
            if gained:
                votes.append(1)
                details.append(f"now also accepts {', '.join(gained)}")
            if lost:
                votes.append(-1)
                details.append(f"no longer accepts {', '.join(lost)}")
    if old.rule in (RuleType.ROW_COUNT, RuleType.RANGE, RuleType.SQL):
        (olo, ohi), (nlo, nhi) = _interval(old), _interval(new)
        lower, upper = _lower_looser(olo, nlo), _upper_looser(ohi, nhi)
        if lower or upper:
            votes += [v for v in (lower, upper) if v]
            details.append(f"{old.expectation()} → {new.expectation()}")
    if not votes:
        return "same", ""
    if any(v > 0 for v in votes):
        return "looser", "; ".join(details)
    return "tighter", "; ".join(details)


# -- information --------------------------------------------------------------------------------


def _diff_metadata(old: Contract, new: Contract) -> list[Change]:
    out: list[Change] = []

    def info(kind: ChangeKind, path: str, before: object, after: object, what: str) -> None:
        if before != after:
            out.append(Change(kind, path, f"{what} changed: {_short(before)} → {_short(after)}", False))

    info(ChangeKind.METADATA_CHANGED, "name", old.name, new.name, "name")
    info(ChangeKind.METADATA_CHANGED, "status", old.status.value, new.status.value, "status")
    for field in ("purpose", "grain", "usage", "limitations"):
        info(ChangeKind.DESCRIPTION_CHANGED, f"description.{field}", getattr(old.description, field),
             getattr(new.description, field), f"description {field}")
    info(ChangeKind.OWNER_CHANGED, "owner.team", old.owner.team, new.owner.team, "owner team")
    info(ChangeKind.OWNER_CHANGED, "owner.contact", old.owner.contact, new.owner.contact, "owner contact")
    info(ChangeKind.METADATA_CHANGED, "tags", list(old.tags), list(new.tags), "tags")
    info(ChangeKind.METADATA_CHANGED, "lineage.inputs", list(old.lineage.inputs), list(new.lineage.inputs),
         "lineage inputs")
    sla = {s.property: _sla_text(s) for s in old.sla_properties}
    sla_new = {s.property: _sla_text(s) for s in new.sla_properties}
    for prop in sorted(set(sla) | set(sla_new)):
        info(ChangeKind.METADATA_CHANGED, f"slaProperties.{prop}", sla.get(prop, "none"), sla_new.get(prop, "none"),
             f"SLA {prop}")
    if old.ml != new.ml:
        out.append(Change(ChangeKind.METADATA_CHANGED, "ml", "ml section changed", False))
    return out


def _sla_text(sla: SlaProperty) -> str:
    """``2s``, or ``500ms (error)`` when the service level names a severity."""
    return f"{sla.value:g}{sla.unit}" + (f" ({sla.severity.value})" if sla.severity is not None else "")


def _short(value: object, limit: int = 50) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
