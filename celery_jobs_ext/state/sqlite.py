"""Shared state in one SQLite file: the embedded default for a single machine.

WAL mode lets readers and one writer work at once; every batch is one
``BEGIN IMMEDIATE`` transaction, so increments from the worker's several
processes never lose an update. The clock is this machine's (there is only one).
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from typing import Any

from celery_jobs_ext.errors import StateUnavailable
from celery_jobs_ext.state.base import Op, Script, StateBackend, handlers

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, value INTEGER NOT NULL, expires REAL);
CREATE TABLE IF NOT EXISTS hashes (
    key TEXT NOT NULL, field TEXT NOT NULL, value REAL NOT NULL, expires REAL,
    PRIMARY KEY (key, field)
);
CREATE TABLE IF NOT EXISTS strings (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (key, field)
);
CREATE TABLE IF NOT EXISTS expiring (
    key TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL, expires REAL NOT NULL,
    PRIMARY KEY (key, field)
);
"""

_TABLES = ("counters", "hashes", "strings", "settings", "expiring")
#: Tables whose rows expire (``settings`` rows do not).
_EXPIRING_TABLES = ("counters", "hashes", "strings", "expiring")

#: How often (in operations) expired rows are swept; reads already ignore them.
_SWEEP_EVERY = 1000


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL (SQLAlchemy's form)."""
    path = url.split("://", 1)[1]
    if path.startswith("/"):
        path = path[1:]
    return path


class SQLiteState(StateBackend):
    """:class:`StateBackend` on a SQLite file shared by the processes of one machine."""

    def __init__(self, url: str, prefix: str = "jobs:", timeout: float | None = None) -> None:
        super().__init__(url, prefix)
        self.path = sqlite_path(url)
        #: How long a transaction waits for another process's lock before it fails.
        self.busy_timeout = 30.0 if timeout is None else timeout
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._operations = 0
        self._do = handlers(self, "_do_")

    def _unavailable(self, exc: Exception) -> StateUnavailable:
        return StateUnavailable(
            f"Shared state at jobs_state_url={self.url} is not usable "
            f"(SQLite file {os.path.abspath(self.path)!r}): {exc}"
        )

    def _connect(self) -> sqlite3.Connection:
        connection = self._connection
        if connection is not None:
            return connection
        try:
            directory = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(directory):
                raise sqlite3.OperationalError(f"directory {directory!r} does not exist")
            connection = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        self._connection = connection
        return connection

    def execute(self, ops: Sequence[Op]) -> list[Any]:
        with self._lock:
            connection = self._connect()
            now = time.time()
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    results = [self._do[op.name](connection, now, *op.args) for op in ops]
                    self._operations += len(ops)
                    if self._operations >= _SWEEP_EVERY:
                        self._operations = 0
                        self._sweep(connection, now)
                    connection.execute("COMMIT")
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._unavailable(exc) from exc
            return results

    def _do_incr(self, db: sqlite3.Connection, now: float, key: str, amount: int, ttl: float | None) -> int:
        key = self.prefix + key
        expires = None if ttl is None else now + ttl
        row = db.execute("SELECT value, expires FROM counters WHERE key = ?", (key,)).fetchone()
        unusable = row is not None and (not isinstance(row[0], int) or not _finite(row[1], none=True))
        if row is None or unusable or (row[1] is not None and row[1] <= now):
            db.execute(
                "INSERT OR REPLACE INTO counters (key, value, expires) VALUES (?, ?, ?)",
                (key, amount, expires),
            )
            return amount
        value = int(row[0]) + amount
        db.execute("UPDATE counters SET value = ? WHERE key = ?", (value, key))
        return value

    def _do_get_counters(self, db: sqlite3.Connection, now: float, keys: tuple[str, ...]) -> list[int]:
        values = []
        for key in keys:
            row = db.execute(
                "SELECT value FROM counters WHERE key = ? AND (expires IS NULL OR expires > ?)",
                (self.prefix + key, now),
            ).fetchone()
            values.append(int(row[0]) if row else 0)
        return values

    def _do_hincr(
        self, db: sqlite3.Connection, now: float, key: str, fields: dict[str, float], ttl: float | None
    ) -> None:
        key = self.prefix + key
        db.execute("DELETE FROM hashes WHERE key = ? AND expires <= ?", (key, now))
        # Like Redis, the whole hash expires once, counted from its creation.
        row = db.execute("SELECT expires FROM hashes WHERE key = ? LIMIT 1", (key,)).fetchone()
        expires = row[0] if row is not None else (None if ttl is None else now + ttl)
        for name, amount in fields.items():
            db.execute(
                "INSERT INTO hashes (key, field, value, expires) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key, field) DO UPDATE SET value = value + excluded.value",
                (key, name, amount, expires),
            )

    def _do_hgetall(
        self, db: sqlite3.Connection, now: float, keys: tuple[str, ...]
    ) -> list[dict[str, float]]:
        result = []
        for key in keys:
            rows = db.execute(
                "SELECT field, value FROM hashes WHERE key = ? AND (expires IS NULL OR expires > ?)",
                (self.prefix + key, now),
            ).fetchall()
            result.append({field: _number(value) for field, value in rows})
        return result

    def _do_script(
        self, db: sqlite3.Connection, now: float, script: Script, keys: tuple[str, ...], args: tuple[Any, ...]
    ) -> Any:
        return script.python(_Transaction(self, db, now), keys, args)

    def _do_hset(self, db: sqlite3.Connection, now: float, key: str, fields: dict[str, str]) -> None:
        for name, value in fields.items():
            db.execute(
                "INSERT OR REPLACE INTO settings (key, field, value) VALUES (?, ?, ?)",
                (self.prefix + key, name, value),
            )

    def _do_hdel(self, db: sqlite3.Connection, now: float, key: str, fields: tuple[str, ...]) -> int:
        deleted = 0
        for name in fields:
            cursor = db.execute("DELETE FROM settings WHERE key = ? AND field = ?", (self.prefix + key, name))
            deleted += cursor.rowcount
        return deleted

    def _do_hgetall_text(self, db: sqlite3.Connection, now: float, key: str) -> dict[str, str]:
        rows = db.execute("SELECT field, value FROM settings WHERE key = ?", (self.prefix + key,)).fetchall()
        return dict(rows)

    def _do_delete(self, db: sqlite3.Connection, now: float, keys: tuple[str, ...]) -> None:
        for key in keys:
            for table in _TABLES:
                db.execute(f"DELETE FROM {table} WHERE key = ?", (self.prefix + key,))  # noqa: S608

    def _do_put_expiring(
        self, db: sqlite3.Connection, now: float, key: str, field: str, value: str, ttl: float
    ) -> None:
        if ttl <= 0:
            db.execute("DELETE FROM expiring WHERE key = ? AND field = ?", (self.prefix + key, field))
            return
        db.execute(
            "INSERT OR REPLACE INTO expiring (key, field, value, expires) VALUES (?, ?, ?, ?)",
            (self.prefix + key, field, value, now + ttl),
        )

    def _do_get_expiring(self, db: sqlite3.Connection, now: float, key: str) -> dict[str, str]:
        key = self.prefix + key
        db.execute("DELETE FROM expiring WHERE key = ? AND expires <= ?", (key, now))
        return dict(db.execute("SELECT field, value FROM expiring WHERE key = ?", (key,)).fetchall())

    def _sweep(self, db: sqlite3.Connection, now: float) -> None:
        for table in _EXPIRING_TABLES:
            db.execute(f"DELETE FROM {table} WHERE expires <= ?", (now,))  # noqa: S608

    def now(self) -> float:
        return time.time()

    def ping(self) -> None:
        # A write, not a read: an unwritable file must fail here, at start-up.
        self.execute([Op("incr", ("ping", 1, 60.0))])

    def clear_prefix(self) -> int:
        pattern = self.prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        deleted = 0
        with self._lock:
            connection = self._connect()
            try:
                connection.execute("BEGIN IMMEDIATE")
                for table in _TABLES:
                    cursor = connection.execute(
                        f"DELETE FROM {table} WHERE key LIKE ? ESCAPE '\\'",  # noqa: S608
                        (pattern,),
                    )
                    deleted += cursor.rowcount
                connection.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._unavailable(exc) from exc
        return deleted

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class _Transaction:
    """A :class:`~celery_jobs_ext.state.base.Transaction` on the batch's open SQLite transaction."""

    def __init__(self, state: SQLiteState, db: sqlite3.Connection, now: float) -> None:
        self.state, self.db, self.now = state, db, now

    def get(self, key: str) -> str | None:
        row = self.db.execute(
            "SELECT value FROM strings WHERE key = ? AND (expires IS NULL OR expires > ?)",
            (self.state.prefix + key, self.now),
        ).fetchone()
        return None if row is None else str(row[0])

    def set(self, key: str, value: str, ttl: float) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO strings (key, value, expires) VALUES (?, ?, ?)",
            (self.state.prefix + key, value, self.now + ttl),
        )

    def incr(self, key: str, amount: int, ttl: float | None) -> int:
        return self.state._do_incr(self.db, self.now, key, amount, ttl)


def _finite(value: Any, none: bool = False) -> bool:
    """A number SQLite gave back as one, and finite (a column may hold text: SQLite does not check)."""
    if value is None:
        return none
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: float) -> float:
    return int(value) if float(value).is_integer() else value
