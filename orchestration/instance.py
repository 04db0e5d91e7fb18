"""The persistent Dagster instance shared by the demo, the UI and the daemon on a developer machine."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg

from datamesh.paths import PROJECT_ROOT

#: ``make ui`` and ``make demo`` use this folder as DAGSTER_HOME (git-ignored).
DEFAULT_DAGSTER_HOME = PROJECT_ROOT / ".dagster_home"
_TEMPLATE = Path(__file__).with_name("dagster.yaml")


def persistent_instance(home: Path = DEFAULT_DAGSTER_HOME) -> dg.DagsterInstance:
    """The instance in ``home``, created from the committed ``orchestration/dagster.yaml`` on first use."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        shutil.copyfile(_TEMPLATE, config)
    return dg.DagsterInstance.from_config(str(home))
