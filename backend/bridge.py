"""The MQTT bridge: the backend's client of the broker (docs/protocol.md).

Inbound, it turns device messages into storage writes: `status` → presence, `telemetry` →
batched rows (telemetry_batches.py), `ack` → command states, `ota` → OTA job states, `config_report`
→ the board's applied configuration (through `events`). Outbound, it publishes commands, each device's
retained `config` (again for every device whenever it connects: the embedded broker keeps no retained
message across a restart), and clears the retained status of revoked devices. A malformed message is
counted in `stats` and dropped; nothing a device sends can stop the loop.

Messages arrive through mqtt_client.py's callback, which must not block. Telemetry rows go to the
current batch there; status and acks wait in an inbox for `_inbox_loop`, which hands them to
`events` one by one in arrival order. A QoS 1 message is acknowledged to the broker only once it
is handled (its batch committed, its inbox turn done), so a backend that dies loses nothing the
broker would not send again.

Two configurations (the factories below):
- Mosquitto: a persistent session under a client id of this installation, telemetry at QoS 1, so
  Mosquitto keeps what we have not acknowledged while we are down or slow; when the batches fall
  behind, reading stops (Mosquitto queues meanwhile). Clean disconnects, for which Mosquitto has
  no will to publish, are read from its connection log (broker/connection_log.py).
- embedded: a clean session; the broker hands telemetry to the batches itself (and acknowledges
  each message once its batch is committed), so the bridge does not subscribe to it.
"""

import asyncio
import logging
import os
import secrets

import orjson

from . import config_schemas, schemas
from .broker import connection_log
from .broker.accounts import OFFLINE_STATUS
from .broker.endpoint import BrokerEndpoint
from .mqtt_client import MqttClient, MqttError

__all__ = ["Bridge", "BridgeUnavailable", "BrokerEndpoint", "StorageEvents", "topic"]

log = logging.getLogger(__name__)

TOPIC_ROOT = "mpfleet/v1"
# Presence, acks, OTA progress and configuration reports are rare and must not be lost: QoS 1. Telemetry is QoS 1 on
# Mosquitto (see above); the embedded broker does not deliver it to the bridge.
INBOUND = {"status": 1, "ack": 1, "ota": 1, "config_report": 1}
# Status and ack messages waiting for their turn. Each waits for its turn before it is acknowledged,
# so a broker that holds to its in-flight window bounds them (Mosquitto 2.0.11 does not quite:
# docs/protocol.md); past this bound a message is not taken (see _queue).
_MAX_INBOX = 100_000
_RECONNECT_MIN, _RECONNECT_MAX = 0.5, 10.0
_CLIENT_ID_FILE = "mqtt-client-id"
_CONFIG_PAGE = 500  # devices' configs read and published at once (a bounded read, a bounded burst of PUBACKs)


class BridgeUnavailable(Exception):
    """The broker cannot be reached right now; the command was not published."""


class StorageEvents:
    """Where the bridge hands a device's `status`, `ack` and `ota` messages, once validated: by default
    straight to storage. The service layer takes their place (it also paces commands on them).

    Both are awaited in arrival order, one at a time.
    """

    def __init__(self, storage):
        self.storage = storage

    async def device_status(self, uid, report):
        """`report` as schemas.device_status() gives it: {online, ip, rssi, meta}, and `replayed`: true for a
        status the broker kept retained and handed our new subscription (it may be older than our last)."""
        await self.storage.devices.apply_status(uid, report)

    async def command_ack(self, uid, command_id, state, result, error):
        await self.storage.commands.acknowledge(uid, command_id, state, result=result, error=error)

    async def ota_report(self, uid, job_id, state, progress, error):
        """An `ota` message (schemas.ota_progress): only the service layer moves jobs; until it runs, the
        device's status and final ack still decide how the job ends."""

    async def config_report(self, uid, version, applied, errors):
        """A `config_report` message (config_schemas.config_report)."""
        return await self.storage.configuration.report(uid, version, applied, errors)


def topic(uid, kind):
    return f"{TOPIC_ROOT}/{uid}/{kind}"


