"""Telemetry on its way to storage: rows collected from device messages and written in batches,
each message's acknowledgement waiting for the commit of its batch.

Telemetry is the volume path, so it is not written message by message: rows wait in the current
batch, which is written in one transaction as soon as the previous write is WRITE_GAP_SECONDS
old, or at once when it holds BATCH_ROWS rows. A lone message is thus written at once, and a
busy stream in batches of WRITE_GAP_SECONDS' worth. `take()` returns the batch's future, done
once its rows are committed: a broker acknowledges a QoS 1 message only then (the bridge to
Mosquitto, the embedded broker to the device), so no message is acknowledged that a crash could
lose, and the acknowledgement waits at most WRITE_GAP_SECONDS plus a commit.

The backlog (rows taken and not yet committed) is bounded: at MAX_BACKLOG_ROWS `room` is cleared
and whoever feeds the batches stops reading until a write has made room again (backpressure),
so a slow disk makes brokers hold messages instead of this process growing or dropping them.
"""

import asyncio
import logging
import time
from collections import Counter

from . import schemas

log = logging.getLogger(__name__)

WRITE_GAP_SECONDS = 0.05  # from the start of one write to the next: at most 20 transactions a second
BATCH_ROWS = 2000  # a batch this large is written at once
MAX_BACKLOG_ROWS = 50_000  # taken but not committed; past this, reading stops until a write is done


class TelemetryBatches:
    """`run()` writes the batches for as long as it runs (cancel it to stop: it writes what is left)."""

    def __init__(self, storage, stats=None):
        self.storage = storage
        self.stats = Counter() if stats is None else stats  # received / malformed / rows stored ...
        self.room = asyncio.Event()  # set while the backlog is below MAX_BACKLOG_ROWS
        self.room.set()
        # Called with the rows of each committed batch; it must return at once (alarms.py queues them).
        self.on_stored = None
        self._rows = []
        self._committed = asyncio.get_running_loop().create_future()  # of the batch being filled
        self._writing = 0  # rows of the batch being written
        self._writer = None  # the task writing a batch
        self._waiting = asyncio.Event()  # rows are waiting
        self._full = asyncio.Event()  # BATCH_ROWS are waiting

    @property
    def backlog(self):
        """Rows taken and not committed yet."""
        return len(self._rows) + self._writing

    def take(self, uid, payload):
        """Queue the rows of one `telemetry` message of device `uid`. Returns the future of their
        commit, or None when there is nothing to store (a malformed message is counted and dropped).

        The future is the whole batch's: await it through asyncio.shield(), since a task cancelled
        while it awaits a future cancels that future, for every message of the batch.
        """
        self.stats["telemetry_received"] += 1
        try:
            samples = schemas.telemetry(payload, time.time())
        except schemas.BadMessage as error:
            self.stats["telemetry_malformed"] += 1
            log.debug("dropped telemetry from %s: %s", uid, error)
            return None
        if self._committed.cancelled():  # by a waiter, unshielded: the rows from now on get a future of their own
            self._committed = asyncio.get_running_loop().create_future()
        self._rows.extend((uid, key, ts, value) for key, ts, value in samples)
        self._waiting.set()
        if len(self._rows) >= BATCH_ROWS:
            self._full.set()
        if self.backlog >= MAX_BACKLOG_ROWS:
            self.room.clear()
        return self._committed

    async def run(self):
        """Write batches until cancelled; then finish the write under way (a write is never cut short:
        its commit may already be happening) and write what is left."""
        loop = asyncio.get_running_loop()
        last_write = loop.time() - WRITE_GAP_SECONDS
        try:
            while True:
                await self._waiting.wait()
                gap = last_write + WRITE_GAP_SECONDS - loop.time()
                if gap > 0:
                    try:
                        await asyncio.wait_for(self._full.wait(), gap)
                    except TimeoutError:
                        pass
                self._waiting.clear()
                self._full.clear()
                last_write = loop.time()
                self._writer = asyncio.ensure_future(self._write())
                await asyncio.shield(self._writer)
        finally:
            if self._writer is not None:
                await asyncio.wait([self._writer])
            await self._write()

    async def _write(self):
        rows, committed = self._rows, self._committed
        if not rows:
            return
        self._rows, self._committed = [], asyncio.get_running_loop().create_future()
        self._writing = len(rows)
        try:
            self.stats["telemetry_rows_stored"] += await self.storage.telemetry.add_batch(rows)
        except Exception as error:
            # Nothing of the batch is acknowledged: the brokers keep its messages, or the devices send them again.
            log.exception("could not store %d telemetry rows", len(rows))
            if not committed.done():
                committed.set_exception(error)
                committed.exception()  # retrieved here: a batch of QoS 0 messages has nobody waiting
        else:
            if not committed.done():  # (cancelled by a waiter: setting it would end this writer for good)
                committed.set_result(None)
            if self.on_stored is not None:
                self.on_stored(rows)
        finally:
            self._writing = 0
            if len(self._rows) < MAX_BACKLOG_ROWS:
                self.room.set()
