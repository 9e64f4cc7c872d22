"""MQTT benchmark of the mpfleet backend (run: `make bench`, after bench/http_bench.py).

Both broker paths run against one `mpfleet serve` process on 127.0.0.1, every device with its own
credentials over verified TLS, as docs/protocol.md says:

* embedded: the amqtt broker inside the backend process;
* mosquitto: Mosquitto 2 with dynamic security as its own process (tests/mosquitto_broker.py),
  the backend bridged to it. It runs on the embedded run's data dir: the 10,000 devices are
  registered once over REST (embedded backend, timed), and their Mosquitto accounts are written
  into the dynsec file before Mosquitto starts, because registering over REST against Mosquitto
  costs two rewrites of that whole file per device. That rate, with the 10,000 accounts present,
  is measured last (one registration at a time).

Per path, in this order:

1. Ingest: INGEST_DEVICES (10) devices, one `mosquitto_pub -l` process each, publish telemetry
   (`{"ts": null, "values": {"t": 21.5}}`: one stored row per message), paced at INGEST_OFFER x
   the target rate for ~20 s, once at QoS 0 and once at QoS 1. Publishers stay connected until
   every row is stored or the count stalls for 5 s. Reported: rows stored / (first line fed ->
   last row stored) in msgs/s, loss (sent - stored), and CPU (utime + stime, all threads) of the
   backend and of Mosquitto per stored row. Targets: mosquitto >= 20,000 msgs/s, embedded >= 2,000,
   loss 0. Then a QoS 1 burst whose publishers disconnect right after their last PUBACK (stock amqtt
   0.12.1 dropped what it had acked but not yet routed; backend/broker/amqtt_fixes.py E): loss, target 0.
2. Sessions: 10,000 (mosquitto) / 1,000 (embedded) device sessions held by bench/mqtt_load.py,
   each with its retained online status, then one telemetry message (QoS 0) every 10 s, 3 each.
   Reported: time to connect them all and the CPU spent meanwhile, connect latency p50/p99, time
   until the backend shows them all online, telemetry stored vs sent (target: equal, all
   connected), the backend's VmRSS (before, held, peak sampled every 0.2 s) and VmHWM, Mosquitto's.
3. Commands: 1,000 connected devices ack every command `accepted` then `done` at once; after 20
   warm-up commands, COMMANDS reboot commands one at a time, each timed from just before its REST
   POST until its row in the SQLite file reads `done` (polled every 0.5 ms). Reported: p50/p99,
   and where the time goes (POST answered, command at the device, `done` sent -> stored).
   Target: p99 <= 25 ms.
4. Kill -9: KILL_DEVICES (8) devices publish numbered telemetry at QoS 1 (tests/numbered_publisher.py,
   20 in flight each, as fast as acknowledged); after KILL_AFTER (4) s the backend gets SIGKILL and is
   started again on the same data dir KILL_DOWN (1) s later; the devices go on for 2 s after that (on
   Mosquitto they stay connected throughout; the embedded broker dies with the backend, and their
   sessions with it). Reported: messages acknowledged to the devices, stored (distinct numbers), lost
   (acknowledged, never stored) and stored twice (a message stored whose acknowledgement the kill cut
   off comes again). Target: 0 lost.

Options: --paths embedded,mosquitto  --only ingest,sessions,commands,kill  --qos 0|1  --publishers N  --quick
--keep.
The machine has 2 cores for everything (backend, Mosquitto, load generators, this script).
Exit code is 0 whatever the figures; PASS/MISS is printed beside each target.
"""

import argparse
import asyncio
import http.client
import json
import queue
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from backend import Backend, cpu_seconds, memory_kb, stop_and_clean, write_json
from tests.numbered_publisher import NumberedPublisher  # importable: backend.py puts the repository on sys.path

