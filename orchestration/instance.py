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
    return template.replace(EVENT_LOG_MARKER, json.dumps(event_log_dir(home), ensure_ascii=False))


def event_log_dir(home: Path) -> str:
    """Dagster's own place for an instance's event log: ``<home>/history/runs``."""
    return str(Path(home).resolve() / "history" / "runs")


def _written_for_another_home(config: Path, home: Path) -> bool:
    """The instance file names this project's event log class, but another folder's event log (the instance
    folder was moved or copied): its events would go to the old folder."""
    import yaml

    try:
        raw = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False  # not ours to judge: Dagster reports a broken file itself
    storage = raw.get("event_log_storage") if isinstance(raw, dict) else None
    if not isinstance(storage, dict) or storage.get("module") != "orchestration.event_log":
        return False
    base_dir = (storage.get("config") or {}).get("base_dir")
    return base_dir != event_log_dir(home)


def persistent_instance(home: Path = DEFAULT_DAGSTER_HOME) -> dg.DagsterInstance:
    """The instance in ``home``, created from the committed ``orchestration/dagster.yaml`` on first use.

    An instance folder made before the event log storage was named keeps its own
    ``dagster.yaml`` (Dagster's default event log, slower): delete the file to
    have it written again. One written for another folder (moved or copied) is
    written again for this one.
    """
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or _written_for_another_home(config, home):
        staged = config.with_name(f".dagster.yaml.{os.getpid()}")
        staged.write_text(instance_config(home), encoding="utf-8")
        os.replace(staged, config)
    return dg.DagsterInstance.from_config(str(home))
