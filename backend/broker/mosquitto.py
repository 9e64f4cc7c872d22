"""Device accounts on an external Mosquitto 2, managed through its dynamic security plugin.

The backend talks to the plugin as an MQTT client: commands go to `$CONTROL/dynamic-security/v1`,
answers come back on `.../response`. Every request carries a fresh `correlationData`, because
several backend processes may share the admin account and each of them sees every answer.

- Each device gets a client (username = client id = uid) and a role of its own, `mpfleet-device-<uid>`, that
  allows publish, receive, subscribe and unsubscribe below `mpfleet/v1/<uid>/` only. One shared
  role with `%c`/`%u` in its topics would be simpler, but the plugin of Mosquitto 2.0 does not
  substitute them (measured on 2.0.11: such a role grants nothing).
- Safety does not rest on how the broker was set up: `start()` sets the plugin's default access so
  that publishing and subscribing are denied wherever no role allows them.
- Deleting or disabling a client kicks its sessions, but Mosquitto does so without publishing the
  will. The admin publishes the will (`{"online":false}`, retained, QoS 1) in its place, so
  presence behaves as with the embedded broker. The admin account therefore needs publish access
  below `mpfleet/v1/`, as the backend does for its commands anyway: `start()` gives it a role
  (`mpfleet-backend`) allowing that.
- With Home Assistant discovery on, `ensure_home_assistant()` makes its client (ha_access.USERNAME) with a role of
  its own, `mpfleet-home-assistant`, holding ha_access.py's rule, and gives the admin account a role,
  `mpfleet-ha-backend`, to publish the discovery configs and states (docs/home-assistant.md).
"""

import asyncio
import functools
import json
import secrets

from ..ha_discovery import DISCOVERY_PREFIX, ROOT
from ..mqtt_client import MqttClient, MqttError, Refused
from . import ha_access
from .accounts import OFFLINE_STATUS
from .endpoint import BrokerEndpoint

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = CONTROL_TOPIC + "/response"
ROLE_PREFIX = "mpfleet-device-"
BACKEND_ROLE = "mpfleet-backend"
HA_ROLE = "mpfleet-home-assistant"
HA_BACKEND_ROLE = "mpfleet-ha-backend"
_DEFAULT_TIMEOUT = 5.0
# The plugin's answers for "already as asked", which the idempotent calls accept.
_CLIENT_NOT_FOUND = "Client not found"
_ROLE_NOT_FOUND = "Role not found"
_ROLE_EXISTS = "Role already exists"
_CLIENT_EXISTS = "Client already exists"
# `mosquitto_ctrl dynsec init` makes an admin that may subscribe to everything but publish only to the plugin;
# the same account is the bridge's, which publishes commands and clears retained status.
_BACKEND_ACLS = [{"acltype": "publishClientSend", "topic": "mpfleet/v1/#", "allow": True}]
_HA_BACKEND_ACLS = [{"acltype": "publishClientSend", "topic": topic, "allow": True}
                    for topic in (f"{DISCOVERY_PREFIX}/#", f"{ROOT}/#")]
_DEVICE_ACL_TYPES = ("publishClientSend", "publishClientReceive", "subscribePattern", "unsubscribePattern")
# Receiving and unsubscribing are harmless once subscribing is denied, so they keep the
# operator's setting.
_SAFE_DEFAULT_ACCESS = [
    {"acltype": "publishClientSend", "allow": False},
    {"acltype": "subscribe", "allow": False},
]


class BrokerAdminError(Exception):
    """Mosquitto refused a command, did not answer in time, or could not be reached."""


class ConnectionLost(BrokerAdminError):
    """The connection dropped or could not be made; the call may be retried."""


def _retried_once_on_connection_loss(method):
    """The first call after a broker restart finds the old connection dead; it is retried
    once on a fresh one. Safe because every admin operation is idempotent as a whole."""

    @functools.wraps(method)
    async def retrying(self, *args):
        try:
            return await method(self, *args)
        except ConnectionLost:
            return await method(self, *args)

    return retrying


