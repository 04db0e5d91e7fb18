"""The Dagster code location: everything is derived from data_products/ and sql/."""

from __future__ import annotations

import warnings
from functools import partial

import dagster as dg

from datamesh.settings import get_settings
from orchestration.loader import build_definitions_parts, load_contracts, with_freshness
from orchestration.progress import progress_logger
from orchestration.resources import MeshResource, dbt_resource
from orchestration.schedules import build_automation

# One process per run, not one per step: a step's own work (a 2 s scoring, a publish) would otherwise
# wait 10-25 s for a fresh interpreter to load this code location again, and the steps are mostly a
# chain over one lake, so the multiprocess executor's parallelism bought little. Dagster's default
# executor with its default turned round: `execution: {config: {multiprocess: {}}}` still selects it.
one_process_per_run = dg.ExecutorDefinition(
    name="in_process_or_multiprocess",
    config_schema=dg.Field(dg.multi_or_in_process_executor.config_schema.config_type, default_value={"in_process": {}}),
    executor_creation_fn=dg.multi_or_in_process_executor.executor_creation_fn,
    requirements=lambda config: dg.multiple_process_executor_requirements() if "multiprocess" in config else [],
    description="One process per run (in_process, the default) or one per step (multiprocess).",
)

contracts = load_contracts()
assets, asset_checks = build_definitions_parts(contracts)
# Cross-cutting policy lives here: automation is OFF on a developer machine; operators switch it on
# with MESH_AUTOMATION=true (docker-compose does), or turn single schedules on in the UI.
jobs, schedules, sensors = build_automation(contracts, running=get_settings().automation)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)  # map_resolved_asset_specs is marked preview
    defs = dg.Definitions(
        assets=assets,
        asset_checks=asset_checks,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources={"mesh": MeshResource(), "dbt": dbt_resource()},
        executor=one_process_per_run,
        # Dagster's console logger as usual, and step progress for `mesh demo`'s terminal (idle elsewhere).
        loggers={"console": dg.colored_console_logger, "progress": progress_logger},
    ).map_resolved_asset_specs(func=partial(with_freshness, contracts))
