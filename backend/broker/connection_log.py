"""Clean disconnects on Mosquitto, read from its connection log (docs/protocol.md, "Presence").

A client that sends DISCONNECT loses its will (MQTT 3.1.1, 3.14.4), so a device that leaves
cleanly without publishing `{"online":false}` itself would stay online, and its retained status
with it. Mosquitto 2.0 publishes no event for that; its log is the one place that says it. With
`log_dest topic` and `connection_messages true`, every log line is also a message on
`$SYS/broker/log/<severity>`; the bridge subscribes to the notices and, for a device's clean
disconnect, publishes the device's offline status in its place (retained, on the device's own
topic, so it reaches the backend as any status does and a restart finds it).

Lines as Mosquitto 2.0.11 writes them (timestamp first; measured here):
    N  New client connected from 127.0.0.1:41713 as devA (p2, c1, k60, u'devA').
    N  Client devA disconnected.                        DISCONNECT: no will. The one acted on.
    N  Client devA closed its connection.               socket closed: the will follows
    N  Client devA has exceeded timeout, disconnecting.  keep-alive: the will follows
    N  Client devA disconnected due to oversize packet.  the will follows
    N  Client devA been disconnected by administrative action.   dynsec (mosquitto.py publishes the will)
    E  Client devA already connected, closing old connection.    take-over: the old will, then the new connect
They arrive at QoS 1 (Mosquitto publishes them at QoS 2), in the order of the broker's events,
and in order with the messages the clients published.

A device that disconnects cleanly and connects again at once can be back before our offline
status lands, and it would then overwrite the online status the new session published: the
`Goodbyes` kept here notice that (the reconnect is in the log between the disconnect and our
status coming back) and the bridge publishes the new session's status again.
"""

import re
from dataclasses import dataclass

LOG_TOPIC = "$SYS/broker/log/N"
# The timestamp Mosquitto puts first (unless `log_timestamp false`) must hold no space: a client id
# cannot then pass for a line of its own. Device ids are their uids (the dynsec client's `clientid`).
_DISCONNECTED = re.compile(rb"(?:\S+: )?Client (\S+) disconnected\.")
_CONNECTED = re.compile(rb"(?:\S+: )?New client connected from \S+ as (\S+) \(")


def parse(line):
    """("goodbye", client id) for a clean disconnect, ("hello", client id) for a new session, else None."""
    if line.endswith(b" disconnected."):
        match = _DISCONNECTED.fullmatch(line)
        return ("goodbye", match[1].decode(errors="replace")) if match else None
    match = _CONNECTED.match(line)
    return ("hello", match[1].decode(errors="replace")) if match else None


@dataclass
class _Pending:
    reconnected: bool = False
    status: bytes | None = None  # the newest status of the new session, if one came before our offline status


class Goodbyes:
    """Our offline statuses for clean disconnects, from the disconnect until each comes back to us."""

    def __init__(self):
        self._pending = {}  # uid -> _Pending

    def __len__(self):
        return len(self._pending)

    def said(self, uid):
        """We are publishing the offline status of `uid`, which disconnected cleanly."""
        self._pending[uid] = _Pending()

    def hello(self, uid):
        """The log says `uid` opened a new session."""
        pending = self._pending.get(uid)
        if pending is not None:
            pending.reconnected = True

    def status(self, uid, payload, online):
        """A status message of `uid` came. Returns (apply it?, a status to publish again or None)."""
        pending = self._pending.get(uid)
        if pending is None:
            return True, None
        if online:
            if pending.reconnected:
                pending.status = payload
            return True, None
        # An offline status: ours coming back (or the new session's will, which settles it as well).
        del self._pending[uid]
        if not pending.reconnected:
            return True, None
        # The device is connected again: it stays online, and the status its new session published is
        # retained again if our offline status came after it (and so replaced it).
        return False, pending.status

    def clear(self):
        """A new bridge session: Mosquitto sends the log lines we had not acknowledged again."""
        self._pending.clear()
