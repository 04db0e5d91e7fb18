"""Dagster's SQLite event log, with its database connections kept open (a developer machine's instance).

Dagster's :class:`SqliteEventLogStorage` opens a new SQLAlchemy engine and
SQLite connection for every statement it runs, and closes them again: storing
one event costs two to five of those (the run's database, the cross-run index,
the asset-check tables). A demo run stores about a thousand events (most of
them asset-check results: one per contract rule); replaying one demo run's
1,026 events took 24 s with Dagster's class and 9 s with this one (decision
0017). This subclass keeps one engine (with its pooled connection) per
database instead, so a statement reuses the open connection; everything else
is Dagster's: the same files and schema, the same WAL journal and
``synchronous`` setting, the same per-process lock around each use (re-entrant here). Closing
Dagster's last connection to a run's database checkpointed its write-ahead log
into the ``.db`` file, which is what the UI's live view of a run watches, so
each write to a run's database here ends with that checkpoint (the cross-run
index, which nothing watches, checkpoints as SQLite does by itself).

The instance's ``dagster.yaml`` names it (``orchestration/dagster.yaml``, with
this instance's ``history/runs`` folder, written by :func:`orchestration.instance.persistent_instance`).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

#: Open databases per process: the index and the runs being written or watched (least recently used closes first).
MAX_OPEN_DATABASES = 8


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """:class:`SqliteEventLogStorage` that reuses one open connection per database (see the module)."""

    def __init__(self, base_dir: str, inst_data: Any = None) -> None:  # noqa: ANN401
        # Set before Dagster's __init__, which may already connect (a new index database).
        self._engines: OrderedDict[tuple[int, str], Engine] = OrderedDict()
        self._tables_present: set[str] = set()
        super().__init__(base_dir, inst_data)
        # Re-entrant, so that wipe() can hold it while Dagster's wipe deletes the run databases and
        # empties the index through _connect: no thread caches an engine on a file about to go.
        self._db_lock = threading.RLock()

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> PooledSqliteEventLogStorage:  # noqa: ANN401
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        """This process's engine for one database (created, and the database initialised, on first use)."""
        import sqlalchemy as sa

        key = (os.getpid(), shard)  # a forked child opens its own: SQLite connections do not cross a fork
        engine = self._engines.get(key)
        if engine is not None:
            self._engines.move_to_end(key)
            return engine
        # SQLAlchemy's default for a file database: a QueuePool, with sqlite3's same-thread check off
        # (the lock below is what keeps one thread at a time on a connection, as in Dagster's).
        engine = sa.create_engine(self.conn_string_for_shard(shard),
                                  connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[key] = engine
        while len(self._engines) > MAX_OPEN_DATABASES:
            self._engines.popitem(last=False)[1].dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        import sqlalchemy as sa

        with self._db_lock:
            with self._engine(shard).connect() as conn:
                with conn.begin():
                    yield conn
                if shard != INDEX_SHARD_NAME:
                    # Dagster's databases are in WAL mode, and closing the last connection checkpoints the
                    # log into the .db file: what the UI's live view of a run watches (the index is not watched).
                    conn.execute(sa.text("PRAGMA wal_checkpoint(PASSIVE)"))

    def has_table(self, table_name: str) -> bool:
        """Whether the index has the table, through its open engine; a table once present is remembered.

        Dagster asks before every asset-check event (``supports_asset_checks``), each time with an
        engine and a connection of its own: 570 of them in a demo run. Dagster's migrations only add
        tables and ``wipe`` forgets what is remembered; an absent table is asked again every time.
        """
        if table_name in self._tables_present:
            return True
        if INDEX_SHARD_NAME not in self._initialized_dbs:  # not set up yet (or just wiped): Dagster's way
            present = super().has_table(table_name)
        else:
            with self._db_lock:
                engine = self._engine(INDEX_SHARD_NAME)
                with engine.connect() as conn:
                    present = bool(engine.dialect.has_table(conn, table_name))
        if present:
            self._tables_present.add(table_name)
        return present

    def _close_all(self) -> None:
        while self._engines:
            self._engines.popitem()[1].dispose()

    def wipe(self) -> None:
        with self._db_lock:
            self._close_all()  # before the run databases' files are deleted
            self._tables_present.clear()
            super().wipe()
            self._close_all()

    def dispose(self) -> None:
        super().dispose()  # stops the watchers first: none of them opens an engine after this
        with self._db_lock:
            self._close_all()
