"""The embedded MQTT broker: amqtt inside the backend process, for a fleet without Mosquitto.

Two listeners that authenticate alike:
- TLS (default 0.0.0.0:8883) for boards, with the certificate of tls.ensure_certificates();
- plain TCP (default 127.0.0.1:1883) for the backend's own bridge and local tools.

Who may log in:
- a board: username = client id = its uid, with its password, as `verify_device` decides
  (the app checks the stored hash and that the device exists and is enabled);
- the backend account (`backend_username` / `backend_password`), made fresh at each
  construction, which may publish and subscribe anything;
- with `home_assistant` (a password), Home Assistant as ha_access.USERNAME, under any client id, with
  ha_access.py's rule (docs/home-assistant.md).

A board may publish, subscribe and receive only below `mpfleet/v1/<uid>/` (docs/protocol.md).

What the broker does for the backend beyond routing (amqtt_fixes.py's hooks):
- a board's telemetry goes straight to the backend's TelemetryBatches, and a QoS 1 one is
  acknowledged to the board only once its rows are committed (the backend shares this process:
  a message acknowledged and not yet stored would die with it); the bridge therefore does not
  subscribe to telemetry. While the batches are full, boards' packets are not read;
- a board that disconnects cleanly, which MQTT gives no will, gets its offline status published
  as the will would be, after the messages it sent before.

Each TLS session costs ~110 KiB rather than ~330 KiB because asyncio's per-connection read
buffer is lowered to TLS_READ_BUFFER (see `_small_tls_read_buffers`).

Retained messages live only in memory: after a restart the broker starts empty, and
boards, which must reconnect anyway, publish their retained status again.

amqtt's faults that matter to a fleet (keep-alive, session hijack, take-over, retained
messages past the ACL, accepted messages lost when their publisher leaves, packets of any
size, messages lost while someone subscribes) are fixed in amqtt_fixes.py.
"""

import asyncio.sslproto
import hmac
import logging
import secrets

from .. import listeners
from . import ha_access
from .accounts import OFFLINE_STATUS
from .amqtt_fixes import FixedBroker
from .amqtt_plugins import ConnectedPlugin, LoginPlugin, TopicAclPlugin, plugin_path

log = logging.getLogger(__name__)

BACKEND_USERNAME = "mpfleet-backend"
TOPIC_PREFIX = "mpfleet/v1"
# MQTT wildcards and the level separator: a username holding one could widen its own ACL prefix.
_NOT_IN_USERNAME = frozenset("/+#")
# asyncio's read buffer per TLS connection; its own is 256 KiB. Two full TLS records.
TLS_READ_BUFFER = 32 * 1024


