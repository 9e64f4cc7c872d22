"""Home Assistant MQTT discovery (`mpfleet serve --ha-discovery`; docs/home-assistant.md): the bridge's companion.

One MQTT session of its own, as the backend's account, that keeps Home Assistant's view of one user's fleet:

- rounds: it reads the fleet (storage/home_assistant.py), makes every retained message each device needs
  (ha_discovery.py: discovery configs, availability, telemetry, firmware update) and publishes those that differ
  from what it published last; a topic no longer wanted (a deleted device, a removed button) gets an empty retained
  message, which removes the entity. A round runs every ROUND_SECONDS (new buttons, targets, telemetry keys and
  deletions show within that), soon after a nudge (a device's status, ack or OTA report: NudgingEvents; a press),
  and with everything published again after Home Assistant's birth message (`homeassistant/status` = online);
- what the broker kept retained from before (a restart) is read back at the session's start, on a short session of
  its own (the main one subscribes to nothing it publishes), so that entities of devices deleted meanwhile are
  removed too;
- presses: Home Assistant publishes on `mpfleet/ha/<uid>/command`; each becomes a tracked command through the
  service (send_command, trigger_ota), paced, in the history and on the live events as any other. Never the
  device's own `cmd` topic: Home Assistant's account may not publish there (broker/ha_access.py).
"""

import asyncio
import logging
import secrets

from . import ha_discovery
from .ha_discovery import (BIRTH_TOPIC, BUTTON, COMMAND_FILTER, CONFIG_FILTER, INSTALL, OFFLINE, ONLINE, REBOOT, ROOT,
                           STATE_FILTER, WIFI_RESET)
from .mqtt_client import MqttClient, MqttError
from .service import ServiceError
from .storage import StorageError
from .storage.home_assistant import HomeAssistantReads

log = logging.getLogger(__name__)

ROUND_SECONDS = 2.0  # a round at least this often
_GAP = 0.5  # between two rounds at least: a burst of nudges (a fleet's statuses, an OTA's reports) is one round
_MAX_PRESSES = 100  # presses waiting for their turn; past it a press is dropped and logged
_BURST = 100  # retained messages published at once (their PUBACKs awaited together)
_SYNC_TOPIC = f"{ROOT}/_backend/sync"  # comes back after what the broker replays to a subscription (no uid has _)
_SYNC_SECONDS = 5.0
_RECONNECT_MIN, _RECONNECT_MAX = 0.5, 10.0


