"""What every benchmark stands on: a backend process (`mpfleet serve` on free ports with its own data
dir; embedded broker, or Mosquitto 2 with dynamic security as its own process), its REST API as
admin, devices registered over it, and readings of /proc and of the SQLite file. Used by
bench/http_bench.py, bench/mqtt_bench.py and bench/firmware_memory.py; nothing here measures by itself.

The server's output goes to a log file in its work dir, never to a pipe nobody reads (a long run
would fill the pipe and stall the server).
"""

import asyncio
import base64
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests/mosquitto_broker.py is reused as it is

from mpfleet.backend.broker.tls import ensure_certificates  # noqa: E402
from mpfleet.backend.broker.mosquitto import _DEVICE_ACL_TYPES, ROLE_PREFIX  # noqa: E402
from tests.mosquitto_broker import MosquittoBroker  # noqa: E402
from tests.server_process import memory_kb, rest_call  # noqa: E402  (memory_kb: for the bench scripts)

MPFLEET = Path(sys.executable).with_name("mpfleet")
NOFILE = 65536  # 10,000 TLS sessions need as many descriptors in the broker and in the load generator
REGISTER_IN_FLIGHT = 20
CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_nofile(limit=NOFILE):
    """Raise RLIMIT_NOFILE for this process and so for every child started afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= limit:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, max(limit, hard)))
    except (ValueError, PermissionError):  # not root: as far as the hard limit allows
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- /proc ---------------------------------------------------------------------------------------

def cpu_seconds(pid):
    """utime + stime of a process, all its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def stop_and_clean(backend, work_dir, keep):
    """The end of a benchmark run on one Backend: stop it, then keep its work dir (saying where) or remove it."""
    backend.stop()
    if keep:
        print(f"work dir kept: {work_dir}")
    else:
        shutil.rmtree(work_dir, ignore_errors=True)


BENCH_RATE_LIMIT = str(10**9)  # requests a minute per token

# --- the backend -----------------------------------------------------------------------------------

class PortTaken(Exception):
    pass