class Bridge:
    def __init__(self, storage, endpoint, batches, events=None, *, client_id=None, telemetry=False,
                 connection_log_topic=False):
        """Prefer the factories. `client_id`: a persistent session under this id (else a clean
        session under a fresh one); `telemetry`: subscribe to it (into `batches`);
        `connection_log_topic`: read clean disconnects from Mosquitto's log."""
        self.storage = storage
        self.endpoint = endpoint
        self.batches = batches
        self.events = events or StorageEvents(storage)  # see StorageEvents
        self.stats = batches.stats  # received / stored / malformed / dropped, per message kind
        self._client_id = client_id
        self._subscriptions = [(topic("+", kind), qos) for kind, qos in INBOUND.items()]
        if telemetry:
            self._subscriptions.append((topic("+", "telemetry"), 1))
        self._goodbyes = None
        if connection_log_topic:
            self._subscriptions.append((connection_log.LOG_TOPIC, 1))
            self._goodbyes = connection_log.Goodbyes()
        self._goodbyes_queued = 0
        self._client = None
        self._resuming = None  # the task that resumes reading once the batches have room
        self._connected = asyncio.Event()
        self._inbox = asyncio.Queue()  # (uid, kind, payload, retained, done) in arrival order
        self._configs = asyncio.Lock()  # one publishing of configs at a time: the newest read is published last

    @staticmethod
    def installation_client_id(data_dir, username):
        """The bridge's client id on a shared broker: made once per data dir and kept there, so that a
        restart finds its persistent session again and two installations never share one."""
        path = data_dir / _CLIENT_ID_FILE
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            pass
        client_id = f"{username}-{secrets.token_hex(6)}"
        part = path.with_name(path.name + ".part")
        part.write_text(client_id + "\n")
        os.replace(part, path)  # whole or not at all: a crash here leaves no half-written id
        return client_id

    @classmethod
    def for_mosquitto(cls, storage, endpoint, batches, client_id):
        return cls(storage, endpoint, batches, client_id=client_id, telemetry=True, connection_log_topic=True)

    @classmethod
    def for_embedded(cls, storage, endpoint, batches):
        return cls(storage, endpoint, batches)

    @property
    def connected(self):
        return self._client is not None

    async def wait_connected(self, timeout):
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def run(self):
        """Hold a session to the broker for as long as the app runs, reconnecting with backoff."""
        worker = asyncio.create_task(self._inbox_loop())
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
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)

    async def _session(self):
        endpoint = self.endpoint
        persistent = self._client_id is not None
        # A fresh id per process unless persistent: several backends may share one broker.
        client_id = self._client_id or f"{endpoint.username}-{secrets.token_hex(4)}"
        client = await MqttClient.connect(endpoint, client_id, self._received, keepalive=30,
                                          clean_session=not persistent, with_retain=True)
        republish = None
        try:
            if self._goodbyes is not None:
                self._goodbyes.clear()
            # Publishing works from now on: what the broker kept for a persistent session may need it at once.
            self._client = client
            await client.subscribe(self._subscriptions)
            self._connected.set()
            republish = asyncio.create_task(self._republish_configs())
            log.info("MQTT bridge connected to %s:%s%s", endpoint.host, endpoint.port,
                     f" (session {client_id}, {'resumed' if client.session_present else 'new'})" if persistent else "")
            await client.wait_closed()
        finally:
            if republish is not None:
                republish.cancel()
            client.close()
            if self._resuming is not None:
                self._resuming.cancel()
                self._resuming = None

    # --- inbound ---------------------------------------------------------------------------

    def _received(self, name, payload, retained=False):
        """Every inbound message, straight from the connection (see mqtt_client.py): returns None when
        it is handled, or the future of its handling (its acknowledgement waits for it). `retained`: a
        replay of what the broker kept (a status from before we subscribed), not news."""
        parts = name.split("/")
        if name == connection_log.LOG_TOPIC:
            return self._log_line(payload)
        if len(parts) != 4:
            self.stats["malformed"] += 1
            return None
        uid, kind = parts[2], parts[3]
        if kind == "telemetry":
            done = self.batches.take(uid, payload)
            if not self.batches.room.is_set():
                self._hold_back()
            return done
        self.stats[f"{kind}_received"] += 1
        return self._queue(uid, kind, payload, retained)

    def _queue(self, uid, kind, payload, retained=False):
        done = asyncio.get_running_loop().create_future()
        if self._inbox.qsize() >= _MAX_INBOX:
            # Not taken, so not acknowledged: the session ends and Mosquitto sends it again later (a QoS 0
            # one is gone: nothing acknowledges it anyway).
            self.stats[f"{kind}_dropped"] += 1
            done.set_exception(BridgeUnavailable("the inbox is full"))
            done.exception()  # retrieved: for a QoS 0 message nobody looks
            return done
        self._inbox.put_nowait((uid, kind, payload, retained, done))
        return done

    def _log_line(self, line):
        event = connection_log.parse(line)
        if event is None:
            return None
        kind, uid = event
        if kind == "goodbye":
            done = self._queue(uid, kind, None)
            self._goodbyes_queued += not done.done()  # done already: not taken
            return done
        if self._goodbyes or self._goodbyes_queued:  # a reconnect matters only while a goodbye is on its way
            return self._queue(uid, kind, None)
        return None

    def _hold_back(self):
        """The batches are full: stop reading until a write makes room (the broker holds the rest)."""
        client = self._client
        if client is None or self._resuming is not None:
            return
        client.pause_reading()
        self._resuming = asyncio.get_running_loop().create_task(self._resume_when_room(client))

    async def _resume_when_room(self, client):
        await self.batches.room.wait()
        self._resuming = None
        client.resume_reading()

    async def _inbox_loop(self):
        while True:
            uid, kind, payload, retained, done = await self._inbox.get()
            try:
                if kind == "status":
                    await self._apply_status(uid, payload, replayed=bool(retained))
                elif kind == "ack":
                    await self._apply_ack(uid, payload)
                elif kind == "goodbye":
                    self._goodbyes_queued -= 1
                    await self._said_goodbye(uid)
                elif kind == "hello":
                    self._goodbyes.hello(uid)
                elif kind == "ota":
                    await self.events.ota_report(uid, *schemas.ota_progress(payload))
                elif kind == "config_report":
                    await self.events.config_report(uid, *config_schemas.config_report(payload))
            except BridgeUnavailable as error:  # a status we had to publish was not
                done.set_exception(error)  # not acknowledged: the broker sends the message again
                done.exception()  # retrieved: the connection it came on may be gone already
                continue
            except Exception as error:  # noqa: BLE001 - one bad message must never end every device's session
                self._count_failure(uid, kind, error)
            done.set_result(None)

    def _count_failure(self, uid, kind, error):
        if isinstance(error, schemas.BadMessage):
            self.stats[f"{kind}_malformed"] += 1
            log.debug("dropped %s from %s: %s", kind, uid, error)
        else:
            self.stats[f"{kind}_failed"] += 1
            log.error("could not handle %s from %s", kind, uid, exc_info=error)

    async def _apply_status(self, uid, payload, replayed):
        report = schemas.device_status(payload)
        if report is None:
            return
        report["replayed"] = replayed
        if self._goodbyes is not None:
            apply, again = self._goodbyes.status(uid, payload, report["online"])
            if again is not None:
                self.stats["status_restored"] += 1  # a reconnect overtook our offline status
                await self._publish(topic(uid, "status"), again, retain=True)
            if not apply:
                self.stats["status_overtaken"] += 1
                return
        await self.events.device_status(uid, report)

    async def _apply_ack(self, uid, payload):
        command_id, state, result, error = schemas.ack(payload)
        await self.events.command_ack(uid, command_id, state, result, error)

    async def _said_goodbye(self, uid):
        """Mosquitto logged a clean disconnect of `uid`: publish the offline status its will would have,
        for a device that is online (an account of ours; other clients, or a device that said it is
        offline itself, have nothing to undo)."""
        device = await self.storage.devices.find(uid)
        if device is None or not device.is_online:
            return
        self._goodbyes.said(uid)
        await self._publish(topic(uid, "status"), OFFLINE_STATUS, retain=True)

    # --- outbound -------------------------------------------------------------------------

    async def send_command(self, uid, command):
        """Publish a command (QoS 1). Raises BridgeUnavailable when there is no broker session."""
        body = {"id": command.id, "type": command.type, "payload": command.payload}
        await self._publish(topic(uid, "cmd"), orjson.dumps(body))

    async def publish_configs(self, uids=None):
        """Publish the retained `config` of each device of `uids` (None: of every device), as storage holds it
        now, a page at a time, each page at once. Raises BridgeUnavailable when one was not published (the next
        session publishes them all again)."""
        configuration = self.storage.configuration
        async with self._configs:
            if uids is None:
                after = 0
                while after is not None:
                    page, after = await configuration.published_page(after, _CONFIG_PAGE)
                    await self._publish_configs(page)
                return
            uids = list(uids)
            for start in range(0, len(uids), _CONFIG_PAGE):
                await self._publish_configs(await configuration.published(uids[start:start + _CONFIG_PAGE]))

    async def _publish_configs(self, page):
        results = await asyncio.gather(*(
            self._publish(topic(p.uid, "config"), orjson.dumps({"v": p.version, "settings": p.settings}), retain=True)
            for p in page), return_exceptions=True)
        failed = [result for result in results if isinstance(result, BaseException)]
        if failed:
            raise failed[0] if isinstance(failed[0], BridgeUnavailable) else BridgeUnavailable(str(failed[0]))

    async def _republish_configs(self):
        try:
            await self.publish_configs()
        except BridgeUnavailable as error:
            log.warning("MQTT bridge: could not publish every device's config again: %s", error)
        except Exception:  # noqa: BLE001 - the session goes on; the next one tries again
            log.exception("MQTT bridge: could not publish every device's config again")

    async def clear_config(self, uid):
        """Remove a deleted device's retained `config`."""
        async with self._configs:
            await self._publish(topic(uid, "config"), b"", retain=True)

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