class HomeAssistantBridge:
    def __init__(self, storage, service, endpoint, user_name):
        """`user_name`: the user whose devices Home Assistant sees (no other user's)."""
        self.storage, self.service, self.endpoint, self.user_name = storage, service, endpoint, user_name
        self.reads = HomeAssistantReads(storage.db)
        self._published = {}  # topic -> payload retained at the broker as far as we know
        self._made = {}  # uid -> (FleetDevice, its config key, configs, all messages) as the last round made them
        self._due = asyncio.Event()
        self._birth = False  # Home Assistant said it is online: everything again
        self._presses = asyncio.Queue(_MAX_PRESSES)
        self._user_id = None
        self._warned_no_user = False
        self._client = None  # while a session is up
        self._stopping = False

    def nudge(self):
        """Something changed that Home Assistant shows: a round soon."""
        self._due.set()

    async def run(self):
        """Hold the session for as long as the app runs, reconnecting with backoff."""
        worker = asyncio.create_task(self._press_loop())
        delay = _RECONNECT_MIN
        try:
            while True:
                try:
                    await self._session()
                except MqttError as error:
                    log.warning("Home Assistant discovery: %s; reconnecting in %.1f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RECONNECT_MAX)
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
            await self.reads.close()

    async def _session(self):
        client = await MqttClient.connect(self.endpoint, f"{self.endpoint.username}-ha-{secrets.token_hex(4)}",
                                          self._received, keepalive=30, with_retain=True)
        rounds = None
        self._client = client
        try:
            await client.subscribe([(COMMAND_FILTER, 1), (BIRTH_TOPIC, 0)])  # nothing it publishes comes back
            self._published = await self._retained()
            rounds = asyncio.create_task(self._rounds(client))
            log.info("Home Assistant discovery: publishing the devices of user %r", self.user_name)
            await client.wait_closed()
        finally:
            self._client = None
            client.close()
            if rounds is not None:
                rounds.cancel()
                await asyncio.gather(rounds, return_exceptions=True)

    async def _retained(self):
        """{topic: payload} of ours the broker keeps retained (from before a restart), read on a short session of
        its own: it subscribes to the discovery configs and our state topics, takes what the broker replays, and
        ends once a marker it publishes itself comes back after the replay. Raises MqttError."""
        found, synced = {}, asyncio.get_running_loop().create_future()

        def received(name, payload, retained):
            if name == _SYNC_TOPIC:
                if not synced.done():
                    synced.set_result(None)
            elif retained and payload and ha_discovery.command_of(name) is None and \
                    (name.startswith(ROOT + "/") or ha_discovery.is_ours(name)):
                found[name] = payload

        client = await MqttClient.connect(self.endpoint, f"{self.endpoint.username}-ha-{secrets.token_hex(4)}",
                                          received, keepalive=30, with_retain=True)
        try:
            await client.subscribe([(CONFIG_FILTER, 0), (STATE_FILTER, 1)])
            await client.publish(_SYNC_TOPIC, b"", qos=1)
            try:
                await asyncio.wait_for(synced, _SYNC_SECONDS)
            except TimeoutError:
                log.warning("Home Assistant discovery: the broker's retained messages did not all come within %g s;"
                            " entities of devices deleted meanwhile may stay", _SYNC_SECONDS)
        finally:
            client.close()
        return found

    async def say_offline(self, timeout=5.0):
        """Before the backend stops: every device it showed online is shown unavailable, and no round runs after.
        A broker that outlives the backend (Mosquitto) keeps what is retained, and nobody keeps it true meanwhile;
        the next start's first round shows the devices as they are."""
        self._stopping = True
        client = self._client
        names = [name for name, payload in self._published.items()
                 if name.endswith("/availability") and payload == ONLINE]
        if client is None:
            return
        try:
            async with asyncio.timeout(timeout):
                for start in range(0, len(names), _BURST):
                    await asyncio.gather(*(client.publish(name, OFFLINE, qos=1, retain=True)
                                           for name in names[start:start + _BURST]))
        except (MqttError, TimeoutError) as error:
            log.warning("Home Assistant discovery: could not show the devices unavailable at stop: %s", error)

    def _received(self, name, payload, retained):
        """Every message of our subscriptions (mqtt_client.py's callback: must not block)."""
        if name == BIRTH_TOPIC:
            if payload == ONLINE:
                self._birth = True
                self.nudge()
        elif (uid := ha_discovery.command_of(name)) is not None:
            if not retained:  # a press kept retained would press again at every restart
                self._take_press(uid, payload)
        return None

    def _take_press(self, uid, payload):
        try:
            self._presses.put_nowait((uid, payload.decode(errors="replace")))
        except asyncio.QueueFull:
            log.warning("Home Assistant discovery: %d presses waiting; dropped %r for %s", _MAX_PRESSES,
                        payload[:64], uid)

    # --- rounds ----------------------------------------------------------------------------

    async def _rounds(self, client):
        everything = True  # the session's first round: all of it
        while True:
            try:
                await self._round(client, everything)
            except MqttError:
                client.close()  # the session ends (wait_closed raises) and starts again
                return
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("Home Assistant discovery: a round failed")
            await asyncio.sleep(_GAP)
            try:
                await asyncio.wait_for(self._due.wait(), ROUND_SECONDS - _GAP)
            except TimeoutError:
                pass
            self._due.clear()
            everything, self._birth = self._birth, False

    async def _round(self, client, everything):
        if self._stopping:
            return
        wanted = {}
        user_id = await self._owner()
        fleet = await self.reads.fleet(user_id) if user_id is not None else []
        for count, device in enumerate(fleet, 1):
            wanted.update(self._messages(device))
            if count % _BURST == 0:
                await asyncio.sleep(0)  # a large fleet's payloads leave room for the rest of the loop
        for uid in self._made.keys() - {device.uid for device in fleet}:
            del self._made[uid]
        changed = [(name, payload) for name, payload in wanted.items()
                   if everything or self._published.get(name) != payload]
        gone = [(name, b"") for name, payload in self._published.items() if name not in wanted]
        for start in range(0, len(changed) + len(gone), _BURST):
            burst = (changed + gone)[start:start + _BURST]
            await asyncio.gather(*(client.publish(name, payload, qos=1, retain=True) for name, payload in burst))
            for name, payload in burst:
                if payload:
                    self._published[name] = payload
                else:
                    self._published.pop(name, None)

    def _messages(self, device):
        """ha_discovery.messages(device), made again only where the device changed: a round over a fleet whose
        telemetry moves rebuilds its states, and its configs only for a new key, button or firmware."""
        made = self._made.get(device.uid)
        if made is not None and made[0] == device:
            return made[3]
        key = ha_discovery.config_key(device)
        configs = made[2] if made is not None and made[1] == key else ha_discovery.config_messages(device)
        messages = {**configs, **ha_discovery.state_messages(device)}
        self._made[device.uid] = (device, key, configs, messages)
        return messages

    async def _owner(self):
        """The id of the user whose devices are shown, or None while there is no such user."""
        if self._user_id is None:
            self._user_id = await self.reads.user_id(self.user_name)
            if self._user_id is None and not self._warned_no_user:
                self._warned_no_user = True
                log.warning("Home Assistant discovery: no user %r: nothing is shown until there is", self.user_name)
        return self._user_id

    # --- presses ---------------------------------------------------------------------------

    async def _press_loop(self):
        while True:
            uid, action = await self._presses.get()
            try:
                await self._press(uid, action)
            except Exception:  # noqa: BLE001 - one press must not end the others
                log.exception("Home Assistant discovery: the press %r for %s failed", action, uid)
            self.nudge()  # an OTA shows in progress at once

    async def _press(self, uid, action):
        """Send the command a press stands for, as a request would (service.py). A press for a device that is not
        the user's, or that cannot be sent, is logged and dropped."""
        user_id = await self._owner()
        device = await self.storage.devices.find(uid)
        if user_id is None or device is None or device.user_id != user_id:
            log.warning("Home Assistant discovery: %r for %s, no device of user %r: ignored", action, uid,
                        self.user_name)
            return
        try:
            if action in (REBOOT, WIFI_RESET):
                command = await self.service.send_command(device, action, {})
            elif action == INSTALL:
                command = await self.service.trigger_ota(await self.storage.devices.get(user_id, uid))
            elif action.startswith(BUTTON):
                button = await self.storage.buttons.get(device, action[len(BUTTON):])
                if button.payload is None:
                    raise ServiceError("the button's stored payload cannot be read")
                command = await self.service.send_command(device, "custom", button.payload)
            else:
                log.warning("Home Assistant discovery: unknown press %r for %s: ignored", action[:64], uid)
                return
        except (ServiceError, StorageError) as error:
            log.warning("Home Assistant discovery: %r for %s not sent: %s", action, uid, error.message)
            return
        log.info("Home Assistant discovery: %r for %s is command %s (%s)", action, uid, command.id, command.state)


class NudgingEvents:
    """The bridge's events (bridge.StorageEvents' interface) handed to `inner`, then a nudge of the Home Assistant
    bridge: presence, acks and OTA reports show there at once rather than at the next round."""

    def __init__(self, inner, home_assistant):
        self.inner, self.home_assistant = inner, home_assistant

    async def device_status(self, uid, report):
        await self.inner.device_status(uid, report)
        self.home_assistant.nudge()

    async def command_ack(self, uid, command_id, state, result, error):
        await self.inner.command_ack(uid, command_id, state, result, error)
        self.home_assistant.nudge()

    async def ota_report(self, uid, job_id, state, progress, error):
        await self.inner.ota_report(uid, job_id, state, progress, error)
        self.home_assistant.nudge()

    def __getattr__(self, name):  # the events it does not nudge on are inner's
        return getattr(self.inner, name)
