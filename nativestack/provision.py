"""One-shot provisioning of a docker-compose stack's secrets: ``python -m nativestack.provision --out /secrets``.

docker-compose's ``provision`` service runs this once per ``docker compose up``
(no network, before anything else starts). It generates every principal's
secrets of the access policy (``datamesh.policy``) the first time and keeps
them afterwards (``nativestack.credentials``), and prepares Trino's security
files exactly as the native stack does (``nativestack.trino_security``: the
stack's CA and a server certificate also valid for the service name ``trino``,
every login's PBKDF2 hash, the internal shared secret). Then it writes, for each consumer, only what that consumer needs, each into a
folder of its own (compose mounts each folder, as a volume of its own,
read-only into exactly one service):

=============  ===============================================================
``state/``     the generated secrets, the CA key, the native layout of
               ``credentials.json``, ``tls/`` and ``trino-security/``: only
               this job reads them
``trino/``     keystore (``trino.pem``), ``ca.pem``, the PASSWORD file of every
               Trino login, and ``trino.env``: the engine identity's read-only
               S3 key and catalog password, the internal shared secret
``platform/``  ``identities.json`` (``MESH_CREDENTIALS_FILE`` of the Dagster
               services: each ``MESH_ACTOR``'s S3 keys, catalog URI and Trino
               login) and ``ca.pem``
``minio/``     ``users``: one ``<access key> <secret key>`` line per service user
``catalog/``   ``passwords.sql``: each catalog role's password as a SCRAM
               verifier (the password itself never reaches PostgreSQL)
=============  ===============================================================

Every file is private (mode 0600, folders 0700) except the CA certificate.
Nothing secret is printed; ``ca`` prints the (public) CA certificate and
``password NAME`` one login's Trino password, on explicit request only::

    docker compose run --rm provision ca --out /secrets > mesh-ca.pem
    docker compose run --rm provision password alice --out /secrets
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from datamesh.errors import PlatformError, StackError
from datamesh.policy import Policy
from datamesh.policy.storage import BUCKET
from nativestack.credentials import (
    PrincipalSecrets,
    load_or_create_principal_secrets,
    load_principal_secrets,
    write_atomic,
)
from nativestack.layout import Layout

__all__ = [
    "CATALOG_DIR",
    "MINIO_DIR",
    "PLATFORM_DIR",
    "STATE_DIR",
    "TRINO_DIR",
    "TRINO_ENV_VARIABLES",
    "ComposeNames",
    "Provisioned",
    "actors",
    "main",
    "provision",
]

PROG = "python -m nativestack.provision"

STATE_DIR = "state"
TRINO_DIR = "trino"
PLATFORM_DIR = "platform"
MINIO_DIR = "minio"
CATALOG_DIR = "catalog"

CA_FILE = "ca.pem"
TRINO_KEYSTORE_FILE = "trino.pem"
TRINO_PASSWORD_FILE = "password.db"
TRINO_ENV_FILE = "trino.env"
IDENTITIES_FILE = "identities.json"
MINIO_USERS_FILE = "users"
CATALOG_PASSWORDS_FILE = "passwords.sql"

#: The ``${ENV:...}`` variables of ``stack/trino/etc`` that ``trino.env`` sets (secrets, and the engine's
#: principal name, which comes from the policy); the compose file sets every other one.
TRINO_ENV_VARIABLES = (
    "LAKE_S3_ACCESS_KEY",
    "LAKE_S3_SECRET_KEY",
    "LAKE_CATALOG_USER",
    "LAKE_CATALOG_PASSWORD",
    "TRINO_SHARED_SECRET",
)

#: What a generated secret may contain: it goes into URLs, shell-read files and Trino's files unquoted.
_SAFE = re.compile(r"[A-Za-z0-9_-]{16,}")
_NAME = re.compile(r"[a-z][a-z0-9_]{2,62}")


@dataclass(frozen=True)
class ComposeNames:
    """How the compose services reach each other (the names in docker-compose.yml)."""

    catalog_host: str = "iceberg-catalog"
    catalog_port: int = 5432
    catalog_database: str = "lake"
    s3_endpoint: str = "http://minio:9000"
    region: str = "us-east-1"
    bucket: str = BUCKET  # the bucket the rendered S3 policies name
    trino_host: str = "trino"
    trino_port: int = 8443
    #: The names Trino's certificate is valid for: the service name, and the host's loopback (published port).
    trino_cert_hosts: tuple[str, ...] = ("trino", "localhost", "127.0.0.1")
    #: Where the ``platform/`` folder is mounted in the Dagster containers (for ``MESH_TRINO_CA_FILE``).
    platform_mount: str = "/run/mesh/platform"


@dataclass(frozen=True)
class Provisioned:
    """What one run wrote (paths under ``out``); secrets are never part of it."""

    out: Path
    principals: tuple[str, ...]
    actors: Mapping[str, str]
    files: tuple[Path, ...] = field(default=())

    def describe(self) -> str:
        return (
            f"provisioned {len(self.principals)} principals ({len(self.actors)} MESH_ACTOR identities) "
            f"into {self.out}: " + ", ".join(sorted(str(p.relative_to(self.out)) for p in self.files))
        )


# -- the policy's identities -----------------------------------------------------------------------------------


def actors(policy: Policy) -> dict[str, str]:
    """``MESH_ACTOR`` value -> the service user it acts as: the platform, the analyst, each domain's publisher."""
    acting = {"platform": policy.platform.name, "analyst": policy.reader.name}
    for domain in sorted({a.domain for a in policy.products}):
        acting[f"publisher:{domain}"] = policy.publisher_of(domain).name
    return acting


