"""amqtt 0.12.1's Broker with the seven faults that matter to a device fleet fixed.

Found and measured in a study of amqtt 0.12.1 before we adopted it (stock broker vs. this one):

A. Keep-alive is not enforced. The reader loop waits `keep_alive` seconds for a packet,
   then calls `handle_read_timeout()`, which does nothing: a board that lost power stays
   "connected" forever and its will is never published. Fix: `_Handler.handle_read_timeout`
   cuts the connection, and the wait is 1.5 x the client's keep-alive, as MQTT 3.1.1
   section 3.1.2.10 asks. The reader then sees end-of-file and the broker takes its
   ordinary abnormal-disconnect path, which publishes the will.

B. A CONNECT that fails authentication still hijacks the session. With clean session
   set, the broker deletes the live session of that client id before it authenticates,
   so a wrong password sent under a live board's id leaves the board connected but
   receiving nothing. Fix: `_initialize_client_session` authenticates first and answers
   a refusal with CONNACK "not authorized" before touching any session.

C. A take-over leaves the old connection open. A second login with the same client id
   replaces the session but never closes the first socket; when that socket dies later,
   its will (retained `{"online":false}`) overwrites the status the new connection
   published. Fix: after a successful login, cut the old connection and wait until the
   broker has finished with it (its will comes now, before the new CONNACK), then go on.

D. Retained messages bypass the ACL. On every CONNECT the broker replays the retained
   messages matching *any* client's subscription filters to the new client: since the
   backend subscribes to `mpfleet/v1/#`, every board was sent every other board's
   status without subscribing to anything. Fix: replay only for filters the session
   itself holds and the ACL allows.

E. Messages a client has sent are lost when it leaves, QoS 1 included. The broker acks a
   PUBLISH once it is queued in the session, and the client's loop routes that queue one
   message per turn; when the client disconnects (DISCONNECT or a lost socket) the loop
   ends and cancels its wait, and whatever is still queued is never routed: 2,464 of a
   5,000-message QoS 1 burst from 10 publishers leaving right after their last PUBACK.
   Fix: `_client_message_loop`, on the disconnect, first routes everything still queued,
   then takes amqtt's disconnect path, so a will also comes after the client's messages.

F. Any client can make the broker hold a packet of any size. amqtt reads a packet's whole
   remaining length (up to 256 MB) into memory before looking at it, and does so for a
   CONNECT too, before authentication: one 100 MB PUBLISH on a device's own telemetry topic
   was acked and grew the server from 59 to 216 MB. Fix: every connection reads through
   `_Reader`, which takes one packet at a time and drops the connection when its fixed
   header announces more than limits.MAX_PACKET_BYTES, before reading the body.

G. Routing a message while someone subscribes can fail. `_run_broadcast` walks the live
   subscription table and awaits the ACL check for each subscriber on the way; a SUBSCRIBE
   that adds a filter meanwhile ends the walk with "dictionary changed size during
   iteration", and the subscribers not reached yet never get the message (seen when a
   board's will or offline status was routed while another board subscribed). Fix: walk a
   copy of the table.

H. Routing a message costs a match against every filter there is: with 1,000 boards (each
   subscribed to its own `cmd` topic) a bulk command's 14,000 messages made 7.5 M calls of
   `_matches`, most of the 5.5 s the backend took to see every board's ack (profiled). Fix:
   the table (`_SubscriptionTable`) keeps its filters with a wildcard apart, and a message is
   matched against those and looked up once for its own topic.

These overrides replace private methods of amqtt.broker.Broker, which is why amqtt is
pinned to 0.12.1; tests/test_embedded_broker.py fails on a stock broker for each.

Three hooks for the application (embedded.py), in the same methods:
- `on_publish(session, topic, data)` sees every PUBLISH a client sends, in order, before it
  is routed, and may return an awaitable: a QoS 1 PUBLISH is acknowledged only once that is
  done (a device's telemetry once its rows are committed). amqtt handles each incoming
  PUBLISH in a task of its own, so a PUBACK that waits does not stall the reader; PUBACKs
  still go out in the order of the PUBLISHes (MQTT 3.1.1, 4.6);
- `read_gate(session)` may give an asyncio.Event: the client's next packet is read only while
  it is set (backpressure: the client's sends wait in its socket);
- `goodbye(session)` may give a (topic, payload) to publish, retained at QoS 1 as a will would
  be, when the client disconnects cleanly (MQTT drops the will then): a device's offline status.

Also here, because the same hooks make them possible:
- a connection is cut with `transport.abort()`, never with amqtt's `handler.stop()`: on
  Python 3.11 a cancelled reader task can swallow its cancellation (asyncio.wait_for
  racing with an arriving packet), and stop() then hangs; closing the socket lets the
  reader end by itself. abort(), unlike close(), does not wait to flush data to a peer
  that may never read it;
- a client must send CONNECT within CONNECT_TIMEOUT, and every connection is tracked,
  so shutting down can end all of them and leave no task behind;
- TLS listeners use tls.server_context() rather than amqtt's context, which asks every
  client for a certificate;
- listeners serve on sockets bound beforehand (embedded.py), so a port that is taken is one
  clear error before amqtt starts, not amqtt's traceback with the other listener left open.
"""