class Backend:
    """`mpfleet serve` on free ports with a fresh data dir, and Mosquitto beside it when `path` is
    "mosquitto". `tls_port` is where devices connect; `pid` the backend's (the embedded broker is
    inside it); `broker_pid` Mosquitto's, or None."""

    def __init__(self, path, work_dir, data_dir, accounts=(), extra_args=()):
        """`accounts` ({"uid", "password"} of devices already in `data_dir`'s database) are written
        into Mosquitto's dynamic security file before it starts (see load_dynsec_accounts);
        `extra_args` are added to the `mpfleet serve` command line."""
        assert path in ("embedded", "mosquitto")
        self.path = path
        self.work_dir = Path(work_dir) / path
        self.data_dir = Path(data_dir)
        self.accounts = accounts
        self.extra_args = list(extra_args)
        self.http_port = free_port()
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.mosquitto = None
        self.process = None
        self.tls_port = None
        self.token = None

    @property
    def pid(self):
        return self.process.pid

    @property
    def broker_pid(self):
        return self.mosquitto.process.pid if self.mosquitto else None

    @property
    def db_path(self):
        return self.data_dir / "mpfleet.db"

    def start(self, attempts=3):
        """Start on free ports; ports taken meanwhile by another process are picked anew."""
        raise_nofile()
        for attempt in range(attempts):
            try:
                return self._start()
            except PortTaken:
                self.stop()
                self.http_port = free_port()
                self.base = f"http://127.0.0.1:{self.http_port}"
        raise RuntimeError(f"no free ports after {attempts} attempts")

    def _start(self):
        # The load generators make thousands of requests a second with one token: a limit no benchmark reaches,
        # so that the limiter's cost is in the figures and its 429s are not.
        command = [str(MPFLEET), "serve", "--data", str(self.data_dir), "--host", "127.0.0.1",
                   "--http-port", str(self.http_port), "--rate-limit-read", BENCH_RATE_LIMIT,
                   "--rate-limit-write", BENCH_RATE_LIMIT]
        if self.path == "mosquitto":
            tls = ensure_certificates(self.data_dir / "tls", [])  # the embedded broker's, if it ran first
            if self.mosquitto is None:  # a retry restarts the same broker, accounts and all
                self.mosquitto = MosquittoBroker(self.work_dir / "mosquitto", tls)
                if self.accounts:
                    load_dynsec_accounts(self.mosquitto, self.accounts)
            self.mosquitto.start()
            self.tls_port = self.mosquitto.tls_port
            command += ["--broker", self.mosquitto.url, "--broker-ca", str(tls.ca_cert),
                        "--mqtt-tls-port", str(self.tls_port)]
        else:
            self.tls_port = free_port()
            command += ["--mqtt-port", str(free_port()), "--mqtt-tls-port", str(self.tls_port)]
        if "--device-port" not in self.extra_args:  # (8443, the default, may be taken by a server of the user's)
            command += ["--device-port", str(free_port())]
        self._command = command + self.extra_args
        self._spawn("w")
        return self

    def _spawn(self, log_mode):
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.work_dir / "server.log", log_mode)
        self.process = subprocess.Popen(self._command, stdout=log, stderr=subprocess.STDOUT)
        self.token = self._wait_ready()

    def kill_and_restart(self, down_seconds):
        """SIGKILL the backend (Mosquitto, if any, stays up), then start it again on the same data dir and
        ports after `down_seconds`. Returns the seconds it took from the start to answering HTTP."""
        self.process.kill()
        self.process.wait()
        time.sleep(down_seconds)
        started = time.monotonic()
        self._spawn("a")  # the log of the killed one stays above
        return time.monotonic() - started

    def _wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if "already in use" in (self.work_dir / "server.log").read_text():
                    raise PortTaken()
                raise RuntimeError(f"mpfleet serve exited ({self.process.returncode}); see {self.work_dir}/server.log")
            try:
                with urllib.request.urlopen(self.base + "/v1/platforms", timeout=1):
                    return (self.data_dir / "admin.token").read_text().strip()
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("mpfleet serve did not answer in time")

    def wait_idle(self, window=0.5, busy=0.1, timeout=60):
        """Wait until the backend uses less than `busy` of a core over `window` seconds (after a start
        or a load, so that one measurement does not pay for the previous one). Returns seconds waited."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            before = cpu_seconds(self.pid)
            time.sleep(window)
            if cpu_seconds(self.pid) - before < busy * window:
                break
        return time.monotonic() - start

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.mosquitto:
            self.mosquitto.stop()

    # --- what the database holds (a WAL reader beside the backend's writer) ---

    def query(self, sql, params=()):
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute(sql, params).fetchall()

    def telemetry_rows(self):
        """Rows stored so far, as the highest rowid: cheap to poll, where count(*) would scan a million
        rows each time. Exact here, since nothing is deleted during the bench (retention is 30 days)."""
        return self.query("SELECT coalesce(max(rowid), 0) FROM telemetry")[0][0]

    def online_devices(self):
        return self.query("SELECT count(*) FROM devices WHERE is_online")[0][0]

    # --- REST ---

    def call(self, method, path, body=None):
        """(status, JSON answer) of one REST request as admin."""
        return rest_call(self.base, self.token, method, path, body)

    def register(self, count, prefix, in_flight=REGISTER_IN_FLIGHT):
        """Register `count` devices, `in_flight` at a time. Returns (credentials, seconds);
        each credential is {"uid", "password", "port"}."""
        start = time.monotonic()
        answers = asyncio.run(self._register_all(count, prefix, in_flight))
        seconds = time.monotonic() - start
        if answers and answers[0]["mqtt"]["ca_cert"] != self.ca_file().read_text():
            raise RuntimeError("registration handed out a CA other than the broker's")
        return [{"uid": a["uid"], "password": a["mqtt"]["password"], "port": a["mqtt"]["port"]}
                for a in answers], seconds

    def ca_file(self):
        """The CA devices verify the broker with (the embedded broker's, which Mosquitto also uses)."""
        return self.data_dir / "tls" / "ca.pem"

    async def _register_all(self, count, prefix, in_flight):
        headers = {"Authorization": f"Bearer {self.token}"}
        limit = asyncio.Semaphore(in_flight)
        async with aiohttp.ClientSession(self.base, headers=headers) as http:
            async def one(i):
                async with limit:
                    body = {"name": f"{prefix}-{i}", "platform": "unix", "board": "unix"}
                    async with http.post("/v1/user/devices", json=body) as response:
                        if response.status != 201:
                            raise RuntimeError(f"registration: HTTP {response.status} {await response.text()}")
                        return (await response.json())["data"]
            return await asyncio.gather(*(one(i) for i in range(count)))


# --- Mosquitto accounts in bulk ------------------------------------------------------------------

def load_dynsec_accounts(broker, devices):
    """Write each device's client and role into the dynsec file of a broker not started yet.

    Exactly what MosquittoAdmin.add_device creates over MQTT (a client with username = client id = uid and
    a role allowing publish, receive, subscribe and unsubscribe below mpfleet/v1/<uid>/), with the
    plugin's own hashing (PBKDF2-SHA512, 12-byte salt, 101 iterations). Needed because over MQTT
    the plugin rewrites its whole JSON file twice per device: 10,000 devices would take many minutes.
    """
    broker.work_dir.mkdir(parents=True, exist_ok=True)
    broker._init_dynsec()  # the admin account, as MosquittoBroker.start() would make it
    state = json.loads(broker.dynsec_path.read_text())
    for device in devices:
        uid = device["uid"]
        salt = os.urandom(12)
        digest = hashlib.pbkdf2_hmac("sha512", device["password"].encode(), salt, 101)
        role = ROLE_PREFIX + uid
        acls = [{"acltype": acltype, "topic": f"mpfleet/v1/{uid}/#", "priority": 0, "allow": True}
                for acltype in _DEVICE_ACL_TYPES]
        state["roles"].append({"rolename": role, "acls": acls})
        state["clients"].append({"username": uid, "clientid": uid, "roles": [{"rolename": role}],
                                 "iterations": 101, "password": base64.b64encode(digest).decode(),
                                 "salt": base64.b64encode(salt).decode()})
    broker.dynsec_path.write_text(json.dumps(state))


def write_json(path, value):
    Path(path).write_text(json.dumps(value))
    return path
