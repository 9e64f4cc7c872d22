"""A device played by Python until the firmware exists: docs/protocol.md over TLS with its own credentials, and the
board's side of an OTA job (its `ota` reports, its downloads over HTTPS) for backend tests that need no firmware."""

import asyncio
import json
import socket
import ssl
import struct

import aiohttp
import aiomqtt


BUSY = "busy: command queue full"  # the firmware's error for a command its full queue refused (protocol.md)


def tls_context(ca_pem):
    context = ssl.create_default_context(cadata=ca_pem)  # verifies the certificate and the host name
    return context


class FakeDevice:
    """Connects with the `mqtt` block of a registration answer; answers commands by `handler`.

    `handler(command) -> (state, result, error)` decides the final ack; None sends no ack at all.

    With `queue=N` it behaves like a board (firmware/app.py): commands wait in a queue of N and run one at
    a time, each taking `work` seconds between `accepted` and its final ack; one that finds the queue full
    is acked `failed` ("busy: command queue full", as the firmware does) at once. Its status says `cmd_queue: N`
    unless `report_queue` is false.
    """

    def __init__(self, mqtt, port, *, status=None, handler=None, keepalive=60, queue=None, report_queue=True,
                 work=0.0):
        self.mqtt = mqtt
        self.port = port
        self.uid = mqtt["username"]
        self.status = {"online": True, "ip": "192.168.1.57", "rssi": -61, **(status or {})}
        if queue is not None and report_queue:
            self.status["cmd_queue"] = queue
        self.handler = handler or (lambda command: ("done", {"ok": True}, None))
        self.keepalive = keepalive
        self.queue_size = queue
        self.work = work
        self.commands = []  # every command received
        self.ran = []  # ids of the commands run, in the order they ran
        self.busy = []  # ids of the commands refused with "busy"
        self.most_open = 0  # the most commands received and not yet answered finally, at any moment
        self._open = 0
        self._waiting = []  # the board's queue
        self._queued = asyncio.Event()
        self._client = None
        self._task = None
        self._runner = None

    def topic(self, kind):
        return f"mpfleet/v1/{self.uid}/{kind}"

    async def connect(self, password=None):
        self._client = aiomqtt.Client(
            "127.0.0.1", self.port,
            username=self.uid, password=password or self.mqtt["password"], identifier=self.uid,
            tls_context=tls_context(self.mqtt["ca_cert"]), keepalive=self.keepalive, clean_session=True,
            will=aiomqtt.Will(self.topic("status"), b'{"online":false}', qos=1, retain=True),
        )
        await self._client.__aenter__()
        await self._client.subscribe(self.topic("cmd"), qos=1)  # before announcing: docs/protocol.md
        await self._client.publish(self.topic("status"), json.dumps(self.status), qos=1, retain=True)
        self._task = asyncio.create_task(self._answer_commands())
        if self.queue_size is not None:
            self._runner = asyncio.create_task(self._run_queue())
        return self

    async def _answer_commands(self):
        async for message in self._client.messages:
            command = json.loads(message.payload)
            self.commands.append(command)
            self._open += 1
            self.most_open = max(self.most_open, self._open)
            if self.queue_size is None:
                await self._run(command)
            elif len(self._waiting) >= self.queue_size:
                self.busy.append(command["id"])
                await self._final(command, ("failed", None, BUSY))
            else:
                self._waiting.append(command)
                self._queued.set()

    async def _run_queue(self):
        while True:
            await self._queued.wait()
            while self._waiting:
                await self._run(self._waiting.pop(0))
            self._queued.clear()

    async def _run(self, command):
        self.ran.append(command["id"])
        await self.ack(command["id"], "accepted")
        if self.work:
            await asyncio.sleep(self.work)
        await self._final(command, self.handler(command))

    async def _final(self, command, outcome):
        if outcome is not None:
            self._open -= 1  # before the ack leaves: the backend may answer it with the next command at once
            state, result, error = outcome
            await self.ack(command["id"], state, result=result, error=error)

    async def ack(self, command_id, state, *, result=None, error=None):
        body = {"id": command_id, "state": state}
        if result is not None:
            body["result"] = result
        if error is not None:
            body["error"] = error
        await self._client.publish(self.topic("ack"), json.dumps(body), qos=1)

    async def publish(self, kind, payload, qos=1, retain=False):
        raw = payload if isinstance(payload, bytes) else json.dumps(payload)
        await self._client.publish(self.topic(kind), raw, qos=qos, retain=retain)

    async def report_ota(self, job_id, state, *, progress=None, error=None):
        """An `ota` message as the firmware's job sends it (docs/protocol.md)."""
        body = {"id": job_id, "state": state}
        if progress is not None:
            body["progress"] = progress
        if error is not None:
            body["error"] = error
        await self.publish("ota", body)

    async def download(self, url, headers=None):
        """GET an OTA download URL over TLS as a board does: trusting only the CA of its registration, with
        the host name checked. Returns (status, headers, body)."""
        async with aiohttp.ClientSession() as session:
            async with session.get(url, ssl=tls_context(self.mqtt["ca_cert"]), headers=headers or {}) as response:
                return response.status, response.headers, await response.read()

    async def disconnect(self):
        """A clean goodbye: the device says it is offline itself, since no will follows a DISCONNECT."""
        await self._client.publish(self.topic("status"), b'{"online":false}', qos=1, retain=True)
        await self.close()

    async def close(self):
        for task in (self._task, self._runner):
            if task:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._runner = None
        if self._client:
            try:
                await self._client.__aexit__(None, None, None)
            except aiomqtt.MqttError:
                pass  # already cut by the broker
        self._client = self._task = None

    async def wait_cut(self, timeout):
        """Wait until the broker has closed our session (the messages loop ends with an error)."""
        await asyncio.wait_for(asyncio.gather(self._task, return_exceptions=True), timeout)


def silent_connect(port, ca_pem, uid, password, keepalive):
    """A raw TLS MQTT CONNECT with a retained will, then silence: a board whose network died.

    Returns the socket; keep it open (and unread) to play a device that vanished without a word.
    """
    def utf8(text):
        raw = text.encode()
        return struct.pack("!H", len(raw)) + raw

    will = b'{"online":false}'
    flags = 0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 0x02  # user, password, will retain, will QoS 1, will, clean
    variable = utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive)
    payload = (utf8(uid) + utf8(f"mpfleet/v1/{uid}/status") + struct.pack("!H", len(will)) + will
               + utf8(uid) + utf8(password))
    body = variable + payload
    packet = bytes([0x10]) + _remaining_length(len(body)) + body
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn = tls_context(ca_pem).wrap_socket(raw, server_hostname="127.0.0.1")
    conn.sendall(packet)
    connack = conn.recv(4)
    if len(connack) < 4 or connack[3] != 0:
        conn.close()
        raise ConnectionRefusedError(f"CONNACK {connack!r}")
    return conn


def _remaining_length(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)
