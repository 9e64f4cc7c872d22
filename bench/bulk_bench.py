"""Bulk command benchmark (issue 11): one command to 1,000 connected devices, until every device's is final.

Both broker paths, as bench/mqtt_bench.py runs them: `mpfleet serve` (bench/backend.py: free ports, a fresh data
dir) with its embedded broker, then on the same data dir bridged to Mosquitto 2 (dynamic security, the devices'
accounts written into its file before it starts). DEVICES devices are registered over REST once and held by
bench/mqtt_load.py in `ackers` mode: raw MQTT sessions over verified TLS, each acking every command `accepted`, then
`done`, as soon as it arrives. Then, per path, RUNS times one after another: POST /v1/user/commands (a reboot to the
devices' uids), and GET /v1/user/commands/bulk/{id} every POLL seconds until the job is finished. Reported per run:
the POST's answer time, the time from the POST until every device's command is final (target < 5 s), and the counts
(target: every device `done`).

Run: `.venv/bin/python bench/bulk_bench.py` (--paths embedded,mosquitto, --devices N, --runs N, --keep). Exit code 0
whatever the figures.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from backend import Backend, stop_and_clean
from mqtt_bench import LoadProcess, load_spec, wait_until

DEVICES = 1000
RUNS = 3
POLL = 0.05  # seconds between two reads of the job
TARGET_SECONDS = 5.0
TIMEOUT = 60.0


def run_job(backend, uids):
    """(seconds until the POST was answered, seconds until the job was finished or None, its counts)."""
    started = time.monotonic()
    body = {"target": {"uids": uids}, "command": {"type": "reboot"}}
    status, answer = backend.call("POST", "/v1/user/commands", body)
    answered = time.monotonic() - started
    if status != 202:
        raise RuntimeError(f"POST /v1/user/commands: HTTP {status} {answer}")
    job = answer["data"]
    while not job["finished"] and time.monotonic() - started < TIMEOUT:
        time.sleep(POLL)
        status, body = backend.call("GET", f"/v1/user/commands/bulk/{job['id']}?limit=1")
        if status != 200:
            raise RuntimeError(f"GET the job: HTTP {status} {body}")
        job = body["data"]
    final = time.monotonic() - started if job["finished"] else None
    return answered, final, job["counts"]


def bench_path(backend, devices, runs, work_dir):
    """[(answered, final, counts)] of `runs` jobs to `devices`, held online by an acker load on `backend`."""
    load = LoadProcess("ackers", load_spec(backend, devices, work_dir, "ackers", in_flight=100),
                       work_dir / f"{backend.path}-ackers.log")
    try:
        ready = load.next_event("ready", timeout=120)
        if wait_until(lambda: backend.online_devices() >= len(devices), timeout=60) is None:
            raise RuntimeError(f"only {backend.online_devices()} of {ready['sessions']} devices shown online")
        results = []
        for run in range(runs):
            print(f"{backend.path}: bulk reboot {run + 1} of {runs} to {len(devices)} devices (backend idle after "
                  f"{backend.wait_idle():.1f} s) ...", flush=True)
            results.append(run_job(backend, [device["uid"] for device in devices]))
        return results
    finally:
        load.kill()


def report(path, count, results):
    for run, (answered, final, counts) in enumerate(results, start=1):
        shown = "not within 60 s" if final is None else f"{final:.2f} s"
        passed = "PASS" if final is not None and final < TARGET_SECONDS else "MISS"
        print(f"{f'{path}: bulk command to {count} devices, run {run}: all final':<64}{shown:>22}  "
              f"{f'< {TARGET_SECONDS:g} s':<10}{passed}")
        print(f"{'  POST answered (202)':<64}{answered * 1000:>19.0f} ms")
        print(f"{'  counts':<64}{str(counts):>22}  {'all done':<10}"
              f"{'PASS' if counts == {'done': count} else 'MISS'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paths", default="embedded,mosquitto")
    parser.add_argument("--devices", type=int, default=DEVICES)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, data) for a look")
    args = parser.parse_args()
    paths = args.paths.split(",")
    work_dir = Path(tempfile.mkdtemp(prefix="mpfleet-bulk-bench-"))
    data_dir, results = work_dir / "data", {}
    backend = Backend("embedded", work_dir, data_dir).start()
    try:
        print(f"registering {args.devices} devices over REST (embedded backend, pid {backend.pid}) ...", flush=True)
        devices, _ = backend.register(args.devices, "bulk")
        if "embedded" in paths:
            results["embedded"] = bench_path(backend, devices, args.runs, work_dir)
        backend.stop()
        if "mosquitto" in paths:
            backend = Backend("mosquitto", work_dir, data_dir, accounts=devices).start()
            results["mosquitto"] = bench_path(backend, devices, args.runs, work_dir)
        print()
        print(f"{'figure':<64}{'value':>22}  {'target':<10}result")
        for path, figures in results.items():
            report(path, args.devices, figures)
    finally:
        stop_and_clean(backend, work_dir, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
