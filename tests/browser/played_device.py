"""A device played over MQTT with TLS (tests/fake_device.py) for the sync browser tests: its asyncio loop runs in a
thread of its own, and each call waits for what it did (a publish taken by the broker, a reconnect)."""

import asyncio
import threading

from ..fake_device import FakeDevice


class PlayedDevice:
    """Connects as the device of `registration` (online at once); `status` and `handler` as FakeDevice takes them."""

    def __init__(self, registration, *, status=None, handler=None):
        self.uid = registration["uid"]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        mqtt = registration["mqtt"]
        self.device = FakeDevice(mqtt, mqtt["port"], status=status, handler=handler)
        self._run(self.device.connect())

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=20)

    @property
    def commands(self):
        """Every command the device received (a copy)."""
        return list(self.device.commands)

    def publish(self, kind, payload):
        self._run(self.device.publish(kind, payload))

    def report_ota(self, job_id, state, **fields):
        """An `ota` report of the job, as the firmware sends it (progress=, error=)."""
        self._run(self.device.report_ota(job_id, state, **fields))

    def ack(self, command_id, state, **fields):
        """An ack of a command (result=, error=)."""
        self._run(self.device.ack(command_id, state, **fields))

    def reconnect(self):
        """Drops the session and connects again, reporting its status as a board does at boot."""
        self._run(self.device.close())
        self._run(self.device.connect())

    def close(self):
        self._run(self.device.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
