"""Trino over the products' Iceberg tables.

Trino's ``lake`` catalog is the Iceberg connector over the same SQL catalog
(PostgreSQL on the stack) the platform commits to, so there is nothing to
register: ``lake.<domain>.<product>`` is the product's table, its current
snapshot the latest version, and ``FOR VERSION AS OF 'v<N>'`` reads version
N (the tag each publish creates). Table and column comments come from the
contract through the table's properties and field docs.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datamesh.errors import PlatformError, TrinoError
from datamesh.names import quote_ident, sql_string, validate_name

if TYPE_CHECKING:
    from datamesh.contracts import Contract
    from datamesh.settings import Settings

log = logging.getLogger(__name__)

#: What the platform's own Trino setup allows, for access-denied messages (datamesh.policy.trino).
_WHO_READS = ("readers (the query service user and every person) read every active product, with PII columns "
              "masked unless their group may see them; a publisher reads its own domains' products and its "
              "declared inputs")
_ONLY_PLATFORM = "only the platform's identities ({names}) may {what} through Trino"


class TrinoClient:
    """A thin client over the ``trino`` DB-API with platform errors.

    With ``password`` it logs in (PASSWORD authentication, which Trino allows
    over HTTPS only); with ``ca_file`` it trusts exactly that CA (the native
    stack's own), otherwise the system's. The password is never logged, shown
    in errors or in ``repr``.
    """

    def __init__(self, host: str, port: int, user: str = "mesh", catalog: str = "lake",
                 request_timeout: float = 120.0, *, password: str | None = None, scheme: str = "http",
                 ca_file: Path | str | None = None, schema: str | None = None) -> None:
        if scheme not in ("http", "https"):
            raise TrinoError(f"Unknown Trino scheme {scheme!r}: expected 'https' (or 'http' without a password).")
        if password is not None and scheme != "https":
            raise TrinoError(
                f"A Trino password is set for user '{user}' but the scheme is http: Trino accepts passwords over "
                "https only, and sending one in clear text is refused. Set MESH_TRINO_SCHEME=https."
            )
        self.host, self.port, self.user, self.catalog = host, port, user, catalog
        self.request_timeout = request_timeout
        self.scheme = scheme
        self.ca_file = Path(ca_file) if ca_file is not None else None
        self._password = password
        self.schema = schema  # the default schema of unqualified names (None: always qualify)

    def __repr__(self) -> str:
        return f"TrinoClient({self.url!r}, user={self.user!r}, catalog={self.catalog!r})"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, schema: str | None = None,
                      request_timeout: float = 120.0) -> TrinoClient:
        from datamesh.settings import get_settings

        settings = settings or get_settings()
        if not settings.trino_host:
            raise TrinoError("No Trino configured: set MESH_TRINO_HOST and MESH_TRINO_PORT "
                             "(`mesh stack up` starts a local Trino and prints them).")
        password = settings.trino_password.get_secret_value() if settings.trino_password else None
        return cls(settings.trino_host, settings.trino_port, settings.trino_user, settings.trino_catalog,
                   request_timeout, password=password, scheme=settings.trino_scheme, ca_file=settings.trino_ca_file,
                   schema=schema)

    def connect(self) -> Any:
        import trino

        options: dict[str, Any] = {}
        if self.ca_file is not None:
            if not self.ca_file.is_file():
                raise TrinoError(f"MESH_TRINO_CA_FILE {self.ca_file} does not exist: it is the PEM file of the CA "
                                 "that signed Trino's certificate (a native stack's is <stack home>/tls/ca.pem).")
            options["http_session"] = trino_session(self.ca_file)
        if self._password is not None:
            options["auth"] = trino.auth.BasicAuthentication(self.user, self._password)
        if self.schema is not None:
            options["schema"] = self.schema
        return trino.dbapi.connect(host=self.host, port=self.port, user=self.user, catalog=self.catalog,
                                   http_scheme=self.scheme, request_timeout=self.request_timeout, **options)

    def query(self, sql: str, params: list[Any] | None = None, *, retries: int = 5) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one statement; returns (column names, rows).

        A freshly (re)started Trino answers NO_NODES_AVAILABLE for a few seconds;
        such queries are retried with a short backoff.
        """
        import time

        import trino

        for attempt in range(retries + 1):
            try:
                return self._query_once(sql, params)
            except trino.exceptions.TrinoQueryError as exc:
                if exc.error_name == "NO_NODES_AVAILABLE" and attempt < retries:
                    time.sleep(2.0)
                    continue
                raise self._query_error(exc) from None
        raise AssertionError("unreachable")

    def _query_once(self, sql: str, params: list[Any] | None) -> tuple[list[str], list[tuple[Any, ...]]]:
        import trino

        try:
            conn = self.connect()
            try:
                cur = conn.cursor()
                cur.execute(sql, params) if params else cur.execute(sql)
                rows = [tuple(r) for r in cur.fetchall()]
                cols = [d[0] for d in cur.description] if cur.description else []
                return cols, rows
            finally:
                conn.close()
        except trino.exceptions.TrinoQueryError:
            raise
        except trino.exceptions.HttpError as exc:
            raise self._http_error(exc) from None
        except Exception as exc:
            translated = self._connection_error(exc)
            if translated is None:
                raise
            raise translated from None

    # -- errors ------------------------------------------------------------------------------------------

    def _http_error(self, exc: Exception) -> TrinoError:
        text = str(exc)
        if text.startswith("error 401"):
            how = ("no password was sent" if self._password is None
                   else "the user name or password is wrong")
            return TrinoError(
                f"Trino at {self.url} refused the login of user '{self.user}': {how} (HTTP 401). Set "
                "MESH_TRINO_USER and MESH_TRINO_PASSWORD to an identity of the policy (a native stack's: "
                "`python -m nativestack env`)."
            )
        return TrinoError(f"Trino at {self.url} answered {text[:300]}")

    def _connection_error(self, exc: BaseException) -> TrinoError | None:
        chain = _exception_chain(exc)
        text = " ".join(str(e) for e in chain)
        if any(type(e).__name__ == "SSLError" for e in chain) or "CERTIFICATE_VERIFY_FAILED" in text:
            reason = re.search(r"certificate verify failed: ([^(]+)", text)
            return TrinoError(
                f"TLS with Trino at {self.url} failed"
                f"{f' ({reason.group(1).strip()})' if reason else ''}: the server's certificate is not trusted. "
                + ("Its CA is not the one in MESH_TRINO_CA_FILE "
                   f"({self.ca_file}): is this the right stack?" if self.ca_file is not None else
                   "Set MESH_TRINO_CA_FILE to the CA that signed it (a native stack's: <stack home>/tls/ca.pem, "
                   "printed by `python -m nativestack env`).")
            )
        if self.scheme == "http" and "BadStatusLine" in text:
            return TrinoError(f"Trino at {self.host}:{self.port} speaks HTTPS only: set MESH_TRINO_SCHEME=https "
                              "(and MESH_TRINO_CA_FILE, MESH_TRINO_USER, MESH_TRINO_PASSWORD).")
        if (isinstance(exc, OSError) or type(exc).__name__ == "TrinoConnectionError"
                or "Connection" in type(exc).__name__ or "Max retries" in text):
            return TrinoError(f"Cannot reach Trino at {self.url} ({exc}). Is it running? (`mesh stack status`)")
        return None

    def _query_error(self, exc: Any) -> TrinoError:
        name, message = exc.error_name, exc.message
        if name == "PERMISSION_DENIED":
            return TrinoError(self._denied(message.removeprefix("Access Denied: ").rstrip(".")))
        if name == "NOT_SUPPORTED" and "ALTER TABLE EXECUTE is not supported for table with" in message:
            # The access rules put a row filter on every table a non-platform user may read: Trino 476 has
            # no rule for table procedures, but refuses them on filtered tables (datamesh.policy.trino).
            return TrinoError(self._denied("Cannot run a table procedure (ALTER TABLE ... EXECUTE)"))
        return TrinoError(f"Trino query failed: {name}: {message}")

    def _denied(self, what: str) -> str:
        """Name the user, the action and the object Trino refused (``what``: "Cannot insert into table x"), and
        who may do it."""
        lowered = what[:1].lower() + what[1:]
        if lowered.startswith("cannot "):
            said = f"Access denied: Trino user '{self.user}' may not {lowered.removeprefix('cannot ')}"
        else:
            said = f"Access denied for Trino user '{self.user}': {what}"
        names = ", ".join(_platform_names()) or "role platform in governance/governance.yaml"
        if lowered.startswith(("cannot select", "cannot show", "cannot access catalog")):
            who = f"{_WHO_READS}."
        elif "impersonate" in lowered:
            who = "Nobody may act as another user in Trino: log in as that identity instead."
        elif "session property" in lowered:
            who = _ONLY_PLATFORM.format(names=names, what="set this session property") + "."
        elif "query" in lowered or "system information" in lowered:
            who = _ONLY_PLATFORM.format(names=names, what="see or stop other users' queries and the cluster's "
                                                            "state") + "; everyone sees their own queries."
        else:
            who = (_ONLY_PLATFORM.format(names=names, what="create, replace, alter or drop schemas, tables and "
                                         "views, write rows or run procedures")
                   + "; products change only by publishing (`mesh publish`).")
        return f"{said}. {who[:1].upper()}{who[1:]}"

    def execute(self, sql: str) -> None:
        self.query(sql)


def _exception_chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def trino_session(ca_file: Path | str) -> Any:
    """A ``requests`` session for ``trino.dbapi.connect(http_session=...)`` that trusts exactly ``ca_file``.

    ``requests`` lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` override a
    session's ``verify`` (psf/requests#3829), so the Trino client's ``verify=``
    is ignored wherever those are set; this session keeps its own.
    """
    import requests

    class _PinnedSession(requests.Session):
        def merge_environment_settings(
            self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
        ) -> dict[str, Any]:
            settings: dict[str, Any] = super().merge_environment_settings(url, proxies, stream, verify, cert)
            settings["verify"] = self.verify
            return settings

    session = _PinnedSession()
    session.verify = str(ca_file)
    return session


@lru_cache(maxsize=1)
def _platform_names() -> tuple[str, ...]:
    """The policy's platform identities, to say who may do what was denied (empty if no policy loads)."""
    try:
        from datamesh.policy import PolicyRole, load_policy

        return tuple(load_policy().names(role=PolicyRole.PLATFORM))
    except (PlatformError, OSError):
        return ()


def version_relation(catalog: str, contract: Contract, version: int | None = None) -> str:
    """Trino SQL for a product's table, at tag ``v<version>`` when given (time travel)."""
    table = f"{quote_ident(catalog)}.{quote_ident(contract.domain)}.{quote_ident(contract.id)}"
    return table if version is None else f"{table} FOR VERSION AS OF {sql_string(f'v{int(version)}')}"


def trino_versions(client: TrinoClient, contract: Contract) -> set[int]:
    """The ``v<N>`` tags Trino sees on a product's table (empty if Trino has no such table)."""
    # The product id is a validated identifier; Iceberg's metadata table is "<table>$refs".
    validate_name(contract.id, kind="product id")
    refs = f'{quote_ident(client.catalog)}.{quote_ident(contract.domain)}."{contract.id}$refs"'
    try:
        _, rows = client.query(f"SELECT name FROM {refs} WHERE type = 'TAG'")
    except TrinoError as exc:
        if "does not exist" in str(exc) or "TABLE_NOT_FOUND" in str(exc) or "SCHEMA_NOT_FOUND" in str(exc):
            return set()
        raise
    out = set()
    for (name,) in rows:
        if isinstance(name, str) and name[:1] == "v" and name[1:].isascii() and name[1:].isdigit():
            out.add(int(name[1:]))
    return out