class MosquittoAdmin:
    """One MQTT connection to the dynamic security plugin; reconnects on the next call if it drops.

    `url` is `mqtt://user:password@host:port` or `mqtts://...` (verified against the system CAs, or
    `ca_file`). Every method raises BrokerAdminError; a uid that is not a plain topic level raises
    ValueError.
    """

    def __init__(self, url, *, ca_file=None, timeout=_DEFAULT_TIMEOUT):
        self._endpoint = BrokerEndpoint.from_url(url, ca_file)
        self._timeout = timeout
        self._client = None
        self._reader = None
        self._pending = {}  # correlationData -> future of the answers to one request
        self._connect_lock = asyncio.Lock()
        self._stopped = False  # so that a call racing stop() cannot open a new connection

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc_info):
        await self.stop()

    @_retried_once_on_connection_loss
    async def start(self):
        """Deny by default, and give this account the right to publish below the fleet's topics."""
        self._stopped = False
        await self._request([{"command": "setDefaultACLAccess", "acls": _SAFE_DEFAULT_ACCESS}])
        await self._add_own_role(BACKEND_ROLE, _BACKEND_ACLS)

    @_retried_once_on_connection_loss
    async def ensure_home_assistant(self, password, new):
        """Make (or bring up to date) the Home Assistant client and its role, and give this account the right to
        publish the discovery configs and states. An existing client is given `password` only when it is `new`
        (DATA/home-assistant.json was made again): setting one kicks Home Assistant's session (Mosquitto 2.0.11)."""
        await self._request([{"command": "createRole", "rolename": HA_ROLE, "acls": ha_access.dynsec_acls()}],
                            accept={_ROLE_EXISTS})
        (created,) = await self._request(
            [{"command": "createClient", "username": ha_access.USERNAME, "password": password,
              "roles": [{"rolename": HA_ROLE}]}], accept={_CLIENT_EXISTS})
        if "error" in created:  # made at an earlier start
            if new:
                await self._request([{"command": "setClientPassword", "username": ha_access.USERNAME,
                                      "password": password}])
            if HA_ROLE not in await self._roles_of(ha_access.USERNAME):
                await self._request([{"command": "addClientRole", "username": ha_access.USERNAME,
                                      "rolename": HA_ROLE}])
        await self._add_own_role(HA_BACKEND_ROLE, _HA_BACKEND_ACLS)

    async def _add_own_role(self, role, acls):
        """Give this account `role` (made with `acls` if missing), unless it has it."""
        if role in await self._roles_of(self._endpoint.username):
            return
        try:
            await self._request(
                [{"command": "createRole", "rolename": role, "acls": acls},
                 {"command": "addClientRole", "username": self._endpoint.username, "rolename": role}],
                accept={_ROLE_EXISTS})
        except ConnectionLost:
            pass  # Mosquitto kicks a client whose roles change: this one, before it could answer
        if role not in await self._roles_of(self._endpoint.username):
            raise BrokerAdminError(f"Mosquitto did not add the role {role} to {self._endpoint.username}")

    async def _roles_of(self, username):
        (answer,) = await self._request([{"command": "getClient", "username": username}])
        try:
            return {role["rolename"] for role in answer["data"]["client"]["roles"]}
        except (KeyError, TypeError) as e:
            raise BrokerAdminError(f"Mosquitto answered getClient with: {answer!r}") from e

    async def stop(self):
        self._stopped = True
        reader, client = self._reader, self._client
        self._reader = self._client = None
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        if client is not None:
            client.close()
        self._fail_pending("the admin connection was closed")

    @_retried_once_on_connection_loss
    async def add_device(self, uid, password):
        """Create the device's client and role. An existing client is replaced: the new password
        holds, the client is enabled, and sessions opened with the old password end."""
        await self._remove(uid)
        role = ROLE_PREFIX + uid
        await self._request([
            {"command": "createRole", "rolename": role, "acls": _device_acls(uid)},
            # `clientid`: a device logs in under its own uid only, as with the embedded broker; another
            # id could take over another device's session, or pass for it in the connection log.
            {"command": "createClient", "username": uid, "clientid": uid, "password": password,
             "roles": [{"rolename": role}]},
        ])

    @_retried_once_on_connection_loss
    async def remove_device(self, uid):
        """Delete the client (ending its sessions) and its role; an unknown uid is not an error."""
        await self._remove(uid)

    async def _remove(self, uid):
        client_answer, _ = await self._request(
            [{"command": "deleteClient", "username": _checked(uid)},
             {"command": "deleteRole", "rolename": ROLE_PREFIX + uid}],
            accept={_CLIENT_NOT_FOUND, _ROLE_NOT_FOUND})
        if "error" not in client_answer:
            await self._publish_will(uid)

    @_retried_once_on_connection_loss
    async def set_device_enabled(self, uid, enabled):
        """Enable or disable (ending its sessions) an existing client; an unknown uid is an error."""
        command = "enableClient" if enabled else "disableClient"
        await self._request([{"command": command, "username": _checked(uid)}])
        if not enabled:
            await self._publish_will(uid)

    async def _request(self, commands, accept=frozenset()):
        """Send commands in one message; return their answers in order. Errors not in `accept` raise."""
        client = await self._connected()
        correlation = secrets.token_hex(8)
        payload = json.dumps({"commands": [{**command, "correlationData": correlation} for command in commands]})
        answer = self._pending[correlation] = asyncio.get_running_loop().create_future()
        names = ", ".join(command["command"] for command in commands)
        # The answer can fail first (the reader saw the connection drop) while the PUBACK
        # would never come, so both are awaited together.
        publishing = asyncio.ensure_future(client.publish(CONTROL_TOPIC, payload.encode(), qos=1, timeout=None))
        try:
            done, _ = await asyncio.wait((publishing, answer), timeout=self._timeout,
                                         return_when=asyncio.FIRST_EXCEPTION)
            errors = [future.exception() for future in done if future.exception() is not None]
            if errors:  # both may have failed (the connection dropped): each one is looked at
                raise errors[0]
            if answer not in done:
                raise BrokerAdminError(
                    f"Mosquitto did not answer {names} within {self._timeout:g} s: is the dynamic security"
                    f" plugin loaded, and may this account publish to {CONTROL_TOPIC}?")
        except MqttError as e:
            raise ConnectionLost(f"Could not send {names} to Mosquitto: {e}") from e
        finally:
            self._pending.pop(correlation, None)
            publishing.cancel()
            await asyncio.gather(publishing, return_exceptions=True)
        return _checked_answers(commands, answer.result(), accept)

    async def _publish_will(self, uid):
        client = await self._connected()
        try:
            await client.publish(f"mpfleet/v1/{uid}/status", OFFLINE_STATUS, qos=1, retain=True, timeout=self._timeout)
        except MqttError as e:
            raise ConnectionLost(f"Could not publish the offline status of {uid}: {e}") from e

    async def _connected(self):
        async with self._connect_lock:
            if self._stopped:
                raise BrokerAdminError("The Mosquitto admin is stopped")
            if self._client is None:
                self._client = await _connect(self._endpoint, self._timeout, self._dispatch)
                self._reader = asyncio.create_task(self._watch(self._client))
            return self._client

    async def _watch(self, client):
        """When the connection ends, the requests waiting on it fail and the next one connects again."""
        reason = "the connection to Mosquitto ended"
        try:
            await client.wait_closed()
        except MqttError as e:
            reason = f"lost the connection to Mosquitto: {e}"
        if self._client is client:
            self._client = self._reader = None
        self._fail_pending(reason)

    def _dispatch(self, topic, payload):
        """Hand a response message to the request it answers; other admins' answers are ignored."""
        try:
            answers = json.loads(payload)["responses"]
            correlation = answers[0]["correlationData"]
        except (ValueError, KeyError, IndexError, TypeError):
            return
        future = self._pending.get(correlation) if isinstance(correlation, str) else None
        if future is not None and not future.done():
            future.set_result(answers)

    def _fail_pending(self, reason):
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(reason))


