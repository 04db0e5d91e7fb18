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
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin
from dbt.adapters.duckdb.utils import TargetConfig
from duckdb import DuckDBPyConnection

from datamesh.duckdb_engine import configure_s3, read_parquet_sql
from datamesh.errors import VersionNotFoundError
from datamesh.names import quote_ident
from datamesh.platform import Mesh
from datamesh.publish import Publisher

log = logging.getLogger(__name__)

#: Environment variable holding the Dagster/CLI run id to record in manifests.
RUN_ID_ENV = "MESH_RUN_ID"
#: Where external marts are staged before publish (see macros/mesh_staging_location.sql).
STAGING_ENV = "MESH_DBT_STAGING_DIR"
STAGING_DEFAULT = "target/mesh_staging"


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self.mesh = Mesh.from_settings()
        self.versions: dict[str, int] = {}
        Path(os.environ.get(STAGING_ENV, STAGING_DEFAULT)).mkdir(parents=True, exist_ok=True)

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        if self.mesh.lake.is_s3:
            configure_s3(conn, self.mesh.lake)
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
            relation = read_parquet_sql(catalog.file_uris(manifest))
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
        with Publisher(self.mesh.catalog, contract, inputs=inputs, metadata=metadata,
                       run_id=os.environ.get(RUN_ID_ENV) or None) as pub:
            pub.add_file(location.path)
            manifest = pub.commit()
        log.info("published %s version %s (%s rows)", product, manifest.version, manifest.row_count)
        self.versions[product] = manifest.version
