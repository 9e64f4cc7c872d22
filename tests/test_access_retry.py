"""A device access change the broker cannot take at once (Mosquitto down) is kept and retried."""

import aiomqtt
import pytest
from mpfleet.backend.storage import Storage

from .conftest import Backend
from .fake_device import FakeDevice
from .polling import eventually


@pytest.fixture
async def backend(tmp_path, mosquitto):
    backend = Backend(tmp_path / "var", **mosquitto.backend_settings())
    await backend.start()
    yield backend
    await backend.stop()


async def login(registered, mosquitto):
    """True when the device's credentials still open a session."""
    device = FakeDevice(registered["mqtt"], mosquitto.tls_port)
    try:
        await device.connect()
    except aiomqtt.MqttError:
        return False
    await device.close()
    return True


@pytest.mark.parametrize(("change", "body"), [("delete", None), ("patch", {"enabled": False})])
async def test_a_revocation_made_while_mosquitto_is_down_is_applied_when_it_is_back(
        api, backend, mosquitto, change, body):
    registered = await api.register()
    uid = registered["uid"]
    assert await login(registered, mosquitto)

    mosquitto.stop()
    call = api.delete(f"/v1/user/devices/{uid}") if change == "delete" else api.patch(
        f"/v1/user/devices/{uid}", json=body)
    status, answer = await call
    assert status == 503
    assert answer["message"] == ("Saved, but the MQTT broker has not confirmed the change of the device's access"
                                 " yet; it is retried until it does.")
    assert [p.change for p in await backend.storage.access.pending()] == ["remove" if change == "delete" else "disable"]

    mosquitto.start()  # same ports, same accounts: the device's account is still there
    await eventually(lambda: _nothing_pending(backend), timeout=20)
    assert not await login(registered, mosquitto)


async def _nothing_pending(backend):
    return not await backend.storage.access.pending()


async def test_the_newest_wish_for_a_device_wins_and_attempts_are_counted(tmp_path):
    storage = Storage(tmp_path / "var")
    await storage.open()
    try:
        await storage.access.remember("dev1", "disable", "broker down")
        await storage.access.remember("dev1", "disable", "still down")
        await storage.access.remember("dev2", "remove", "broker down")
        (first, second) = sorted(await storage.access.pending(), key=lambda p: p.uid)
        assert (first.uid, first.change, first.attempts, first.last_error) == ("dev1", "disable", 2, "still down")
        assert (second.uid, second.change) == ("dev2", "remove")

        await storage.access.remember("dev1", "enable", "down again")  # the user changed their mind
        await storage.access.forget("dev1", "disable")  # a retry of the old wish must not drop the new one
        assert sorted((p.uid, p.change, p.attempts) for p in await storage.access.pending()) == [
            ("dev1", "enable", 1), ("dev2", "remove", 1)]

        await storage.access.forget("dev1")
        await storage.access.forget("dev2", "remove")
        assert await storage.access.pending() == []
    finally:
        await storage.close()
