"""Home Assistant MQTT discovery: what a device looks like to Home Assistant (docs/home-assistant.md).

Pure functions of a device as storage/home_assistant.py reads it: `messages(device)` is every retained message the
backend keeps for it, {topic: payload bytes}, the discovery configs (one per component, Home Assistant's
single-component discovery) and the states they read. home_assistant.py publishes them; nothing here does MQTT.

Topics (DISCOVERY_PREFIX is Home Assistant's default; ROOT is ours, outside the devices' `mpfleet/v1/`):

    homeassistant/<component>/mpfleet_<uid>/<object id>/config   a component's config (retained)
    mpfleet/ha/<uid>/availability   "online" / "offline" (retained): the device's presence
    mpfleet/ha/<uid>/telemetry      {"<key>": latest value, ...} (retained): the sensors' state
    mpfleet/ha/<uid>/update         {"installed_version", "latest_version", "in_progress", "update_percentage"}
    mpfleet/ha/<uid>/command        Home Assistant → backend: "reboot", "wifi_reset", "button:<id>", "install"
    homeassistant/status            Home Assistant's birth ("online") and will ("offline")

A press is never published to the device's own `cmd` topic: the backend reads it on `command` and sends a tracked
command (service.py), paced and kept in the history like one sent over REST.
"""

import hashlib
import re

import orjson

from mpfleet.boards import catalog

DISCOVERY_PREFIX = "homeassistant"
BIRTH_TOPIC = f"{DISCOVERY_PREFIX}/status"
ROOT = "mpfleet/ha"
NODE_PREFIX = "mpfleet_"  # the node id of a device's configs: mpfleet_<uid>
COMMAND_FILTER = f"{ROOT}/+/command"
STATE_FILTER = f"{ROOT}/+/+"  # the backend's own view of what is retained below ROOT (and the commands)
CONFIG_FILTER = f"{DISCOVERY_PREFIX}/+/+/+/config"
ONLINE, OFFLINE = b"online", b"offline"
REBOOT, WIFI_RESET, INSTALL, BUTTON = "reboot", "wifi_reset", "install", "button:"
ORIGIN = {"name": "mpfleet"}  # who published the configs (Home Assistant logs it)
# The firmware's own telemetry keys (firmware/app.py's sample), described as Home Assistant knows such values.
FIRMWARE_SENSORS = {
    "rssi": {"device_class": "signal_strength", "unit_of_measurement": "dBm", "entity_category": "diagnostic"},
    "uptime": {"device_class": "duration", "unit_of_measurement": "s", "entity_category": "diagnostic"},
    "free_mem": {"device_class": "data_size", "unit_of_measurement": "B", "entity_category": "diagnostic"},
}
# An object id is [a-zA-Z0-9_-] (Home Assistant's discovery topic); a telemetry key may also hold a dot.
_NOT_IN_OBJECT_ID = re.compile(r"[^a-zA-Z0-9_-]")
_SHORT_MD5 = 7
UNKNOWN = "unknown"  # the installed version of a device that reports none


def topic(uid, kind):
    """A topic of ours for device `uid`: availability, telemetry, update or command."""
    return f"{ROOT}/{uid}/{kind}"


def node_id(uid):
    return NODE_PREFIX + uid


def config_topic(component, uid, object_id):
    return f"{DISCOVERY_PREFIX}/{component}/{node_id(uid)}/{object_id}/config"


def is_ours(config):
    """Whether a discovery config topic is one of a device of ours (node id mpfleet_<uid>)."""
    parts = config.split("/")
    return len(parts) == 5 and parts[2].startswith(NODE_PREFIX)


def command_of(name):
    """The uid of a command topic (mpfleet/ha/<uid>/command), or None for any other topic."""
    parts = name.split("/")
    if len(parts) == 4 and f"{parts[0]}/{parts[1]}" == ROOT and parts[3] == "command" and parts[2]:
        return parts[2]
    return None


def sensor_object_id(key):
    """A telemetry key as an object id: as it is when it may be one, else its other characters as `_` and a
    hash of the key (`a.b` and `a_b` are two sensors)."""
    if not _NOT_IN_OBJECT_ID.search(key):
        return f"t_{key}"
    return f"t_{_NOT_IN_OBJECT_ID.sub('_', key)}_{hashlib.sha1(key.encode()).hexdigest()[:6]}"


