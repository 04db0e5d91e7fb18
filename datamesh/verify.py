"""Integrity of committed products: verify every version, repair a broken product.

:func:`verify` checks every published version of each product in full: the
table's head, each tagged snapshot against its side record, and every file's
size and SHA-256 (always hashed, whatever the modification time says).
Reading is all it does.

:func:`repair` makes a product servable again after its table was written to
directly (another engine's INSERT or DELETE), a record was corrupted or files
were tampered with: the tag of every invalid version is removed, its record
is *moved* to the product's ``_quarantine/`` folder (never deleted), and the
table's main branch is pointed back at the newest valid version. It touches
nothing outside its own table and ``products/<domain>/<product>/``. Run it
while no publish of that product is running.

Data of a quarantined version stays in ``data/<run_id>/`` but no retained
snapshot refers to it any more, so the next retention run's expiry and
orphan sweep remove it; copy it away first if it is needed as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from datamesh.catalog import Catalog, Manifest, run_id_problem
from datamesh.contracts import Contract
from datamesh.errors import BrokenProductError, ConflictError, HostileTableError, StorageError, TamperedError
from datamesh.tables import PROP_RUN_ID


@dataclass
class VersionCheck:
    """The verdict on one committed version."""

    version: int
    files: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class ProductCheck:
    """The verdict on one product: its pointer and each of its versions."""

    product: str
    domain: str
    versions: list[VersionCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # product-level: the table's head

    @property
    def ok(self) -> bool:
        return not self.problems and all(v.ok for v in self.versions)


@dataclass
class VerifyReport:
    """What :func:`verify` found, per product and version."""

    products: list[ProductCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.products)

    @property
    def problems(self) -> list[str]:
        """Every problem as one line naming product and version."""
        out = []
        for p in self.products:
            out += [f"{p.domain}.{p.product}: {problem}" for problem in p.problems]
            for v in p.versions:
                out += [f"{p.domain}.{p.product} v{v.version}: {problem}" for problem in v.problems]
        return out

    def lines(self) -> list[str]:
        """Plain text (no markup), one line per product and version, then a summary."""
        out: list[str] = []
        for p in self.products:
            name = f"{p.domain}.{p.product}"
            if not p.versions and not p.problems:
                out.append(f"{name}: no published version")
            for problem in p.problems:
                out.append(f"{name}: BROKEN {problem}")
            for v in p.versions:
                if v.ok:
                    out.append(f"{name} v{v.version}: ok ({v.files} files, {v.bytes:,} bytes)")
                else:
                    out += [f"{name} v{v.version}: BROKEN {problem}" for problem in v.problems]
            if not p.ok:
                out.append(f"{name}: run `mesh repair {p.product}` to untag what is broken and point the table back at the newest valid version")
        versions = sum(len(p.versions) for p in self.products)
        bad = sum(not v.ok for p in self.products for v in p.versions) + sum(bool(p.problems) for p in self.products)
        out.append(f"verified {versions} versions of {len(self.products)} products: "
                   + ("all ok" if self.ok else f"{bad} problems"))
        return out


def verify(catalog: Catalog, products: list[str] | None = None) -> VerifyReport:
    """Check every committed version of each product (default: all): manifest, sizes and full SHA-256.

    Unknown product ids raise UnknownProductError; an unreachable store
    raises StorageError. Damage is reported, never raised.
    """
    contracts = [catalog.contracts.get(p) for p in products] if products else list(catalog.contracts)
    catalog.forget_verified()  # verify re-reads everything, whatever this process read before
    report = VerifyReport()
    for contract in contracts:
        report.products.append(_verify_product(catalog, contract))
    return report


def _verify_product(catalog: Catalog, contract: Contract) -> ProductCheck:
    check = ProductCheck(contract.id, contract.domain)
    try:
        state = catalog.table_state(contract.id)
    except BrokenProductError as exc:
        check.problems.append(_reason(exc))
        return check
    if state is None:
        return check
    if state.head_problem:
        check.problems.append(f"table {contract.domain}.{contract.id} {state.head_problem}")
    for version in sorted(state.versions):
        result = VersionCheck(version)
        try:
            manifest = catalog.manifest(contract.id, version)
        except BrokenProductError as exc:
            result.problems.append(_reason(exc))
        else:
            result.files, result.bytes = len(manifest.files), manifest.size_bytes
            result.problems += file_problems(catalog, manifest, full_hash=True)
        check.versions.append(result)
    return check


def file_problems(catalog: Catalog, manifest: Manifest, *, full_hash: bool) -> list[str]:
    """One line per committed file that is missing or differs from its manifest entry."""
    paths = catalog.file_paths(manifest)
    problems = []
    for entry, path, info in zip(manifest.files, paths, catalog.lake.file_infos(paths), strict=True):
        problem = catalog.file_problem(entry, path, info, full_hash=full_hash)
        if problem:
            problems.append(f"file {catalog.lake.uri(path)} {problem}")
    return problems


# -- repair ---------------------------------------------------------------------------------


@dataclass
class RepairReport:
    """What :func:`repair` changed in one product."""

    product: str
    domain: str
    #: (original lake URI, quarantine lake URI, why) for every record moved aside.
    quarantined: list[tuple[str, str, str]] = field(default_factory=list)
    #: Versions whose tags were removed, with why.
    untagged: list[tuple[int, str]] = field(default_factory=list)
    #: The version the table served before and after (None: no valid version / unreadable head).
    head_before: int | None = None
    head_after: int | None = None
    head_changed: bool = False
    valid_versions: list[int] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.quarantined) or bool(self.untagged) or self.head_changed

    def lines(self) -> list[str]:
        name = f"{self.domain}.{self.product}"
        out = [f"{name}: untagged v{version}: {why}" for version, why in self.untagged]
        out += [f"quarantined {src} -> {dst}: {why}" for src, dst, why in self.quarantined]
        if self.head_changed:
            before = "not a published version" if self.head_before is None else f"v{self.head_before}"
            after = "no snapshot (no valid version left)" if self.head_after is None else f"v{self.head_after}"
            out.append(f"{name}: table head {before} -> {after}")
        if not self.changed:
            out.append(f"{name}: nothing to repair")
        out.append(f"{name}: valid versions {', '.join(map(str, self.valid_versions)) or 'none'}; served: "
                   + (f"v{self.head_after}" if self.head_after is not None else "nothing"))
        return out


def repair(catalog: Catalog, product: str, *, check_files: bool = True) -> RepairReport:
    """Untag invalid versions of ``product``, quarantine their records, point the table at the newest valid one.

    With ``check_files`` (default), a version whose files are missing or
    differ from its record (size, or SHA-256 when the modification time
    changed) counts as invalid too, so the product is served again. Only
    TamperedError / BrokenProductError count as damage: an unreachable store
    raises StorageError and nothing is changed.
    """
    contract = catalog.contracts.get(product)
    if catalog.identity is not None:
        catalog.identity.authorize_publish(contract.id, contract.domain, action="repair")
    paths = catalog.paths_for(contract)
    lake = catalog.lake
    report = RepairReport(contract.id, contract.domain)
    state = catalog.table_state(contract.id)
    if state is None:
        return report
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")

    def quarantine(src: str, why: str) -> None:
        name = src.rsplit("/", 1)[-1]
        dst = f"{paths.quarantine}/{stamp}-{name}"
        for attempt in range(1, 100):
            try:
                lake.move_within(src, dst, paths.prefix)
                break
            except ConflictError:
                dst = f"{paths.quarantine}/{stamp}-{attempt}-{name}"
        else:  # pragma: no cover - a hundred repairs within the same microsecond
            raise StorageError(f"Could not find a free quarantine name for {lake.uri(src)} in {paths.quarantine}.")
        report.quarantined.append((lake.uri(src), lake.uri(dst), why))

    valid: dict[int, Manifest] = {}
    invalid: dict[int, str] = {}
    for version, ref in sorted(state.versions.items()):
        try:
            manifest = catalog.record(contract, state, ref)
            if check_files:
                problems = file_problems(catalog, manifest, full_hash=False)
                if problems:
                    raise TamperedError("; ".join(problems))
        except HostileTableError:
            raise  # never commit on top of metadata that points elsewhere
        except (BrokenProductError, TamperedError) as exc:
            invalid[version] = _reason(exc)
            continue
        valid[version] = manifest
    report.valid_versions = sorted(valid)
    report.head_before = None if state.head_problem or state.head is None else state.head.version
    newest = max(valid) if valid else None
    report.head_after = newest
    if invalid:
        catalog.tables.remove_tags(contract, invalid)
        report.untagged = sorted(invalid.items())
        used = {m.run_id for m in valid.values()}
        for version, why in sorted(invalid.items()):
            summary = state.versions[version].summary
            run_id = summary.get(PROP_RUN_ID, "")
            if not run_id or run_id in used or run_id_problem(run_id):
                continue  # never move a record a valid version still uses
            record = paths.record(run_id)
            if lake.exists(record):
                quarantine(record, why)
    if report.head_before != newest or state.head_problem:
        report.head_changed = True
        if newest is None:
            catalog.tables.clear_head(contract)
        else:
            catalog.tables.set_head(contract, valid[newest].snapshot_id or state.versions[newest].snapshot_id)
    return report


def _reason(exc: Exception) -> str:
    """The 'what is wrong' part of a catalog error, without its repair advice."""
    text = str(exc)
    for marker in (". That version is not served", ". The product is not served", ". The version is refused"):
        text = text.split(marker, 1)[0]
    return text
