"""The Home Assistant account's access, the one rule both brokers apply (docs/home-assistant.md):

- subscribe to (and receive) the discovery prefix and the backend's Home Assistant topics only;
- publish only Home Assistant's birth and will (`homeassistant/status`) and the command topics the backend reads
  (`mpfleet/ha/<uid>/command`): never a device's own topics, never a discovery config.

embedded.py asks the functions below for each SUBSCRIBE, PUBLISH and delivery; mosquitto.py turns the same
patterns into a dynamic security role.
"""

import re

from ..ha_discovery import BIRTH_TOPIC, COMMAND_FILTER, DISCOVERY_PREFIX, ROOT

USERNAME = "mpfleet-home-assistant"
READS = (f"{DISCOVERY_PREFIX}/#", f"{ROOT}/#")
WRITES = (BIRTH_TOPIC, COMMAND_FILTER)
# A device's client id is its uid (credentials.new_device_uid): a session under one would take the device's over.
_DEVICE_UID = re.compile(r"[a-z0-9]+_[0-9A-Za-z]{12}")


def may_use_client_id(client_id):
    """Whether Home Assistant may log in under `client_id`: any id but one shaped like a device's uid."""
    return bool(client_id) and _DEVICE_UID.fullmatch(client_id) is None


def matches(pattern, name):
    """Whether topic `name` (no wildcards) matches filter `pattern` (MQTT's `+` and `#`)."""
    want, have = pattern.split("/"), name.split("/")
    for position, level in enumerate(want):
        if level == "#":
            return True
        if position >= len(have) or (level != "+" and level != have[position]):
            return False
    return len(want) == len(have)


def may_subscribe(topic_filter):
    """A filter within a READS pattern (`homeassistant/+/+/config` is; `#` or `+/status` is not)."""
    for pattern in READS:
        base = pattern[:-2]  # each READS pattern is `<base>/#`
        if topic_filter == base or topic_filter.startswith(base + "/"):
            return True
    return False


def may_receive(name):
    return any(matches(pattern, name) for pattern in READS)


def may_publish(name):
    return "+" not in name and "#" not in name and any(matches(pattern, name) for pattern in WRITES)


def dynsec_acls():
    """The same access as Mosquitto dynamic security ACLs (a role's `acls`)."""
    acls = []
    for pattern in READS:
        acls += [{"acltype": "subscribePattern", "topic": pattern, "allow": True},
                 {"acltype": "publishClientReceive", "topic": pattern, "allow": True}]
    for pattern in WRITES:
        acls.append({"acltype": "publishClientSend", "topic": pattern, "allow": True})
    return acls