LOAD = Path(__file__).with_name("mqtt_load.py")
TELEMETRY = '{"ts": null, "values": {"t": 21.5}}'
# The load generator's own cost per message falls with fewer, busier publishers (each wakeup handles several
# PUBACKs): at QoS 1 over TLS, 40 publishers took ~0.8 of the machine's 2 cores and capped ingest at 16.6-19k msgs/s,
# 20 gave 19.7k, 10 give 21.5k (the offered rate). --publishers changes it.
INGEST_DEVICES = 10
INGEST_OFFER = 1.1  # publishers are paced at this times the target rate
COMMANDS, COMMAND_WARMUP, COMMAND_DEVICES = 500, 20, 1000
COMMAND_P99_TARGET_MS = 25
SESSION_PERIOD, SESSION_MESSAGES, SESSION_HOLD = 10, 3, 30
MOSQUITTO_REGISTRATIONS = 20  # over REST with the whole fleet's accounts present
KILL_DEVICES, KILL_AFTER, KILL_DOWN, KILL_AFTERMATH = 8, 4.0, 1.0, 2.0

PROFILES = {
    # Per path: messages in all (~20 s at the paced rate, shared by the publishers), QoS levels tried,
    # target msgs/s, sessions held at once.
    "embedded": {"ingest_messages": 44_000, "ingest_qos": (0, 1), "ingest_target": 2000, "sessions": 1000},
    "mosquitto": {"ingest_messages": 440_000, "ingest_qos": (0, 1), "ingest_target": 20000, "sessions": 10000},
}


# --- a load process --------------------------------------------------------------------------------

