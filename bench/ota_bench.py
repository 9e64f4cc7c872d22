"""OTA benchmark: one bundle OTA of ~1 MB to many emulated boards at once, through the real backend.

One `mpfleet serve` (bench/backend.py: free ports, a fresh data dir, the embedded broker, the device listener on
127.0.0.1), BOARDS boards run by one `mpfleet emulate` (the MicroPython unix port, each in its own flash directory
built by tools/firmware_build.py, restarted on reset as the emulator does). A bundle is made by `mpfleet bundle`
with a 1 MB file of random bytes added to the firmware; each board gets it as its own upload (one blob on disk:
same md5), set as its target, and `POST .../ota`. Then:

- wall time from the first OTA request until every job is final, and how many are `updated` (target: all);
- the backend's peak RSS growth over its idle size while the boards download (target < 50 MB);
- the boards' heap during an OTA is bench/firmware_memory.py's (its OTA check, at falling heap sizes): these boards
  run the unix port's default heap, where the figure would mean little;
- incremental against full: a second bundle that differs from the first by one file, sent to one board: the bytes
  the backend served for that job (`bytes_served`) against the bundle's size.

Run: `.venv/bin/python bench/ota_bench.py` (--boards N, --timeout S, --keep). Exit code 0 whatever the figures.
"""

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
from backend import MPFLEET, Backend, free_port, memory_kb
from mpfleet.tools.firmware_build import build

BOARDS = 50
BUNDLE_FILLER = 1024 * 1024  # bytes of random data added to the firmware: a ~1 MB bundle
TARGET_RSS_MB = 50
TARGET_HEAP_KB = 8
TIMEOUT = 600.0  # seconds for every job to be final
FINAL = ("updated", "failed", "rolled_back", "expired")


