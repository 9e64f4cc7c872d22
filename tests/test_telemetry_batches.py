"""TelemetryBatches on a real database: a waiter that gives up does not stop the others."""

import asyncio

from mpfleet.backend import telemetry_batches
from mpfleet.backend.storage import Storage
from mpfleet.backend.telemetry_batches import TelemetryBatches


async def test_a_waiter_cancelled_on_its_commit_stops_neither_its_batch_nor_the_writer(tmp_path, monkeypatch):
    # A task cancelled while it awaits a future cancels that future, and a batch's future is shared by
    # all its messages. Seen with the embedded broker (a board's connection lost while its PUBACK
    # waited): the writer died on setting the cancelled future's result, and no later batch was
    # ever written or acknowledged.
    monkeypatch.setattr(telemetry_batches, "WRITE_GAP_SECONDS", 0.3)
    storage = Storage(tmp_path)
    await storage.open()
    user, _ = await storage.users.create("alice")
    device = await storage.devices.create(user.id, name="d", description=None, platform_key="unix",
                                          board_key="unix", password="pw")
    batches = TelemetryBatches(storage)
    writing = asyncio.create_task(batches.run())
    try:
        # Cancelled during its batch's write.
        waiter = asyncio.create_task(wait_for_commit(batches.take(device.uid, b'{"values":{"n":1}}')))
        await until(lambda: batches._writing)
        waiter.cancel()
        await asyncio.wait_for(asyncio.shield(batches.take(device.uid, b'{"values":{"n":2}}')), 2.0)
        assert not writing.done(), writing  # (a dead writer's last act writes what it was left)
        # Cancelled before its batch's write (the batch waits for the gap after the last write).
        waiter = asyncio.create_task(wait_for_commit(batches.take(device.uid, b'{"values":{"n":3}}')))
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.wait_for(asyncio.shield(batches.take(device.uid, b'{"values":{"n":4}}')), 2.0)
        assert not writing.done()
    finally:
        writing.cancel()
        await asyncio.gather(writing, return_exceptions=True)
    stored = await storage.telemetry.history(device, key="n", limit=10)
    await storage.close()

    assert sorted(sample.value for sample in stored) == [1, 2, 3, 4]


async def wait_for_commit(future):
    await future  # unshielded, as take() says not to


async def until(condition, timeout=2.0):
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0)