class EmbeddedBroker:
    """The broker's lifetime is start() ... stop(), both awaited in the same running loop.

    After start(), `plain_port` and `tls_port` are the bound ports (the ones the OS chose
    when 0 was asked).
    """

    def __init__(self, *, tls, verify_device, plain_host="127.0.0.1", plain_port=1883,
                 tls_host="0.0.0.0", tls_port=8883, on_device_connected=None, telemetry=None, home_assistant=None):
        """`verify_device(uid, password)` returns an awaitable bool; `on_device_connected(uid,
        peer_ip)` is called, if given, each time a board's login is accepted; `telemetry` (a
        TelemetryBatches), if given, takes the boards' telemetry (else it is only routed);
        `home_assistant`, if given, is the password of the Home Assistant account."""
        self.backend_username = BACKEND_USERNAME
        self.backend_password = secrets.token_urlsafe(32)
        self._home_assistant = home_assistant
        self.plain_port = plain_port
        self.tls_port = tls_port
        self._plain_address = (plain_host, plain_port)
        self._tls_address = (tls_host, tls_port)
        self._tls = tls
        self._verify_device = verify_device
        self._on_device_connected = on_device_connected
        self._telemetry = telemetry
        self._broker = None

    async def start(self):
        """Open both listeners. Raises listeners.ListenerError, saying which, when one cannot bind
        (and leaves nothing open)."""
        _quiet_amqtt_logs()
        _small_tls_read_buffers()
        # Bound here rather than by amqtt, which would log a traceback and leave the other listener open.
        sockets, broker = {"default": listeners.bind("plain MQTT", *self._plain_address)}, None
        try:
            sockets["tls"] = listeners.bind("MQTT over TLS", *self._tls_address)
            broker = FixedBroker(self._config(), sockets, on_publish=self._published, read_gate=self._read_gate,
                                 goodbye=self._goodbye)
            await broker.start()
        except BaseException:
            if broker is not None:
                await broker.close_connections()
            for sock in sockets.values():
                sock.close()
            raise
        self._broker = broker
        self.plain_port = broker.bound_port("default")
        self.tls_port = broker.bound_port("tls")

    async def stop(self):
        """Close every connection, then the broker. Retained messages are gone after this."""
        broker, self._broker = self._broker, None
        if broker is None:
            return
        # Connections first: amqtt's shutdown stops each session with handler.stop(),
        # which can hang on a connection still receiving (see amqtt_fixes.py).
        await broker.close_connections()
        await broker.shutdown()

    async def disconnect(self, uid):
        """Cut the live session of client id `uid` now; True if there was one.

        Its will is published as for any lost connection, so subscribers see the board
        go offline; this returns once it has been (within a second), so a retained message
        published afterwards (an empty one, to clear the status) replaces the will's.
        Refusing the board's next login is up to `verify_device`.
        """
        if self._broker is None:
            return False
        return await self._broker.cut(uid)

    def _config(self):
        return {
            "listeners": {
                # amqtt fills the unset fields of every listener from the one named "default",
                # so "default" must be the plain one, or the plain listener would inherit TLS.
                "default": {"type": "tcp", "bind": "%s:%d" % self._plain_address},
                "tls": {"type": "tcp", "bind": "%s:%d" % self._tls_address, "ssl": True,
                        "certfile": str(self._tls.server_cert), "keyfile": str(self._tls.server_key)},
            },
            # Naming the plugins also keeps amqtt's defaults out: anonymous login allowed,
            # and $SYS topics whose plugin raises a DeprecationWarning.
            "plugins": {
                plugin_path(LoginPlugin): {"check": self._check_login},
                plugin_path(TopicAclPlugin): {"prefix": TOPIC_PREFIX, "superuser": self.backend_username,
                                              "accounts": {ha_access.USERNAME: _home_assistant_may}
                                              if self._home_assistant else {}},
                plugin_path(ConnectedPlugin): {"on_connected": self._connected},
            },
        }

    async def _check_login(self, session):
        username, password = session.username, session.password
        if not username or not password:
            return False
        if username == self.backend_username:
            return hmac.compare_digest(password.encode(), self.backend_password.encode())
        if username == ha_access.USERNAME:  # never a device's uid (uids are <platform>_<12 characters>)
            return bool(self._home_assistant) and ha_access.may_use_client_id(session.client_id) and \
                hmac.compare_digest(password.encode(), self._home_assistant.encode())
        # A board logs in as itself only: a client id other than its uid could take over
        # another board's session.
        if session.client_id != username or not _NOT_IN_USERNAME.isdisjoint(username):
            return False
        return bool(await self._verify_device(username, password))

    def _is_board(self, session):
        return bool(session.username) and session.username not in (self.backend_username, ha_access.USERNAME)

    def _published(self, session, topic, data):
        """A board's telemetry, on its own topic, goes to the batches: the PUBACK waits for their commit."""
        if self._telemetry is not None and self._is_board(session) and \
                topic == f"{TOPIC_PREFIX}/{session.username}/telemetry":
            return self._telemetry.take(session.username, data)
        return None

    def _read_gate(self, session):
        return self._telemetry.room if self._telemetry is not None and self._is_board(session) else None

    def _goodbye(self, session):
        if self._is_board(session):
            return f"{TOPIC_PREFIX}/{session.username}/status", OFFLINE_STATUS
        return None

    def _connected(self, username, peer_ip):
        if username in (self.backend_username, ha_access.USERNAME) or self._on_device_connected is None:
            return
        try:
            self._on_device_connected(username, peer_ip)
        except Exception:
            log.exception("on_device_connected(%r, %r) failed", username, peer_ip)


def _home_assistant_may(action, topic):
    """ha_access.py's rule for one of amqtt's actions (subscribe: `topic` is the filter)."""
    if action == "subscribe":
        return ha_access.may_subscribe(topic)
    if action == "receive":
        return ha_access.may_receive(topic)
    return ha_access.may_publish(topic)


def _small_tls_read_buffers():
    """Lower asyncio's TLS read buffer, allocated (and zero-filled) for each connection, to
    TLS_READ_BUFFER: measured with 200 boards over TLS, 110-130 KiB of RSS a session instead
    of 330-340.

    asyncio offers no per-server setting (Python 3.11-3.13): the size is the class attribute
    `SSLProtocol.max_size`, read when the loop builds a connection's protocol, before the
    handshake. Shrinking a connection's buffer once the broker sees it is too late: the
    256 KiB of boards handshaking at once stay resident (200 at once: 358 KiB a session).
    So this sets it for the process, and only when the embedded broker starts: then the
    boards' connections are the backend's only asyncio TLS (the bridge uses the plain
    loopback listener). A smaller buffer costs nothing else than one recv() per 32 KiB of
    bulk data; a TLS record holds at most 16 KiB.
    """
    protocol = asyncio.sslproto.SSLProtocol
    protocol.max_size = min(protocol.max_size, TLS_READ_BUFFER)


def _quiet_amqtt_logs():
    """amqtt logs every connection and plugin at INFO, and its state machine library
    (transitions) every state change of every session: keep their warnings only, unless
    the application has chosen a level for them."""
    for name in ("amqtt", "transitions"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
