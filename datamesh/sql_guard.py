"""Read-only SQL: which statements a mesh session or a contract rule may run.

Two layers, both needed:

1. **Statement check** (:func:`ensure_read_only`, :func:`ensure_single_select`).
   The SQL is parsed by DuckDB (``extract_statements``: nothing is executed)
   and every statement must be a ``SELECT``. DuckDB parses ``WITH ... SELECT``,
   ``FROM x``, ``VALUES``, ``TABLE x``, ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``,
   ``PIVOT ... IN (...)`` and the PRAGMAs that only return rows
   (``PRAGMA version``, ``PRAGMA table_info``) as ``SELECT``; plain
   ``EXPLAIN <select>`` is allowed too. Everything else is refused: COPY,
   EXPORT/IMPORT, ATTACH/DETACH, INSTALL/LOAD, CREATE, INSERT, UPDATE, DELETE,
   MERGE, DROP, ALTER, SET/RESET/USE, setting PRAGMAs, CALL, CHECKPOINT,
   VACUUM/ANALYZE, PREPARE/EXECUTE, transactions, ``EXPLAIN ANALYZE`` and
   ``PIVOT`` without an explicit ``IN`` list (DuckDB turns it into a CREATE).

2. **Connection lock-down** (:func:`lock_down`), defence in depth once a
   connection's views and secrets exist: file access is limited to the given
   lake folders (``allowed_directories``), external access is switched off
   and the configuration is locked. Verified with DuckDB 1.5.5:

   * still works: views created before the lock over files inside the allowed
     folders; new views (e.g. pinned versions) created after it over such files;
     Arrow tables registered on the connection; ``glob`` inside the folders;
   * refused: reading any other file (``read_csv('/etc/passwd')``,
     ``read_text``, ``read_blob``, ``glob('/etc/*')``, ``parquet_metadata``),
     ``http(s)://`` URLs, ``s3://`` URIs outside the allowed prefixes, writing
     outside the folders (``COPY ... TO '/tmp/x'``), ATTACH of a file, INSTALL,
     LOAD of an extension file, and any later ``SET``/``RESET`` (memory limit,
     threads, ``enable_external_access``, ``allowed_directories``, ...);
   * secrets: ``getenv()`` does not exist once external access is off;
     ``duckdb_secrets()`` still lists the secret's name, scope and ``key_id``
     (the access key id, not the secret key, which stays ``redacted``:
     ``allow_unredacted_secrets`` is off and locked).

   What the lock-down does **not** do, hence layer 1:

   * it does not make the allowed folders read-only: ``COPY ... TO`` a path
     inside the lake (or the DuckDB spill folder, which DuckDB always allows)
     still writes; so do ``EXPORT DATABASE`` and in-memory ``CREATE TABLE``;
   * within the allowed folders every file is readable, including other
     versions and staged, uncommitted data;
   * for ``s3://`` prefixes DuckDB compares the URI text, it does not
     normalise ``..``: ``s3://bucket/lake/../other/x`` passes the check and is
     sent to the server as is (local paths are normalised first);
   * it cannot limit CPU or memory beyond the settings fixed before the lock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

import duckdb

from datamesh.errors import QueryError, ReadOnlyError
from datamesh.names import sql_string

#: The statements a read-only session runs, as users would write them.
READ_ONLY_FORMS = "SELECT, WITH ... SELECT, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE, plain EXPLAIN"

_PUBLISH_HINT = "Products change only through a publish (`mesh publish <product> <file>`)"
_HINTS: dict[str, str] = {
    "COPY": "To save a result, use `mesh query --format csv \"select ...\" > result.csv`. "
            f"{_PUBLISH_HINT}.",
    "EXPORT": "To save a result, use `mesh query --format csv \"select ...\" > result.csv`.",
    "ATTACH": "A session sees exactly the mesh's products; other databases cannot be attached.",
    "DETACH": "A session sees exactly the mesh's products; nothing can be detached.",
    "LOAD": "Extensions are fixed by the platform; INSTALL and LOAD are not available.",
    "SET": "Session settings come from the platform settings (e.g. MESH_DUCKDB_MEMORY_LIMIT, "
           "MESH_DUCKDB_THREADS); qualify names (crm.customers) instead of USE.",
    "PRAGMA": "Session settings come from the platform settings (e.g. MESH_DUCKDB_MEMORY_LIMIT).",
    "TRANSACTION": "Every query runs on its own; drop BEGIN/COMMIT/ROLLBACK.",
    "EXPLAIN": "Use plain EXPLAIN (without ANALYZE or options) to see a query plan.",
    "CREATE": f"Use a CTE (WITH x AS (select ...) select ...) instead of a table or view. {_PUBLISH_HINT}.",
}
_WRITE_HINT = f"{_PUBLISH_HINT}; use a CTE (WITH ...) for intermediate results."
_HINTS.update(dict.fromkeys(("INSERT", "UPDATE", "DELETE", "DROP", "ALTER", "MERGE_INTO", "VACUUM"), _WRITE_HINT))

_PIVOT = re.compile(r"\bpivot\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\S")
_parser = threading.local()


def _parser_connection() -> duckdb.DuckDBPyConnection:
    # One parser per thread (a connection is not shared across threads). External access
    # is off, so a statement the parser expands by reading files (IMPORT DATABASE) reads nothing.
    con: duckdb.DuckDBPyConnection | None = getattr(_parser, "con", None)
    if con is None:
        con = duckdb.connect(":memory:", config={"enable_external_access": False,
                                                  "autoinstall_known_extensions": False,
                                                  "autoload_known_extensions": False})
        _parser.con = con
    return con


def excerpt(sql: str, limit: int = 60) -> str:
    """The SQL on one line, cut to ``limit`` characters."""
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _parse(sql: str, where: str) -> list[duckdb.Statement]:
    try:
        return list(_parser_connection().extract_statements(sql))
    except duckdb.PermissionException:
        raise ReadOnlyError(
            f"{where} is read-only: `{excerpt(sql)}` would read files outside the mesh "
            f"(e.g. IMPORT DATABASE). Only queries run here ({READ_ONLY_FORMS})."
        ) from None
    except duckdb.Error as exc:
        raise QueryError(
            f"{where}: the SQL does not parse: {str(exc).splitlines()[0]} (in `{excerpt(sql)}`). Fix the syntax."
        ) from None


def _kind(statement: duckdb.Statement) -> str:
    name = statement.type.name
    if name and name.isidentifier():
        return name
    words = statement.query.split()
    return words[0].upper() if words else "UNKNOWN"


def _keywords(sql: str, count: int) -> list[str]:
    """The first ``count`` tokens of ``sql`` (comments skipped), lowercased."""
    out = []
    for start, _ in duckdb.tokenize(sql)[:count]:
        word = _WORD.match(sql, start)
        out.append(word.group(0).lower() if word else "")
    return out


def _explain_is_plain_select(statement: duckdb.Statement) -> bool:
    """True for ``EXPLAIN <one select>``; false for EXPLAIN ANALYZE, options or non-SELECTs."""
    query = statement.query
    tokens = duckdb.tokenize(query)
    if len(tokens) < 2 or _keywords(query, 1) != ["explain"]:
        return False
    inner = query[tokens[1][0]:]
    if _keywords(inner, 1) in (["analyze"], ["analyse"], ["("]):
        return False
    try:
        statements = _parser_connection().extract_statements(inner)
    except duckdb.Error:
        return False
    return len(statements) == 1 and statements[0].type == duckdb.StatementType.SELECT


def _is_select(statement: duckdb.Statement) -> bool:
    return statement.type == duckdb.StatementType.SELECT


def _refusal(where: str, sql: str, statement: duckdb.Statement, index: int, total: int) -> ReadOnlyError:
    kind = _kind(statement)
    shown = statement.query.strip() or sql
    position = f"statement {index} of {total}" if total > 1 else "the statement"
    hint = _HINTS.get(kind, _WRITE_HINT)
    if not statement.query.strip() and _PIVOT.search(sql):
        # DuckDB expands `PIVOT t ON col` (no IN list) into CREATE TYPE + SELECT, both without text.
        kind, position = "PIVOT", "the statement"
        hint = "List the pivot values explicitly (PIVOT t ON col IN ('a', 'b') USING ...), or use GROUP BY."
    elif kind == "EXPLAIN":
        kind = "EXPLAIN ANALYZE" if _keywords(statement.query, 2)[-1:] in (["analyze"], ["analyse"]) else kind
    label = kind.replace("_", " ")
    return ReadOnlyError(
        f"{where} is read-only: {position} is {label} (`{excerpt(shown)}`), which is not a query. "
        f"Only queries run here ({READ_ONLY_FORMS}). {hint}"
    )


def ensure_read_only(sql: str, *, where: str = "mesh query") -> None:
    """Raise :class:`ReadOnlyError` unless every statement of ``sql`` only reads.

    Nothing is executed. A syntax error raises :class:`QueryError`; an empty
    string (or only comments) is a :class:`QueryError` too.
    """
    statements = _parse(sql, where)
    if not statements:
        raise QueryError(f"{where}: there is no SQL statement to run.")
    for index, statement in enumerate(statements, start=1):
        if _is_select(statement):
            continue
        if statement.type == duckdb.StatementType.EXPLAIN and _explain_is_plain_select(statement):
            continue
        raise _refusal(where, sql, statement, index, len(statements))


def ensure_single_select(sql: str, *, where: str, hint: str = "") -> None:
    """Raise unless ``sql`` is exactly one SELECT statement (e.g. a contract's SQL rule).

    :class:`ReadOnlyError` when a statement is not a SELECT, :class:`QueryError`
    for a syntax error or a count other than one. ``hint`` ends the message.
    """
    statements = _parse(sql, where)
    end = f" {hint}" if hint else ""
    for index, statement in enumerate(statements, start=1):
        if not _is_select(statement):
            kind = _kind(statement).replace("_", " ")
            position = f"statement {index} of {len(statements)}" if len(statements) > 1 else "it"
            raise ReadOnlyError(
                f"{where} must be exactly one SELECT statement, but {position} is {kind} "
                f"(`{excerpt(statement.query.strip() or sql)}`), which is not allowed: a rule only reads.{end}"
            )
    if len(statements) != 1:
        raise QueryError(
            f"{where} must be exactly one SELECT statement, but `{excerpt(sql)}` has {len(statements)}.{end}"
        )


_TRINO_QUERY_KEYWORDS = frozenset({"select", "with", "values", "table", "show", "describe", "explain", "("})
_TRINO_FORMS = "SELECT, WITH ... SELECT, VALUES, TABLE, SHOW, DESCRIBE, EXPLAIN without ANALYZE"


def ensure_trino_read_only(sql: str, *, where: str = "Trino query") -> None:
    """Raise :class:`ReadOnlyError` unless ``sql`` is one Trino query (first keyword SELECT, WITH, ...).

    Trino SQL is not DuckDB SQL, so it is not parsed; it is split into tokens
    (strings, quoted names and comments are skipped correctly) and must be one
    statement starting with SELECT, WITH, VALUES, TABLE, SHOW, DESCRIBE or
    EXPLAIN, and not EXPLAIN ANALYZE (which runs the statement). Trino's own
    access control is what protects the lake; this is the CLI's guard.
    """
    try:
        tokens = duckdb.tokenize(sql)
    except duckdb.Error as exc:
        raise QueryError(f"{where}: the SQL cannot be read: {str(exc).splitlines()[0]}.") from None
    if not tokens:
        raise QueryError(f"{where}: there is no SQL statement to run.")
    texts = [sql[start:(tokens[i + 1][0] if i + 1 < len(tokens) else len(sql))].strip()
             for i, (start, _) in enumerate(tokens)]
    ends = [i for i, text in enumerate(texts) if text.startswith(";")]
    if ends and ends[0] < len(tokens) - 1:
        raise ReadOnlyError(
            f"{where}: send one statement at a time; `{excerpt(sql)}` has more than one. "
            f"Only queries run here ({_TRINO_FORMS})."
        )
    first, second = (_keywords(sql, 2) + [""])[:2]
    if first not in _TRINO_QUERY_KEYWORDS:
        raise ReadOnlyError(
            f"{where} is read-only: `{excerpt(sql)}` starts with {first.upper()!r}, which is not a query. "
            f"Only queries run here ({_TRINO_FORMS}). {_PUBLISH_HINT}."
        )
    if first == "explain" and second in ("analyze", "analyse"):
        raise ReadOnlyError(
            f"{where} is read-only: EXPLAIN ANALYZE runs the statement (`{excerpt(sql)}`). Use EXPLAIN without ANALYZE to see a plan."
        )


def lock_down(con: duckdb.DuckDBPyConnection, allowed_paths: Sequence[str], *,
              allowed_files: Sequence[str] = ()) -> None:
    """Limit ``con`` to reading the given lake folders, then lock its configuration.

    ``allowed_paths`` are folder prefixes: local folders (``/srv/lake``) or S3
    prefixes (``s3://bucket/lake/``); a trailing ``/`` is added, so
    ``/srv/lake`` does not admit ``/srv/lakehouse``. ``allowed_files`` admits
    single files. Call it after the connection's secrets and views are set up:
    afterwards no setting can change. A connection already locked is left as is.
    """
    if bool(con.execute("SELECT current_setting('lock_configuration')").fetchone()[0]):  # type: ignore[index]
        return
    folders = [p if p.endswith("/") else p + "/" for p in allowed_paths]
    con.execute(f"SET allowed_directories = [{', '.join(sql_string(p) for p in folders)}]")
    if allowed_files:
        con.execute(f"SET allowed_paths = [{', '.join(sql_string(p) for p in allowed_files)}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