import asyncio
import functools
import logging

from amqtt.adapters import StreamReaderAdapter, StreamWriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.errors import AMQTTError, MQTTError
from amqtt.mqtt.constants import QOS_1, QOS_2
from amqtt.mqtt.disconnect import DisconnectPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.puback import PubackPacket
from amqtt.session import INCOMING
from amqtt.utils import gen_client_id

from .limits import MAX_PACKET_BYTES
from .tls import server_context

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10  # seconds from TCP/TLS accept to a complete CONNECT packet
CLOSE_TIMEOUT = 2  # seconds to flush and close a refused connection
KEEPALIVE_GRACE = 1.5  # MQTT 3.1.1, 3.1.2.10: "one and a half times the Keep Alive time period"
# Marks a session that `_initialize_client_session` has authenticated already.
_AUTHENTICATED = "mpfleet.authenticated"


class _Reader(StreamReaderAdapter):
    """amqtt's TCP reader, fed one whole packet at a time (fault F).

    amqtt reads a packet in small pieces (the type, each byte of the remaining length, then
    the rest); this reads the fixed header itself, refuses a packet larger than
    MAX_PACKET_BYTES, and serves amqtt's reads from the packet it has read. A read past the
    packet's end (a malformed packet) goes on into the next one, as on the bare stream.
    """

    def __init__(self, stream_reader, writer):
        super().__init__(stream_reader)
        self._stream = stream_reader
        self._writer = writer
        self._packet = b""
        self._position = 0
        self.gate = None  # the read gate of the client's session (FixedBroker's hook), once known

    async def read(self, n=-1):
        if n < 0:  # "until EOF": no packet boundary to keep
            return self._take(len(self._packet)) + await self._stream.read()
        while len(self._packet) - self._position < n:
            self._packet = self._packet[self._position:] + await self._next_packet()
            self._position = 0
        return self._take(n)

    def _take(self, n):
        data = self._packet[self._position:self._position + n]
        self._position += n
        return data

    async def _next_packet(self):
        """The next packet's bytes. At end of stream (or on a refusal, after which the
        connection is dropped) raises IncompleteReadError, which amqtt takes for EOF."""
        if self.gate is not None and not self.gate.is_set():
            await self.gate.wait()
        header = bytearray(await self._stream.readexactly(1))
        length = 0
        for shift in range(0, 28, 7):  # the remaining length: at most four 7-bit digits
            digit = (await self._stream.readexactly(1))[0]
            header.append(digit)
            length |= (digit & 0x7F) << shift
            if not digit & 0x80:
                break
        else:
            self._refuse("a malformed remaining length")
        if 1 + length > MAX_PACKET_BYTES:  # counted as Mosquitto counts it (limits.py)
            self._refuse(f"a packet of {1 + length} bytes (the limit is {MAX_PACKET_BYTES})")
        return bytes(header) + await self._stream.readexactly(length)

    def _refuse(self, what):
        log.info("dropped the connection of %s: %s", self._writer.get_peer_info(), what)
        self._writer.abort()
        raise asyncio.IncompleteReadError(b"", None)


