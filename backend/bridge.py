"""The MQTT bridge: the backend's client of the broker (docs/protocol.md).

Inbound, it turns device messages into storage writes: `status` → presence,
`telemetry` → batched rows, `ack` → command states. Outbound, it publishes
commands and clears the retained status of revoked devices. A malformed message
is counted in `stats` and dropped; nothing a device sends can stop the loop.

Messages arrive through mqtt_client.py's callback, which must not block. Telemetry is
the volume path, so it is not written message by message: rows are collected there and
written by `_flush_loop` in one transaction per batch. Status and acks wait in an inbox
for `_inbox_loop`, which writes them one by one in arrival order.
"""

import asyncio
import logging
import secrets
import time
from collections import Counter

import orjson

from . import schemas
from .broker.endpoint import BrokerEndpoint
from .mqtt_client import MqttClient, MqttError

__all__ = ["Bridge", "BridgeUnavailable", "BrokerEndpoint", "StorageEvents", "topic"]

log = logging.getLogger(__name__)

TOPIC_ROOT = "mpfleet/v1"
# The QoS of each inbound subscription. Telemetry is the volume: at QoS 1 the broker keeps only
# a small window of unacknowledged messages in flight to us (measured: 5-7k msgs/s at most), and
# with a clean session nothing would be kept for us across a reconnect anyway. Presence and acks
# are rare and must not be lost, so they stay QoS 1.
INBOUND = {"status": 1, "telemetry": 0, "ack": 1, "ota": 1}
_FLUSH_SECONDS = 0.05  # how long a telemetry row may wait for its batch
_BATCH_ROWS = 2000  # a batch this large is written at once
_MAX_PENDING_ROWS = 200_000  # past this the database is not keeping up: drop and count
_MAX_INBOX = 100_000  # status and ack messages waiting for their storage write; past this: drop and count
_RECONNECT_MIN, _RECONNECT_MAX = 0.5, 10.0


class BridgeUnavailable(Exception):
    """The broker cannot be reached right now; the command was not published."""


class StorageEvents:
    """Where the bridge hands a device's `status` and `ack` messages, once validated: by default
    straight to storage. The service layer takes their place (it also paces commands on them).

    Both are awaited in arrival order, one at a time.
    """

    def __init__(self, storage):
        self.storage = storage

    async def device_status(self, uid, report):
        """`report` as schemas.device_status() gives it: {online, ip, rssi, meta}."""
        await self.storage.devices.apply_status(uid, report)

    async def command_ack(self, uid, command_id, state, result, error):
        await self.storage.commands.acknowledge(uid, command_id, state, result=result, error=error)


def topic(uid, kind):
    return f"{TOPIC_ROOT}/{uid}/{kind}"