def _checked_answers(commands, answers, accept):
    if not isinstance(answers, list) or len(answers) != len(commands):
        raise BrokerAdminError(f"Mosquitto answered {len(commands)} commands with: {answers!r}")
    for command, answer in zip(commands, answers):
        error = answer.get("error") if isinstance(answer, dict) else "a malformed answer"
        if error and error not in accept:
            raise BrokerAdminError(f"Mosquitto refused {command['command']}: {error}")
    return answers


def _device_acls(uid):
    topic = f"mpfleet/v1/{_checked(uid)}/#"
    return [{"acltype": acltype, "topic": topic, "allow": True} for acltype in _DEVICE_ACL_TYPES]


def _checked(uid):
    """The uid becomes a topic level of an ACL: a wildcard or slash there would open other devices' topics."""
    if not isinstance(uid, str) or not uid or any(c in uid for c in "/+#\0"):
        raise ValueError(f"Not a device uid: {uid!r}")
    return uid


async def _connect(endpoint, timeout, on_message):
    """A connected client subscribed to the plugin's answers. Raises BrokerAdminError."""
    where = f"{endpoint.host}:{endpoint.port}"
    try:
        client = await MqttClient.connect(endpoint, "mpfleet-admin-" + secrets.token_hex(6), on_message,
                                          timeout=timeout)
    except MqttError as e:
        raise ConnectionLost(f"Cannot connect to Mosquitto at {where}: {e}") from e
    try:
        await client.subscribe([(RESPONSE_TOPIC, 1)], timeout=timeout)
    except Refused as e:
        client.close()
        raise BrokerAdminError(f"Mosquitto at {where} refused {RESPONSE_TOPIC} to this account: {e}") from e
    except MqttError as e:
        client.close()
        raise ConnectionLost(f"Cannot subscribe to {RESPONSE_TOPIC} at {where}: {e}") from e
    return client
