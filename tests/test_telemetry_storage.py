"""Telemetry in storage: batches, latest values, retention."""

import time

from mpfleet.backend.storage import Storage


async def open_storage(tmp_path):
    storage = Storage(tmp_path)
    await storage.open()
    user, _ = await storage.users.create("alice")
    device = await storage.devices.create(user.id, name="d", description=None, platform_key="unix",
                                          board_key="unix", password="pw")
    return storage, device


async def test_a_batch_skips_rows_of_unknown_devices_and_keeps_the_newest_latest(tmp_path):
    storage, device = await open_storage(tmp_path)
    stored = await storage.telemetry.add_batch([
        (device.uid, "t", 100.0, 20.5),
        ("unix_deleted0000", "t", 100.0, 1),  # a device deleted while its rows waited
        (device.uid, "t", 300.0, 22.5),
        (device.uid, "t", 200.0, 21.5),  # late, older sample: history yes, latest no
        (device.uid, "mode", 150.0, "eco"),
    ])
    assert stored == 4
    history = await storage.telemetry.history(device, key="t", limit=10)
    assert [(s.ts, s.value) for s in history] == [(300.0, 22.5), (200.0, 21.5), (100.0, 20.5)]
    latest = {s.key: s.value for s in await storage.telemetry.latest(device)}
    assert latest == {"t": 22.5, "mode": "eco"}
    assert (await storage.devices.get(device.user_id, device.uid)).last_seen_at is not None
    await storage.close()


async def test_retention_prunes_old_rows_in_batches(tmp_path, monkeypatch):
    from mpfleet.backend.storage import telemetry

    monkeypatch.setattr(telemetry, "_PRUNE_BATCH", 7)  # several rounds
    storage, device = await open_storage(tmp_path)
    now = time.time()
    old = [(device.uid, "t", now - 40 * 86400 + i, i) for i in range(20)]
    fresh = [(device.uid, "t", now - 86400 + i, i) for i in range(5)]
    await storage.telemetry.add_batch(old + fresh)
    assert await storage.telemetry.prune(30, now=now) == 20
    remaining = await storage.telemetry.history(device, limit=100)
    assert sorted(s.value for s in remaining) == [0, 1, 2, 3, 4]
    assert await storage.telemetry.prune(30, now=now) == 0
    await storage.close()