class LoadProcess:
    """bench/mqtt_load.py in `mode`, its JSON-line events read by a thread."""

    def __init__(self, mode, spec_path, log_path):
        self.process = subprocess.Popen(
            [sys.executable, str(LOAD), mode, str(spec_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(log_path, "w"), text=True)
        self.events = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.events.put(json.loads(line))
        self.events.put(None)

    def next_event(self, name, timeout):
        event = self.events.get(timeout=timeout)
        if event is None or event["event"] != name:
            raise RuntimeError(f"load generator: expected {name!r}, got {event!r} (exit {self.process.poll()})")
        return event

    def finish(self, timeout=120):
        """Tell it to say goodbye; return its result event."""
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        result = self.next_event("result", timeout)
        self.process.wait(timeout=30)
        return result

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def load_spec(backend, devices, work_dir, name, **options):
    spec = {"port": backend.tls_port, "ca_file": str(backend.ca_file()), "devices": devices, **options}
    return write_json(work_dir / f"{backend.path}-{name}.json", spec)


def wait_until(predicate, timeout, interval=0.05):
    """Poll until predicate() is true; returns the seconds it took, or None on timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    return None


# --- 1. ingest ------------------------------------------------------------------------------------

def publisher(backend, device, qos, stdin=subprocess.PIPE):
    """`mosquitto_pub -l`: one message per line of its stdin, connected until stdin ends."""
    cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(backend.tls_port), "--cafile", str(backend.ca_file()),
           "-u", device["uid"], "-P", device["password"], "-i", device["uid"],
           "-t", f"mpfleet/v1/{device['uid']}/telemetry", "-q", str(qos), "-l"]
    return subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def feed_paced(publishers, per_device, rate, tick=0.02):
    """Write `per_device` lines to each publisher's stdin, `rate` lines/s each. Returns the seconds taken.
    A publisher that stops reading (QoS 1 window full) holds the writes back: the rate then falls."""
    line, written, start = (TELEMETRY + "\n").encode(), [0] * len(publishers), time.monotonic()
    while min(written) < per_device and time.monotonic() - start < 300:
        due = min(per_device, int((time.monotonic() - start + tick) * rate))
        for i, process in enumerate(publishers):
            if due > written[i]:
                process.stdin.write(line * (due - written[i]))
                process.stdin.flush()
                written[i] = due
        time.sleep(tick)
    return time.monotonic() - start


def wait_stored(backend, expected, started, stall_seconds=5, cap_seconds=180):
    """Poll the row count until it reaches `expected` or stops growing. Returns (rows, last growth at)."""
    rows, last_growth = backend.telemetry_rows(), time.monotonic()
    while rows < expected and time.monotonic() - last_growth < stall_seconds \
            and time.monotonic() - started < cap_seconds:
        time.sleep(0.05)
        now_rows = backend.telemetry_rows()
        if now_rows != rows:
            rows, last_growth = now_rows, time.monotonic()
    return rows, last_growth


def bench_ingest(backend, devices, profile, qos, work_dir):
    """Publishers offer INGEST_OFFER x the target rate and stay connected (stdin open) until every
    row is stored or the count stalls."""
    per_device = profile["ingest_messages"] // profile["ingest_devices"]
    offered = profile["ingest_target"] * INGEST_OFFER
    publishers = [publisher(backend, d, qos) for d in devices[:profile["ingest_devices"]]]
    try:
        time.sleep(1)  # let them connect
        rows_before = backend.telemetry_rows()
        cpu_before = cpu_seconds(backend.pid)
        broker_before = cpu_seconds(backend.broker_pid) if backend.broker_pid else 0.0
        started = time.monotonic()
        fed_seconds = feed_paced(publishers, per_device, offered / len(publishers))
        sent = per_device * len(publishers)
        rows, last_stored = wait_stored(backend, rows_before + sent, started)
        backend_cpu = cpu_seconds(backend.pid) - cpu_before
        broker_cpu = cpu_seconds(backend.broker_pid) - broker_before if backend.broker_pid else None
        for p in publishers:
            p.stdin.close()
        failed = sum(p.wait(timeout=30) != 0 for p in publishers)
    finally:
        for p in publishers:
            if p.poll() is None:
                p.kill()
                p.wait()
    stored, seconds = rows - rows_before, last_stored - started
    return {"qos": qos, "publishers": len(publishers), "failed_publishers": failed, "sent": sent, "stored": stored,
            "seconds": seconds, "fed_seconds": fed_seconds, "offered": sent / fed_seconds, "rate": stored / seconds,
            "backend_cpu_us": backend_cpu / max(stored, 1) * 1e6,
            "broker_cpu_us": broker_cpu / max(stored, 1) * 1e6 if broker_cpu is not None else None,
            "target": profile["ingest_target"]}


def burst_and_disconnect(backend, devices, work_dir, publishers=10, per_device=500):
    """QoS 1 publishers that disconnect as soon as their last PUBACK is in (stdin is a file).
    Returns (sent, stored): every acked message must still be stored."""
    lines = work_dir / "burst.txt"
    lines.write_text((TELEMETRY + "\n") * per_device)
    rows_before, started = backend.telemetry_rows(), time.monotonic()
    processes = [publisher(backend, d, 1, stdin=open(lines)) for d in devices[:publishers]]
    failed = sum(p.wait(timeout=60) != 0 for p in processes)
    sent = per_device * (publishers - failed)
    rows, _ = wait_stored(backend, rows_before + sent, started, stall_seconds=3)
    return sent, rows - rows_before


# --- 2. sessions -----------------------------------------------------------------------------------

class CpuMeter:
    """CPU seconds used since construction by the backend, Mosquitto and a load process."""

    def __init__(self, backend):
        self.backend = backend
        self.start = {pid: cpu_seconds(pid) for pid in (backend.pid, backend.broker_pid) if pid}

    def read(self, load_pid):
        used = lambda pid: cpu_seconds(pid) - self.start.get(pid, 0.0)  # noqa: E731
        return {"backend": used(self.backend.pid), "load": used(load_pid),
                "broker": used(self.backend.broker_pid) if self.backend.broker_pid else None}


class RssSampler(threading.Thread):
    """Peak VmRSS of some processes, sampled every 0.2 s until stopped."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids = [pid for pid in pids if pid]
        self.peak = dict.fromkeys(self.pids, 0)
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(0.2):
            for pid in self.pids:
                self.peak[pid] = max(self.peak[pid], memory_kb(pid, "VmRSS"))


def bench_sessions(backend, devices, profile, work_dir):
    count = profile["sessions"]
    spec = load_spec(backend, devices[:count], work_dir, "sessions", period=SESSION_PERIOD,
                     messages=SESSION_MESSAGES, hold=SESSION_HOLD, in_flight=100)
    rss_before, rows_before = memory_kb(backend.pid, "VmRSS"), backend.telemetry_rows()
    sampler = RssSampler([backend.pid, backend.broker_pid])
    sampler.start()
    cpu = CpuMeter(backend)
    started = time.monotonic()
    load = LoadProcess("sessions", spec, work_dir / f"{backend.path}-sessions.log")
    try:
        connected = load.next_event("connected", timeout=300)
        connect_cpu = cpu.read(load.process.pid)
        all_online = wait_until(lambda: backend.online_devices() >= connected["sessions"], timeout=120, interval=0.2)
        online_seconds = None if all_online is None else time.monotonic() - started
        held = load.next_event("held", timeout=SESSION_PERIOD * SESSION_MESSAGES + SESSION_HOLD + 60)
        wait_until(lambda: backend.telemetry_rows() - rows_before >= held["sent"], timeout=30)
        result = {"sessions": count, "connected": connected, "held": held, "online_seconds": online_seconds,
                  "connect_cpu": connect_cpu,
                  "stored": backend.telemetry_rows() - rows_before,
                  "rss_before_kb": rss_before, "rss_held_kb": memory_kb(backend.pid, "VmRSS"),
                  "hwm_kb": memory_kb(backend.pid, "VmHWM")}
        load.finish()
    finally:
        load.kill()
        sampler.stopped.set()
        sampler.join()
    result["rss_peak_kb"] = sampler.peak[backend.pid]
    result["broker_rss_peak_kb"] = sampler.peak.get(backend.broker_pid)
    return result


# --- 3. commands -----------------------------------------------------------------------------------

class CommandClient:
    """One keep-alive HTTP connection for the POSTs, one SQLite reader for the states."""

    def __init__(self, backend):
        self.http = http.client.HTTPConnection("127.0.0.1", backend.http_port, timeout=10)
        self.headers = {"Authorization": f"Bearer {backend.token}", "Content-Type": "application/json"}
        self.db = sqlite3.connect(f"file:{backend.db_path}?mode=ro", uri=True, timeout=5)

    def reboot(self, uid):
        self.http.request("POST", f"/v1/user/devices/{uid}/reboot", body=b"{}", headers=self.headers)
        response = self.http.getresponse()
        body = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f"reboot {uid}: HTTP {response.status} {body}")
        return body["id"]

    def state(self, command_id):
        row = self.db.execute("SELECT state FROM commands WHERE id = ?", (command_id,)).fetchone()
        return row[0] if row else None

    def time_one(self, uid, timeout=5.0):
        """(command id, wall time before the POST, after its answer, when `done` was read)."""
        t_start = time.time()
        command_id = self.reboot(uid)
        t_posted = time.time()
        while self.state(command_id) != "done":
            if time.time() - t_start > timeout:
                return command_id, t_start, t_posted, None
            time.sleep(0.0005)
        return command_id, t_start, t_posted, time.time()


def percentiles(values):
    ordered = sorted(values)
    if not ordered:
        return None, None
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def bench_commands(backend, devices, work_dir):
    ackers = devices[:COMMAND_DEVICES]
    spec = load_spec(backend, ackers, work_dir, "ackers", in_flight=100)
    load = LoadProcess("ackers", spec, work_dir / f"{backend.path}-ackers.log")
    try:
        ready = load.next_event("ready", timeout=120)
        if wait_until(lambda: backend.online_devices() >= ready["sessions"], timeout=60) is None:
            raise RuntimeError(f"only {backend.online_devices()} of {ready['sessions']} ackers shown online")
        client = CommandClient(backend)
        timings = [client.time_one(ackers[i % len(ackers)]["uid"]) for i in range(COMMAND_WARMUP + COMMANDS)]
        received = load.finish()["commands"]
    finally:
        load.kill()
    return command_figures(timings[COMMAND_WARMUP:], received, ready)


def command_figures(timings, received, ready):
    ms = lambda a, b: (b - a) * 1000  # noqa: E731
    done = [t for t in timings if t[3] is not None]
    seen = [(t, received[t[0]]) for t in done if t[0] in received]
    return {"commands": len(timings), "done": len(done), "ackers": ready["sessions"],
            "total": percentiles([ms(t[1], t[3]) for t in done]),
            "post": percentiles([ms(t[1], t[2]) for t in done]),
            "to_device": percentiles([ms(t[1], r[0]) for t, r in seen]),
            "ack_to_stored": percentiles([ms(r[1], t[3]) for t, r in seen])}


# --- 4. kill -9 -------------------------------------------------------------------------------------

def bench_kill(backend, devices):
    """Numbered QoS 1 publishers, the backend killed and restarted meanwhile: acked vs stored."""
    ca_pem = backend.ca_file().read_text()
    publishers = [NumberedPublisher(backend.tls_port, ca_pem, d["uid"], d["password"])
                  for d in devices[-KILL_DEVICES:]]
    rowid_before = backend.telemetry_rows()
    stop = threading.Event()
    running = threading.Thread(target=asyncio.run, args=(_publish_until(publishers, stop),))
    running.start()
    try:
        time.sleep(KILL_AFTER)
        acked_at_kill = sum(len(p.acked) for p in publishers)
        restart_seconds = backend.kill_and_restart(KILL_DOWN)
        time.sleep(KILL_AFTERMATH)
    finally:
        stop.set()
        running.join()
    acked = {p.uid: set(p.acked) for p in publishers}
    stored, rows = _stored_numbers(backend, rowid_before)
    deadline = time.monotonic() + 10  # what was acknowledged last may still be on its way to the database
    while any(acked[uid] - stored.get(uid, set()) for uid in acked) and time.monotonic() < deadline:
        time.sleep(0.2)
        stored, rows = _stored_numbers(backend, rowid_before)
    return {"devices": len(publishers), "acked_at_kill": acked_at_kill, "restart_seconds": restart_seconds,
            "acked": sum(map(len, acked.values())),
            "stored": sum(len(stored.get(uid, ())) for uid in acked), "rows": rows,
            "lost": sum(len(acked[uid] - stored.get(uid, set())) for uid in acked)}


async def _publish_until(publishers, stop):
    done = asyncio.Event()
    running = [asyncio.create_task(p.run(done)) for p in publishers]
    while not stop.is_set():
        await asyncio.sleep(0.05)
    done.set()
    await asyncio.gather(*running)


def _stored_numbers(backend, rowid_after):
    """({uid: numbers stored}, rows) of the numbered telemetry stored after row `rowid_after`."""
    found = backend.query("SELECT devices.uid, telemetry.value FROM telemetry JOIN devices ON devices.id ="
                          " telemetry.device_id WHERE telemetry.rowid > ? AND telemetry.key = 'n'", (rowid_after,))
    stored = {}
    for uid, number in found:
        stored.setdefault(uid, set()).add(int(number))
    return stored, len(found)


# --- the report ------------------------------------------------------------------------------------

def verdict(ok):
    return "PASS" if ok else "MISS"


def row(name, value, target="", result=""):
    print(f"{name:<52}{value:>26}  {target:<12}{result}")


def print_registration(path, figures):
    count, seconds, note = figures
    row(f"{path}: REST registration of {count} devices{note}", f"{seconds:.1f} s, {count / seconds:.0f}/s")


def print_ingest(path, r):
    row(f"{path} ingest: msgs/s (QoS {r['qos']}, {r['publishers']} publishers)", f"{r['rate']:,.0f}",
        f">= {r['target']:,}", verdict(r["rate"] >= r["target"]))
    row(f"{path} ingest: sent / stored / lost", f"{r['sent']:,} / {r['stored']:,} / {r['sent'] - r['stored']:,}",
        "0 lost", verdict(r["sent"] == r["stored"] and not r["failed_publishers"]))
    row(f"{path} ingest: offered msgs/s; all fed / last stored after", f"{r['offered']:,.0f}; "
        f"{r['fed_seconds']:.1f} / {r['seconds']:.1f} s")
    broker = f" + broker {r['broker_cpu_us']:.1f}" if r["broker_cpu_us"] is not None else ""
    row(f"{path} ingest: CPU per stored message", f"backend {r['backend_cpu_us']:.1f}{broker} µs")



def print_burst(path, burst):
    sent, stored = burst
    row(f"{path} ingest: QoS 1 burst, then DISCONNECT: sent / lost", f"{sent:,} / {sent - stored:,}", "0 lost",
        verdict(sent == stored))


def print_sessions(path, r):
    c, h = r["connected"], r["held"]
    row(f"{path} sessions: connected / asked", f"{c['sessions']:,} / {r['sessions']:,}", "all",
        verdict(c["sessions"] == r["sessions"] and not h["closed_by_broker"]))
    row(f"{path} sessions: time to connect all", f"{c['seconds']:.1f} s")
    cpu = r["connect_cpu"]
    broker = f", Mosquitto {cpu['broker']:.1f}" if cpu["broker"] is not None else ""
    row(f"{path} sessions:   CPU meanwhile", f"backend {cpu['backend']:.1f}{broker}, load {cpu['load']:.1f} s")
    row(f"{path} sessions: connect latency p50 / p99", f"{c['p50'] * 1000:.0f} / {c['p99'] * 1000:.0f} ms")
    online = "not within 120 s" if r["online_seconds"] is None else f"{r['online_seconds']:.1f} s"
    row(f"{path} sessions: all shown online, from the first connect", online)
    row(f"{path} sessions: telemetry sent / stored", f"{h['sent']:,} / {r['stored']:,}", "equal",
        verdict(h["sent"] == r["stored"]))
    row(f"{path} sessions: backend VmRSS before / held / peak",
        f"{r['rss_before_kb'] / 1024:.0f} / {r['rss_held_kb'] / 1024:.0f} / {r['rss_peak_kb'] / 1024:.0f} MiB")
    row(f"{path} sessions: backend VmHWM", f"{r['hwm_kb'] / 1024:.0f} MiB")
    if r["broker_rss_peak_kb"]:
        row(f"{path} sessions: Mosquitto VmRSS peak", f"{r['broker_rss_peak_kb'] / 1024:.0f} MiB")


def print_commands(path, r):
    fmt = lambda pair: "n/a" if pair[0] is None else f"{pair[0]:.1f} / {pair[1]:.1f} ms"  # noqa: E731
    row(f"{path} commands: done / sent ({r['ackers']} devices online)", f"{r['done']} / {r['commands']}", "all",
        verdict(r["done"] == r["commands"]))
    row(f"{path} commands: POST -> done stored, p50 / p99", fmt(r["total"]), f"p99 <= {COMMAND_P99_TARGET_MS}",
        verdict(r["total"][1] is not None and r["total"][1] <= COMMAND_P99_TARGET_MS))
    row(f"{path} commands:   POST answered, p50 / p99", fmt(r["post"]))
    row(f"{path} commands:   POST -> at device, p50 / p99", fmt(r["to_device"]))
    row(f"{path} commands:   `done` sent -> stored, p50 / p99", fmt(r["ack_to_stored"]))


def print_kill(path, r):
    row(f"{path} kill -9 ({r['devices']} devices, QoS 1): acked / stored / lost",
        f"{r['acked']:,} / {r['stored']:,} / {r['lost']:,}", "0 lost", verdict(r["lost"] == 0))
    row(f"{path} kill -9:   acked before the kill; stored twice", f"{r['acked_at_kill']:,}; {r['rows'] - r['stored']:,}")
    row(f"{path} kill -9:   restart until HTTP answers", f"{r['restart_seconds']:.1f} s")


def print_error(path, text):
    row(f"{path} FAILED", "", "", "MISS")
    print(f"  {text}")


def print_summary(results):
    printers = {"error": print_error, "registration": print_registration, "ingest": print_ingest, "burst": print_burst,
                "sessions": print_sessions, "commands": print_commands, "kill": print_kill}
    print()
    row("figure", "value", "target", "result")
    for path, figures in results.items():
        for kind, value in figures:
            printers[kind](path, value)


# --- main ------------------------------------------------------------------------------------------

def run_path(backend, devices, profile, only, work_dir):
    """The scenarios of `only` on one backend, in a fixed order; returns [(kind, figures)].
    A scenario that fails is reported as such, and the others still run."""
    steps = []
    if "ingest" in only:
        steps += [(f"ingest, QoS {qos}", "ingest", lambda qos=qos: bench_ingest(backend, devices, profile, qos, work_dir))
                  for qos in profile["ingest_qos"]]
        steps.append(("QoS 1 burst", "burst", lambda: burst_and_disconnect(backend, devices, work_dir)))
    if "sessions" in only:
        steps.append((f"{profile['sessions']} sessions", "sessions",
                      lambda: bench_sessions(backend, devices, profile, work_dir)))
    if "commands" in only:
        steps.append(("commands", "commands", lambda: bench_commands(backend, devices, work_dir)))
    if "kill" in only:  # last: the backend that runs on after it is a restarted one
        steps.append(("kill -9", "kill", lambda: bench_kill(backend, devices)))
    figures = []
    for title, kind, step in steps:
        waited = backend.wait_idle()
        print(f"{backend.path}: {title} (backend idle after {waited:.1f} s) ...", flush=True)
        try:
            figures.append((kind, step()))
        except Exception as error:  # noqa: BLE001 - reported in the table
            figures.append(("error", f"{title}: {error!r}"[:200]))
    return figures


def late_registrations(backend, fleet_size):
    """One at a time: Mosquitto handles them in turn anyway, and each must answer within the
    backend's 5 s admin timeout."""
    print(f"mosquitto: {MOSQUITTO_REGISTRATIONS} registrations over REST ...", flush=True)
    try:
        _, seconds = backend.register(MOSQUITTO_REGISTRATIONS, "late", in_flight=1)
    except Exception as error:  # noqa: BLE001 - reported in the table
        return "error", f"registration with {fleet_size:,} accounts present: {error!r}"[:200]
    return "registration", (MOSQUITTO_REGISTRATIONS, seconds, f", one at a time ({fleet_size:,} accounts present)")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paths", default="embedded,mosquitto")
    parser.add_argument("--only", default="ingest,commands,sessions,kill")
    parser.add_argument("--quick", action="store_true", help="a tenth of the messages and sessions")
    parser.add_argument("--qos", type=int, choices=(0, 1), help="ingest QoS on both paths (default: per path)")
    parser.add_argument("--publishers", type=int, default=INGEST_DEVICES,
                        help=f"ingest publisher processes (devices), default {INGEST_DEVICES}")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, data) for a look")
    return parser.parse_args()


