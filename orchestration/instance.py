"""The persistent Dagster instance shared by the demo, the UI and the daemon on a developer machine."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

from datamesh.paths import PROJECT_ROOT

#: ``make ui`` and ``make demo`` use this folder as DAGSTER_HOME (git-ignored).
DEFAULT_DAGSTER_HOME = PROJECT_ROOT / ".dagster_home"
_TEMPLATE = Path(__file__).with_name("dagster.yaml")


def dagster_home(explicit: Path | str | None = None) -> Path:
    """The instance folder: ``explicit``, else ``$DAGSTER_HOME`` (Dagster's own variable, read when called),
    else ``.dagster_home`` in the project: the demo, its log and ``mesh ui`` all use the same one."""
    return Path(explicit or os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).resolve()


#: Where the template names the event log's folder (Dagster's own layout: ``<home>/history/runs``).
EVENT_LOG_MARKER = '"@EVENT_LOG_DIR@"'


def instance_config(home: Path) -> str:
    """The committed ``orchestration/dagster.yaml`` for the instance in ``home`` (its event log folder filled in)."""
    template = _TEMPLATE.read_text(encoding="utf-8")
    # A JSON string is a YAML string: any character of the path stays part of the value.
    return template.replace(EVENT_LOG_MARKER, json.dumps(str(Path(home).resolve() / "history" / "runs")))


def persistent_instance(home: Path = DEFAULT_DAGSTER_HOME) -> dg.DagsterInstance:
    """The instance in ``home``, created from the committed ``orchestration/dagster.yaml`` on first use.

    An instance folder made before the event log storage was named keeps its own
    ``dagster.yaml`` (Dagster's default event log, slower): delete the file to
    have it written again.
    """
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        staged = config.with_name(f".dagster.yaml.{os.getpid()}")
        staged.write_text(instance_config(home), encoding="utf-8")
        os.replace(staged, config)
    return dg.DagsterInstance.from_config(str(home))
