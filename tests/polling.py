"""Waiting for the backend to reflect what a device did, in tests."""

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


async def detail(api, uid):
    """The device detail payload (`data`) of `uid`."""
    _, body = await api.get(f"/v1/user/devices/{uid}")
    return body["data"]
