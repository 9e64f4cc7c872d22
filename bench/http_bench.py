"""HTTP benchmark of the mpfleet REST backend (run: `make bench`).

What is measured, against one `mpfleet serve` process on 127.0.0.1 with a fresh data dir:

* GET /v1/user/devices/{uid}  (device detail; bearer auth + 1 SQLite read per request)
* GET /v1/user/devices        (list of 50 devices)
  Both driven by `wrk -t1 -c50 -d10s --latency` (one wrk thread: the machine has
  2 cores, one for the single-threaded server, one for wrk). Reported: requests/s,
  mean and p99 latency, and non-2xx responses (must be 0).
  Target: >= 3000 req/s each.
* The device list with two filters over a fleet of 10,000 more devices (issue 11), registered over REST
  across every board, one in ten disabled; each answer a page of 50 and the count of all that match:
  GET /v1/user/devices?status=pending&platform=espressif32 (3,857 match: the count walks them all) and
  ?status=disabled&board=esp32dev (143 match). Without a filter (10,050 counted) for comparison.
  Driven by wrk as above. Target: >= 1000 req/s for the lists with two filters, 0 non-2xx; p99 reported.
* POST /v1/user/devices/{uid}/firmwares with 5 different random 4 MB files
  (exactly 4194304 bytes, sent by curl). Reported: time and MB/s of each upload,
  and the server's RSS growth during it (VmRSS sampled every ~1 ms, peak minus
  the value just before; VmHWM before/after as a cross-check).
  Target: RSS growth < 1 MiB, i.e. far below the 4 MB file: the server streams
  uploads to disk. Upload time is reported without a target.

Exit code is 0 whatever the figures; PASS/MISS is printed beside each target. `--only device-list` runs the
filtered list alone (on its fleet, without the other figures).
"""

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
from backend import Backend, memory_kb

DEVICES = 50
WRK_ARGS = ["-t1", "-c50", "-d10s", "--latency"]
UPLOADS = 5
UPLOAD_BYTES = 4 * 1024 * 1024
RPS_TARGET = 3000
RSS_TARGET_KB = 1024
FLEET = 10_000
FLEET_BOARDS = [("esp07s", "espressif8266"), ("d1_mini", "espressif8266"), ("nodemcuv2", "espressif8266"),
                ("esp32dev", "espressif32"), ("esp32-c3-devkitm-1", "espressif32"),
                ("esp32-s3-devkitc-1", "espressif32"), ("unix", "unix")]
FLEET_DISABLED_EVERY = 10
FILTERED_LISTS = ["/v1/user/devices?status=pending&platform=espressif32", "/v1/user/devices?status=disabled&board=esp32dev",
                  "/v1/user/devices"]
FILTERED_RPS_TARGET = 1000


def to_ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def run_wrk(url, token):
    cmd = ["wrk", *WRK_ARGS, "-H", f"Authorization: Bearer {token}", url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1)),
        "mean_ms": to_ms(re.search(r"^\s+Latency\s+(\S+)", out, re.M).group(1)),
        "p99_ms": to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def sample_peak_rss(pid, stop, result):
    peak = 0
    while not stop.is_set():
        peak = max(peak, memory_kb(pid, "VmRSS"))
        time.sleep(0.001)
    result.append(peak)


def upload(base, token, uid, path, pid):
    """One curl upload; returns (seconds, http status, RSS growth kB, VmHWM growth kB)."""
    before, hwm_before = memory_kb(pid, "VmRSS"), memory_kb(pid, "VmHWM")
    stop, peak = threading.Event(), []
    sampler = threading.Thread(target=sample_peak_rss, args=(pid, stop, peak))
    sampler.start()
    cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "--max-time", "60",
           "-H", f"Authorization: Bearer {token}", "-F", f"name={path.stem}", "-F", f"file=@{path}",
           f"{base}/v1/user/devices/{uid}/firmwares"]
    try:
        status, seconds = subprocess.run(cmd, capture_output=True, text=True, timeout=90).stdout.split()
    finally:
        stop.set()
        sampler.join()
    return float(seconds), int(status), max(peak[0], before) - before, memory_kb(pid, "VmHWM") - hwm_before


def bench_uploads(base, token, uid, pid, work_dir):
    results = []
    for i in range(UPLOADS):
        path = work_dir / f"fw{i}.bin"
        path.write_bytes(os.urandom(UPLOAD_BYTES))
        results.append(upload(base, token, uid, path, pid))
        path.unlink()
    return results


