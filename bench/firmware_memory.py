"""Memory benchmark of the firmware: the smallest MicroPython heap on which the emulated board works.

One `mpfleet serve` on 127.0.0.1 (bench/backend.py: free ports, a fresh data dir), the firmware built from `.mpy` once
(tools/firmware_build.py; umqtt.simple from the download cache, fetched from the package index the first time), then
one board run per heap size, started by the board launcher as `mpfleet emulate` starts a board (tools/launcher.py:
`micropython -X heapsize=N -m main` with a board's sys.path) in a fresh copy of the flash, registered as a new
device. A size passes when, within TIMEOUT seconds of one run and with no MemoryError and no failed connect in its
log, the board:

1. boots and connects over verified TLS: the REST API shows it online;
2. publishes: a telemetry row (`uptime`) is stored;
3. answers a command: a `custom` relay_toggle sent over REST reaches `done`;
4. changes its telemetry period: the built-in set_telemetry_period (period 7, by name as a `custom` command)
   reaches `done` and the board's settings.json says 7 (this one loads settings.py and rewrites settings.json);
5. reboots: after a `reboot` command the process ends with the unix board's reset code (75), the bench starts
   it again at the same heap size, as `mpfleet emulate` does, and the board is back online with boot count 2.

Sizes fall from 64 KB in steps of 8 KB until one fails, then the gap is bisected to 1 KB.
Printed: one row per size tried, the smallest passing heap, and the free heap after connect at 64 KB
(the board logs `app: free heap N after connect`).

Then the OTA check (`--no-ota` skips it), at 64 KB and at falling sizes down to the smallest passing heap: a bundle
of the firmware with one module changed (`mpfleet bundle`'s code, tools/bundle.py), uploaded over REST, set as the
device's target and sent with `POST .../ota` (the backend's own device listener, verified TLS); it passes when the
job reaches `updated` within OTA_TIMEOUT. Printed per size: where the job ran (beside the app with its MQTT session
kept, or in a boot of its own: firmware/ota.py), the free heap after connect (steady state), the lowest free heap
the job logged (after gc.collect(), at each report), their difference (the job's heap above steady state, target
<= 8 KB while the session is kept), and the bytes the backend served (an incremental OTA: the manifest and the one
changed module).

Then the configuration check (`--no-config` skips it), at CONFIG_SIZES (or --config-sizes): a board online, a desired
configuration (telemetry period and two of the maker's keys) PUT over REST; it passes when the API shows it in sync
(the board applied and reported it: firmware/desired.py) within TIMEOUT and the board's settings.json holds it.
Printed per size: the result and the seconds from the PUT to in sync; a board that refuses it (its report names
every key with the reason, e.g. no memory) fails, and the problem says its log line, what the API shows of its
report, and what a `custom` relay_toggle sent next reached (`done`: the board stayed whole).

Caveats printed with the figures:
- the unix port's mbedTLS allocates with the C library, not from the MicroPython heap: the TLS
  session's buffers (~40 KB with 16 KB records) are *not* part of the figure;
- the unix port is 64-bit: a word is 8 bytes, so objects take roughly 1.5-2x what they take on a
  32-bit ESP8266/ESP32, and the figure overstates what those boards need for the same code.

Run: `.venv/bin/python bench/firmware_memory.py` (options: --sizes 64,48,40 for a fixed list, --ota-sizes 36,34
for the OTA check's, --config-sizes 34,32 for the configuration check's, --timeout S, --keep to leave the work
dir). Exit code 0 whatever the figures.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from backend import Backend, free_port
from mpfleet.tools.firmware_build import build
from mpfleet.tools.launcher import RESET_EXIT, find_micropython, launch_board

TARGET_KB = 32
START_KB = 64
STEP_KB = 8
FLOOR_KB = 8
TIMEOUT = 20.0  # seconds for one board run to pass all five checks
OTA_TIMEOUT = 60.0
OTA_TARGET_KB = 8
CONFIG_SIZES = (36, 34, 33, 32)
CONFIG = {"telemetry_period": 20, "greeting": "hi", "threshold": 21.5}
POLL = 0.1


def board_config(registration):
    mqtt = registration["mqtt"]
    return {"wifi": {"ssid": "bench", "password": "secret"},
            "mqtt": {"host": "127.0.0.1", "port": mqtt["port"], "uid": registration["uid"],
                     "password": mqtt["password"], "ca": mqtt["ca_cert"]},
            "board": "unix"}


class Run:
    """One board run at one heap size: what it reached, and when."""

    STAGES = ("online", "telemetry", "command", "period", "reboot")

    def __init__(self, kb):
        self.kb = kb
        self.reached = {}  # stage -> seconds since start
        self.free_after_connect = None
        self.problem = ""

    @property
    def passed(self):
        return len(self.reached) == len(self.STAGES) and not self.problem

    def row(self):
        cells = [f"{self.kb:>4} KB", "PASS" if self.passed else "fail"]
        cells += [f"{self.reached[s]:5.2f} s" if s in self.reached else "   -   " for s in self.STAGES]
        cells.append(f"{self.free_after_connect:>6}" if self.free_after_connect is not None else "     -")
        cells.append(self.problem[:60])
        return "  ".join(cells)


def new_board(server, built, flash, name, *, period):
    """A unix device registered as `name` and its flash: a fresh copy of `built` with config.json and settings.json
    as `mpfleet provision` writes them (config.json indented, the CA's PEM inside). Returns (uid, flash, log path)."""
    status, answer = server.call("POST", "/v1/user/devices", {"name": name, "platform": "unix", "board": "unix"})
    if status != 201:
        raise RuntimeError(f"registration: HTTP {status} {answer}")
    registration = answer["data"]
    shutil.rmtree(flash, ignore_errors=True)
    shutil.copytree(built, flash)
    (flash / "config.json").write_text(json.dumps(board_config(registration), indent=2) + "\n")
    (flash / "settings.json").write_text(json.dumps({"period": period}) + "\n")
    log_path = flash / "board.log"
    log_path.touch()
    return registration["uid"], flash, log_path


def stop_board(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _start_board(flash, kb, log_path):
    with open(log_path, "a") as log:
        spec = launch_board(flash, heapsize=f"{kb}k")  # machine.reset() exits with RESET_EXIT: started again
        return subprocess.Popen(spec.argv, cwd=spec.cwd, env=spec.env, stdout=log, stderr=subprocess.STDOUT)


def run_board(server, built, work, kb, timeout):
    result = Run(kb)
    uid, flash, log_path = new_board(server, built, work / f"flash-{kb}k", f"bench-{kb}k", period=5)
    process = _start_board(flash, kb, log_path)
    started = time.monotonic()
    command_id = period_id = reboot_id = None
    try:
        while time.monotonic() - started < timeout and len(result.reached) < len(Run.STAGES):
            text = log_path.read_text(errors="replace")
            if "MemoryError" in text or "connect failed" in text or "crashed" in text:
                break
            if reboot_id is not None and process.poll() == RESET_EXIT:
                process = _start_board(flash, kb, log_path)  # as the emulator does on machine.reset()
            elif process.poll() is not None:
                result.problem = f"exit {process.returncode}"
                break
            now = round(time.monotonic() - started, 2)
            if "online" not in result.reached:
                _, body = server.call("GET", f"/v1/user/devices/{uid}")
                if body["data"]["status"] == "online":
                    result.reached["online"] = now
            if "telemetry" not in result.reached:
                _, body = server.call("GET", f"/v1/user/devices/{uid}/telemetry/latest")
                if "uptime" in body["data"]:
                    result.reached["telemetry"] = now
            if "online" in result.reached and command_id is None:
                status, body = server.call("POST", f"/v1/user/devices/{uid}/commands",
                                           {"payload": {"cmd": "relay_toggle", "state": "on"}})
                if status != 200:
                    raise RuntimeError(f"command: HTTP {status} {body}")
                command_id = body["id"]
            elif command_id is not None and "command" not in result.reached:
                _, body = server.call("GET", f"/v1/user/devices/{uid}/commands/{command_id}")
                state = body["data"]["state"]
                if state == "done" and body["data"].get("result") == {"relay": "on"}:
                    result.reached["command"] = now
                    status, body = server.call("POST", f"/v1/user/devices/{uid}/commands",
                                               {"payload": {"cmd": "set_telemetry_period", "period": 7}})
                    if status != 200:
                        raise RuntimeError(f"command: HTTP {status} {body}")
                    period_id = body["id"]
                elif state in ("failed", "expired"):
                    result.problem = f"command {state}: {body['data'].get('error')}"
                    break
            elif period_id is not None and "period" not in result.reached:
                _, body = server.call("GET", f"/v1/user/devices/{uid}/commands/{period_id}")
                state = body["data"]["state"]
                if state == "done" and body["data"].get("result") == {"period": 7}:
                    if json.loads((flash / "settings.json").read_text())["period"] == 7:
                        result.reached["period"] = now
                    else:
                        result.problem = "set_telemetry_period: settings.json not changed"
                        break
                elif state in ("failed", "expired"):
                    result.problem = f"set_telemetry_period {state}: {body['data'].get('error')}"
                    break
            elif "period" in result.reached and reboot_id is None:
                status, body = server.call("POST", f"/v1/user/devices/{uid}/reboot")
                if status != 200:
                    raise RuntimeError(f"reboot: HTTP {status} {body}")
                reboot_id = body["id"]
            elif reboot_id is not None:
                _, body = server.call("GET", f"/v1/user/devices/{uid}")
                boot = body["data"]["meta"].get("boot") or {}
                if body["data"]["status"] == "online" and boot.get("count") == 2:
                    result.reached["reboot"] = now
            time.sleep(POLL)
    finally:
        stop_board(process)
        server.call("DELETE", f"/v1/user/devices/{uid}")
    text = log_path.read_text(errors="replace")
    match = re.search(r"app: free heap (\d+) after connect", text)
    if match:
        result.free_after_connect = int(match.group(1))
    if not result.problem:
        for pattern in (r".*MemoryError.*", r"link: connect failed.*", r"app: crashed.*"):
            match = re.search(pattern, text)
            if match:
                result.problem = match.group(0).strip()
                break
        else:
            if not result.passed:
                result.problem = f"timeout ({timeout:.0f} s)"
    return result


def make_bundle(work):
    """(bytes, md5) of a bundle of the firmware whose start.py says VERSION 0.2.0 (one module differs)."""
    import hashlib

    from mpfleet.tools import bundle
    from mpfleet.tools.firmware_build import firmware_dir

    source = work / "fw-0.2.0"
    shutil.copytree(firmware_dir(), source, ignore=shutil.ignore_patterns("__pycache__"))
    start = source / "start.py"
    start.write_text(start.read_text().replace('VERSION = "0.1.0"', 'VERSION = "0.2.0"'))
    data, _ = bundle.make(version="0.2.0", source=source)
    return data, hashlib.md5(data).hexdigest()


def upload(server, uid, data):
    """The firmware `data` uploaded for device `uid` (multipart, as curl -F sends it); returns its md5."""
    import urllib.error
    import urllib.request
    import uuid

    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nbench\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"version\"\r\n\r\n0.2.0\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"fw.bundle\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{server.base}/v1/user/devices/{uid}/firmwares", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {server.token}",
                                              "Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["data"]["md5"]
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"upload: HTTP {error.code} {json.load(error).get('message')}") from None


def ota_check(server, built, work, kb, bundle_data, timeout):
    """One OTA at heap `kb`: a dict of what it reached (state, where, free heap figures, bytes served, problem)."""
    out = {"kb": kb, "state": None, "where": "-", "steady": None, "lowest": None, "served": None, "problem": ""}
    uid, flash, log_path = new_board(server, built, work / f"ota-{kb}k", f"ota-{kb}k", period=60)
    process = _start_board(flash, kb, log_path)
    started = time.monotonic()
    sent = False
    try:
        while time.monotonic() - started < timeout:
            if process.poll() is not None:
                process = _start_board(flash, kb, log_path)  # a reset (the switch) or a crash: the board restarts
            if not sent:
                _, body = server.call("GET", f"/v1/user/devices/{uid}")
                if body["data"]["status"] == "online" and "after connect" in log_path.read_text(errors="replace"):
                    md5 = upload(server, uid, bundle_data)
                    server.call("POST", f"/v1/user/devices/{uid}/firmwares/set-target", {"md5": md5})
                    status, body = server.call("POST", f"/v1/user/devices/{uid}/ota")
                    if status != 200:
                        out["problem"] = f"POST ota: HTTP {status} {body.get('message')}"
                        break
                    sent = True
            else:
                _, body = server.call("GET", f"/v1/user/devices/{uid}/ota")
                job = body["data"]
                if job and job["state"] in ("updated", "failed", "rolled_back", "expired"):
                    out["state"] = job["state"]
                    out["served"] = job.get("bytes_served")
                    out["problem"] = job.get("error") or ""
                    break
            time.sleep(POLL)
        else:
            out["problem"] = f"timeout ({timeout:.0f} s)"
    finally:
        stop_board(process)
        server.call("DELETE", f"/v1/user/devices/{uid}")
    text = log_path.read_text(errors="replace")
    first_run = text.split("cmd: ", 1)[0]
    match = re.search(r"app: free heap (\d+) after connect", first_run)
    out["steady"] = int(match.group(1)) if match else None
    lows = [int(m) for m in re.findall(r"^ota: downloading \d+ \(free heap (\d+)\)", text, re.M)]
    out["lowest"] = min(lows) if lows else None
    out["where"] = "own boot" if "runs in a boot of its own" in text else "beside the app"
    if not out["problem"] and "MemoryError" in text:
        out["problem"] = re.search(r".*MemoryError.*", text).group(0).strip()
    return out


def config_check(server, built, work, kb, timeout):
    """One desired configuration at heap `kb`: (passed, seconds from the PUT to in sync or None, problem)."""
    uid, flash, log_path = new_board(server, built, work / f"config-{kb}k", f"config-{kb}k", period=60)
    process = _start_board(flash, kb, log_path)
    started = time.monotonic()
    put_at = None
    problem = f"timeout ({timeout:.0f} s)"
    try:
        while time.monotonic() - started < timeout:
            if process.poll() is not None:
                problem = f"exit {process.returncode}"
                break
            if put_at is None:
                _, body = server.call("GET", f"/v1/user/devices/{uid}")
                if body["data"]["status"] == "online" and "after connect" in log_path.read_text(errors="replace"):
                    status, body = server.call("PUT", f"/v1/user/devices/{uid}/configuration", {"settings": CONFIG})
                    if status != 200:
                        raise RuntimeError(f"PUT configuration: HTTP {status} {body}")
                    put_at = time.monotonic()
            else:
                _, body = server.call("GET", f"/v1/user/devices/{uid}/configuration")
                data = body["data"]
                if data["in_sync"]:
                    kept = json.loads((flash / "settings.json").read_text())
                    if kept.get("period") == CONFIG["telemetry_period"] and kept.get("user") == {
                            k: v for k, v in CONFIG.items() if k != "telemetry_period"}:
                        return True, time.monotonic() - put_at, ""
                    problem = f"in sync, but settings.json holds {kept}"
                    break
                reported = data["reported"]
                refused = re.search(r"config: v\d+ refused.*", log_path.read_text(errors="replace"))
                if refused or reported and reported["v"] == data["version"] and reported["errors"]:
                    # Refused (firmware/desired.py): the board must stay whole, so a command is answered after it.
                    problem = (refused.group(0) if refused else "errors") + "; " + _report_of(server, uid)
                    problem += "; then a command: " + _answers(server, uid, time.monotonic() + timeout)
                    return False, None, problem
            time.sleep(POLL)
    finally:
        stop_board(process)
        server.call("DELETE", f"/v1/user/devices/{uid}")
    match = re.search(r".*MemoryError.*", log_path.read_text(errors="replace"))
    return False, None, match.group(0).strip() if match else problem


def _report_of(server, uid, wait=2.0):
    """What the API shows of the board's report on its desired configuration (given `wait` s to come)."""
    deadline = time.monotonic() + wait
    while True:
        _, body = server.call("GET", f"/v1/user/devices/{uid}/configuration")
        data = body["data"]
        reported = data["reported"]
        if reported and reported["v"] == data["version"]:
            return f"reported: errors {sorted(set(reported['errors'].values()))}, in_sync {data['in_sync']}"
        if time.monotonic() > deadline:
            return f"no report, in_sync {data['in_sync']}"
        time.sleep(POLL)


def _answers(server, uid, deadline):
    """'done' when a `custom` relay_toggle sent now reaches `done` by `deadline`, else what it reached."""
    status, body = server.call("POST", f"/v1/user/devices/{uid}/commands",
                               {"payload": {"cmd": "relay_toggle", "state": "on"}})
    if status != 200:
        raise RuntimeError(f"command: HTTP {status} {body}")
    state = "sent"
    while time.monotonic() < deadline and state not in ("done", "failed", "expired"):
        time.sleep(POLL)
        _, answer = server.call("GET", f"/v1/user/devices/{uid}/commands/{body['id']}")
        state = answer["data"]["state"]
    return state


def ota_row(r):
    above = (r["steady"] - r["lowest"]) if r["steady"] is not None and r["lowest"] is not None else None
    cells = [f"{r['kb']:>4} KB", f"{r['state'] or '-':<11}", f"{r['where']:<14}",
             f"{'-' if r['steady'] is None else r['steady']:>7}", f"{'-' if r['lowest'] is None else r['lowest']:>7}",
             f"{above / 1024:6.1f} KB" if above is not None else "     -   ",
             f"{r['served'] if r['served'] is not None else '-':>7}", r["problem"][:50]]
    return "  ".join(cells)


def sizes_to_try(run):
    """Falling sizes: START_KB down by STEP_KB until one fails, then bisection to 1 KB; returns all runs."""
    runs = {}
    kb = START_KB
    passed, failed = None, None
    while kb >= FLOOR_KB:
        runs[kb] = run(kb)
        if not runs[kb].passed:
            failed = kb
            break
        passed = kb
        kb -= STEP_KB
    while passed is not None and failed is not None and passed - failed > 1:
        kb = (passed + failed) // 2
        runs[kb] = run(kb)
        if runs[kb].passed:
            passed = kb
        else:
            failed = kb
    return runs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", help="comma-separated heap sizes in KB instead of the search, e.g. 64,48,32")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds per board run")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs of every run)")
    parser.add_argument("--no-ota", action="store_true", help="skip the OTA check")
    parser.add_argument("--ota-sizes", help="comma-separated heap sizes in KB for the OTA check, e.g. 36,32")
    parser.add_argument("--no-config", action="store_true", help="skip the configuration check")
    parser.add_argument("--config-sizes", help="comma-separated heap sizes in KB for the configuration check")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="mpfleet-fwmem-"))
    # Boards reach the device listener (OTA downloads) at the host they reach the broker at: 127.0.0.1.
    server = Backend("embedded", work, work / "data",
                     extra_args=["--public-host", "127.0.0.1", "--device-port", str(free_port())])
    try:
        built = work / "built"
        build(built)
        server.start()
        print(f"firmware memory benchmark: boards started by tools/launcher.py ({find_micropython()} -X heapsize=N "
              "-m main, a board's sys.path), firmware from .mpy")
        print(f"backend: {server.base} (embedded broker, verified TLS); {args.timeout:.0f} s per run\n")
        print("  heap    result  online     telemetry  command    period     reboot     free@up  problem")

        def run(kb):
            result = run_board(server, built, work, kb, args.timeout)
            print("  " + result.row(), flush=True)
            return result

        if args.sizes:
            runs = {kb: run(kb) for kb in sorted((int(s) for s in args.sizes.split(",")), reverse=True)}
        else:
            runs = sizes_to_try(run)
        passing = sorted(kb for kb, r in runs.items() if r.passed)
        print()
        if passing:
            smallest = passing[0]
            verdict = "PASS" if smallest <= TARGET_KB else "MISS"
            print(f"smallest heap that boots, connects over TLS, publishes, answers two commands and reboots: "
                  f"{smallest} KB (target <= {TARGET_KB} KB: {verdict})")
        else:
            print("no heap size tried passed")
        at_start = runs.get(START_KB)
        if at_start and at_start.free_after_connect is not None:
            print(f"free heap after connect at {START_KB} KB: {at_start.free_after_connect} bytes "
                  f"({at_start.free_after_connect / 1024:.1f} KB)")
        print("note: on the unix port mbedTLS allocates its TLS session buffers (~40 KB) with malloc, outside\n"
              "      the MicroPython heap measured here; an ESP board pays them from its own RAM.")
        print("note: the unix port is 64-bit (8-byte words): objects take ~1.5-2x their size on a 32-bit\n"
              "      ESP8266/ESP32, so the same code needs less heap there.")
        if not args.no_ota and passing:
            bundle_data, _ = make_bundle(work)
            print(f"\nOTA check: a bundle of {len(bundle_data)} bytes, one module changed; {OTA_TIMEOUT:.0f} s per run")
            print("  heap    state        where            steady   lowest   above      served  problem")
            sizes = sorted({START_KB, 56, 48, 44, 40, passing[0]}, reverse=True)
            if args.ota_sizes:
                sizes = sorted((int(s) for s in args.ota_sizes.split(",")), reverse=True)
            for kb in [k for k in sizes if k >= passing[0]]:
                print("  " + ota_row(ota_check(server, built, work, kb, bundle_data, OTA_TIMEOUT)), flush=True)
            print(f"(above: steady minus lowest free heap while the job ran; target <= {OTA_TARGET_KB} KB)")
        if not args.no_config:
            sizes = CONFIG_SIZES if not args.config_sizes else [int(s) for s in args.config_sizes.split(",")]
            print(f"\nconfiguration check: PUT .../configuration {json.dumps(CONFIG)} to a board online, until in sync")
            print("  heap    result  in sync    problem")
            applied = []
            for kb in sorted(sizes, reverse=True):
                passed, seconds, problem = config_check(server, built, work, kb, args.timeout)
                if passed:
                    applied.append(kb)
                cells = [f"{kb:>4} KB", "PASS" if passed else "fail", f"{seconds:6.2f} s" if seconds else "   -    ",
                         problem[:160]]
                print("  " + "  ".join(cells), flush=True)
            print(f"smallest heap that applies a configuration: {min(applied)} KB" if applied else
                  "no heap size tried applied the configuration")
        if args.keep:
            print(f"work dir kept: {work}")
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