def make_bundle(work, name, version, extra):
    """`mpfleet bundle` of the firmware plus the files `extra` ({name: bytes}); returns its path."""
    paths = []
    (work / name).mkdir()
    for file_name, data in extra.items():
        path = work / name / file_name  # its name in the bundle
        path.write_bytes(data)
        paths += ["--add", str(path)]
    out = work / f"{name}.bundle"
    subprocess.run([str(MPFLEET), "bundle", "--version", version, *paths, "-o", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return out


def flash_for(built, flash, registration, ca):
    shutil.copytree(built, flash)
    config = {"wifi": {"ssid": "bench", "password": "secret"},
              "mqtt": {"host": "127.0.0.1", "port": registration["port"], "uid": registration["uid"],
                       "password": registration["password"], "ca": ca},
              "board": "unix"}
    (flash / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (flash / "settings.json").write_text(json.dumps({"period": 60}) + "\n")


class RssWatch:
    """The peak RSS of a process, sampled every 0.1 s in a thread."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = memory_kb(pid, "VmRSS")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, memory_kb(self.pid, "VmRSS"))

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.peak


async def start_otas(server, uids, bundle, version):
    """Upload `bundle` to each device, set it as the target, trigger the OTA. Returns when all are triggered."""
    headers = {"Authorization": f"Bearer {server.token}"}
    limit = asyncio.Semaphore(10)
    async with aiohttp.ClientSession(server.base, headers=headers) as http:
        async def one(uid):
            async with limit:
                form = aiohttp.FormData()
                form.add_field("file", bundle.read_bytes(), filename=bundle.name)
                form.add_field("name", "bench")
                form.add_field("version", version)
                async with http.post(f"/v1/user/devices/{uid}/firmwares", data=form) as response:
                    body = await response.json()
                    if response.status != 201:
                        raise RuntimeError(f"upload: HTTP {response.status} {body}")
                    md5 = body["data"]["md5"]
                async with http.post(f"/v1/user/devices/{uid}/firmwares/set-target", json={"md5": md5}) as response:
                    if response.status != 200:
                        raise RuntimeError(f"set-target: HTTP {response.status} {await response.text()}")
                async with http.post(f"/v1/user/devices/{uid}/ota") as response:
                    if response.status != 200:
                        raise RuntimeError(f"ota: HTTP {response.status} {await response.text()}")
        await asyncio.gather(*(one(uid) for uid in uids))


async def wait_jobs(server, uids, timeout):
    """{uid: job} once every job is final, or as they stand after `timeout`."""
    headers = {"Authorization": f"Bearer {server.token}"}
    jobs = {}
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(server.base, headers=headers) as http:
        async def one(uid):
            async with http.get(f"/v1/user/devices/{uid}/ota") as response:
                jobs[uid] = (await response.json())["data"]
        while time.monotonic() < deadline:
            await asyncio.gather(*(one(uid) for uid in uids if (jobs.get(uid) or {}).get("state") not in FINAL))
            if all(job and job["state"] in FINAL for job in jobs.values()) and len(jobs) == len(uids):
                break
            await asyncio.sleep(1)
    return jobs


def wait_online(server, count, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.online_devices() >= count:
            return True
        time.sleep(0.5)
    return False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boards", type=int, default=BOARDS)
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds for every job to be final")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs of every board)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="mpfleet-ota-"))
    server = Backend("embedded", work, work / "data",
                     extra_args=["--public-host", "127.0.0.1", "--device-port", str(free_port())])
    emulator = None
    try:
        built = work / "built"
        build(built)
        full = make_bundle(work, "v2", "2.0.0", {"filler.bin": os.urandom(BUNDLE_FILLER)})
        server.start()
        credentials, _ = server.register(args.boards, "ota")
        ca = server.ca_file().read_text()
        dirs = []
        for i, registration in enumerate(credentials):
            flash_for(built, work / f"board-{i}", registration, ca)
            dirs.append(str(work / f"board-{i}"))
        uids = [c["uid"] for c in credentials]
        log_path = work / "emulate.log"
        with open(log_path, "w") as log:
            emulator = subprocess.Popen([str(MPFLEET), "emulate", "--no-build", *dirs], stdout=log,
                                        stderr=subprocess.STDOUT)
        if not wait_online(server, args.boards):
            raise RuntimeError(f"only {server.online_devices()} of {args.boards} boards came online")
        server.wait_idle()
        idle_kb = memory_kb(server.pid, "VmRSS")
        print(f"OTA benchmark: {args.boards} emulated boards (mpfleet emulate), one bundle of "
              f"{full.stat().st_size:,} bytes each, embedded broker, device listener over verified TLS")
        watch = RssWatch(server.pid)
        started = time.monotonic()
        asyncio.run(start_otas(server, uids, full, "2.0.0"))
        jobs = asyncio.run(wait_jobs(server, uids, args.timeout))
        wall = time.monotonic() - started
        peak_kb = watch.stop()
        updated = sum(1 for job in jobs.values() if job and job["state"] == "updated")
        states = {}
        for job in jobs.values():
            state = job["state"] if job else "none"
            states[state] = states.get(state, 0) + 1
        verdict = "PASS" if updated == args.boards else "MISS"
        print(f"  updated: {updated} of {args.boards} ({', '.join(f'{k} {v}' for k, v in sorted(states.items()))})"
              f" target all: {verdict}")
        print(f"  wall time, first OTA request to every job final: {wall:.1f} s")
        growth_mb = (peak_kb - idle_kb) / 1024
        print(f"  backend RSS: idle {idle_kb / 1024:.1f} MB, peak {peak_kb / 1024:.1f} MB, growth {growth_mb:.1f} MB "
              f"(target < {TARGET_RSS_MB} MB: {'PASS' if growth_mb < TARGET_RSS_MB else 'MISS'})")
        print("  board heap above steady state during an OTA: measured by bench/firmware_memory.py's OTA check at "
              f"falling heap sizes (target <= {TARGET_HEAP_KB} KB); the boards here run the unix port's default heap")

        # Incremental: a bundle differing from the one now running by one file, to one board.
        one_more = make_bundle(work, "v3", "3.0.0", {"filler.bin": (work / "v2" / "filler.bin").read_bytes(),
                                                     "note.txt": b"one more file\n"})
        asyncio.run(start_otas(server, uids[:1], one_more, "3.0.0"))
        job = asyncio.run(wait_jobs(server, uids[:1], 120))[uids[0]]
        served, size = job.get("bytes_served"), one_more.stat().st_size
        print(f"  incremental OTA of a one-file change: {job['state']}, {served:,} bytes served of a {size:,}-byte "
              f"bundle ({served / size:.1%}); a full download serves {size:,}")
        if args.keep:
            print(f"work dir kept: {work}")
    finally:
        if emulator is not None and emulator.poll() is None:
            emulator.terminate()
            try:
                emulator.wait(timeout=20)
            except subprocess.TimeoutExpired:
                emulator.kill()
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