def register_fleet(server):
    """Register FLEET devices over REST, spread over FLEET_BOARDS with names and descriptions to search, and disable
    one in FLEET_DISABLED_EVERY. Returns the seconds it took."""
    started = time.monotonic()
    asyncio.run(_register_fleet(server))
    return time.monotonic() - started


async def _register_fleet(server):
    limit = asyncio.Semaphore(20)
    async with aiohttp.ClientSession(server.base, headers={"Authorization": f"Bearer {server.token}"}) as http:
        async def one(i):
            board, platform = FLEET_BOARDS[i % len(FLEET_BOARDS)]
            body = {"name": f"sensor {i:05d}", "platform": platform, "board": board, "description": f"floor {i % 12}"}
            async with limit:
                async with http.post("/v1/user/devices", json=body) as response:
                    uid = (await response.json())["data"]["uid"]
                if i % FLEET_DISABLED_EVERY == 0:
                    async with http.patch(f"/v1/user/devices/{uid}", json={"enabled": False}) as response:
                        assert response.status == 200, await response.text()
        await asyncio.gather(*(one(i) for i in range(FLEET)))


def bench_filtered_lists(server):
    """[(path, its meta.total, wrk's figures)] of FILTERED_LISTS, on a fleet registered first."""
    seconds = register_fleet(server)
    print(f"{FLEET} devices registered in {seconds:.0f} s")
    results = []
    for path in FILTERED_LISTS:
        status, body = server.call("GET", path)
        assert status == 200, body
        server.wait_idle()
        results.append((path, body["meta"]["total"], run_wrk(server.base + path, server.token)))
    return results


def verdict(ok):
    return "PASS" if ok else "MISS"


def row(name, value, target="", result=""):
    print(f"{name:<64}{value:>16}  {target:<10}{result}")


def print_wrk(name, r, target=None):
    if target is None:
        row(f"{name}: req/s", f"{r['rps']:.0f}")
    else:
        row(f"{name}: req/s", f"{r['rps']:.0f}", f">= {target}", verdict(r["rps"] >= target))
    row(f"{name}: latency mean / p99", f"{r['mean_ms']:.1f} / {r['p99_ms']:.1f} ms")
    row(f"{name}: non-2xx responses", r["non2xx"], "0", verdict(r["non2xx"] == 0))
    if r["socket_errors"]:
        print(f"  wrk: {r['socket_errors']}")


def print_summary(detail, listing, filtered, uploads):
    print()
    row("figure", "value", "target", "result")
    for name, r in (("device detail", detail), ("list of 50 devices", listing)):
        if r is not None:
            print_wrk(name, r, RPS_TARGET)
    for path, total, r in filtered:
        query = path.partition("?")[2]
        name = f"list ?{query} ({total} match)" if query else f"list of all {total}"
        print_wrk(name, r, FILTERED_RPS_TARGET if query else None)
    for i, (seconds, status, rss_kb, hwm_kb) in enumerate(uploads, 1):
        mb_s = UPLOAD_BYTES / 1e6 / seconds
        row(f"upload {i} (4 MiB): HTTP {status}, time", f"{seconds * 1000:.0f} ms, {mb_s:.0f} MB/s",
            "201", verdict(status == 201))
        row(f"upload {i}: RSS / VmHWM growth", f"{rss_kb} / {hwm_kb} kB",
            f"< {RSS_TARGET_KB} kB", verdict(rss_kb < RSS_TARGET_KB))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", choices=["device-list"], help="run only the list with two filters over its fleet")
    only = parser.parse_args().only
    work_dir = Path(tempfile.mkdtemp(prefix="mpfleet-bench-"))
    # No OTA here: the device listener on a free port, so that a server on the default 8443 does not stop this one.
    server = Backend("embedded", work_dir, work_dir / "data", extra_args=("--device-port", "0"))
    detail = listing = None
    uploads = []
    try:
        server.start()
        base, token = server.base, server.token
        print(f"server pid {server.pid} on {base}; wrk {' '.join(WRK_ARGS)}")
        if only is None:
            devices, _ = server.register(DEVICES, "bench")
            uids = [device["uid"] for device in devices]
            print(f"{len(uids)} devices registered")
            detail = run_wrk(f"{base}/v1/user/devices/{uids[0]}", token)
            listing = run_wrk(f"{base}/v1/user/devices", token)
            uploads = bench_uploads(base, token, uids[1], server.pid, work_dir)
        filtered = bench_filtered_lists(server)
        print_summary(detail, listing, filtered, uploads)
    finally:
        server.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
