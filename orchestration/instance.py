"""The persistent Dagster instance shared by the demo, the UI and the daemon on a developer machine."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg

from datamesh.paths import PROJECT_ROOT

#: ``make ui`` and ``make demo`` use this folder as DAGSTER_HOME (git-ignored).
DEFAULT_DAGSTER_HOME = PROJECT_ROOT / ".dagster_home"
_TEMPLATE = Path(__file__).with_name("dagster.yaml")


def dagster_home(explicit: Path | str | None = None) -> Path:
    """The instance folder: ``explicit``, else ``$DAGSTER_HOME`` (Dagster's own variable, read when called),
    else ``.dagster_home`` in the project: the demo, its log and ``mesh ui`` all use the same one."""
    import os

    return Path(explicit or os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).resolve()


def persistent_instance(home: Path = DEFAULT_DAGSTER_HOME) -> dg.DagsterInstance:
    """The instance in ``home``, created from the committed ``orchestration/dagster.yaml`` on first use."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        shutil.copyfile(_TEMPLATE, config)
    return dg.DagsterInstance.from_config(str(home))