def installed_version(device):
    """What the device runs, as a version: the version it reports, else its firmware's, else the md5's start, else
    UNKNOWN (a version Home Assistant can compare: with None it shows no update at all)."""
    label = device.fw_version or device.current_version
    if label:
        return str(label)
    return device.fw_md5[:_SHORT_MD5] if device.fw_md5 else UNKNOWN


def latest_version(device):
    """The target firmware's version (the installed one when there is no target or it runs already); one that
    reads like the installed version but is another build says its md5's start too."""
    installed = installed_version(device)
    if device.target_md5 is None or device.target_md5 == device.fw_md5:
        return installed
    label = device.target_version or device.target_md5[:_SHORT_MD5]
    if label == installed:
        label = f"{label} ({device.target_md5[:_SHORT_MD5]})"
    return label


def components(device):
    """{(component, object id): config} of the device's entities: the reboot and Wi-Fi reset buttons, one per
    saved command button, the firmware update, a sensor per telemetry key seen."""
    command = topic(device.uid, "command")
    found = {
        ("button", "reboot"): {"name": "Reboot", "device_class": "restart", "entity_category": "config",
                               "command_topic": command, "payload_press": REBOOT},
        ("button", "wifi_reset"): {"name": "Wi-Fi reset", "entity_category": "config", "icon": "mdi:wifi-refresh",
                                   "command_topic": command, "payload_press": WIFI_RESET},
        ("update", "firmware"): {"name": "Firmware", "device_class": "firmware",
                                 "state_topic": topic(device.uid, "update"), "command_topic": command,
                                 "payload_install": INSTALL},
    }
    for button_id, label in device.buttons:
        found[("button", f"button_{button_id}")] = {"name": label, "command_topic": command,
                                                    "payload_press": BUTTON + button_id}
    for key, value in sorted(device.telemetry.items()):
        config = {"name": key, "state_topic": topic(device.uid, "telemetry"),
                  "value_template": "{{ value_json[%s] }}" % orjson.dumps(key).decode()}
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            config["state_class"] = "measurement"  # a number: Home Assistant keeps its statistics
        config.update(FIRMWARE_SENSORS.get(key, {}))
        found[("sensor", sensor_object_id(key))] = config
    return found


def configs(device, origin=ORIGIN):
    """{config topic: config} of the device's components, each with its unique id, availability and device."""
    board = catalog().get(device.board_key)
    about = {"identifiers": [node_id(device.uid)], "name": device.name, "manufacturer": "mpfleet",
             "model": board.board["name"] if board else device.board_key, "serial_number": device.uid}
    if (version := installed_version(device)) != UNKNOWN:
        about["sw_version"] = version
    found = {}
    for (component, object_id), config in components(device).items():
        found[config_topic(component, device.uid, object_id)] = {
            **config, "unique_id": f"{node_id(device.uid)}_{object_id}",
            "availability_topic": topic(device.uid, "availability"), "device": about, "origin": origin}
    return found


def states(device):
    """{state topic: state} of the device: its availability, latest telemetry and firmware update."""
    update = {"installed_version": installed_version(device), "latest_version": latest_version(device),
              "in_progress": device.job_state is not None,
              "update_percentage": device.job_progress if device.job_state is not None else None}
    return {
        topic(device.uid, "availability"): ONLINE if device.online else OFFLINE,
        topic(device.uid, "telemetry"): device.telemetry,
        topic(device.uid, "update"): update,
    }


def config_key(device):
    """What the device's configs are made of: equal keys, equal configs (a round rebuilds only what changed)."""
    kinds = tuple(sorted((key, isinstance(value, (int, float)) and not isinstance(value, bool))
                         for key, value in device.telemetry.items()))
    return device.name, device.board_key, installed_version(device), tuple(device.buttons), kinds


def config_messages(device, origin=ORIGIN):
    """{config topic: payload bytes} of the device's components."""
    return {name: orjson.dumps(config) for name, config in configs(device, origin).items()}


def state_messages(device):
    """{state topic: payload bytes} of the device."""
    return {name: state if isinstance(state, bytes) else orjson.dumps(state) for name, state in states(device).items()}


def messages(device, origin=ORIGIN):
    """{topic: payload bytes} of every retained message the backend keeps for the device."""
    return {**config_messages(device, origin), **state_messages(device)}
