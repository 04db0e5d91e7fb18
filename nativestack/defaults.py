"""Defaults of the native stack and the environment variables that override them.

The variables are read when a function is called, never at import:

``MESH_STACK_CACHE``  artifacts cache (default ``~/.cache/datamesh/stack``)
``MESH_STACK_HOME``   state: pids, logs, credentials, S3 data
                      (default ``~/.local/state/datamesh/stack``)
``MESH_JAVA_HOME``    JDK for Trino (default ``/usr/lib/jvm/temurin-25-jdk-amd64``)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "DEFAULT_BUCKET",
    "DEFAULT_JAVA_HOME",
    "DEFAULT_POSTGRES_PORT",
    "DEFAULT_REGION",
    "DEFAULT_S3_PORT",
    "DEFAULT_TRINO_PORT",
    "ENV_CACHE",
    "ENV_HOME",
    "ENV_JAVA_HOME",
    "HOST",
    "STACK_DIR",
    "Echo",
    "default_cache_dir",
    "default_home",
    "default_java_home",
    "print_progress",
]

ENV_CACHE = "MESH_STACK_CACHE"
ENV_HOME = "MESH_STACK_HOME"
ENV_JAVA_HOME = "MESH_JAVA_HOME"

STACK_DIR: Path = Path(__file__).resolve().parents[1] / "stack"
"""The project's ``stack/`` folder beside this package: ``pins.toml`` and ``trino/etc``."""

DEFAULT_JAVA_HOME = Path("/usr/lib/jvm/temurin-25-jdk-amd64")
DEFAULT_S3_PORT = 9070
DEFAULT_TRINO_PORT = 8085
DEFAULT_POSTGRES_PORT = 5439
DEFAULT_BUCKET = "lake"
DEFAULT_REGION = "us-east-1"
HOST = "127.0.0.1"
"""Every service binds to the loopback interface only."""

Echo = Callable[[str], None]
"""Where progress messages go."""


def print_progress(message: str) -> None:
    """The default :data:`Echo`: one line on standard output, flushed."""
    print(message, flush=True)


def default_cache_dir() -> Path:
    """The artifacts cache: ``$MESH_STACK_CACHE`` or ``~/.cache/datamesh/stack``."""
    value = os.environ.get(ENV_CACHE)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "datamesh" / "stack"


def default_home() -> Path:
    """The state directory: ``$MESH_STACK_HOME`` or ``~/.local/state/datamesh/stack``."""
    value = os.environ.get(ENV_HOME)
    return Path(value).expanduser() if value else Path.home() / ".local" / "state" / "datamesh" / "stack"


def default_java_home() -> Path:
    """The JDK for Trino: ``$MESH_JAVA_HOME`` or the machine's Temurin 25."""
    value = os.environ.get(ENV_JAVA_HOME)
    return Path(value).expanduser() if value else DEFAULT_JAVA_HOME
