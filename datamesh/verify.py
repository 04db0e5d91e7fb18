"""Integrity of committed products: verify every version, repair a broken product.

:func:`verify` checks every committed version of each product in full: the
pointer, each manifest's validity, and every file's size and SHA-256 (always
hashed, whatever the modification time says). Reading is all it does.

:func:`repair` makes a product servable again after its pointer or some of
its manifests were corrupted or its files tampered with: every invalid
manifest (and every version whose files no longer match) is *moved* to the
product's ``_quarantine/`` folder, never deleted, and the latest pointer is
rewritten to the newest valid version, or removed when none is left. It
touches nothing outside ``products/<domain>/<product>/``. Run it while no
publish of that product is running.

Data of a quarantined version stays in ``data/<run_id>/`` but no manifest
refers to it any more, so the next retention run's orphan sweep removes it
(after the grace period); copy it away first if it is needed as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from datamesh.catalog import (
    MAX_MANIFEST_BYTES,
    MAX_POINTER_BYTES,
    Catalog,
    Manifest,
    manifest_version,
    parse_pointer,
    pointer_bytes,
)
from datamesh.contracts import Contract
from datamesh.errors import BrokenProductError, ConflictError, StorageError, TamperedError


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
    problems: list[str] = field(default_factory=list)  # product-level: the pointer

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
                out.append(f"{name}: run `mesh repair {p.product}` to quarantine what is broken and reset its pointer")
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
    report = VerifyReport()
    for contract in contracts:
        report.products.append(_verify_product(catalog, contract))
    return report


def _verify_product(catalog: Catalog, contract: Contract) -> ProductCheck:
    check = ProductCheck(contract.id, contract.domain)
    pointer: tuple[int, str] | None = None
    try:
        pointer = catalog.read_pointer(contract.id)
    except BrokenProductError as exc:
        check.problems.append(_reason(exc))
    manifests: dict[int, Manifest] = {}
    for version in catalog.versions(contract.id):
        result = VersionCheck(version)
        try:
            manifest = catalog.manifest(contract.id, version)
        except BrokenProductError as exc:
            result.problems.append(_reason(exc))
        else:
            manifests[version] = manifest
            result.files, result.bytes = len(manifest.files), manifest.size_bytes
            result.problems += file_problems(catalog, manifest, full_hash=True)
        check.versions.append(result)
    if pointer is not None:
        latest_uri = catalog.lake.uri(catalog.paths_for(contract).latest)
        committed = [v.version for v in check.versions]
        if pointer[0] not in committed and not any(v > pointer[0] for v in committed):
            check.problems.append(f"{latest_uri} names version {pointer[0]}, which has no manifest "
                                  f"(committed versions: {', '.join(map(str, committed)) or 'none'})")
        elif pointer[0] in manifests and manifests[pointer[0]].run_id != pointer[1]:
            check.problems.append(f"{latest_uri} names run {pointer[1]!r} for version {pointer[0]}, but that "
                                  f"version's manifest says {manifests[pointer[0]].run_id!r}")
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
    #: (original lake URI, quarantine lake URI, why) for every file moved aside.
    quarantined: list[tuple[str, str, str]] = field(default_factory=list)
    pointer_before: int | None = None
    pointer_after: int | None = None
    pointer_changed: bool = False
    valid_versions: list[int] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.quarantined) or self.pointer_changed

    def lines(self) -> list[str]:
        name = f"{self.domain}.{self.product}"
        out = [f"quarantined {src} -> {dst}: {why}" for src, dst, why in self.quarantined]
        if self.pointer_changed:
            before = "unreadable" if self.pointer_before is None else f"v{self.pointer_before}"
            after = "removed (no valid version left)" if self.pointer_after is None else f"v{self.pointer_after}"
            out.append(f"{name}: latest pointer {before} -> {after}")
        if not self.changed:
            out.append(f"{name}: nothing to repair")
        out.append(f"{name}: valid versions {', '.join(map(str, self.valid_versions)) or 'none'}; served: "
                   + (f"v{self.pointer_after}" if self.pointer_after is not None else "nothing"))
        return out


def repair(catalog: Catalog, product: str, *, check_files: bool = True) -> RepairReport:
    """Quarantine invalid manifests of ``product`` and reset its pointer to the newest valid version.

    With ``check_files`` (default), a version whose files are missing or
    differ from its manifest (size, or SHA-256 when the modification time
    changed) is quarantined too, so the product is served again. Only
    TamperedError / BrokenProductError count as damage: an unreachable store
    raises StorageError and nothing is changed.
    """
    contract = catalog.contracts.get(product)
    if catalog.identity is not None:
        catalog.identity.authorize_publish(contract.id, contract.domain, action="repair")
    paths = catalog.paths_for(contract)
    lake = catalog.lake
    report = RepairReport(contract.id, contract.domain)
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
    for info in lake.list_dir(paths.manifests):
        version = manifest_version(info.base_name)
        if version is None:
            continue  # temp files of an interrupted commit, or foreign files: not manifests
        try:
            raw = lake.read_head(info.path, MAX_MANIFEST_BYTES + 1)
        except FileNotFoundError:
            continue  # removed meanwhile (retention)
        try:
            manifest = catalog.parse_manifest(contract, version, raw)
            if check_files:
                problems = file_problems(catalog, manifest, full_hash=False)
                if problems:
                    raise TamperedError("; ".join(problems))
        except (BrokenProductError, TamperedError) as exc:
            quarantine(info.path, _reason(exc))
            continue
        valid[version] = manifest
    report.valid_versions = sorted(valid)

    pointer_raw: bytes | None
    try:
        pointer_raw = lake.read_head(paths.latest, MAX_POINTER_BYTES + 1)
    except FileNotFoundError:
        pointer_raw = None
    pointer: tuple[int, str] | None = None
    if pointer_raw is not None:
        try:
            pointer = parse_pointer(pointer_raw) if len(pointer_raw) <= MAX_POINTER_BYTES else None
        except ValueError:
            pointer = None
        report.pointer_before = pointer[0] if pointer else None
    newest = max(valid) if valid else None
    wanted = pointer_bytes(newest, valid[newest].run_id) if newest is not None else None
    report.pointer_after = newest
    if pointer_raw is None and wanted is None:
        return report
    if pointer_raw != wanted:
        report.pointer_changed = True
        if pointer is None and pointer_raw is not None:
            quarantine(paths.latest, "not a valid latest pointer")  # keep the corrupt bytes as evidence
        if wanted is None:
            lake.delete_file_within(paths.latest, paths.prefix)
        else:
            lake.check_within(paths.latest, paths.prefix, action="rewrite")
            lake.replace(paths.latest, wanted)
    return report


def _reason(exc: Exception) -> str:
    """The 'what is wrong' part of a catalog error, without its repair advice."""
    text = str(exc)
    for marker in (". That version is not served", ". The product is not served", ". The version is refused"):
        text = text.split(marker, 1)[0]
    return text