class Bridge:
    def __init__(self, storage, endpoint, events=None):
        self.storage = storage
        self.endpoint = endpoint
        self.events = events or StorageEvents(storage)  # see StorageEvents
        self.stats = Counter()  # received / stored / malformed / dropped, per message kind
        self._client = None
        self._pending_rows = []
        self._rows_waiting = asyncio.Event()
        self._connected = asyncio.Event()
        self._inbox = asyncio.Queue()  # (uid, kind, payload) of status and ack messages

    @property
    def connected(self):
        return self._client is not None

    async def wait_connected(self, timeout):
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def run(self):
        """Hold a session to the broker for as long as the app runs, reconnecting with backoff."""
        workers = [asyncio.create_task(self._flush_loop()), asyncio.create_task(self._inbox_loop())]
        delay = _RECONNECT_MIN
        try:
            while True:
                try:
                    await self._session()
                except MqttError as error:
                    if self._connected.is_set():  # a session was up: this is a fresh outage
                        delay = _RECONNECT_MIN
                    log.warning("MQTT bridge: %s; reconnecting in %.1f s", error, delay)
                finally:
                    self._client = None
                    self._connected.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RECONNECT_MAX)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await self._flush()

    async def _session(self):
        endpoint = self.endpoint
        # The client id is unique per process: several backends may share one broker.
        client = await MqttClient.connect(endpoint, f"{endpoint.username}-{secrets.token_hex(4)}",
                                          self._received, keepalive=30)
        try:
            await client.subscribe([(topic("+", kind), qos) for kind, qos in INBOUND.items()])
            self._client = client
            self._connected.set()
            log.info("MQTT bridge connected to %s:%s", endpoint.host, endpoint.port)
            await client.wait_closed()
        finally:
            client.close()

    def _received(self, name, payload):
        """Every inbound message, straight from the connection: telemetry is queued for its batch here,
        status and acks go to the inbox, whose worker awaits their storage writes in arrival order."""
        parts = name.split("/")
        if len(parts) != 4:
            self.stats["malformed"] += 1
            return
        uid, kind = parts[2], parts[3]
        self.stats[f"{kind}_received"] += 1
        if kind == "telemetry":
            try:
                self._queue_telemetry(uid, payload)
            except Exception as error:  # noqa: BLE001 - one bad message must never end every device's session
                self._count_failure(uid, kind, error)
        elif self._inbox.qsize() < _MAX_INBOX:
            self._inbox.put_nowait((uid, kind, payload))
        else:
            self.stats[f"{kind}_dropped"] += 1

    async def _inbox_loop(self):
        while True:
            uid, kind, payload = await self._inbox.get()
            try:
                if kind == "status":
                    await self._apply_status(uid, payload)
                elif kind == "ack":
                    await self._apply_ack(uid, payload)
                # `ota` progress is recorded by the OTA flow (a later issue); it is only counted here.
            except Exception as error:  # noqa: BLE001 - as above: counted and logged in _count_failure
                self._count_failure(uid, kind, error)

    def _count_failure(self, uid, kind, error):
        if isinstance(error, schemas.BadMessage):
            self.stats[f"{kind}_malformed"] += 1
            log.debug("dropped %s from %s: %s", kind, uid, error)
        else:
            self.stats[f"{kind}_failed"] += 1
            log.error("could not handle %s from %s", kind, uid, exc_info=error)

    async def _apply_status(self, uid, payload):
        report = schemas.device_status(payload)
        if report is not None:
            await self.events.device_status(uid, report)

    async def _apply_ack(self, uid, payload):
        command_id, state, result, error = schemas.ack(payload)
        await self.events.command_ack(uid, command_id, state, result, error)

    # --- telemetry batches ----------------------------------------------------------------

    def _queue_telemetry(self, uid, payload):
        samples = schemas.telemetry(payload, time.time())
        if len(self._pending_rows) >= _MAX_PENDING_ROWS:
            self.stats["telemetry_dropped"] += 1
            return
        self._pending_rows.extend((uid, key, ts, value) for key, ts, value in samples)
        if len(self._pending_rows) >= _BATCH_ROWS:
            self._rows_waiting.set()

    async def _flush_loop(self):
        while True:
            try:
                await asyncio.wait_for(self._rows_waiting.wait(), _FLUSH_SECONDS)
            except TimeoutError:
                pass
            self._rows_waiting.clear()
            await self._flush()

    async def _flush(self):
        rows, self._pending_rows = self._pending_rows, []
        if rows:
            self.stats["telemetry_rows_stored"] += await self.storage.telemetry.add_batch(rows)

    # --- outbound -------------------------------------------------------------------------

    async def send_command(self, uid, command):
        """Publish a command (QoS 1). Raises BridgeUnavailable when there is no broker session."""
        body = {"id": command.id, "type": command.type, "payload": command.payload}
        await self._publish(topic(uid, "cmd"), orjson.dumps(body))

    async def clear_status(self, uid):
        """Remove a device's retained status, so a revoked device is not shown online after a restart."""
        await self._publish(topic(uid, "status"), b"", retain=True)

    async def _publish(self, name, payload, retain=False):
        client = self._client
        if client is None:
            raise BridgeUnavailable("no connection to the MQTT broker")
        try:
            await client.publish(name, payload, qos=1, retain=retain, timeout=5)
        except MqttError as error:
            raise BridgeUnavailable(str(error)) from None
