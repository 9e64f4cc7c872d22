"""What the MQTT benchmarks stand on: a backend process (embedded broker, or Mosquitto 2 with
dynamic security as its own process), devices registered over REST, and readings of /proc and
of the SQLite file. Used by bench/mqtt_bench.py; nothing here measures by itself.
"""

import asyncio
import json
import os
import resource
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
from tests.mosquitto_broker import MosquittoBroker  # noqa: E402

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


def memory_kb(pid, field):
    """VmRSS, VmHWM, ... of /proc/<pid>/status, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


# --- the backend -----------------------------------------------------------------------------------

class Backend:
    """`mpfleet serve` on free ports with a fresh data dir, and Mosquitto beside it when `path` is
    "mosquitto". `tls_port` is where devices connect; `pid` the backend's (the embedded broker is
    inside it); `broker_pid` Mosquitto's, or None."""

    def __init__(self, path, work_dir):
        assert path in ("embedded", "mosquitto")
        self.path = path
        self.work_dir = Path(work_dir) / path
        self.data_dir = self.work_dir / "data"
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

    def start(self):
        raise_nofile()
        command = [str(MPFLEET), "serve", "--data", str(self.data_dir), "--host", "127.0.0.1",
                   "--http-port", str(self.http_port)]
        if self.path == "mosquitto":
            tls = ensure_certificates(self.work_dir / "tls", [])
            self.mosquitto = MosquittoBroker(self.work_dir / "mosquitto", tls).start()
            self.tls_port = self.mosquitto.tls_port
            command += ["--broker", self.mosquitto.url, "--broker-ca", str(tls.ca_cert),
                        "--mqtt-tls-port", str(self.tls_port)]
        else:
            self.tls_port = free_port()
            command += ["--mqtt-port", str(free_port()), "--mqtt-tls-port", str(self.tls_port)]
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.work_dir / "server.log", "w")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self.token = self._wait_ready()
        return self

    def _wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mpfleet serve exited ({self.process.returncode}); see {self.work_dir}/server.log")
            try:
                with urllib.request.urlopen(self.base + "/v1/platforms", timeout=1):
                    return (self.data_dir / "admin.token").read_text().strip()
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("mpfleet serve did not answer in time")

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
        return self.query("SELECT count(*) FROM telemetry")[0][0]

    def online_devices(self):
        return self.query("SELECT count(*) FROM devices WHERE is_online")[0][0]

    # --- REST ---

    def register(self, count, prefix):
        """Register `count` devices, REGISTER_IN_FLIGHT at a time. Returns (credentials, seconds);
        each credential is {"uid", "password", "port"}; the CA is written to ca_file()."""
        start = time.monotonic()
        answers = asyncio.run(self._register_all(count, prefix))
        seconds = time.monotonic() - start
        self.ca_file().write_text(answers[0]["mqtt"]["ca_cert"])
        return [{"uid": a["uid"], "password": a["mqtt"]["password"], "port": a["mqtt"]["port"]}
                for a in answers], seconds

    def ca_file(self):
        return self.work_dir / "device-ca.pem"

    async def _register_all(self, count, prefix):
        headers = {"Authorization": f"Bearer {self.token}"}
        limit = asyncio.Semaphore(REGISTER_IN_FLIGHT)
        async with aiohttp.ClientSession(self.base, headers=headers) as http:
            async def one(i):
                async with limit:
                    body = {"name": f"{prefix}-{i}", "platform": "unix", "board": "unix"}
                    async with http.post("/v1/user/devices", json=body) as response:
                        if response.status != 201:
                            raise RuntimeError(f"registration: HTTP {response.status} {await response.text()}")
                        return (await response.json())["data"]
            return await asyncio.gather(*(one(i) for i in range(count)))


def write_json(path, value):
    Path(path).write_text(json.dumps(value))
    return path
