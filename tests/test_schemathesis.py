"""A schema-driven fuzzer (schemathesis) against a live `mpfleet serve`, with a token: every operation of
GET /v1/openapi.json, a fixed seed and a small example budget.

It must find no server error and no answer the document does not describe, and raise no warning: an
operation that only ever got 404 (it never reached the code behind it) or that mostly refused the data
the document calls valid (the document does not state a rule the server enforces) fails the run too.
Real identifiers reach the code behind the 404s: an online device (tests/fake_device.py acks every
command), its buttons, firmwares, a command and a bulk job, and devices of their own for the operations that
change a device for good (disable it, delete it, clear its target); alarm rules, alarms the online device's
telemetry raised, and notification channels (the one tested posts to this server, which answers at once); OTA
campaigns to a device that stays offline.
"""

import asyncio
import io
import json
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from mpfleet.backend import bundle_format
from mpfleet.backend.openapi import document

from .fake_device import FakeDevice
from .server_process import ServerProcess

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance", "negative_data_rejection"]
MAX_EXAMPLES = 10
SEED = 1
VICTIMS = 40  # resources to delete, one a case: more than the cases a deleting operation gets
DEVICE = "/v1/user/devices/{uid}"
GROUP = "/v1/user/groups/{group_id}"
RULE = "/v1/user/rules/{rule_id}"
ALARM = "/v1/user/alarms/{alarm_id}"
CHANNEL = "/v1/user/notifications/channels/{channel_id}"
CAMPAIGN = "/v1/user/campaigns/{campaign_id}"
# A user has at most 100 alarm rules and 20 channels: victims (and alarms to acknowledge and resolve, one a rule) of
# each kind, and room for the fuzzer's own.
RULE_VICTIMS, CHANNEL_VICTIMS = 25, 10


