"""A device that publishes numbered telemetry at QoS 1 and remembers which numbers the broker
acknowledged: what "no acknowledged message is lost" is checked against (tests/test_served_brokers.py,
bench/mqtt_bench.py). Each message is `{"ts": null, "values": {"n": <number>}}`, one row.

Raw MQTT 3.1.1 over verified TLS with the device's own credentials, `window` messages in flight.
"""

import asyncio
import ssl

from .mqtt_packets import DISCONNECT, open_session, publish_packet, read_packet


class NumberedPublisher:
    def __init__(self, port, ca_pem, uid, password, *, window=20, rate=None):
        """`rate`: messages per second at most (None: as fast as the acknowledgements come)."""
        self.port, self.ca_pem, self.uid, self.password = port, ca_pem, uid, password
        self.window = window
        self.rate = rate
        self.sent = 0
        self.acked = []  # numbers the broker acknowledged, in the order it did
        self.error = None  # why the session ended early, if it did

    @classmethod
    def of(cls, registered, **options):
        """A publisher for a registration answer's `data`."""
        mqtt = registered["mqtt"]
        return cls(mqtt["port"], mqtt["ca_cert"], registered["uid"], mqtt["password"], **options)

    async def run(self, stop):
        """Publish until `stop` (an asyncio.Event) is set or the session ends; then say DISCONNECT."""
        context = ssl.create_default_context(cadata=self.ca_pem)
        try:
            reader, writer = await open_session(self.port, context, self.uid, self.password,
                                                will=(f"mpfleet/v1/{self.uid}/status", b'{"online":false}'))
        except OSError as error:
            self.error = error
            return
        in_flight = {}  # packet id -> number
        room = asyncio.Event()
        room.set()
        acks = asyncio.create_task(self._read_acks(reader, in_flight, room))
        topic = f"mpfleet/v1/{self.uid}/telemetry"
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            while not stop.is_set() and not acks.done():
                if len(in_flight) >= self.window:
                    room.clear()
                    await _first(room.wait(), stop.wait(), acks)
                    continue
                if self.rate and self.sent > (loop.time() - started) * self.rate:
                    await asyncio.sleep(1 / self.rate)
                    continue
                packet_id = self.sent % 65535 + 1
                in_flight[packet_id] = self.sent
                writer.write(publish_packet(topic, b'{"ts":null,"values":{"n":%d}}' % self.sent, packet_id))
                self.sent += 1
                await writer.drain()
            if not acks.done():
                writer.write(DISCONNECT)
                await writer.drain()
        except OSError as error:
            self.error = error
        finally:
            acks.cancel()
            await asyncio.gather(acks, return_exceptions=True)
            writer.close()

    async def _read_acks(self, reader, in_flight, room):
        try:
            while True:
                first, body = await read_packet(reader)
                if first == 0x40:
                    self.acked.append(in_flight.pop(int.from_bytes(body[:2], "big")))
                    room.set()
        except (OSError, asyncio.IncompleteReadError) as error:
            self.error = self.error or error


async def _first(*awaitables):
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks[:-1]:  # the last one is a task of the caller's: left alone
            task.cancel()
        await asyncio.gather(*tasks[:-1], return_exceptions=True)
