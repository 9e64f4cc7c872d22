"""Waiting for the backend to reflect what a device did, in tests: `eventually` in the test's event loop,
`wait_until` where the test itself blocks (real processes polled over HTTP)."""

import asyncio
import time


async def eventually(check, timeout=5.0, interval=0.02):
    """Poll an async check until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            assert value, f"not true within {timeout} s: {value!r}"
            return value
        await asyncio.sleep(interval)


def wait_until(check, timeout=5.0, what="the check", interval=0.05):
    """Call `check` until it returns something truthy; return that, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not true within {timeout} s (last: {value!r})")
        time.sleep(interval)
    return value


async def detail(api, uid):
    """The device detail payload (`data`) of `uid`."""
    _, body = await api.get(f"/v1/user/devices/{uid}")
    return body["data"]


async def online_detail(api, uid):
    """The detail of `uid` once it is online, else None (for eventually())."""
    data = await detail(api, uid)
    return data if data["status"] == "online" else None


async def final_command(api, uid, command_id):
    """The command once it reached a final state, else None (for eventually())."""
    _, body = await api.get(f"/v1/user/devices/{uid}/commands/{command_id}")
    return body["data"] if body["data"]["state"] in ("done", "failed", "expired") else None


async def send_command(api, uid, payload):
    """POST a custom command and wait for its final state."""
    status, answer = await api.post(f"/v1/user/devices/{uid}/commands", json={"payload": payload})
    assert status == 200, answer
    return await eventually(lambda: final_command(api, uid, answer["id"]))
