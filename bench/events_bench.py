"""Live events benchmark (issue 11): 100 WebSocket clients watching while telemetry ingest runs at 5,000 msgs/s.

One `mpfleet serve` bridged to Mosquitto 2 (bench/backend.py; the devices' accounts written into its dynamic
security file before it starts, as bench/mqtt_bench.py does). Twice, the ingest of bench/mqtt_bench.py (10
`mosquitto_pub` devices paced at 1.1 x 5,000 msgs/s for ~10 s, QoS 0): first alone, then with WATCHERS clients on
GET /v1/user/events (aiohttp, all with the admin's token) while FLAPPERS other devices switch their status between
online and offline, FLAPS_PER_S changes a second in all (each change a `device_status_update` for every watcher).

Reported: the ingest rate alone and watched (target: unchanged, within 10 %), the status changes published, and
per watcher the events it received: every watcher gets every event (or was cut off, code 1008, which is counted).

Run: `.venv/bin/python bench/events_bench.py` (--watchers N, --keep). Exit code 0 whatever the figures.
"""

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
from backend import Backend, stop_and_clean
from mqtt_bench import bench_ingest

WATCHERS = 100
FLAPPERS = 20
FLAPS_PER_S = 20
INGEST = {"ingest_messages": 55_000, "ingest_devices": 10, "ingest_target": 5_000}
TARGET_RATE_SHARE = 0.9  # watched ingest >= this x the rate alone


class Watchers:
    """WATCHERS WebSocket clients in a thread of their own, counting the status events each gets."""

    def __init__(self, backend, count):
        self.url = backend.base.replace("http://", "ws://") + "/v1/user/events"
        self.token = backend.token
        self.count = count
        self.received = [0] * count
        self.cut_off = 0
        self.ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._run(),), daemon=True)

    def __enter__(self):
        self._thread.start()
        if not self.ready.wait(60):
            raise RuntimeError("the watchers did not connect within 60 s")
        return self

    def __exit__(self, *exc):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    async def _run(self):
        self._stop = asyncio.Event()
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.token}"}) as session:
            sockets = [await session.ws_connect(self.url) for _ in range(self.count)]
            self.ready.set()
            readers = [asyncio.create_task(self._read(n, ws)) for n, ws in enumerate(sockets)]
            await self._stop.wait()
            for reader in readers:
                reader.cancel()
            for ws in sockets:
                await ws.close()

    async def _read(self, n, ws):
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                if json.loads(message.data)["type"] == "device_status_update":
                    self.received[n] += 1
        if ws.close_code == 1008:
            self.cut_off += 1


def flap(backend, devices, per_second, stop):
    """Switch the devices' retained status online/offline, `per_second` changes a second in all, until `stop`.
    Returns the changes published."""
    publishers = [subprocess.Popen(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(backend.tls_port), "--cafile", str(backend.ca_file()),
         "-u", d["uid"], "-P", d["password"], "-i", d["uid"], "-t", f"mpfleet/v1/{d['uid']}/status", "-r", "-q", "1",
         "-l"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for d in devices]
    online = [False] * len(devices)
    changes, n = 0, 0
    try:
        while not stop.is_set():
            i = n % len(devices)
            online[i] = not online[i]
            status = {"online": True, "ip": "10.0.0.2", "rssi": -60, "boot": 1} if online[i] else {"online": False}
            publishers[i].stdin.write((json.dumps(status) + "\n").encode())
            publishers[i].stdin.flush()
            changes, n = changes + 1, n + 1
            time.sleep(1 / per_second)
    finally:
        for p in publishers:
            p.stdin.close()
        for p in publishers:
            p.wait(timeout=30)
    return changes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--watchers", type=int, default=WATCHERS)
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, data) for a look")
    args = parser.parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="mpfleet-events-bench-"))
    data_dir = work_dir / "data"
    backend = Backend("embedded", work_dir, data_dir).start()
    try:
        devices, _ = backend.register(INGEST["ingest_devices"] + FLAPPERS, "events")
        backend.stop()
        backend = Backend("mosquitto", work_dir, data_dir, accounts=devices).start()
        ingest, flappers = devices[:INGEST["ingest_devices"]], devices[INGEST["ingest_devices"]:]
        print("mosquitto: ingest alone ...", flush=True)
        alone = bench_ingest(backend, ingest, INGEST, 0, work_dir)
        print(f"mosquitto: ingest with {args.watchers} watchers and {FLAPS_PER_S} status changes a second ...",
              flush=True)
        with Watchers(backend, args.watchers) as watchers:
            stop, flapped = threading.Event(), []
            flapper = threading.Thread(target=lambda: flapped.append(flap(backend, flappers, FLAPS_PER_S, stop)))
            flapper.start()
            watched = bench_ingest(backend, ingest, INGEST, 0, work_dir)
            stop.set()
            flapper.join()
            time.sleep(2)  # the last events on their way
        report(alone, watched, flapped[0], watchers)
    finally:
        stop_and_clean(backend, work_dir, args.keep)
    return 0


def report(alone, watched, changes, watchers):
    share = watched["rate"] / alone["rate"]
    got = watchers.received
    complete = sum(n >= changes for n in got)
    print()
    print(f"{'figure':<60}{'value':>24}  {'target':<16}result")
    print(f"{'mosquitto ingest alone: msgs/s (QoS 0)':<60}{alone['rate']:>24,.0f}  {'>= 5,000':<16}"
          f"{'PASS' if alone['rate'] >= 5000 else 'MISS'}")
    print(f"{f'mosquitto ingest, {watchers.count} watchers: msgs/s (QoS 0)':<60}{watched['rate']:>24,.0f}  "
          f"{f'>= {TARGET_RATE_SHARE:.0%} of alone':<16}{'PASS' if share >= TARGET_RATE_SHARE else 'MISS'}")
    print(f"{'  stored / sent':<60}{watched['stored']:>12,} / {watched['sent']:<10,}  {'all':<16}"
          f"{'PASS' if watched['stored'] == watched['sent'] else 'MISS'}")
    print(f"{'status changes published meanwhile':<60}{changes:>24,}")
    print(f"{'  events a watcher got: min / max':<60}{min(got):>12,} / {max(got):<10,}")
    print("  (more events than changes: a flapper that ends online says goodbye, and the backend publishes its offline)")
    print(f"{'  watchers with every event, or cut off (1008)':<60}{complete:>12} + {watchers.cut_off:<10}  "
          f"{f'{watchers.count}':<16}{'PASS' if complete + watchers.cut_off == watchers.count else 'MISS'}")


if __name__ == "__main__":
    sys.exit(main())
