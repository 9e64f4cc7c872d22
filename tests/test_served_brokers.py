"""`mpfleet serve` as a real process, on both brokers: what only a whole process shows (its memory,
a kill -9). Devices speak raw MQTT 3.1.1 over verified TLS with their own credentials.
"""

import asyncio
import json
import signal
import sqlite3
import ssl
import time

import pytest
from mpfleet.backend.broker.tls import ensure_certificates

from .mosquitto_broker import MosquittoBroker
from .mqtt_packets import open_session, publish_packet, read_packet, remaining_length
from .numbered_publisher import NumberedPublisher
from .polling import wait_until
from .server_process import ServerProcess, memory_kb

OFFLINE = b'{"online":false}'


class Served:
    """A server process on the embedded broker, or beside a Mosquitto of its own."""

    def __init__(self, kind, work_dir):
        self.kind = kind
        self.mosquitto = None
        args = ["--mqtt-port", "0", "--mqtt-tls-port", "0"]
        if kind == "mosquitto":
            self.mosquitto = MosquittoBroker(work_dir / "mosquitto", ensure_certificates(work_dir / "tls", []))
            self.mosquitto.start()
            args = ["--broker", self.mosquitto.url, "--broker-ca", str(self.mosquitto.tls.ca_cert),
                    "--mqtt-tls-port", str(self.mosquitto.tls_port)]
        self.server = ServerProcess(work_dir / "var", args).start()

    @property
    def pids(self):
        pids = {"backend": self.server.process.pid}
        if self.mosquitto:
            pids["mosquitto"] = self.mosquitto.process.pid
        return pids

    def stop(self):
        self.server.stop()
        if self.mosquitto:
            self.mosquitto.stop()


@pytest.fixture(params=["embedded", "mosquitto"])
def served(request, tmp_path):
    served = Served(request.param, tmp_path)
    yield served
    served.stop()


async def device_session(registered):
    """A connected raw session of a registered device, with the protocol's will."""
    mqtt = registered["mqtt"]
    context = ssl.create_default_context(cadata=mqtt["ca_cert"])
    return await open_session(mqtt["port"], context, registered["uid"], mqtt["password"],
                              will=(f"mpfleet/v1/{registered['uid']}/status", OFFLINE))


def telemetry_topic(registered):
    return f"mpfleet/v1/{registered['uid']}/telemetry"


def latest(served, registered):
    _, body = served.server.call("GET", f"/v1/user/devices/{registered['uid']}/telemetry/latest")
    return body["data"]


# --- sizes --------------------------------------------------------------------------------------

async def test_a_1_mb_publish_is_refused_and_memory_stays_flat(served):
    registered = served.server.register()
    # The same path once with a small message, so that what the first TLS session costs is not counted.
    reader, writer = await device_session(registered)
    writer.write(publish_packet(telemetry_topic(registered), b'{"ts":null,"values":{"t":1}}', 1))
    assert (await asyncio.wait_for(read_packet(reader), 5))[0] == 0x40  # PUBACK
    writer.close()
    wait_until(lambda: latest(served, registered))
    time.sleep(0.3)
    before = {name: memory_kb(pid, "VmHWM") for name, pid in served.pids.items()}

    reader, writer = await device_session(registered)
    payload = json.dumps({"ts": None, "values": {"big": "x" * 1_000_000}}).encode()
    body = publish_packet(telemetry_topic(registered), b"", 1)[2:]  # topic and packet id, after a 1-byte length
    writer.write(b"\x32" + remaining_length(len(body) + len(payload)) + body)
    try:
        for start in range(0, len(payload), 64 * 1024):
            writer.write(payload[start:start + 64 * 1024])
            await writer.drain()
        closed = await asyncio.wait_for(reader.read(), 5)
    except ConnectionError:  # reset or broken pipe
        closed = b""  # closed while our bytes were still arriving
    finally:
        writer.close()
    time.sleep(0.3)
    after = {name: memory_kb(pid, "VmHWM") for name, pid in served.pids.items()}

    assert closed == b""  # the session ended, no PUBACK
    assert set(latest(served, registered)) == {"t"}
    growth = {name: after[name] - before[name] for name in before}
    assert all(kb < 256 for kb in growth.values()), growth  # the stock amqtt broker's peak grew by ~4 MB


# --- durability ---------------------------------------------------------------------------------

def stored_numbers(served):
    """{uid: set of the numbers stored} of NumberedPublisher's rows."""
    with sqlite3.connect(f"file:{served.server.data_dir / 'mpfleet.db'}?mode=ro", uri=True, timeout=5) as db:
        rows = db.execute("SELECT devices.uid, telemetry.value FROM telemetry JOIN devices"
                          " ON devices.id = telemetry.device_id WHERE telemetry.key = 'n'").fetchall()
    stored = {}
    for uid, number in rows:
        stored.setdefault(uid, set()).add(int(number))
    return stored


def lost(publishers, served):
    stored = stored_numbers(served)
    return {p.uid: sorted(set(p.acked) - stored.get(p.uid, set())) for p in publishers}


def settled_loss(publishers, served, timeout=10):
    """lost() once it is nothing, or after `timeout` s (what was acknowledged may still be on its way)."""
    deadline = time.monotonic() + timeout
    while any((missing := lost(publishers, served)).values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return missing


async def test_a_backend_killed_loses_no_acknowledged_telemetry(served):
    publishers = [NumberedPublisher.of(served.server.register(f"d{i}")) for i in range(4)]
    stop = asyncio.Event()
    running = [asyncio.create_task(p.run(stop)) for p in publishers]
    await asyncio.sleep(1.5)
    served.server.stop(signal.SIGKILL)
    acked_at_kill = sum(len(p.acked) for p in publishers)
    await asyncio.sleep(0.5)  # on Mosquitto the devices go on publishing meanwhile
    served.server.start()
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*running)

    missing = await asyncio.to_thread(settled_loss, publishers, served)
    acked, missed = sum(len(p.acked) for p in publishers), sum(map(len, missing.values()))
    assert missed == 0, f"{missed} of {acked} acknowledged messages lost"
    assert acked_at_kill > 100 * len(publishers)  # the kill came while messages were flowing
    if served.kind == "mosquitto":  # the devices never noticed the backend's death
        assert all(p.error is None for p in publishers)
        assert sum(len(p.acked) for p in publishers) > acked_at_kill
