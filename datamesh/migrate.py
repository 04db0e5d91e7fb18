"""``mesh migrate``: products of a lake from before Iceberg become Iceberg tables, without rewriting data.

A product published before the Iceberg change has ``_manifests/<version>.json``
and a ``_latest.json`` pointer. Migration reads and validates every manifest
and checks its files (size, and SHA-256 when the modification time changed),
then commits the valid versions, oldest first and with their own version
numbers, as snapshots of a new table: each snapshot adds the version's
existing Parquet files in place (no copy, no rewrite) and the old manifest
becomes the version's side record unchanged. Invalid versions are skipped and
reported. The old manifests and pointer are moved to ``_legacy/`` (kept as
evidence; nothing reads them). Running it again does nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from datamesh.catalog import MAX_MANIFEST_BYTES, Catalog
from datamesh.contracts import Contract
from datamesh.errors import BrokenProductError, ConflictError, PublishError, TamperedError

_LEGACY_NAME = re.compile(r"([0-9]{8,})\.json")


@dataclass
class ProductMigration:
    product: str
    domain: str
    migrated: list[int] = field(default_factory=list)
    #: (version, why) of every legacy version that was not migrated.
    skipped: list[tuple[int, str]] = field(default_factory=list)
    note: str = ""
    moved: list[str] = field(default_factory=list)

    def lines(self, dry_run: bool) -> list[str]:
        name = f"{self.domain}.{self.product}"
        if self.note:
            return [f"{name}: {self.note}"]
        verb = "would add" if dry_run else "added"
        out = []
        if self.migrated:
            out.append(f"{name}: {verb} versions {', '.join(map(str, self.migrated))} to Iceberg table {name} "
                       "(files kept in place, none rewritten)")
        out += [f"{name}: skipped v{v}: {why}" for v, why in self.skipped]
        if self.moved:
            out.append(f"{name}: moved {len(self.moved)} old manifests and the pointer to _legacy/")
        return out


@dataclass
class MigrationReport:
    products: list[ProductMigration] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not any(p.skipped for p in self.products)

    def lines(self) -> list[str]:
        out = [line for p in self.products for line in p.lines(self.dry_run)]
        versions = sum(len(p.migrated) for p in self.products)
        skipped = sum(len(p.skipped) for p in self.products)
        verb = "would migrate" if self.dry_run else "migrated"
        out.append(f"{verb} {versions} versions of {sum(bool(p.migrated) for p in self.products)} products"
                   + (f"; {skipped} invalid versions skipped (see above)" if skipped else ""))
        return out


def migrate(catalog: Catalog, products: list[str] | None = None, *, dry_run: bool = False) -> MigrationReport:
    """Migrate every product (default: all) that still has legacy manifests; see the module docstring."""
    contracts = [catalog.contracts.get(p) for p in products] if products else list(catalog.contracts)
    report = MigrationReport(dry_run=dry_run)
    for contract in contracts:
        report.products.append(_migrate_product(catalog, contract, dry_run))
    return report


def _legacy_versions(catalog: Catalog, contract: Contract) -> dict[int, str]:
    out = {}
    for info in catalog.lake.list_dir(catalog.paths_for(contract).legacy_manifests):
        match = _LEGACY_NAME.fullmatch(info.base_name)
        if match and int(match.group(1)) >= 1:
            out[int(match.group(1))] = info.path
    return out


def _migrate_product(catalog: Catalog, contract: Contract, dry_run: bool) -> ProductMigration:
    from datamesh.publish import snapshot_properties

    result = ProductMigration(contract.id, contract.domain)
    lake = catalog.lake
    paths = catalog.paths_for(contract)
    legacy = _legacy_versions(catalog, contract)
    if not legacy and not lake.exists(paths.legacy_latest):
        result.note = "nothing to migrate"
        return result
    state = catalog.tables.state(contract)
    if state is not None and state.versions:
        result.note = (f"already an Iceberg table with versions {', '.join(map(str, sorted(state.versions)))}; "
                       "its old manifests were left where they are")
        return result
    if catalog.identity is not None and not dry_run:
        catalog.identity.authorize_publish(contract.id, contract.domain, action="migrate")
    valid = []
    for version, path in sorted(legacy.items()):
        raw = lake.read_head(path, MAX_MANIFEST_BYTES + 1)
        try:
            manifest = catalog.parse_manifest(contract, version, raw, path)
            catalog.verified_file_paths(manifest)
        except (BrokenProductError, TamperedError) as exc:
            result.skipped.append((version, str(exc).split(". That version is not served")[0]))
            continue
        valid.append((version, raw, manifest))
    result.migrated = [v for v, _, _ in valid]
    if dry_run:
        return result
    base: int | None = None
    for version, raw, manifest in valid:
        record = paths.record(manifest.run_id)
        try:
            lake.create_only(record, raw)
        except ConflictError:
            if lake.read_head(record, MAX_MANIFEST_BYTES + 1) != raw:
                raise PublishError(f"Product '{contract.id}': {lake.uri(record)} exists with other content; "
                                   "move it away and run `mesh migrate` again.") from None
        props = snapshot_properties(manifest, hashlib.sha256(raw).hexdigest(), catalog.identity)
        props["mesh.migrated-from"] = "legacy manifest"
        base, _ = catalog.tables.commit(contract, version, catalog.file_paths(manifest), props,
                                        base_snapshot_id=base)
    for _, path in sorted(legacy.items()):
        target = f"{paths.prefix}/_legacy/manifests/{path.rsplit('/', 1)[-1]}"
        lake.move_within(path, target, paths.prefix)
        result.moved.append(lake.uri(target))
    if lake.exists(paths.legacy_latest):
        lake.move_within(paths.legacy_latest, f"{paths.prefix}/_legacy/_latest.json", paths.prefix)
    return result