def upload(server, uid, content, name):
    """Upload a firmware through the REST API (multipart by hand: urllib has no form encoder)."""
    boundary = uuid.uuid4().hex
    body = io.BytesIO()
    for field, value, extra in (("name", name.encode(), ""), ("file", content, '; filename="f.bin"')):
        body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"{extra}\r\n\r\n'.encode())
        body.write(value + b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    request = urllib.request.Request(
        f"{server.url}/v1/user/devices/{uid}/firmwares", data=body.getvalue(), method="POST",
        headers={"Authorization": f"Bearer {server.token}",
                 "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["data"]


def toml(value):
    """TOML for the few shapes the config below uses (strings, numbers, booleans, lists, tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string takes JSON's escapes
    if isinstance(value, list):
        return "[" + ", ".join(toml(item) for item in value) + "]"
    return "{" + ", ".join(f"{json.dumps(key)} = {toml(item)}" for key, item in value.items()) + "}"


# A WebSocket: every plain request is refused, as documented (400); tests/test_live_events.py tests it.
NOT_FUZZED = ("GET /v1/user/events",)


def operation_names():
    """"METHOD /path" of every operation of the document, as schemathesis names them."""
    return [f"{method.upper()} {path}" for path, ops in document()["paths"].items() for method in ops]


def config(server, ids):
    """schemathesis.toml: the checks, the budget, the warnings that fail, and the identifiers each operation
    uses. Fixed values are given per operation: a global one would stand in wherever an operation's own
    dictionary draws nothing, and the deleting operations would delete the online device."""
    online = {"path.uid": ids["online"], "path.button_id": "send-me", "path.command_id": ids["command"],
              "path.firmware_id": ids["firmware"], "path.group_id": ids["group"], "path.bulk_id": ids["bulk"],
              "path.rule_id": ids["rule"], "path.alarm_id": ids["alarm"], "path.channel_id": ids["channel"],
              "path.campaign_id": ids["campaign"]}
    special = {
        # The operations that change a device for good get a device of their own.
        "PATCH " + DEVICE: {"path.uid": ids["edited"]},
        "DELETE " + DEVICE + "/firmwares/target": {"path.uid": ids["edited"]},
        # A deletion succeeds once: each case draws its own victim from a dictionary.
        "DELETE " + DEVICE: {"path.uid": _drawn("devices")},
        "DELETE " + DEVICE + "/command-buttons/{button_id}": {**online, "path.button_id": _drawn("buttons")},
        "DELETE " + DEVICE + "/firmwares/{firmware_id}": {**online, "path.firmware_id": _drawn("firmwares")},
        "POST " + DEVICE + "/firmwares/set-target": {**online, "body.md5": ids["md5"]},
        "DELETE " + DEVICE + "/tags/{tag}": {"path.uid": ids["edited"], "path.tag": _drawn("tags")},
        "DELETE " + GROUP: {"path.group_id": _drawn("groups")},
        "DELETE " + GROUP + "/devices/{uid}": {**online, "path.uid": _drawn("members")},
        # A device holds at most 32 tags (the online one has this one already), and a group takes only the
        # caller's devices: the fuzzer's would fill the one and be refused by the other.
        "POST " + DEVICE + "/tags": {**online, "body.tags": ["fuzzed"]},
        "POST " + GROUP + "/devices": {**online, "body.uids": [ids["online"]]},
        # A bulk job to the online device: the fuzzer's targets would name no device of the caller's.
        "POST /v1/user/commands": {"body.target": {"uids": [ids["online"]]}},
        "DELETE " + RULE: {"path.rule_id": _drawn("rules")},
        "POST " + ALARM + "/acknowledge": {"path.alarm_id": _drawn("acknowledged")},
        "POST " + ALARM + "/resolve": {"path.alarm_id": _drawn("resolved")},
        "DELETE " + CHANNEL: {"path.channel_id": _drawn("channels")},
        # The fuzzer's URLs go to another channel than the one tested (which posts to this server).
        "PUT " + CHANNEL: {"path.channel_id": ids["edited_channel"]},
        # Campaigns to the offline device that has the firmware (they wait for it, and stay running); a
        # cancellation succeeds once.
        "POST /v1/user/campaigns": {"body.target": {"uids": [ids["away"]]}, "body.md5": ids["md5"]},
        "POST " + CAMPAIGN + "/cancel": {"path.campaign_id": _drawn("campaigns")},
    }
    no_responses = {"extra-data-sources": {"responses": False}}  # ids come from here only, not from answers
    lines = [
        f"seed = {SEED}",
        "workers = 1",
        f"headers = {toml({'Authorization': f'Bearer {server.token}'})}",
        f"generation = {toml({'max-examples': MAX_EXAMPLES})}",
        f"checks = {toml({'enabled': False, **{name: {'enabled': True} for name in CHECKS}})}",
        f"warnings = {toml({'fail-on': True})}",
        f"phases = {toml({'coverage': no_responses, 'fuzzing': no_responses})}",
    ]
    for name in operation_names():
        if name in NOT_FUZZED:
            lines += ["", "[[operations]]", f"include-name = {toml(name)}", "enabled = false"]
            continue
        parameters = special.get(name, online)
        lines += ["", "[[operations]]", f"include-name = {toml(name)}", f"parameters = {toml(parameters)}"]
        if name == "POST " + DEVICE + "/firmwares":
            # Multipart parts are text: a "boolean" or "number" the fuzzer sends is the text "true" or "42",
            # which the document allows as well. Refusing invalid data cannot be checked here.
            lines.append(f"checks = {toml({'negative_data_rejection': {'enabled': False}})}")
    for name, values in ids["victims"].items():
        lines += ["", f"[dictionaries.{name}]", f"values = {toml(values)}"]
    return "\n".join(lines) + "\n"


def _drawn(dictionary):
    return {"dictionary": dictionary, "probability": 1.0}


async def prepare(server):
    """The identifiers the run uses, and the online device (to close afterwards)."""
    online = server.register("online")
    device = FakeDevice(online["mqtt"], online["port"])
    await device.connect()
    status, sent = 0, None
    deadline = time.monotonic() + 10
    while status != 200 and time.monotonic() < deadline:  # until the backend has seen it online
        status, sent = server.call("POST", f"/v1/user/devices/{online['uid']}/commands", {"payload": {"cmd": "x"}})
        await asyncio.sleep(0.05)
    assert status == 200, sent
    uid = online["uid"]
    victims = {"buttons": [f"delete-{i}" for i in range(VICTIMS)]}
    for button in ["send-me", *victims["buttons"]]:
        assert server.call("POST", f"/v1/user/devices/{uid}/command-buttons",
                           {"id": button, "label": button, "payload": {"cmd": "x"}})[0] == 201
    image = bundle_format.pack("2.0", [("app.mpy", b"target")])  # OTA-able
    target = upload(server, uid, image, "target")
    victims["firmwares"] = [upload(server, uid, b"\x01%d" % i, "victim")["id"] for i in range(VICTIMS)]
    victims["devices"] = [server.register(f"victim-{i}")["uid"] for i in range(VICTIMS)]
    edited = server.register("edited")["uid"]
    victims["tags"] = [f"victim-{i}" for i in range(32)]  # the most a device holds
    assert server.call("POST", f"/v1/user/devices/{edited}/tags", {"tags": victims["tags"]})[0] == 200
    assert server.call("POST", f"/v1/user/devices/{uid}/tags", {"tags": ["fuzzed"]})[0] == 200
    # The victims first: group 1, an id the fuzzer tries whatever it is told, is one of them.
    victims["groups"] = [server.call("POST", "/v1/user/groups", {"name": f"victim-{i}"})[1]["data"]["id"]
                         for i in range(VICTIMS)]
    group = server.call("POST", "/v1/user/groups", {"name": "fuzzed"})[1]["data"]["id"]
    victims["members"] = [server.register(f"member-{i}")["uid"] for i in range(VICTIMS)]
    assert server.call("POST", f"/v1/user/groups/{group}/devices", {"uids": [uid, *victims["members"]]})[0] == 200
    assert server.call("POST", f"/v1/user/devices/{uid}/firmwares/set-target", {"md5": target["md5"]})[0] == 200
    status, bulk = server.call("POST", "/v1/user/commands", {"target": {"group": group}, "command": {"type": "reboot"}})
    assert status == 202, bulk
    ids = {
        "online": uid, "command": sent["id"], "firmware": target["id"], "md5": target["md5"],
        "edited": edited, "group": group, "bulk": bulk["data"]["id"], "victims": victims,
        **await _alarms(server, device, victims), **_campaigns(server, image, victims),
    }
    return ids, device


async def _alarms(server, device, victims):
    """Alarm rules and the alarms the online device's telemetry raises (each rule its own: one to show, and some to
    acknowledge and to resolve, drawn one a case, as a second acknowledge of an alarm is 409), and channels."""
    def rule(name):
        status, made = server.call("POST", "/v1/user/rules", {
            "name": name, "rule_type": "threshold", "config": {"key": "t", "op": ">", "value": 0},
            "scope_type": "device", "scope_device_id": device.uid})
        assert status == 201, made
        return made["data"]["id"]

    shown = rule("shown")
    raising = {kind: [rule(f"{kind}-{i}") for i in range(RULE_VICTIMS)] for kind in ("acknowledged", "resolved")}
    victims["rules"] = [rule(f"victim-{i}") for i in range(RULE_VICTIMS)]
    await device.publish("telemetry", {"values": {"t": 1}})
    alarms, deadline = {}, time.monotonic() + 10
    while len(alarms) < 3 * RULE_VICTIMS + 1 and time.monotonic() < deadline:
        alarms = {a["rule_id"]: a["id"] for a in server.call("GET", "/v1/user/alarms?limit=100")[1]["data"]}
        await asyncio.sleep(0.05)
    for kind, rules in raising.items():
        victims[kind] = [alarms[rule_id] for rule_id in rules]

    def channel(name, url):
        status, made = server.call("POST", "/v1/user/notifications/channels", {
            "name": name, "channel_type": "webhook", "config": {"url": url, "secret": "a-secret-of-16-chars"}})
        assert status == 201, made
        return made["data"]["id"]

    tested = channel("tested", f"{server.url}/v1/platforms")  # a POST there is 405 at once
    victims["channels"] = [channel(f"victim-{i}", f"{server.url}/v1/boards") for i in range(CHANNEL_VICTIMS)]
    return {"rule": shown, "alarm": alarms[shown], "channel": tested, "edited_channel": channel("edited", server.url)}


def _campaigns(server, image, victims):
    """An offline device with the firmware `image`, and campaigns of it to that device, which wait for it and so stay
    running: one to show, pause and resume, and some to cancel, drawn one a case."""
    away = server.register("away")["uid"]
    md5 = upload(server, away, image, "target")["md5"]

    def campaign(name):
        status, made = server.call("POST", "/v1/user/campaigns", {
            "name": name, "md5": md5, "target": {"uids": [away]}, "wave_size": 1})
        assert status == 201, made
        return made["data"]["id"]

    victims["campaigns"] = [campaign(f"victim-{i}") for i in range(VICTIMS)]
    return {"away": away, "campaign": campaign("fuzzed")}


async def test_schemathesis_finds_no_server_error_and_no_answer_off_the_document(tmp_path):
    server = ServerProcess(tmp_path / "var", args=("--mqtt-port", "0", "--mqtt-tls-port", "0", "--device-port", "0"))
    server.start()
    device = None
    try:
        ids, device = await prepare(server)
        config_file = tmp_path / "schemathesis.toml"
        config_file.write_text(config(server, ids))
        report = tmp_path / "report.json"
        run = await asyncio.create_subprocess_exec(
            SCHEMATHESIS, "--config-file", str(config_file), "--no-color", "run", f"{server.url}/v1/openapi.json",
            "--url", server.url, "--report", "json", "--report-json-path", str(report),
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output = (await asyncio.wait_for(run.communicate(), 300))[0].decode()
    finally:
        if device is not None:
            await device.close()
        log = server.stop()
    assert run.returncode == 0, output  # a failed check, or a warning (fail-on: every one shown)
    summary = json.loads(report.read_text())
    assert summary["operations"]["tested"] == len(operation_names()) - len(NOT_FUZZED)
    assert summary["test_cases"]["with_failures"] == summary["test_cases"]["errored"] == 0, output
    assert not any(summary["warnings"].values()), summary["warnings"]
    assert "Traceback" not in log and " ERROR " not in log, log  # nothing went wrong behind a 4xx either
    print(f"\nschemathesis: {summary['test_cases']['generated']} cases generated, all passed, on"
          f" {summary['operations']['tested']} operations, in {summary['running_time']:.1f} s")
