"""SLOW (15-35 s): a 12 s broker outage. The board keeps sampling (every 5 s: two samples or more while the broker
is down), then reconnects by itself (jittered exponential backoff: the attempt due after 12 s of failures is 8-16 s
after the previous one) and publishes the kept samples with their original `ts`. Deselect with -k 'not slow'.
"""

import asyncio
import time
from datetime import datetime

import pytest

from ..conftest import Backend
from ..polling import eventually, online_detail
from ..server_process import free_port
from .device_harness import Board, make_flash

pytestmark = pytest.mark.network

OUTAGE = 12.0


def unix(ts):
    return ts if isinstance(ts, (int, float)) else datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


async def test_slow_a_broker_outage_is_survived_and_the_kept_samples_arrive(built_flash, tmp_path):
    port = free_port()
    backend = Backend(tmp_path / "var", mqtt_tls_port=port)
    await backend.start()
    api = await backend.api_for("alice")
    registered = await api.register(name="emulated", platform="unix", board="unix")
    uid = registered["uid"]
    assert registered["mqtt"]["port"] == port
    async with Board(make_flash(built_flash, tmp_path / "flash", registered)) as board:
        try:
            await eventually(lambda: online_detail(api, uid))
            await board.wait_for(r"link: online as")  # subscribed too: the session is complete
            await backend.stop()
            down_at = time.time()
            await board.wait_for(r"link: session lost")
            await asyncio.sleep(OUTAGE)
            up_at = time.time()
            await backend.start()  # same data dir, same TLS port
            await eventually(lambda: online_detail(api, uid), timeout=30)  # backoff: up to 16 s by now
            assert board.exits == []

            async def kept():
                _, body = await api.get(f"/v1/user/devices/{uid}/telemetry?key=uptime&limit=100")
                during = [s for s in body["data"] if down_at + 1 <= unix(s["ts"]) <= up_at]
                return during if len(during) >= 2 else None

            during = await eventually(kept, timeout=10)
            uptimes = sorted(s["value"] for s in during)
            assert uptimes == sorted(set(uptimes))  # each sample once
        finally:
            await backend.stop()
