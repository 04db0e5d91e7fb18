"""What "nothing changed" means in integrity tests: a fingerprint of a whole lake.

``lake_fingerprint(mesh)`` records, for every product, its committed versions
with row counts and file checksums (from the records), and the table's head, plus the SHA-256 of
every object under the lake root (Iceberg metadata, records, the SQLite catalog, data, models). Two
equal fingerprints mean no byte of the lake changed.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pyarrow.fs as pafs


def lake_bytes(lake: Any) -> dict[str, str]:
    """SHA-256 of every object under the lake root, keyed by its path relative to the root."""
    out: dict[str, str] = {}
    infos = lake.fs.get_file_info(pafs.FileSelector(lake.root, allow_not_found=True, recursive=True))
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        with lake.fs.open_input_stream(info.path) as f:
            out[lake.relative(info.path)] = hashlib.sha256(f.read()).hexdigest()
    return out


def catalog_state(mesh: Any) -> dict[str, list[tuple[int, int, tuple[str, ...]]]]:
    """Per product: the table's head and tags, then (version, row count, file checksums) of every version."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    for contract in mesh.contracts:
        rows: list[tuple[Any, ...]] = []
        table = mesh.catalog.tables.state(contract)
        if table is not None:  # the catalog's pointer: which snapshot the table serves, and its tags
            rows.append(("head", table.metadata_location, table.head.snapshot_id if table.head else None,
                         tuple(sorted((v, r.snapshot_id) for v, r in table.versions.items()))))
        for version in mesh.catalog.versions(contract.id):
            try:
                m = mesh.catalog.manifest(contract.id, version)
            except Exception as exc:  # noqa: BLE001 - a broken manifest is part of the state
                rows.append((version, -1, (type(exc).__name__,)))
                continue
            rows.append((m.version, m.row_count, tuple(f.sha256 for f in m.files)))
        state[contract.id] = rows
    return state


def lake_fingerprint(mesh: Any) -> dict[str, Any]:
    """Everything an attack could change: catalog state and every byte of the lake."""
    return {"catalog": catalog_state(mesh), "bytes": lake_bytes(mesh.lake)}