class _Writer(StreamWriterAdapter):
    """amqtt's TCP writer, plus `abort()` and the task that serves the connection."""

    def __init__(self, stream_writer):
        super().__init__(stream_writer)
        self._transport = stream_writer.transport
        self.task = asyncio.current_task()

    def abort(self):
        """Drop the connection now; the reader then sees end-of-file."""
        self.is_closed = True  # amqtt's flag: later writes and close() become no-ops
        self._transport.abort()


class _Handler(BrokerProtocolHandler):
    on_publish = None  # the broker's hook, set once the client is logged in
    _last_puback = None  # done once the PUBACK of the client's previous QoS 1 PUBLISH is sent

    def handle_read_timeout(self):
        # Fault A. Called by the reader loop after keep_alive x 1.5 s without a packet.
        if self.writer is not None:
            log.info("keep-alive expired: %s", self.session.client_id)
            self.writer.abort()

    async def _handle_qos0_message_flow(self, app_message):
        if app_message.direction == INCOMING and self.on_publish is not None:
            self.on_publish(self.session, app_message.topic, app_message.data)  # nothing to acknowledge
        await super()._handle_qos0_message_flow(app_message)

    async def _handle_qos1_message_flow(self, app_message):
        # Replaces amqtt's for incoming messages: the PUBACK waits for the on_publish hook, and for
        # the PUBACK before it. Runs in a task per PUBLISH, started in the order they came.
        if app_message.direction != INCOMING or self.on_publish is None:
            await super()._handle_qos1_message_flow(app_message)
            return
        stored = self.on_publish(self.session, app_message.topic, app_message.data)  # before any await: in order
        previous, self._last_puback = self._last_puback, asyncio.get_running_loop().create_future()
        mine = self._last_puback
        try:
            await self.session.delivered_message_queue.put(app_message)
            # Both shielded: amqtt cancels this task when the connection is lost, and a task cancelled
            # while it awaits a future cancels that future. `stored` is shared by every message of a
            # telemetry batch (other boards', this board's next session's): cancelled, none of them was
            # acknowledged again (a board killed while it waited for its PUBACK). `previous` is set by
            # the task before this one, which would fail on setting it.
            if stored is not None:
                await asyncio.shield(stored)
            if previous is not None:
                await asyncio.shield(previous)
            puback = PubackPacket.build(app_message.packet_id)
            await self._send_packet(puback)
            app_message.puback_packet = puback
        except Exception as error:  # noqa: BLE001 - e.g. the rows could not be committed
            # Unacknowledged, and the connection dropped, so that the client sends it again.
            if self.writer is not None and not self.writer.is_closed:
                log.warning("not acknowledged, connection of %s dropped: %r", self.session.client_id, error)
                self.writer.abort()
        finally:
            mine.set_result(None)


class _SubscriptionTable(dict):
    """amqtt's subscription table (topic filter -> [(session, qos)]), which also knows its filters with a wildcard
    (fault H). amqtt changes it only by item assignment, `del` and clear()."""

    def __init__(self):
        super().__init__()
        self.wildcards = set()

    def __setitem__(self, topic_filter, subscriptions):
        super().__setitem__(topic_filter, subscriptions)
        if "+" in topic_filter or "#" in topic_filter:
            self.wildcards.add(topic_filter)

    def __delitem__(self, topic_filter):
        super().__delitem__(topic_filter)
        self.wildcards.discard(topic_filter)

    def clear(self):
        super().clear()
        self.wildcards.clear()

    def matching(self, broker, topic):
        """The filters that match `topic`: its own, if any, and the wildcard filters that do."""
        found = [f for f in self.wildcards if broker._matches(topic, f)]
        if topic in self:
            found.append(topic)
        return found


