"""``python -m nativestack up|down|status|fetch|env``: the native stack from a shell."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from datamesh.errors import StackError
from nativestack.artifacts import fetch
from nativestack.defaults import (
    DEFAULT_BUCKET,
    DEFAULT_POSTGRES_PORT,
    DEFAULT_S3_PORT,
    DEFAULT_TRINO_PORT,
    ENV_CACHE,
    ENV_HOME,
)
from nativestack.identities import public_env
from nativestack.lifecycle import endpoints, start, status, stop

PROG = "python -m nativestack"


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--home",
        type=Path,
        default=None,
        help=f"state directory (default ${ENV_HOME} or ~/.local/state/datamesh/stack)",
    )
    common.add_argument(
        "--cache", type=Path, default=None, help=f"artifacts cache (default ${ENV_CACHE} or ~/.cache/datamesh/stack)"
    )
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run the native stack (S3 server, PostgreSQL for the Iceberg catalog, Trino) as background processes.",
        epilog=f"Example: {PROG} up --workers 1 && {PROG} status",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", parents=[common], help="fetch if needed, start and wait until healthy")
    up.add_argument("--workers", type=int, default=0, help="Trino workers besides the coordinator (default 0)")
    up.add_argument("--s3-port", type=int, default=DEFAULT_S3_PORT, help=f"default {DEFAULT_S3_PORT}")
    up.add_argument(
        "--postgres-port",
        type=int,
        default=DEFAULT_POSTGRES_PORT,
        help=f"PostgreSQL of the Iceberg catalog (default {DEFAULT_POSTGRES_PORT})",
    )
    up.add_argument(
        "--trino-port",
        type=int,
        default=DEFAULT_TRINO_PORT,
        help=f"default {DEFAULT_TRINO_PORT}; workers use the next ports",
    )
    up.add_argument("--bucket", default=DEFAULT_BUCKET, help=f"lake bucket to create (default {DEFAULT_BUCKET})")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for health (default 180)")
    commands.add_parser("down", parents=[common], help="stop all services (data is kept)")
    commands.add_parser(
        "status", parents=[common], help="show services, pids, health and logs (exit 3 if not all healthy)"
    )
    commands.add_parser("fetch", parents=[common], help="download/build the pinned artifacts into the cache")
    env = commands.add_parser(
        "env",
        parents=[common],
        help=f'print MESH_* exports for the stack, no secrets (they stay in its private credentials file): '
        f'eval "$({PROG} env --as analyst)"',
    )
    env.add_argument("--as", dest="actor", default="platform", help="MESH_ACTOR: platform (default), analyst, "
                     "publisher:<domain>")
    creds = commands.add_parser(
        "credentials",
        parents=[common],
        help="print one identity's secrets as exports (S3 keys, catalog URI, Trino password); for handing to a "
        "tool that cannot read the credentials file",
    )
    who = creds.add_mutually_exclusive_group(required=True)
    who.add_argument("--as", dest="actor", help="MESH_ACTOR of a service user: platform, analyst, publisher:<domain>")
    who.add_argument("--person", help="a person of the governance file (their Trino login)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m nativestack``; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "up":
            lake = start(
                args.workers,
                home=args.home,
                cache_dir=args.cache,
                s3_port=args.s3_port,
                trino_port=args.trino_port,
                postgres_port=args.postgres_port,
                bucket=args.bucket,
                timeout=args.timeout,
            )
            print(f"S3:    {lake.s3_endpoint} (bucket {lake.bucket}, region {lake.region})")
            print(f"Trino: {lake.trino_url} (catalog {lake.trino_catalog}; Iceberg tables in catalog iceberg)")
            print(
                f"Iceberg catalog: PostgreSQL {lake.catalog_host}:{lake.catalog_port}, database "
                f"{lake.catalog_database}, user {lake.catalog_user} (password: see env)"
            )
            print(f'Client settings: eval "$({PROG} env)"')
        elif args.command == "down":
            stop(args.home)
        elif args.command == "status":
            report = status(args.home)
            print(report.describe())
            return 0 if report.running else 3
        elif args.command == "fetch":
            fetch(args.cache)
        elif args.command == "env":
            for key, value in public_env(endpoints(args.home), args.actor).items():
                print(f"export {key}={shlex.quote(value)}")
        elif args.command == "credentials":
            ep = endpoints(args.home)
            if args.person:
                secrets = ep.principals.get(args.person)
                if secrets is None or secrets.s3_secret_key:
                    raise StackError(f"No person '{args.person}' in this stack's policy.")
                values = {"TRINO_USER": args.person, "TRINO_PASSWORD": secrets.trino_password}
            else:
                values = ep.as_settings_env(args.actor)
            print("# secrets follow: do not paste them into logs or tickets", file=sys.stderr)
            for key, value in values.items():
                print(f"export {key}={shlex.quote(value)}")
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
