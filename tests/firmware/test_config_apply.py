"""The desired configuration on the emulated board (firmware/desired.py): the retained `config` message applied to
settings.json and the running app, and reported on `config_report`, against the real backend's broker.

The config messages are published here with the backend's own MQTT login, as the backend's bridge publishes them
(retained, QoS 1), and the reports read on the device's `config_report` topic. Every board is the real `micropython`
process (tests/firmware/device_harness.py) running the built firmware.
"""

import asyncio
import json
import time
from contextlib import asynccontextmanager

import aiomqtt
import pytest
from mpfleet.backend import keys
from mpfleet.tools import firmware_build

from ..conftest import Backend
from ..polling import eventually, online_detail, send_command
from .device_harness import Board, make_flash

pytestmark = pytest.mark.network

HEAP = "34k"  # the smallest heap that applies a configuration (33k: a step finds no room): docs/firmware.md

# A maker's user.py that reads its keys: configure(keys) at boot and on each change (the firmware's documented hook);
# it keeps what it uses of them, as a maker on a small board does.
MAKER = '''
_greeting = "-"


def configure(keys):
    global _greeting
    _greeting = keys.get("greeting", "-")
    print("user: configure %s" % sorted(keys.items()))


def telemetry():
    return {"greeting": _greeting}


def register(commands, board):
    pass
'''


@pytest.fixture
async def backend(request, tmp_path):
    """The test backend (tests/conftest.py), on its embedded broker, or on a Mosquitto for the tests that ask for
    one (`indirect` parametrization)."""
    overrides = {}
    if getattr(request, "param", "embedded") == "mosquitto":
        broker = request.getfixturevalue("mosquitto")
        overrides.update(broker.backend_settings())
    backend = Backend(tmp_path / "var", **overrides)
    await backend.start()
    yield backend
    await backend.stop()


def with_maker_module(flash, tmp_path):
    """The maker's user.py above, compiled into `flash` as the firmware build compiles user.py."""
    source = tmp_path / "maker"
    source.mkdir()
    (source / "user.py").write_text(MAKER)
    firmware_build.install_firmware(flash, source=source)
    return flash


@asynccontextmanager
async def backend_client(backend, uid):
    """An MQTT client with the backend's login, subscribed to the board's `config_report` and `telemetry`."""
    endpoint = backend.client.app[keys.BROKER_ENDPOINT]
    async with aiomqtt.Client(hostname=endpoint.host, port=endpoint.port, username=endpoint.username,
                              password=endpoint.password, tls_context=endpoint.tls_context,
                              identifier=f"test-config-{uid}") as client:
        await client.subscribe(f"mpfleet/v1/{uid}/config_report", qos=1)
        await client.subscribe(f"mpfleet/v1/{uid}/telemetry", qos=1)
        client.inbox = aiter(client.messages)
        yield client


async def publish_config(client, uid, body, retain=True):
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    await client.publish(f"mpfleet/v1/{uid}/config", payload, qos=1, retain=retain)


