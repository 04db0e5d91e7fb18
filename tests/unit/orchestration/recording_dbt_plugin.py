"""A dbt-duckdb plugin that records each start (its config and the invocation's target folder), for the in-process dbt tests."""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from datamesh.dbt_plugin import invocation_target_path

STARTS: list[dict[str, Any]] = []


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        STARTS.append({"config": dict(plugin_config), "target_path": invocation_target_path()})