# -- writing -------------------------------------------------------------------------------------------------------


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _write(path: Path, text: str | bytes, mode: int = 0o600) -> Path:
    """Write ``path`` atomically with ``mode`` from the start; an unchanged file is left alone."""
    data = text.encode() if isinstance(text, str) else text
    if path.is_file() and path.read_bytes() == data:
        os.chmod(path, mode)
        return path
    write_atomic(path, data, mode)
    return path


def _checked(name: str, value: str | None, what: str) -> str:
    if value is None or not _SAFE.fullmatch(value):
        raise StackError(
            f"The generated {what} of '{name}' is missing or not URL-safe; remove its entry from the provisioning "
            "state (state/credentials.json) to generate a new one."
        )
    return value


def _env_file(values: Mapping[str, str]) -> str:
    lines = ["# Generated by nativestack.provision: read by docker/trino/entrypoint.sh. Secret: do not copy."]
    lines += [f"{key}={value}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def _scram(name: str, password: str) -> str:
    """The role's SCRAM verifier with a salt derived from the role and password.

    Deterministic so that ``passwords.sql`` changes only when a password does (the salt stays unique per
    role and password, which is all a salt is for)."""
    from nativestack.postgres import scram_sha256_verifier

    salt = hashlib.sha256(f"datamesh-scram-salt\0{name}\0{password}".encode()).digest()[:16]
    return scram_sha256_verifier(password, salt=salt)


def _passwords_sql(passwords: Mapping[str, str]) -> str:
    lines = [
        "-- Generated by nativestack.provision: each catalog role's password, as a SCRAM-SHA-256 verifier.",
        "-- Run after postgres-roles.sql (which creates the roles), as the superuser. Secret: do not copy.",
        "BEGIN;",
    ]
    for name in sorted(passwords):
        if not _NAME.fullmatch(name):
            raise StackError(f"'{name}' is not a valid PostgreSQL role name.")
        verifier = _scram(name, passwords[name])
        if "'" in verifier or "\\" in verifier:  # base64 and '$:': never, but the literal must stay one
            raise StackError(f"Unexpected character in the SCRAM verifier of '{name}'.")
        lines.append(f"ALTER ROLE \"{name}\" WITH LOGIN PASSWORD '{verifier}';")
    lines += ["COMMIT;", ""]
    return "\n".join(lines)


def _identities(names: ComposeNames, principals: Mapping[str, PrincipalSecrets],
                acting: Mapping[str, str], ca_file: str) -> dict[str, object]:
    from nativestack.identities import FORMAT, credentials_entries
    from nativestack.lifecycle import StackEndpoints

    platform = principals[acting["platform"]]
    endpoints = StackEndpoints(
        s3_endpoint=names.s3_endpoint, access_key=platform.name,
        secret_key=_checked(platform.name, platform.s3_secret_key, "S3 secret key"), region=names.region,
        bucket=names.bucket, trino_host=names.trino_host, trino_port=names.trino_port,
        catalog_host=names.catalog_host, catalog_port=names.catalog_port, catalog_database=names.catalog_database,
        catalog_user=platform.name, catalog_password=_checked(platform.name, platform.pg_password, "catalog password"),
        principals=principals, actors=acting, trino_scheme="https", trino_ca_file=ca_file,
    )
    return {"format": FORMAT, "identities": credentials_entries(endpoints)}


# -- provisioning ----------------------------------------------------------------------------------------------------


def provision(out: Path, policy: Policy, names: ComposeNames = ComposeNames(), *,
              owner: tuple[int, int] | None = None) -> Provisioned:
    """Generate (or keep) every secret of ``policy`` in ``out`` and write each consumer's folder."""
    from datamesh.policy.trino import GROUPS_FILE, RULES_FILE, render_trino
    from nativestack import trino_security
    from nativestack.tls import ensure_tls

    _private_dir(out)
    state = out / STATE_DIR
    _private_dir(state)
    layout = Layout(state)
    services = [p.name for p in policy.service_users()]
    people = [p.name for p in policy.people()]
    principals = load_or_create_principal_secrets(layout, services, people)
    acting = actors(policy)
    engine = principals[policy.engine.name]
    # The stack's CA and Trino's certificate, also valid for the service name (nativestack.tls), then what
    # the native stack's Trino gets too: every login's password hash and the shared secret.
    ensure_tls(trino_security.tls_dir(layout), names.trino_cert_hosts)
    rendered = render_trino(policy)
    security = trino_security.prepare(layout, rules=rendered[RULES_FILE], groups=rendered[GROUPS_FILE],
                                      principals={n: s for n, s in principals.items() if n != policy.engine.name},
                                      platform=policy.platform.name)  # the engine identity has no Trino login
    ca = security.tls.ca_file.read_bytes()

    written: list[Path] = []
    trino, platform, minio, catalog = (out / d for d in (TRINO_DIR, PLATFORM_DIR, MINIO_DIR, CATALOG_DIR))
    for directory in (trino, platform, minio, catalog):
        _private_dir(directory)

    # Trino: its keystore and CA, every login's password hash, and its own read-only identity.
    written += [
        _write(trino / TRINO_KEYSTORE_FILE, security.tls.keystore_file.read_bytes()),
        _write(trino / CA_FILE, ca, 0o644),
        _write(trino / TRINO_PASSWORD_FILE, security.password_file.read_bytes()),
        _write(trino / TRINO_ENV_FILE, _env_file({
            "LAKE_S3_ACCESS_KEY": engine.name,
            "LAKE_S3_SECRET_KEY": _checked(engine.name, engine.s3_secret_key, "S3 secret key"),
            "LAKE_CATALOG_USER": engine.name,
            "LAKE_CATALOG_PASSWORD": _checked(engine.name, engine.pg_password, "catalog password"),
            "TRINO_SHARED_SECRET": _checked("trino", security.shared_secret, "internal shared secret"),
        })),
    ]
    # The platform's services: every MESH_ACTOR identity (the orchestrator acts as each domain in turn).
    identities = _identities(names, principals, acting, f"{names.platform_mount}/{CA_FILE}")
    written += [
        _write(platform / IDENTITIES_FILE, json.dumps(identities, indent=1, sort_keys=True) + "\n"),
        _write(platform / CA_FILE, ca, 0o644),
    ]
    # MinIO: one user per service user, named by its access key (the engine's too: Trino reads S3 as it).
    users = [f"{name} {_checked(name, principals[name].s3_secret_key, 'S3 secret key')}" for name in services]
    written.append(_write(minio / MINIO_USERS_FILE, "\n".join(users) + "\n"))
    # PostgreSQL: every service user's catalog role password, as a verifier.
    passwords = {name: _checked(name, principals[name].pg_password, "catalog password") for name in services}
    written.append(_write(catalog / CATALOG_PASSWORDS_FILE, _passwords_sql(passwords)))

    if owner is not None:
        _chown_tree(out, owner)
    return Provisioned(out=out, principals=tuple(sorted(principals)), actors=acting, files=tuple(written))


def _chown_tree(root: Path, owner: tuple[int, int]) -> None:
    uid, gid = owner
    try:
        for path in (root, *root.rglob("*")):
            os.chown(path, uid, gid, follow_symlinks=False)
    except PermissionError:
        raise StackError(f"Cannot hand {root} to {uid}:{gid}: --owner needs root (compose runs this job as root).") \
            from None


def _check_rendered(policy: Policy, rendered: Path) -> None:
    """Refuse to provision for a policy other than the rendered files the services will read."""
    from datamesh.policy.render import drift

    problems = drift(policy, rendered)
    if problems:
        raise StackError(
            f"The rendered policy in {rendered} differs from the contracts and governance file this image holds "
            f"({'; '.join(problems[:5])}{' ...' if len(problems) > 5 else ''}). Run `mesh policy render` and "
            "`docker compose build`, then `docker compose up` again."
        )


# -- command line ----------------------------------------------------------------------------------------------------


def _owner(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+):(\d+)", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected UID:GID (e.g. 1000:1000), not {text!r}")
    return int(match[1]), int(match[2])