class FixedBroker(Broker):
    """amqtt's Broker with faults A-H fixed. Listeners must be of type `tcp`.

    Must be built inside the running event loop (amqtt's constructor asks for it).
    `sockets` maps a listener's name to a bound socket it must serve on (listeners.bind).
    """

    def __init__(self, config, sockets, *, on_publish=None, read_gate=None, goodbye=None):
        super().__init__(config)
        self._subscriptions = _SubscriptionTable()  # (fault H; empty still: nothing has subscribed)
        self._writers = set()
        self._sockets = sockets
        self._on_publish = on_publish
        self._read_gate = read_gate
        self._goodbye = goodbye

    def bound_port(self, listener_name):
        """The port a listener is bound to; the one the OS chose when configured with port 0."""
        return self._servers[listener_name].instance.sockets[0].getsockname()[1]

    async def cut(self, client_id, timeout=1.0):
        """Drop the live connection of `client_id` (its will is published); False if none.

        Returns once the broker has finished with the connection, or after `timeout`.
        """
        session, handler = self._sessions.get(client_id, (None, None))
        if session is None or session.transitions.state != "connected" or handler.writer is None:
            return False
        handler.writer.abort()
        await _wait_served(handler.writer, timeout)
        return True

    async def close_connections(self, timeout=1.0):
        """Stop accepting, drop every connection and wait (at most `timeout`) until all are served."""
        for server in self._servers.values():
            server.instance.close()
        writers = list(self._writers)
        for writer in writers:
            writer.abort()
        tasks = {writer.task for writer in writers if writer.task is not None}
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    # --- amqtt hooks ---------------------------------------------------------------------

    async def stream_connected(self, reader, writer, listener_name):
        # Replaces amqtt's to wrap the socket in _Reader and _Writer and to track the connection.
        adapter = _Writer(writer)
        self._writers.add(adapter)
        try:
            await self._client_connected(listener_name, _Reader(reader, adapter), adapter)
        finally:
            self._writers.discard(adapter)
            if not adapter.is_closed:  # a path of amqtt that forgot to close it
                adapter.abort()

    async def _initialize_client_session(self, reader, writer, remote_address, remote_port):
        # Replaces amqtt's (faults A, B, C). Any exception of these types makes amqtt log
        # one warning and drop the connection.
        handler, session = await self._read_connect(reader, writer, remote_address)
        if not await self._login_ok(session):
            await self._refuse(handler, session, reader, writer)
            raise MQTTError(f"login refused: {session.username!r} from {remote_address}")
        session.attributes[_AUTHENTICATED] = True
        if not session.client_id:  # allowed with clean session: the broker names the client
            session.client_id = gen_client_id()
        await self._take_over(session.client_id)
        session = await self._attach_session(session)
        if session.keep_alive > 0:  # 0: the client asked for no keep-alive
            session.keep_alive = session.keep_alive * KEEPALIVE_GRACE
        handler.on_publish = self._on_publish
        if self._read_gate is not None:
            reader.gate = self._read_gate(session)
        return handler, session

    async def _authenticate(self, session, listener):
        # amqtt authenticates again after _initialize_client_session; once is enough.
        if session.attributes.pop(_AUTHENTICATED, False):
            return True
        return await super()._authenticate(session, listener)

    async def _publish_retained_messages_for_subscription(self, subscription, session):
        # Fault D. amqtt calls this with every filter of every client when one connects.
        topic_filter, _qos = subscription
        holders = self._subscriptions.get(topic_filter, [])
        if not any(holder.client_id == session.client_id for holder, _ in holders):
            return
        # The filter passed the ACL when subscribed; asking again costs one call per filter
        # and keeps this path right whatever the ACL becomes.
        if not await self._topic_filtering(session, topic_filter, Action.SUBSCRIBE):
            return
        await super()._publish_retained_messages_for_subscription(subscription, session)

    async def _client_message_loop(self, client_session, handler):
        # Replaces amqtt's (fault E): the same loop, but a disconnect is handled last in a
        # turn, after the messages the client sent before it have all been routed.
        disconnect_waiter = asyncio.ensure_future(handler.wait_disconnect())
        subscribe_waiter = asyncio.ensure_future(handler.get_next_pending_subscription())
        unsubscribe_waiter = asyncio.ensure_future(handler.get_next_pending_unsubscription())
        wait_deliver = asyncio.ensure_future(handler.mqtt_deliver_next_message())
        try:
            while True:
                done, _ = await asyncio.wait(
                    [disconnect_waiter, subscribe_waiter, unsubscribe_waiter, wait_deliver],
                    return_when=asyncio.FIRST_COMPLETED)
                if subscribe_waiter in done:
                    await self._handle_subscription(client_session, handler, subscribe_waiter)
                    subscribe_waiter = asyncio.ensure_future(handler.get_next_pending_subscription())
                if unsubscribe_waiter in done:
                    await self._handle_unsubscription(client_session, handler, unsubscribe_waiter)
                    unsubscribe_waiter = asyncio.ensure_future(handler.get_next_pending_unsubscription())
                if wait_deliver in done:
                    if not await self._handle_message_delivery(client_session, handler, wait_deliver):
                        return  # amqtt's answer to an invalid PUBLISH: drop the client
                    wait_deliver = asyncio.ensure_future(handler.mqtt_deliver_next_message())
                if disconnect_waiter in done:
                    await self._route_queued(client_session, handler, wait_deliver)
                    await self._say_goodbye(client_session, disconnect_waiter)
                    await self._handle_disconnect(client_session, handler, disconnect_waiter)
                    return
        except asyncio.CancelledError:  # as amqtt's loop does
            log.debug("client loop of %s cancelled", client_session.client_id)
        finally:
            waiters = [disconnect_waiter, subscribe_waiter, unsubscribe_waiter, wait_deliver]
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _create_server_instance(self, listener_name, listener_type, address, port, ssl_context):
        # Replaces amqtt's: serves on the socket bound for the listener instead of binding one.
        handler = functools.partial(self.stream_connected, listener_name=listener_name)
        return await asyncio.start_server(handler, sock=self._sockets[listener_name], ssl=ssl_context)

    async def _run_broadcast(self, running_tasks):
        # Fault G: amqtt's loop, over a copy of the matching filters' lists; fault H: only the matching filters.
        broadcast = await self._broadcast_queue.get()
        for topic_filter in self._subscriptions.matching(self, broadcast["topic"]):
            subscriptions = self._subscriptions.get(topic_filter)
            if subscriptions is None:  # (unsubscribed meanwhile)
                continue
            for target_session, sub_qos in list(subscriptions):
                qos = broadcast.get("qos", sub_qos)
                if not await self._topic_filtering(target_session, topic=broadcast["topic"], action=Action.RECEIVE):
                    continue
                connected = target_session.transitions.state == "connected"
                # A persistent session that is away keeps QoS 1 and 2 messages (MQTT 3.1.1, 3.1.2.4).
                if (not connected and not target_session.clean_session and qos in (QOS_1, QOS_2)
                        and not target_session.is_anonymous):
                    await self._retain_broadcast_message(broadcast, qos, target_session)
                    continue
                handler = self._get_handler(target_session) if connected else None
                if handler:
                    running_tasks.append(asyncio.ensure_future(
                        handler.mqtt_publish(broadcast["topic"], broadcast["data"], qos, retain=False)))

    def _create_ssl_context(self, listener):
        return server_context(listener["certfile"], listener["keyfile"])

    # --- part of _client_message_loop ----------------------------------------------------

    async def _route_queued(self, session, handler, wait_deliver):
        """Fault E: route what the session accepted and has not routed yet, in order.

        `wait_deliver` is the loop's pending read of the queue: it either took a message
        already, or leaves it in the queue when cancelled (asyncio.Queue.get does).
        """
        wait_deliver.cancel()
        await asyncio.wait([wait_deliver])
        queue = session.delivered_message_queue
        if not wait_deliver.cancelled() and wait_deliver.result() is not None:
            if not await self._handle_message_delivery(session, handler, wait_deliver):
                return
        while not queue.empty():
            message = asyncio.get_running_loop().create_future()
            message.set_result(queue.get_nowait())
            if not await self._handle_message_delivery(session, handler, message):
                return  # an invalid PUBLISH: amqtt would have dropped the client there

    async def _say_goodbye(self, session, disconnect_waiter):
        """The goodbye hook's message for a clean disconnect, published as the will would be."""
        if self._goodbye is None or not isinstance(disconnect_waiter.result(), DisconnectPacket):
            return
        message = self._goodbye(session)
        if message is not None:
            topic, payload = message
            await self._broadcast_message(session, topic, payload, QOS_1)
            await self.retain_message(session, topic, payload, QOS_1)

    # --- parts of _initialize_client_session ----------------------------------------------

    async def _read_connect(self, reader, writer, remote_address):
        """The handler and the new session of a CONNECT; raises AMQTTError if none comes."""
        try:
            return await asyncio.wait_for(
                _Handler.init_from_connect(reader, writer, self.plugins_manager), CONNECT_TIMEOUT)
        except Exception as error:  # whatever bytes arrived, any failure means "no CONNECT"
            writer.abort()
            raise AMQTTError(f"no valid CONNECT from {remote_address}: {error!r}") from error

    async def _login_ok(self, session):
        """amqtt's authentication (our LoginPlugin), with a failing check counted as a refusal."""
        try:
            return await super()._authenticate(session, None)
        except Exception:  # e.g. the database is gone: refuse, and keep serving everyone else
            log.exception("checking the login of %r failed; refused", session.username)
            return False

    async def _refuse(self, handler, session, reader, writer):
        """Answer CONNACK "not authorized" and close, touching no broker state."""
        session.parent = 0  # the CONNACK's "session present" flag
        handler.attach(session, reader, writer)
        try:
            await handler.mqtt_connack_authorize(False)
            # Politely (flush, then TLS close_notify), but a refused client often resets
            # the connection first, or never answers close_notify.
            await asyncio.wait_for(writer.close(), CLOSE_TIMEOUT)
        except (OSError, TimeoutError):
            writer.abort()

    async def _take_over(self, client_id):
        """Fault C: cut a live connection of `client_id` before its successor goes on."""
        if await self.cut(client_id, timeout=2.0):
            log.info("take-over: closed the previous connection of %s", client_id)

    async def _attach_session(self, session):
        """The session to continue: the new one, or the stored one of a persistent client.

        amqtt's own logic, kept: clean session drops whatever was stored under the id;
        otherwise the stored session (subscriptions, queued messages) takes the new
        connection's settings.
        """
        stored = self._sessions.get(session.client_id, (None, None))[0]
        if session.clean_session:
            await self._delete_session(session.client_id)
        if session.clean_session or stored is None:
            session.parent = 0
            return session
        for name in ("will_flag", "will_message", "will_topic", "will_qos", "will_retain", "keep_alive",
                     "username", "password", "remote_address", "remote_port", "ssl_object"):
            setattr(stored, name, getattr(session, name))
        stored.attributes[_AUTHENTICATED] = session.attributes.pop(_AUTHENTICATED)
        stored.parent = 1
        return stored


async def _wait_served(writer, timeout):
    """Wait until the task serving `writer`'s connection has ended: by then amqtt has run
    its disconnect path (will published, session marked disconnected)."""
    if writer.task is not None and writer.task is not asyncio.current_task():
        await asyncio.wait({writer.task}, timeout=timeout)
