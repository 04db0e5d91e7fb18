"""Provenance of a result: which run wrote it and which code it ran.

One run-id scheme and one code version for the whole platform: product
publishes and the model registry both use these, so a run id read in a
manifest or a model card means the same thing everywhere.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

from datamesh.paths import PROJECT_ROOT

__all__ = ["RUN_ID_PATTERN", "RUN_ID_TIME_FORMAT", "code_version", "new_run_id"]

RUN_ID_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
"""The UTC start time that opens every generated run id (retention parses it back)."""

RUN_ID_PATTERN: re.Pattern[str] = re.compile(r"^(?!.*\.\.)[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}\Z")
"""A valid run id, matched against the whole string.

Run ids become one directory name in the lake, so: letters, digits, ``_``,
``-`` and ``.``; at most 100 characters; no ``/`` and no ``..``. The first
character is a letter, digit or ``_``, so a run directory is never ``.``, never
looks like a hidden temporary file (``.<name>.tmp``) and never like an option.
"""

_UNKNOWN = "unknown"
_SHORT = 12


def new_run_id(orchestrator_run_id: str | None = None) -> str:
    """A fresh run id: the UTC start time and 8 random hex digits, e.g. ``20240131T120000Z-1a2b3c4d``.

    With ``orchestrator_run_id`` (e.g. Dagster's), its first 8 ASCII letters
    and digits are appended as a tag (``...-1a2b3c4d-6f1c2a3e``), so a
    directory can be traced to the run that wrote it. The id always starts
    with the time (the orphan sweep reads it back with :data:`RUN_ID_TIME_FORMAT`)
    and is unique per call, even for several writes within one orchestrator run.
    """
    run_id = datetime.now(UTC).strftime(RUN_ID_TIME_FORMAT) + "-" + uuid.uuid4().hex[:8]
    tag = "".join(ch for ch in (orchestrator_run_id or "") if ch.isascii() and ch.isalnum())[:8]
    return f"{run_id}-{tag}" if tag else run_id


def code_version(root: Path = PROJECT_ROOT) -> str:
    """The git commit of the code under ``root`` (first 12 hex digits), or ``"unknown"``.

    Reads ``.git`` directly (``HEAD``, the loose ref, then ``packed-refs``)
    instead of running git, so it works where git is not installed and costs
    no subprocess. A detached ``HEAD`` yields its commit. Uncommitted changes
    are not detected.
    """
    git = root / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:_SHORT] or _UNKNOWN
        ref = head.removeprefix("ref: ")
        loose = git / ref
        if loose.exists():
            return loose.read_text().strip()[:_SHORT] or _UNKNOWN
        packed = git / "packed-refs"
        for line in packed.read_text().splitlines() if packed.exists() else []:
            commit, _, name = line.partition(" ")
            if name.strip() == ref and not line.startswith(("#", "^")):
                return commit[:_SHORT]
    except OSError:
        pass
    return _UNKNOWN