def _parser() -> argparse.ArgumentParser:
    out_help = "the secrets folder (compose: /secrets)"
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", type=Path, default=argparse.SUPPRESS, help=out_help)
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Generate (once) and hand out the secrets of a docker-compose stack: every principal's S3, "
                    "catalog and Trino credentials, Trino's certificate and shared secret. Prints no secret.",
        epilog=f"Example: {PROG} --out /secrets --policy-dir /etc/mesh/policy --owner 1000:1000",
    )
    parser.add_argument("--out", type=Path, default=None, help=out_help)
    parser.add_argument("--policy-dir", type=Path, default=None,
                        help="the rendered policy the services read (governance/generated): refuse when it drifted")
    parser.add_argument("--governance", type=Path, default=None, help="the governance file (default: the project's)")
    parser.add_argument("--owner", type=_owner, default=None, help="UID:GID to own the written files (needs root)")
    parser.add_argument("--trino-port", type=int, default=ComposeNames.trino_port,
                        help=f"Trino's https port inside the stack (default {ComposeNames.trino_port})")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("ca", parents=[common], help="print the stack's CA certificate (public) for clients")
    password = commands.add_parser("password", parents=[common], help="print one login's Trino password")
    password.add_argument("name", help="the Trino user (a person or a service user of the policy)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m nativestack.provision``; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.out is None:
        parser.error("--out is required (the secrets folder, e.g. --out /secrets)")
    try:
        if args.command == "ca":
            sys.stdout.write((args.out / STATE_DIR / "tls" / CA_FILE).read_text())
            return 0
        if args.command == "password":
            known = load_principal_secrets(Layout(args.out / STATE_DIR))
            if args.name not in known:
                raise StackError(f"No login '{args.name}' in {args.out}; known: {', '.join(sorted(known)) or 'none'}.")
            print(known[args.name].trino_password)
            return 0
        from datamesh.policy import load_policy

        policy = load_policy(governance=args.governance)
        if args.policy_dir is not None:
            _check_rendered(policy, args.policy_dir)
        done = provision(args.out, policy, ComposeNames(trino_port=args.trino_port), owner=args.owner)
        print(done.describe())
        return 0
    except FileNotFoundError as exc:
        print(f"{PROG}: error: {exc.filename} does not exist: run the provisioning first.", file=sys.stderr)
        return 1
    except PlatformError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
