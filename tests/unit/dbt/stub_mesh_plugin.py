"""A stand-in for the `mesh` dbt-duckdb plugin, for testing the dbt project alone.

Like the real plugin (datamesh/dbt_plugin.py) it creates one view
``<domain>.<product>`` per source product on every connection, here over
Parquet files in a plain folder ``<lake_dir>/<domain>/<product>/*.parquet``;
``store`` only records the staged file instead of publishing it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin
from dbt.adapters.duckdb.utils import TargetConfig
from duckdb import DuckDBPyConnection

from datamesh.names import quote_ident, sql_string

STORED: list[str] = []


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self.lake_dir = Path(plugin_config["lake_dir"])

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        for product_dir in sorted(self.lake_dir.glob("*/*")):
            domain, product = product_dir.parent.name, product_dir.name
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(domain)}")
            conn.execute(
                f"CREATE OR REPLACE VIEW {quote_ident(domain)}.{quote_ident(product)} AS "
                f"SELECT * FROM read_parquet({sql_string(str(product_dir / '*.parquet'))})"
            )

    def store(self, target_config: TargetConfig) -> None:
        assert target_config.location is not None
        STORED.append(target_config.location.path)
