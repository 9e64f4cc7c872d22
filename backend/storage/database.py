"""The SQLite file: connections, migrations and write transactions.

Two connections to one WAL database: a writer, used only inside `transaction()`
under a lock so that concurrent requests never interleave statements of their
transactions, and a reader for single-statement reads, which in WAL mode sees
the last committed state and never waits for the writer.
"""

import asyncio
import logging
import sqlite3
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from importlib import resources

import aiosqlite

log = logging.getLogger(__name__)


def utc_now():
    """The current time as stored: ISO 8601 with an explicit UTC offset."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Database:
    def __init__(self, path):
        self.path = path
        self._writer = None
        self._reader = None
        self._write_lock = asyncio.Lock()
        self._on_commit = []

    async def open(self):
        self._writer = await self._connect()
        await self._writer.execute("PRAGMA journal_mode=WAL")
        await self._migrate()
        self._reader = await self._connect()

    async def close(self):
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    async def _connect(self):
        # isolation_level=None: we issue BEGIN/COMMIT ourselves.
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA busy_timeout=5000")
        await conn.execute("PRAGMA synchronous=NORMAL")  # durable in WAL up to the last checkpointed commit
        return conn

    async def _migrate(self):
        """Apply numbered migrations (NNN_name.sql) above PRAGMA user_version, each atomically."""
        (version,) = await (await self._writer.execute("PRAGMA user_version")).fetchone()
        for number, name, sql in _migrations():
            if number <= version:
                continue
            log.info("applying migration %s", name)
            try:
                await self._writer.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;")
            except BaseException:
                await self._writer.rollback()
                raise

    @asynccontextmanager
    async def transaction(self):
        """Yield the writer inside BEGIN IMMEDIATE … COMMIT; roll back on any exception.

        Callbacks given to `on_commit()` run after COMMIT and before the lock is
        released, so file work that must follow the rows (removing a blob) can
        neither run for a rolled-back change nor race another write.
        """
        async with self._write_lock:
            self._on_commit = []
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._writer.rollback()
                raise
            await self._writer.commit()
            for callback in self._on_commit:
                callback()

    def on_commit(self, callback):
        """Run `callback()` once the current transaction has committed."""
        self._on_commit.append(callback)

    async def fetch_one(self, sql, params=()):
        rows = await self._reader.execute_fetchall(sql, params)
        return rows[0] if rows else None

    async def fetch_all(self, sql, params=()):
        return await self._reader.execute_fetchall(sql, params)


def _migrations():
    folder = resources.files(__package__) / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.name, entry.read_text()))
    return sorted(found)