async def next_message(client, name, timeout=10.0, board=None):
    """The next message on the board's topic `name` (others skipped), as JSON; TimeoutError (with the board's log
    when given) when none comes within `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            message = await asyncio.wait_for(anext(client.inbox), max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            raise TimeoutError(f"no {name} within {timeout} s" + (f":\n{board.log()}" if board else "")) from None
        if message.topic.value.endswith("/" + name):
            return json.loads(message.payload)


async def no_report(client, seconds):
    """Fails when a `config_report` comes within `seconds`."""
    try:
        report = await next_message(client, "config_report", timeout=seconds)
    except TimeoutError:
        return
    raise AssertionError(f"an unexpected report: {report}")


def settings_of(board):
    return json.loads((board.flash / "settings.json").read_text())


@pytest.mark.parametrize("backend", ["embedded", "mosquitto"], indirect=True)
async def test_a_config_retained_before_the_board_connects_is_applied_reported_and_kept_across_reboots(
        api, backend, registered, built_flash, tmp_path):
    uid = registered["uid"]
    flash = with_maker_module(make_flash(built_flash, tmp_path / "flash", registered, period=60), tmp_path)
    config = (flash / "config.json").read_text()
    settings = {"telemetry_period": 30, "greeting": "hi", "threshold": 21.5, "eco": True}
    async with backend_client(backend, uid) as client:
        await publish_config(client, uid, {"v": 3, "settings": settings})
        async with Board(flash, heapsize=HEAP) as board:  # a small board
            await board.wait_for(r"app: telemetry every 60 s")
            report = await next_message(client, "config_report", board=board)
            assert report == {"v": 3, "applied": settings, "errors": {}}, board.log()
            await board.wait_for(r"config: v3 applied, 0 not")
            await board.wait_for(r"user: configure \[\('eco', True\), \('greeting', 'hi'\), \('threshold', 21.5\)\]")
            assert settings_of(board) == {"period": 30, "config_v": 3,
                                          "user": {"greeting": "hi", "threshold": 21.5, "eco": True}}
            written = (flash / "settings.json").stat().st_mtime_ns

            mark = board.mark()
            status, answer = await api.post(f"/v1/user/devices/{uid}/reboot")
            assert status == 200, answer
            await board.wait_for(r"--- exit 75", timeout=10)
            # The next boot runs with the period the file keeps. The retained message comes again with the connect:
            # the same v is reported, not applied again, and user.py gets its keys again.
            await board.wait_for(r"app: telemetry every 30 s", start=mark)
            assert await next_message(client, "config_report", board=board) == {"v": 3, "applied": settings,
                                                                                 "errors": {}}
            await board.wait_for(r"config: v3 applied already, 0 not", start=mark)
            await board.wait_for(r"user: configure \[\('eco', True\), \('greeting', 'hi'\)", start=mark)
    assert (flash / "settings.json").stat().st_mtime_ns == written
    assert (flash / "config.json").read_text() == config  # never written for a configuration
    assert "MemoryError" not in board.log() and "config: v3 applied," not in "\n".join(board.lines[mark:])


async def test_a_new_config_while_online_changes_the_telemetry_period_at_once(api, backend, registered, built_flash,
                                                                            tmp_path):
    uid = registered["uid"]
    flash = with_maker_module(make_flash(built_flash, tmp_path / "flash", registered, period=60), tmp_path)
    async with backend_client(backend, uid) as client, Board(flash) as board:
        await eventually(lambda: online_detail(api, uid))
        first = await next_message(client, "telemetry", board=board)  # the boot's first sample, then none for 60 s
        assert first["values"]["greeting"] == "-"
        await publish_config(client, uid, {"v": 1, "settings": {"telemetry_period": 5, "greeting": "hello"}})
        report = await next_message(client, "config_report", board=board)
        assert report == {"v": 1, "applied": {"telemetry_period": 5, "greeting": "hello"}, "errors": {}}
        applied = time.monotonic()
        samples = []
        for _ in range(2):
            samples.append((await next_message(client, "telemetry", timeout=8, board=board), time.monotonic()))
        assert [s["values"]["greeting"] for s, _ in samples] == ["hello", "hello"]  # user.py heard of it
        gap = samples[1][1] - samples[0][1]
        assert samples[0][1] - applied < 7 and 4 < gap < 7, (samples[0][1] - applied, gap)
        assert settings_of(board) == {"period": 5, "config_v": 1, "user": {"greeting": "hello"}}

        # The same v again (a second publish, not a change): reported, not applied again.
        written = (flash / "settings.json").stat().st_mtime_ns
        mark = board.mark()
        await publish_config(client, uid, {"v": 1, "settings": {"telemetry_period": 5, "greeting": "hello"}})
        assert (await next_message(client, "config_report", board=board))["v"] == 1
        await board.wait_for(r"config: v1 applied already", start=mark)
        assert (flash / "settings.json").stat().st_mtime_ns == written

        # A key no longer desired is forgotten; telemetry_period no longer desired is the default period.
        await publish_config(client, uid, {"v": 2, "settings": {"mode": "eco"}})
        report = await next_message(client, "config_report", board=board)
        assert report == {"v": 2, "applied": {"mode": "eco"}, "errors": {}}
        assert settings_of(board) == {"period": 60, "config_v": 2, "user": {"mode": "eco"}}
        assert board.exits == [] and "session lost" not in board.log()


async def test_keys_it_cannot_apply_are_reported_with_their_reasons_and_the_rest_is_applied(
        api, backend, registered, built_flash, tmp_path):
    uid = registered["uid"]
    flash = make_flash(built_flash, tmp_path / "flash", registered, period=60)
    (flash / "settings.json").write_text(json.dumps({"period": 60, "ota_trial_s": 30}))
    big = {f"text{i:02d}": "x" * 60 for i in range(12)}  # ~900 bytes: more than the file keeps of the maker's keys
    settings = {"telemetry_period": 3, "mode": "eco", "limits": {"max": 1}, "list": [1], "nothing": None, **big}
    # (The default heap: this message, ~1 KB, is beyond what the backend sends, and beyond the largest free block of
    # a 32 KB board's heap, which it must take whole.)
    async with backend_client(backend, uid) as client, Board(flash) as board:
        await eventually(lambda: online_detail(api, uid))
        await publish_config(client, uid, {"v": 9, "settings": settings})
        report = await next_message(client, "config_report", board=board)
        errors, applied = report["errors"], report["applied"]
        assert report["v"] == 9 and set(errors) | set(applied) == set(settings) and not set(errors) & set(applied)
        assert errors["telemetry_period"] == "not applied: period must be a whole number of seconds from 5 to 86400"
        for key in ("limits", "list", "nothing"):
            assert errors[key] == "not applied: not a bool, number or string"
        too_big = [k for k in big if k in errors]
        assert too_big and all(errors[k] == "not applied: no room in settings.json (640 bytes for these keys)"
                                for k in too_big)
        assert {k: v for k, v in applied.items()} == {k: settings[k] for k in applied} and "mode" in applied
        kept = settings_of(board)
        assert kept == {"period": 60, "ota_trial_s": 30, "config_v": 9, "user": applied}  # the period kept its value
        assert len(json.dumps(kept["user"])) <= 640
        await board.wait_for(rf"config: v9 applied, {len(errors)} not")

        # What is no configuration at all (no version to report against) is logged and dropped.
        mark = board.mark()
        await publish_config(client, uid, b'{"v": 10, "settings": [1]}')
        await board.wait_for(r"config: ignored: no configuration", start=mark)
        await publish_config(client, uid, b'{"v": 11, "sett')
        await board.wait_for(r"cmd: malformed JSON \(15 bytes\)", start=mark)
        await no_report(client, 0.5)
        assert settings_of(board) == kept
        assert "MemoryError" not in board.log() and board.exits == []


async def test_an_empty_payload_is_ignored(api, backend, registered, built_flash, tmp_path):
    uid = registered["uid"]
    flash = make_flash(built_flash, tmp_path / "flash", registered, period=60)
    async with backend_client(backend, uid) as client:
        await publish_config(client, uid, {"v": 4, "settings": {"telemetry_period": 20}})
        async with Board(flash) as board:
            assert (await next_message(client, "config_report", board=board))["v"] == 4
            await board.wait_for(r"config: v4 applied, 0 not")
            kept = settings_of(board)
            mark = board.mark()
            await publish_config(client, uid, b"")  # the retained message cleared (the backend deleted the device)
            await no_report(client, 1.0)
            assert settings_of(board) == kept == {"period": 20, "config_v": 4}
            assert "config:" not in "\n".join(board.lines[mark:]) and "session lost" not in board.log(), board.log()
            # and the board goes on: the next configuration is applied
            await publish_config(client, uid, {"v": 5, "settings": {"telemetry_period": 25}})
            assert (await next_message(client, "config_report", board=board))["applied"] == {"telemetry_period": 25}
            assert board.exits == []


# --- end to end: the backend's API, its bridge, the board


@pytest.mark.parametrize("backend", ["embedded", "mosquitto"], indirect=True)
async def test_a_put_configuration_reaches_the_board_and_the_api_shows_it_in_sync(api, backend, registered,
                                                                                 built_flash, tmp_path):
    uid = registered["uid"]
    flash = with_maker_module(make_flash(built_flash, tmp_path / "flash", registered, period=60), tmp_path)
    async with Board(flash) as board:
        await eventually(lambda: online_detail(api, uid))
        settings = {"telemetry_period": 20, "greeting": "hi", "threshold": 21.5}
        status, body = await api.call("PUT", f"/v1/user/devices/{uid}/configuration", json={"settings": settings})
        assert status == 200 and body["data"]["desired"] == settings, body

        async def in_sync():
            _, body = await api.get(f"/v1/user/devices/{uid}/configuration")
            return body["data"] if body["data"]["in_sync"] else None

        data = await eventually(in_sync, timeout=10)
        assert data["reported"]["applied"] == settings and data["reported"]["errors"] == {}
        assert data["reported"]["v"] == data["version"]
        await board.wait_for(r"user: configure \[\('greeting', 'hi'\), \('threshold', 21.5\)\]")
        assert settings_of(board) == {"period": 20, "config_v": data["version"],
                                      "user": {"greeting": "hi", "threshold": 21.5}}

        # A change: the telemetry period back to its default, a key gone; the board follows, the API says so.
        status, body = await api.call("PUT", f"/v1/user/devices/{uid}/configuration",
                                      json={"settings": {"greeting": "hello"}})
        assert status == 200, body
        data = await eventually(lambda: _reported(api, uid, body["data"]["version"]), timeout=10)
        assert data["in_sync"] is True and data["reported"]["applied"] == {"greeting": "hello"}
        assert settings_of(board) == {"period": 60, "config_v": data["version"], "user": {"greeting": "hello"}}
        assert board.exits == [] and "MemoryError" not in board.log()


async def _reported(api, uid, version):
    _, body = await api.get(f"/v1/user/devices/{uid}/configuration")
    data = body["data"]
    return data if data["reported"] and data["reported"]["v"] == version else None


async def test_a_board_without_the_heap_for_a_configuration_refuses_it_and_keeps_answering_commands(
        api, backend, registered, built_flash, tmp_path):
    """At 32 KB (the board's heap; the unix port's objects are ~2x a 32-bit board's) a configuration is refused before
    anything of its writing loads: settings.json untouched, the backend not in sync, the board whole."""
    uid = registered["uid"]
    flash = make_flash(built_flash, tmp_path / "flash", registered, period=60)
    kept = json.loads((flash / "settings.json").read_text())
    async with Board(flash, heapsize="32k") as board:
        await eventually(lambda: online_detail(api, uid))
        await board.wait_for(r"after connect")
        settings = {"telemetry_period": 20, "greeting": "hi", "threshold": 21.5}
        status, body = await api.call("PUT", f"/v1/user/devices/{uid}/configuration", json={"settings": settings})
        assert status == 200, body
        refused = await board.wait_for(r"config: v\d+ refused: not enough memory|MemoryError")
        for _ in range(3):  # (a failed attempt used to leave a 32 KB board failing its second command after it)
            command = await send_command(api, uid, {"cmd": "relay_toggle"})
            assert command["state"] == "done", (command, board.log())
        command = await send_command(api, uid, {"cmd": "ping"})
        assert command["state"] == "done", (command, board.log())
        _, body = await api.get(f"/v1/user/devices/{uid}/configuration")
        data = body["data"]
        assert data["in_sync"] is False and data["desired"] == settings, data
        reason = "no memory"
        assert data["reported"] is None or data["reported"]["errors"] == {k: reason for k in settings}, data
        assert json.loads((flash / "settings.json").read_text()) == kept
        assert "refused" in refused.string and "MemoryError" not in board.log() and board.exits == [], board.log()

        # The next boot gets the retained message with its connect: refused again, the board whole again.
        mark = board.mark()
        status, answer = await api.post(f"/v1/user/devices/{uid}/reboot")
        assert status == 200, answer
        await board.wait_for(r"--- exit 75", timeout=10)
        await board.wait_for(r"config: v\d+ refused: not enough memory|MemoryError", start=mark)
        command = await send_command(api, uid, {"cmd": "relay_toggle"})
        assert command["state"] == "done", (command, board.log())
        assert json.loads((flash / "settings.json").read_text()) == kept and "MemoryError" not in board.log()