def main():
    args = parse_args()
    paths, only = args.paths.split(","), args.only.split(",")
    if args.quick:
        for profile in PROFILES.values():
            profile["ingest_messages"] //= 10
            profile["sessions"] //= 10
    for profile in PROFILES.values():
        profile["ingest_devices"] = args.publishers
    if args.qos is not None:
        for profile in PROFILES.values():
            profile["ingest_qos"] = (args.qos,)
    work_dir = Path(tempfile.mkdtemp(prefix="mpfleet-mqtt-bench-"))
    data_dir, results = work_dir / "data", {}
    fleet_size = max(COMMAND_DEVICES, args.publishers, *(PROFILES[p]["sessions"] for p in paths))
    backend = Backend("embedded", work_dir, data_dir).start()
    try:
        print(f"registering {fleet_size} devices over REST (embedded backend, pid {backend.pid}) ...", flush=True)
        devices, seconds = backend.register(fleet_size, "bench")
        results["embedded"] = [("registration", (fleet_size, seconds, ""))]
        if "embedded" in paths:
            results["embedded"] += run_path(backend, devices, PROFILES["embedded"], only, work_dir)
        backend.stop()
        if "mosquitto" in paths:
            backend = Backend("mosquitto", work_dir, data_dir, accounts=devices).start()
            print(f"mosquitto path: backend pid {backend.pid}, Mosquitto pid {backend.broker_pid}", flush=True)
            results["mosquitto"] = run_path(backend, devices, PROFILES["mosquitto"], only, work_dir)
            results["mosquitto"].append(late_registrations(backend, fleet_size))
        print_summary(results)
    finally:
        stop_and_clean(backend, work_dir, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
