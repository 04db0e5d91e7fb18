"""A small code location for the daemon test: the real ML assets and automation, built from
the contracts in MESH_CONTRACTS_DIR (a user's labelled product) instead of the demo's."""

from __future__ import annotations

import dagster as dg

from datamesh.contracts import ContractRegistry
from datamesh.settings import get_settings
from orchestration.assets.ml import build_ml_assets, build_ml_checks
from orchestration.products import spec_for
from orchestration.resources import MeshResource
from orchestration.schedules import build_automation

contracts = ContractRegistry.from_dir(get_settings().contracts_dir)
jobs, schedules, sensors = build_automation(contracts, running=True)  # the daemon test needs the sensors on
defs = dg.Definitions(
    assets=[spec_for(contracts.get("leads"), deps=[], computed_by="python"), *build_ml_assets(contracts)],
    asset_checks=build_ml_checks(contracts),
    jobs=jobs,
    schedules=schedules,
    sensors=sensors,
    resources={"mesh": MeshResource()},
)
