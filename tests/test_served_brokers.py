"""`mpfleet serve` as a real process, on both brokers: what only a whole process shows (its memory,
a kill -9). Devices speak raw MQTT 3.1.1 over verified TLS with their own credentials.
"""

import asyncio
import json
import ssl
import time

import pytest
from mpfleet.backend.broker.tls import ensure_certificates

from .mosquitto_broker import MosquittoBroker
from .mqtt_packets import open_session, publish_packet, read_packet, remaining_length
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


def wait_for(check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert value, f"not true within {timeout} s"
    return value


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
    wait_for(lambda: latest(served, registered))
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
    except ConnectionResetError:
        closed = b""  # closed while our bytes were still arriving
    finally:
        writer.close()
    time.sleep(0.3)
    after = {name: memory_kb(pid, "VmHWM") for name, pid in served.pids.items()}

    assert closed == b""  # the session ended, no PUBACK
    assert set(latest(served, registered)) == {"t"}
    growth = {name: after[name] - before[name] for name in before}
    assert all(kb < 256 for kb in growth.values()), growth  # the stock amqtt broker's peak grew by ~4 MB
