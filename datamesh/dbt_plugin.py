"""dbt-duckdb plugin: products in, products out, through the platform.

* ``configure_connection``: on every dbt connection, one schema per domain and
  one view ``<domain>.<product>`` over the exact files of each product's
  current version (schema-on-read; nothing is copied).
* ``store``: an ``external`` model with ``plugin='mesh'`` wrote its Parquet
  to a staging location; the plugin publishes that file as the product of the
  same name through the atomic publish (contract checked, manifest committed),
  so dbt never writes to a product's final location and ``dbt build`` works on
  its own.

Configured in ``sql/profiles.yml``::

    plugins:
      - module: datamesh.dbt_plugin
        alias: mesh

The run context file is ``mesh_context.json`` in this invocation's target
folder (dbt's ``--target-path`` or ``$DBT_TARGET_PATH``; ``target/`` when dbt
runs with its default), found at run time rather than
rendered into the profile: a profile that named each run's folder would differ
on every run, and dbt re-parses the whole project when its profile changes.
A ``context_file`` in the plugin's ``config`` overrides the location.

The plugin is an edge: it builds its settings once, from the ``MESH_*``
environment dbt runs in, overridden by the run's context file when an
orchestrator wrote one into dbt's target folder (lake, contracts, acting
identity and the orchestrator's run id). A plain ``dbt build`` has no context
file and uses the environment alone.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin
from dbt.adapters.duckdb.utils import TargetConfig
from duckdb import DuckDBPyConnection

from datamesh.dbt_sources import CONTEXT_FILE
from datamesh.duckdb_engine import configure_s3, load_iceberg
from datamesh.errors import PlatformError, SettingsError, VersionNotFoundError
from datamesh.names import quote_ident
from datamesh.platform import Mesh
from datamesh.publish import Publisher
from datamesh.settings import build_settings

log = logging.getLogger(__name__)

_CONTEXT_KEYS = ("lake_url", "contracts_dir", "actor", "run_id")
#: Where external marts are staged before publish (dbt's own setting, read by
#: macros/mesh_staging_location.sql through env_var as well).
STAGING_ENV = "MESH_DBT_STAGING_DIR"
STAGING_DEFAULT = "target/mesh_staging"


def context_file(plugin_config: dict[str, Any], target_path: str | None = None) -> str:
    """Where this dbt invocation's run context is: the plugin config's ``context_file``, else dbt's target folder
    (``target_path``, else ``$DBT_TARGET_PATH``, else ``target``)."""
    folder = target_path or os.environ.get("DBT_TARGET_PATH") or "target"
    return str(plugin_config.get("context_file") or Path(folder) / CONTEXT_FILE)


def invocation_target_path() -> str | None:
    """The target folder of the dbt invocation now running (its ``--target-path`` or ``$DBT_TARGET_PATH``).

    Read from dbt's flags, not the environment: a dbt run inside an orchestrator's
    own process (decision 0042) has its target folder as a flag only.
    """
    from dbt.flags import get_flags

    value = getattr(get_flags(), "TARGET_PATH", None)
    return str(value) if value else None


def read_context(path: str | None) -> dict[str, str]:
    """The orchestrator's run context ({} when there is none); a malformed file is a clear error."""
    if not path or not Path(path).is_file():
        return {}
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"dbt run context {path} is unreadable ({exc}); delete it and re-run.") from None
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str | None) for k in _CONTEXT_KEYS):
        raise SettingsError(f"dbt run context {path} is malformed: expected string values for {_CONTEXT_KEYS}.")
    return {k: raw[k] for k in _CONTEXT_KEYS if raw.get(k)}


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        try:
            settings = build_settings(**read_context(context_file(plugin_config, invocation_target_path())))
            self.mesh = Mesh.from_settings(settings)
        except PlatformError as exc:
            raise RuntimeError(f"mesh dbt plugin: {exc}") from None
        self.versions: dict[str, int] = {}
        Path(os.environ.get(STAGING_ENV, STAGING_DEFAULT)).mkdir(parents=True, exist_ok=True)

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        if self.mesh.lake.is_s3:
            configure_s3(conn, self.mesh.lake)
        load_iceberg(conn)
        catalog = self.mesh.catalog
        for domain in self.mesh.contracts.domains:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(domain)}")
        for contract in self.mesh.contracts:
            try:
                manifest = catalog.manifest(contract.id, self.versions.get(contract.id))
            except VersionNotFoundError:
                continue
            # Pin the version for the whole dbt invocation: every connection sees the same one.
            self.versions[contract.id] = manifest.version
            relation = catalog.verified_scan(manifest)
            conn.execute(
                f"CREATE OR REPLACE VIEW {quote_ident(contract.domain)}.{quote_ident(contract.id)} "
                f"AS SELECT * FROM {relation}"
            )

    def store(self, target_config: TargetConfig) -> None:
        product = target_config.relation.identifier
        contract = self.mesh.contract(product)
        location = target_config.location
        if location is None:
            raise ValueError(f"dbt model '{product}' has no external location to publish from.")
        inputs = {p: self.versions[p] for p in contract.lineage.inputs if p in self.versions}
        metadata = {"producer": "dbt", "dbt_model": product}
        with Publisher(self.mesh.catalog, contract, inputs=inputs, metadata=metadata) as pub:
            pub.add_file(location.path)
            manifest = pub.commit()
        log.info("published %s version %s (%s rows)", product, manifest.version, manifest.row_count)
        self.versions[product] = manifest.version
