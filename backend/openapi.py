"""The OpenAPI 3.1 description of the REST API, served at GET /v1/openapi.json.

It states the rules the server enforces, from the constants that enforce them (schemas.py,
jsonvalues.py, the handlers' query bounds, the board catalog): lengths, patterns, ranges, enums,
required fields, and every status each route can answer with its JSON body. The tests check that it
names exactly the routes of routes.py, validate every answer of the app against it, and run a
schema-driven fuzzer against a live server (tests/test_schemathesis.py), so the two cannot drift apart.

What JSON Schema cannot say is written in descriptions: a payload's size as JSON, how deep a field
may nest, that text is stripped of ASCII whitespace.
"""

from functools import cache

from mpfleet.boards import OTA_METHODS, catalog, platforms

from . import jsonvalues, schemas
from .config import MAX_FIRMWARE_BYTES
from .handlers import commands, events, health, telemetry
from .storage import bulk, campaigns, groups, ota


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema):
    return {"anyOf": [schema, {"type": "null"}]}


def _object(properties, required=None, *, extra=None):
    """An object of `properties` (all required unless said otherwise). `extra`: the schema of the
    fields it does not name, which request bodies allow (the server ignores them; they keep the
    JSON-value rule all the same)."""
    schema = {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }
    if extra is not None:
        schema["additionalProperties"] = extra
    return schema


def _text(max_len, *, required=False, description=None):
    """A text field of a request: at most `max_len` characters as sent, stripped of ASCII whitespace;
    a required one must hold something else."""
    schema = {"type": "string", "maxLength": max_len}
    if required:
        schema["pattern"] = schemas.NOT_BLANK_PATTERN
    if description:
        schema["description"] = description
    return schema


_STRING = {"type": "string"}
_TIME = _nullable({"type": "string", "format": "date-time"})
_ID_NAME_KEY = _object({"id": {"type": ["integer", "null"]}, "name": _STRING, "key": _STRING})
_NUMBER = {"type": "number", "minimum": jsonvalues.MIN_NUMBER, "maximum": jsonvalues.MAX_NUMBER}
_VALUE = _ref("JsonValue")
_PAYLOAD = {
    "type": "object", "additionalProperties": _VALUE,
    "description": f"a JSON object of at most {schemas.MAX_PAYLOAD_BYTES} bytes as compact UTF-8 JSON (what the"
    f" board receives), nested at most {jsonvalues.MAX_DEPTH} levels, itself counted",
}
_STORED_PAYLOAD = _nullable({"type": "object"})
_STORED_PAYLOAD["description"] = "null for a payload stored before the JSON-value rule that breaks it"
_BOARDS = sorted(catalog().values(), key=lambda b: b.board["id"])

_COUNT = {"type": "integer", "minimum": 0}
_PERCENT = {"type": "integer", "minimum": 0, "maximum": 100}
SCHEMAS = {
    "JsonValue": {
        "description": f"Any JSON value whose numbers are finite and from -(2^63-1) to 2^63-1, integer or not, and"
        f" which nests at most {jsonvalues.MAX_DEPTH} levels of arrays and objects (this value counted): the rule"
        " of every value a client sends. A field that breaks it is answered 422 naming the field.",
        "anyOf": [
            {"type": ["null", "boolean", "string"]},
            _NUMBER,
            {"type": "array", "items": _VALUE},
            {"type": "object", "additionalProperties": _VALUE},
        ],
    },
    "Message": _object({"message": _STRING}),
    "DeviceMessage": _object({"message": _STRING, "device_uid": _STRING}),
    "ValidationError": _object({
        "message": {"type": "string", "description": "the first error, and how many more there are"},
        "errors": {"type": "object", "additionalProperties": {"type": "array", "items": _STRING},
                   "description": "the messages of each field (or query parameter) that failed"},
    }),
    "Platform": _ID_NAME_KEY,
    "Board": _object({
        "id": {"type": "integer"}, "name": _STRING, "key": _STRING, "platform": _ref("Platform"),
        "chip": _STRING, "flash_size": _nullable(_STRING), "flash_offset": _nullable(_STRING),
        "pins": {"type": "object"},
        "ota": {"type": "array", "items": {"enum": list(OTA_METHODS)}, "minItems": 1, "uniqueItems": True,
                "description": "how the board applies an OTA: partition (an esp32-app image into the next OTA"
                " partition), bundle (an app bundle into an app directory)"},
    }),
    "DeviceCompact": _object({
        "uid": _STRING, "name": _STRING, "status": _ref("DeviceStatus"), "last_seen_at": _TIME,
        "platform": _ref("Platform"), "board": _ref("Platform"), "board_variant": _nullable(_STRING),
        "tags": {"type": "array", "items": _ref("Tag"), "description": "the device's tags, sorted"},
        "groups": {"type": "array", "description": "the groups it is in, in the group list's order",
                   "items": _object({"id": {"type": "integer"}, "name": _STRING})},
    }),
    "DeviceStatus": {"enum": ["pending", "online", "offline", "disabled"]},
    "Device": _object({
        "uid": _STRING, "name": _STRING, "description": _nullable(_STRING), "status": _ref("DeviceStatus"),
        "is_online": {"type": "boolean"}, "public_ip": _nullable(_STRING), "local_ip": _nullable(_STRING),
        "port": {"type": "integer"}, "last_rssi": _nullable({"type": "integer"}),
        "first_seen_at": _TIME, "last_seen_at": _TIME, "last_ota_at": _TIME,
        "platform": _ref("Platform"), "board": _ref("Platform"), "board_variant": _nullable(_STRING),
        "current_firmware": _nullable(_ref("Firmware")), "target_firmware": _nullable(_ref("Firmware")),
        "meta": {"type": "object", "properties": {"mqtt_port": {"type": "integer"}}, "required": ["mqtt_port"]},
        "tags": {"type": "array", "items": _ref("Tag"), "description": "the device's tags, sorted"},
    }),
    "Tag": {"type": "string", "pattern": schemas.TAG_PATTERN, "maxLength": schemas.TAG_MAX,
            "description": schemas.TAG_RULE},
    "TagCount": _object({"tag": _ref("Tag"), "device_count": {"type": "integer", "minimum": 1}}),
    "DeviceTags": _object({
        "message": _STRING, "device_uid": _STRING,
        "data": {"type": "array", "items": _ref("Tag"), "description": "every tag the device has now, sorted"},
    }),
    "Group": _object({
        "id": {"type": "integer"}, "name": _STRING, "description": _nullable(_STRING),
        "device_count": {"type": "integer", "minimum": 0},
    }),
    "GroupMessage": _object({"message": _STRING, "data": _ref("Group")}),
    "MqttCredentials": _object({
        "host": _STRING, "port": {"type": "integer"}, "username": _STRING, "password": _STRING,
        "client_id": _STRING, "tls": {"type": "boolean"},
        "ca_cert": _nullable({"type": "string", "description": "PEM of the broker's CA"}),
    }),
    "OtaListener": _object({
        "host": _STRING, "port": {"type": "integer"},
    }),
    "RegisteredDevice": {
        "allOf": [_ref("Device"), _object({"mqtt": _ref("MqttCredentials"), "ota": _ref("OtaListener")})],
        "description": "The device, plus its MQTT credentials (the password is shown only here) and where it"
        " downloads OTA images (HTTPS, verified with the same CA as the broker; each `ota` command carries the"
        " full URL).",
    },
    "Firmware": _object({
        "id": {"type": "integer"}, "name": _STRING, "version": _nullable(_STRING), "notes": _nullable(_STRING),
        "md5": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "sha256": _nullable({"type": "string", "pattern": "^[0-9a-f]{64}$",
                             "description": "null for a firmware uploaded before sha256 was kept, until its"
                             " first OTA"}),
        "size": {"type": "integer"},
        "kind": {"enum": ["esp32-app", "bundle", "raw"]}, "created_at": {"type": "string", "format": "date-time"},
        "is_current": {"type": "boolean"}, "is_target": {"type": "boolean"},
    }),
    "CommandState": {
        "enum": ["queued", "sent", "accepted", "done", "failed", "expired"],
        "description": "queued (held until the device has room, or with a ttl until it is back online) -> sent ->"
        " accepted -> done / failed; expired when not sent (within its ttl), or not answered, in time",
    },
    "BulkState": {
        "enum": list(bulk.STATES),
        "description": "a device's in a bulk job: its command's state (CommandState), or why it got no command:"
        ' offline (without a ttl: "Device is offline."), disabled ("Device is disabled."), no_button (it has no'
        ' command button of that id: "Command button not found.")',
    },
    "BulkJob": _object({
        "id": {"type": "string", "description": "the job's id, see GET /v1/user/commands/bulk/{id}"},
        "command": _object({
            "type": {"enum": list(schemas.BULK_COMMAND_TYPES)}, "payload": _nullable({"type": "object"}),
            "button": _nullable(_STRING)}),
        "target": _object({
            "type": {"enum": list(schemas.BULK_TARGETS)}, "tag": _ref("Tag"), "group": {"type": "integer"},
            "filter": {"type": "object"}}, required=["type"]),
        "ttl": _nullable({"type": "integer"}),
        "created_at": {"type": "string", "format": "date-time"},
        "device_count": {"type": "integer", "minimum": 1},
        "counts": {"type": "object", "propertyNames": _ref("BulkState"),
                   "additionalProperties": {"type": "integer", "minimum": 1},
                   "description": "how many of its devices are in each state (those with none left out)"},
        "finished": {"type": "boolean", "description": "no device's command is queued, sent or accepted any more"},
    }),
    "BulkDevice": _object({
        "uid": _STRING, "state": _ref("BulkState"),
        "command_id": _nullable({"type": "string", "description": "its command, see GET .../commands/{id}; null"
                                 " when it got none"}),
        "result": {"description": "what the device returned with its final ack, or null"},
        "error": _nullable({"type": "string", "description": "the command's error, or why there is no command"}),
    }),
    "CampaignState": {
        "enum": list(campaigns.STATES),
        "description": "running (waves start one after the other) <-> paused (no device gets an OTA until resumed);"
        " halted (by itself: too many failures, see `reason`), cancelled, completed (every device past its job):"
        " those three are over, and its devices without a job are skipped",
    },
    "CampaignDeviceState": {
        "enum": list(campaigns.DEVICE_STATES),
        "description": "pending (its wave has not started), waiting (its wave started while it was offline, disabled"
        " or in another OTA: it gets the OTA when it is back and free), its OTA job's state (OtaState), or an"
        " outcome without a job: up_to_date (it runs the md5 already), no_firmware (no firmware of that md5 is"
        " uploaded for it), not_applicable (its board cannot apply the firmware's kind), skipped (the campaign was"
        " over before it got its OTA)",
    },
    "CampaignCounts": {"type": "object", "propertyNames": _ref("CampaignDeviceState"),
                       "additionalProperties": {"type": "integer", "minimum": 1},
                       "description": "how many devices are in each state (those with none left out)"},
    "Campaign": _object({
        "id": {"type": "string", "description": "the campaign's id, see GET /v1/user/campaigns/{id}"},
        "name": _STRING, "md5": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "target": _object({
            "type": {"enum": list(schemas.BULK_TARGETS)}, "tag": _ref("Tag"), "group": {"type": "integer"},
            "filter": {"type": "object"}}, required=["type"]),
        "wave_size": {"type": "integer", "minimum": 1, "description": "devices a wave (from wave_percent, when that"
                      " was given)"},
        "wave_percent": _nullable({"type": "integer", "minimum": 1, "maximum": 100}),
        "pause_seconds": {"type": "integer", "minimum": 0}, "max_failure_percent": _PERCENT,
        "state": _ref("CampaignState"),
        "reason": _nullable({"type": "string", "description": "why it halted"}),
        "wave": {"type": "integer", "minimum": 0, "description": "the wave started last (0: none yet)"},
        "wave_count": {"type": "integer", "minimum": 0, "maximum": schemas.CAMPAIGN_MAX_WAVES},
        "device_count": _COUNT, "counts": _ref("CampaignCounts"),
        "attempted": {**_COUNT, "description": "devices given an OTA job"},
        "failures": {**_COUNT, "description": "devices whose job failed, rolled back or expired"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "ended_at": _TIME,
    }),
    "CampaignWave": _object({
        "number": {"type": "integer", "minimum": 1}, "size": {"type": "integer", "minimum": 1},
        "started_at": _TIME,
        "final_at": {**_TIME, "description": "when every job of it was seen over (its pause counts from then)"},
        "counts": _ref("CampaignCounts"),
    }),
    "CampaignDetail": {"allOf": [_ref("Campaign"), _object({
        "waves": {"type": "array", "items": _ref("CampaignWave"), "maxItems": schemas.CAMPAIGN_MAX_WAVES}})]},
    "CampaignDevice": _object({
        "uid": _STRING, "wave": {"type": ["integer", "null"], "minimum": 1,
                                 "description": "null: in no wave (up_to_date, no_firmware at the start)"},
        "job_id": _nullable({"type": "string", "description": "its OTA job (GET /v1/user/devices/{uid}/ota?all=true;"
                             " the id of its `ota` command)"}),
        "state": _ref("CampaignDeviceState"),
        "error": _nullable({"type": "string", "description": "its job's error, or why it has none (yet)"}),
    }),
    "CommandSent": _object({
        "message": _STRING, "device_uid": _STRING,
        "id": {"type": "string", "description": "the command id, see GET .../commands/{id}"},
        "state": {"allOf": [_ref("CommandState")],
                  "description": "final (done / failed / expired) when it came within ?wait, else as it is now"},
        "result": {"description": "what the device returned with its final ack, or null"},
        "error": _nullable(_STRING),
    }),
    "Command": _object({
        "id": _STRING, "type": {"enum": ["reboot", "wifi_reset", "ota", "custom"]}, "payload": _STORED_PAYLOAD,
        "state": _ref("CommandState"),
        "result": {"description": "what the device returned with its final ack, or null (also for a result"
                                  " stored before the JSON-value rule that breaks it)"},
        "error": _nullable(_STRING),
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    }),
    "OtaState": {
        "enum": list(ota.OPEN_STATES + ota.FINAL_STATES),
        "description": "sent -> downloading (progress) -> verified -> applying -> updated (the device came back"
        " reporting the target's md5); or failed (error: why), rolled_back (the device came back on another"
        " firmware), expired (its command got no final answer in time)",
    },
    "OtaHistoryEntry": _object({
        "state": _ref("OtaState"), "at": {"type": "string", "format": "date-time"},
        "progress": {"type": "integer", "minimum": 0, "maximum": 100}, "error": _nullable(_STRING),
    }, required=["state", "at"]),
    "OtaJob": _object({
        "id": {"type": "string", "description": "the id of its `ota` command, see GET .../commands/{id}"},
        "state": _ref("OtaState"),
        "progress": _nullable({"type": "integer", "minimum": 0, "maximum": 100}),
        "error": _nullable(_STRING),
        "bytes_served": {"type": "integer", "minimum": 0,
                         "description": "bytes of the image its download responses sent, all requests counted"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "firmware": _nullable({"allOf": [_ref("Firmware")], "description": "null once deleted"}),
        "history": {"type": "array", "items": _ref("OtaHistoryEntry"),
                    "description": f"the states it went through, oldest first (at most {ota.MAX_HISTORY})"},
    }),
    "Sample": _object({"key": _STRING, "ts": {"type": "string", "format": "date-time"},
                       "value": {"type": ["number", "string"]}}),
    "PresenceEvent": _object({
        "at": {"type": "string", "format": "date-time"},
        "status": _ref("DeviceStatus"), "previous": _ref("DeviceStatus"),
        "boot": {"type": ["integer", "null"], "description": "the boot count the device reported, when online"},
        "reason": {"enum": ["first_seen", "booted", "reconnected", "rebooted", "disconnected", "backend_restart",
                            "disabled", "enabled"]},
    }),
    "Health": _object({
        "score": {"type": ["integer", "null"], "minimum": 0, "maximum": 100,
                  "description": "0.3 uptime + 0.25 stability + 0.25 freshness + 0.2 alarms over the last day "
                  "(docs/api.md); null "
                  "for a device never seen or disabled"},
        "status": _ref("DeviceStatus"),
        "components": _nullable(_object({
            "uptime": _object({"score": _PERCENT, "online_share": {"type": "number", "minimum": 0, "maximum": 1},
                               "window_seconds": {"type": "integer", "minimum": 0}}),
            "stability": _object({"score": _PERCENT, "disconnects": _COUNT, "boots": _COUNT,
                                  "safe_mode": {"type": "boolean"}}),
            "freshness": _object({"score": _PERCENT,
                                  "last_data_age_seconds": {"type": ["number", "null"]},
                                  "period_seconds": {"type": "number", "exclusiveMinimum": 0}}),
            "alarms": _object({"score": _PERCENT,
                               "open": _object({"critical": _COUNT, "warning": _COUNT, "info": _COUNT})}),
        })),
    }),
    "Stats": _object({
        "total_devices": _COUNT, "online_devices": _COUNT,
        "online_percent": {"type": "number", "minimum": 0, "maximum": 100},
        "by_status": _object({status: _COUNT for status in schemas.STATUSES}),
        "by_platform": {"type": "object", "additionalProperties": _COUNT},
        "by_board": {"type": "object", "additionalProperties": _COUNT},
        "by_firmware": {"type": "array", "items": _object({
            "md5": _STRING, "version": {"type": ["string", "null"]}, "devices": _COUNT}),
            "description": "the firmware the devices report, most devices first"},
        "telemetry_values_24h": {**_COUNT, "description": "telemetry values stored in the last 24 hours (counted "
                                 "by the hour: the current one and the 23 before it)"},
    }),
    "NewCommandButton": _object({
        "id": {"type": "string", "pattern": schemas.BUTTON_ID_PATTERN, "maxLength": schemas.BUTTON_ID_MAX},
        "label": _text(schemas.LABEL_MAX, required=True),
        "payload": _PAYLOAD,
        "confirm": {"type": "boolean", "default": False},
    }, required=["id", "label", "payload"], extra=_VALUE),
    "CommandButton": _object({
        "id": _STRING, "label": _STRING, "payload": _STORED_PAYLOAD, "confirm": {"type": "boolean"},
    }),
}


def _data(schema):
    return _object({"data": schema})


def _json(schema):
    return {"content": {"application/json": {"schema": schema}}}


def _answer(description, schema, headers=None):
    answer = {"description": description, **_json(schema)}
    if headers:
        answer["headers"] = headers
    return answer


def _message(description, headers=None):
    return _answer(description, _ref("Message"), headers)


_BAD_REQUEST = _message("The request cannot be parsed (HTTP itself: its request line or headers; or a body that is"
                        " not what the operation reads: not JSON, not a JSON object, malformed multipart)")
_UNAUTHENTICATED = _message('Missing or unknown bearer token: "Unauthenticated."', headers={
    "WWW-Authenticate": {"required": True, "schema": {"const": "Bearer"}}})
_NO_DEVICE = _message('No such device for this user ("Device not found."), or no such button, command, firmware'
                      ' or tag of it ("Tag not found.")')
_NO_GROUP = _message('No such group for this user ("Group not found.")')
_INVALID = _answer("Validation failed: a field breaks a rule below or the JSON-value rule (JsonValue), or a query"
                   " parameter is out of its range", _ref("ValidationError"))
_OFFLINE = _message('The device cannot take commands now: "Device is offline." (without a ttl) or "Device is'
                    ' disabled."')
_TOO_LARGE = _message("The request body is larger than the server accepts (1 MB for JSON)")
_NO_BRIDGE = _message("The MQTT broker cannot be reached; the command was not sent")
_BROKER_FAILED = _message("The MQTT broker did not confirm the change of the device's access (yet: it is retried)")
_INTEGER_HEADER = {"required": True, "schema": {"type": "integer", "minimum": 0}}
_RATE_LIMITED = _message(
    "Past the token's requests a minute (reads: GET and HEAD; writes: the other methods); nothing was done: "
    '"Too many requests: this token may make N read requests a minute; try again in S s."', headers={
        "Retry-After": {**_INTEGER_HEADER, "description": "seconds until the window ends"},
        "X-RateLimit-Limit": {**_INTEGER_HEADER, "description": "requests a minute of this kind"},
        "X-RateLimit-Remaining": {**_INTEGER_HEADER, "description": "0"},
        "X-RateLimit-Reset": {**_INTEGER_HEADER, "description": "when the window ends, in Unix seconds"}})
_METHOD_NOT_ALLOWED = _message('A known path with a method it does not have: "Method not allowed."', headers={
    "Allow": {"required": True, "schema": _STRING, "description": "the methods the path has"}})


def _operation(summary, responses, *, body=None, public=False, params=()):
    op = {"summary": summary, "responses": {"400": _BAD_REQUEST, "429": _RATE_LIMITED, **responses}}
    if not public:
        op["security"] = [{"bearer": []}]
        op["responses"]["401"] = _UNAUTHENTICATED
    if body is not None:
        op["requestBody"] = {"required": True, **body}
        op["responses"] = {"413": _TOO_LARGE, "422": _INVALID, **op["responses"]}
    if params:
        op["parameters"] = list(params)
    return op


def _path_param(name, schema, description):
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def _query(name, schema, description):
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_UID = _path_param("uid", _STRING, "device uid, e.g. espressif8266_G8VfdNhn7jqN")
_BUTTON_ID = {"type": "string", "pattern": schemas.BUTTON_ID_PATTERN, "maxLength": schemas.BUTTON_ID_MAX}
_BUTTON = _path_param("button_id", _BUTTON_ID, "command button id")
_FIRMWARE = _path_param("firmware_id", {"type": "integer", "minimum": 1, "maximum": jsonvalues.MAX_NUMBER},
                        "firmware id")
_COMMAND = _path_param("command_id", _STRING, "command id")


def _device_op(summary, responses, **kwargs):
    return _operation(summary, {**responses, "404": _NO_DEVICE}, params=(_UID, *kwargs.pop("params", ())), **kwargs)


_GROUP = _path_param("group_id", {"type": "integer", "minimum": 1, "maximum": jsonvalues.MAX_NUMBER}, "group id")


def _group_op(summary, responses, **kwargs):
    return _operation(summary, {"404": _NO_GROUP, **responses}, params=(_GROUP, *kwargs.pop("params", ())), **kwargs)


_WAIT = _query("wait", {"type": "integer", "minimum": 0, "maximum": commands.WAIT_MAX, "default": 0},
               "seconds to wait for the command's final state (default 0: answer at once)")


def _limit(default, maximum):
    return _query("limit", {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
                  f"newest first; default {default}, at most {maximum}")


def _time(name, description):
    return _query(name, {"anyOf": [{**_NUMBER, "description": "unix seconds"},
                                   {"type": "string", "format": "date-time"}]}, description)


_TTL = _query("ttl", {"type": "integer", "minimum": 1, "maximum": schemas.TTL_MAX},
              "seconds the command may wait to be sent: an offline device gets it when it is back online, in the"
              " order sent, else it expires (without a ttl an offline device is 409, and a command queued for a"
              " device that goes offline expires)")


def _command_op(summary, success, extra=None, params=(_WAIT, _TTL)):
    responses = {"200": _answer(success, _ref("CommandSent")), "409": _OFFLINE, "503": _NO_BRIDGE, **(extra or {})}
    return _device_op(summary, responses, params=params)


def _registration():
    """A registration body: the board must belong to the platform, so one branch per platform."""
    branches = []
    for platform in platforms():
        board_keys = [b.key for b in _BOARDS if b.platform["key"] == platform["key"]]
        branches.append(_object({
            "name": _text(schemas.NAME_MAX, required=True),
            "platform": {"const": platform["key"], "description": "platform key, see GET /v1/platforms"},
            "board": {"enum": board_keys, "description": "board key of this platform, see GET /v1/boards"},
            "description": _nullable(_text(schemas.DESCRIPTION_MAX)),
        }, required=["name", "platform", "board"], extra=_VALUE))
    return {"anyOf": branches}


_META_PATCH = {
    "type": "object", "additionalProperties": _VALUE, "maxProperties": schemas.META_MAX_KEYS,
    "propertyNames": {"pattern": schemas.META_KEY_PATTERN, "maxLength": schemas.META_KEY_MAX,
                      "not": {"enum": sorted(schemas.DEVICE_META_KEYS)}},
    "description": "merged into the device's meta as a JSON merge patch (RFC 7396): a key set to null is removed,"
    " an object merged key by key, any other value replaces the stored one. The keys the device reports"
    f" ({', '.join(sorted(schemas.DEVICE_META_KEYS))}) are read-only (422 naming `meta.<key>`). After the merge your"
    f" keys must number at most {schemas.META_MAX_KEYS} and take at most {schemas.META_MAX_BYTES} bytes as compact"
    " JSON, else 422 and nothing is changed; `meta` nests at most as deep as the JSON-value rule allows, itself"
    " counted",
}
_DEVICE_EDIT = _object({
    "name": _text(schemas.NAME_MAX, required=True), "description": _nullable(_text(schemas.DESCRIPTION_MAX)),
    "enabled": {"type": "boolean", "description": "false: status `disabled`, MQTT access revoked at once"},
    "meta": _META_PATCH,
}, required=[], extra=_VALUE)
_SORTS = [prefix + key for key in schemas.SORT_KEYS for prefix in ("", "-")]
_DEVICE_LIST_QUERY = (
    _query("status", {"enum": list(schemas.STATUSES)}, "only devices of this status"),
    _query("online", {"type": "boolean"}, "true: only devices online now (status online); false: the others"),
    _query("platform", {"enum": sorted({b.platform["key"] for b in _BOARDS})}, "platform key, see GET /v1/platforms"),
    _query("board", {"enum": [b.key for b in _BOARDS]}, "board key, see GET /v1/boards (with another platform"
           " than its own: no device)"),
    _query("firmware", {"type": "string", "minLength": 1, "maxLength": schemas.VERSION_MAX},
           "the firmware the device last reported running: its md5 (32 hexadecimal characters, any case), else"
           " its version"),
    _query("search", {"type": "string", "maxLength": schemas.SEARCH_MAX},
           "a part of the name or the description (ASCII letters in any case; empty: every device)"),
    _query("tag", _ref("Tag"), "only devices with this tag"),
    _query("group", {"type": "integer", "minimum": 1, "maximum": jsonvalues.MAX_NUMBER},
           "only devices in this group of yours (a group you do not have: 422)"),
    _query("sort", {"enum": _SORTS, "default": "created_at"},
           "name (ASCII letters in any case), last_seen_at (never seen first), created_at (registration order); a"
           " leading `-` for descending; ties in registration order"),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": schemas.LIST_LIMIT_MAX,
                     "default": schemas.LIST_LIMIT_DEFAULT}, "devices on the page"),
    _query("offset", {"type": "integer", "minimum": 0, "maximum": jsonvalues.MAX_NUMBER, "default": 0},
           "devices skipped before the page"),
)
_GROUP_DEVICES_QUERY = tuple(p for p in _DEVICE_LIST_QUERY if p["name"] != "group")  # the path names the group
_LIST_META = _object({
    "total": {"type": "integer", "minimum": 0, "description": "devices that match, on every page"},
    "limit": {"type": "integer"}, "offset": {"type": "integer"},
})
_DEVICE_PAGE = _object({"data": {"type": "array", "items": _ref("DeviceCompact")}, "meta": _LIST_META})
_BAD_LIST_QUERY = _answer("A query parameter is out of its range or not one the list knows (each named in `errors`);"
                          " a parameter given twice", _ref("ValidationError"))
_NEW_TAGS = _object({"tags": {
    "type": "array", "items": _ref("Tag"), "minItems": 1, "maxItems": schemas.TAGS_PER_DEVICE,
    "description": f"tags to add; those the device has already are no error. After adding, a device has at most"
    f" {schemas.TAGS_PER_DEVICE} tags and your devices at most {schemas.TAGS_PER_USER} different ones, else 422 and"
    " nothing is added",
}}, extra=_VALUE)
_NAME_TAKEN = '"A group with this name already exists." (ASCII letters in any case)'
_GROUP_NAME_TAKEN = _message(_NAME_TAKEN)
_GROUP_REFUSED = _message(f'{_NAME_TAKEN}, or "A user can have at most {schemas.GROUPS_PER_USER} groups."')
_GROUP_FIELDS = {"name": _text(schemas.NAME_MAX, required=True),
                 "description": _nullable(_text(schemas.DESCRIPTION_MAX))}
_GROUP_UIDS = _object({"uids": {
    "type": "array", "items": {"type": "string", "maxLength": schemas.UID_MAX}, "minItems": 1,
    "maxItems": schemas.GROUP_UIDS_MAX,
    "description": "uids of your devices; those in the group already are no error. Uids that are no device of yours"
    " are 404 naming them, and nothing is added",
}}, extra=_VALUE)
_BULK_FILTER = {
    "type": "object", "additionalProperties": False,
    "properties": {p["name"]: {**p["schema"], "description": p["description"]}
                   for p in _DEVICE_LIST_QUERY if p["name"] in schemas.LIST_FILTERS},
    "description": "the device list's filters (GET /v1/user/devices), in JSON: every one given must match; {} is"
    " every device of yours. A group you do not have is 422",
}
_BULK_REQUEST = _object({
    "target": {"anyOf": [
        {**_object({"uids": {"type": "array", "items": {"type": "string", "maxLength": schemas.UID_MAX},
                             "minItems": 1, "maxItems": schemas.BULK_MAX_DEVICES,
                             "description": "your devices, in the job's order (one named twice: once); uids that"
                             " are no device of yours are 404 naming them, and nothing is sent"}}),
         "additionalProperties": False},
        {**_object({"tag": {"allOf": [_ref("Tag")], "description": "your devices with this tag"}}),
         "additionalProperties": False},
        {**_object({"group": {"type": "integer", "minimum": 1, "maximum": jsonvalues.MAX_NUMBER,
                              "description": "the devices of this group of yours (a group you do not have: 404)"}}),
         "additionalProperties": False},
        {**_object({"filter": _BULK_FILTER}), "additionalProperties": False},
    ], "description": f"exactly one of uids, tag, group, filter; it must select 1 to {schemas.BULK_MAX_DEVICES} devices"
       " (else 422), in registration order but for uids"},
    "command": {"anyOf": [
        _object({"type": {"enum": ["reboot", "wifi_reset"]}}, extra=_VALUE),
        _object({"type": {"const": "custom"}, "payload": _PAYLOAD}, extra=_VALUE),
        _object({"type": {"const": "button"}, "button": {
            **_BUTTON_ID, "description": "a command button id: each device is sent its own button of that id (one"
            " without it: state no_button)"}}, extra=_VALUE),
    ], "description": "what each device is sent, as its own endpoint sends it (reboot, wifi-reset, commands,"
       " command-buttons/{id}/send); fields the type does not read are ignored"},
    "ttl": {"type": "integer", "minimum": 1, "maximum": schemas.TTL_MAX,
            "description": "seconds each command may wait to be sent: an offline device gets it when it is back"
            " online, else it expires; without, offline devices get none (state offline)"},
}, required=["target", "command"], extra=_VALUE)
_BULK_QUERY = (
    _path_param("bulk_id", _STRING, "the job's id"),
    _query("state", _ref("BulkState"), "only the devices in this state"),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": schemas.BULK_PAGE_MAX,
                     "default": schemas.BULK_PAGE_DEFAULT}, "devices on the page"),
    _query("offset", {"type": "integer", "minimum": 0, "maximum": jsonvalues.MAX_NUMBER, "default": 0},
           "devices skipped before the page"),
)
_CAMPAIGN_REQUEST = {**_object({
    "name": _text(schemas.NAME_MAX, required=True),
    "md5": {"type": "string", "pattern": schemas.MD5_PATTERN,
            "description": "the firmware, any case: each device of the target must have one of this md5 uploaded (one"
            " without it: no_firmware; none with it: 404)"},
    "target": {**_BULK_REQUEST["properties"]["target"], "description": "as a bulk command's: exactly one of uids,"
               f" tag, group, filter, selecting 1 to {schemas.BULK_MAX_DEVICES} devices (else 422); waves follow its"
               " order"},
    "wave_size": {"type": "integer", "minimum": 1, "maximum": schemas.BULK_MAX_DEVICES,
                  "description": f"devices a wave; at most {schemas.CAMPAIGN_MAX_WAVES} waves (else 422)"},
    "wave_percent": {"type": "integer", "minimum": 1, "maximum": 100,
                     "description": "devices a wave as a percentage of those to update, rounded up"},
    "pause_seconds": {"type": "integer", "minimum": 0, "maximum": schemas.CAMPAIGN_PAUSE_MAX, "default": 0,
                      "description": "between the end of a wave (every job of it over) and the start of the next"},
    "max_failure_percent": {
        "type": "integer", "minimum": 0, "maximum": 100, "default": schemas.CAMPAIGN_FAILURE_PERCENT,
        "description": "the campaign halts when the devices whose job failed, rolled back or expired are more than"
        f" this share of those given a job, once {schemas.CAMPAIGN_HALT_MIN_ATTEMPTED} were"},
}, required=["name", "md5", "target"], extra=_VALUE),
    "oneOf": [{"required": ["wave_size"]}, {"required": ["wave_percent"]}]}
_CAMPAIGN_ID = _path_param("campaign_id", _STRING, "the campaign's id")
_PAGE = (
    _query("limit", {"type": "integer", "minimum": 1, "maximum": schemas.BULK_PAGE_MAX,
                     "default": schemas.BULK_PAGE_DEFAULT}, "devices on the page"),
    _query("offset", {"type": "integer", "minimum": 0, "maximum": jsonvalues.MAX_NUMBER, "default": 0},
           "devices skipped before the page"),
)
_NO_CAMPAIGN = _message(f'"{campaigns.NOT_FOUND}", also for another user\'s campaign')
_CAMPAIGN_ANSWER = _object({"message": _STRING, "data": _ref("CampaignDetail")})


def _campaign_change(summary, message, allowed):
    return {"post": _operation(summary, {
        "200": _answer(f'"{message}"', _CAMPAIGN_ANSWER), "404": _NO_CAMPAIGN,
        "409": _message(f"The campaign is not {allowed}: the message says what it is"),
    }, params=(_CAMPAIGN_ID,))}


_TELEMETRY_QUERY = (
    _query("key", _STRING, "one key only"),
    _time("from", "RFC 3339 date-time or unix seconds, inclusive"),
    _time("to", "RFC 3339 date-time or unix seconds, inclusive"),
    _limit(telemetry.HISTORY_DEFAULT, telemetry.HISTORY_MAX),
)
_FIRMWARE_EDIT = _object({
    "name": _text(schemas.NAME_MAX, required=True), "version": _nullable(_text(schemas.VERSION_MAX)),
    "notes": _nullable(_text(schemas.NOTES_MAX)),
}, required=[], extra=_VALUE)
_UPLOAD = {"content": {"multipart/form-data": {"schema": _object({
    "name": _text(schemas.NAME_MAX, required=True), "version": _text(schemas.VERSION_MAX),
    "notes": _text(schemas.NOTES_MAX),
    "file": {"type": "string", "format": "binary",
             "description": f"the raw .bin image, not empty (422), at most {MAX_FIRMWARE_BYTES} bytes"
                            f" ({MAX_FIRMWARE_BYTES // (1024 * 1024)} MB; larger is 413)"},
}, required=["name", "file"])}}}


def _paths():
    device = "/v1/user/devices/{uid}"
    return {
        "/v1/openapi.json": {"get": _operation(
            "This document", {"200": _answer("OpenAPI 3.1", {"type": "object"})}, public=True)},
        "/v1/platforms": {"get": _operation(
            "Supported platforms", {"200": _answer("Platforms", _data({"type": "array", "items": _ref("Platform")}))},
            public=True)},
        "/v1/boards": {"get": _operation(
            "Supported boards", {"200": _answer("Boards", _data({"type": "array", "items": _ref("Board")}))},
            public=True)},
        "/v1/user/devices": {
            "get": _operation("List the caller's devices (compact), filtered, sorted and one page at a time", {
                "200": _answer("One page of the devices that match", _DEVICE_PAGE), "422": _BAD_LIST_QUERY,
            }, params=_DEVICE_LIST_QUERY),
            "post": _operation("Register a device and receive its MQTT credentials (shown once)", {
                "201": _answer("Registered", _data(_ref("RegisteredDevice"))),
                "503": _message("The broker could not create the device's account; nothing was registered"),
            }, body=_json(_registration())),
        },
        device: {
            "get": _device_op("One device in detail", {"200": _answer("Device", _data(_ref("Device")))}),
            "patch": _device_op("Edit name / description / meta; enable or disable", {
                "200": _answer("Updated device", _data(_ref("Device"))), "503": _BROKER_FAILED,
            }, body=_json(_DEVICE_EDIT)),
            "delete": _device_op("Delete a device with its buttons, firmwares, commands and telemetry", {
                "200": _answer('"Device deleted."', _ref("DeviceMessage")), "503": _BROKER_FAILED}),
        },
        device + "/reboot": {"post": _command_op("Reboot the device", '"Reboot command sent."', {"422": _INVALID})},
        device + "/wifi-reset": {"post": _command_op("Forget Wi-Fi and start setup", '"Wi-Fi reset command sent."',
                                                     {"422": _INVALID})},
        device + "/ota": {
            "post": _command_op("Start an OTA job delivering the target firmware", '"OTA check triggered."'
                                " (id: the job's)", {
                "409": _message('The device cannot take commands now ("Device is offline.", "Device is disabled."),'
                                f' or "{ota.IN_PROGRESS}"'),
                "422": _message('No target firmware: "Assign firmware first to trigger OTA."; or the device\'s'
                                " board cannot apply the target's kind of image (the message says why)"),
            }, params=()),
            "get": _device_op("The device's newest OTA job, or every one", {
                "200": _answer("The newest job (null: none yet); with all=true every job, newest first", _data({
                    "anyOf": [_nullable(_ref("OtaJob")), {"type": "array", "items": _ref("OtaJob")}]})),
                "422": _INVALID,
            }, params=(_query("all", {"type": "boolean", "default": False},
                              f"true: every job, newest first (at most {ota.MAX_LISTED})"),)),
        },
        device + "/commands": {
            "post": _device_op("Send a user-defined JSON command", {
                "200": _answer('"Command sent."', _ref("CommandSent")), "409": _OFFLINE, "503": _NO_BRIDGE,
            }, body=_json(_object({"payload": _PAYLOAD}, extra=_VALUE)), params=(_WAIT, _TTL)),
            "get": _device_op("Commands sent to the device, newest first", {
                "200": _answer("Commands", _data({"type": "array", "items": _ref("Command")})), "422": _INVALID,
            }, params=(_limit(commands.HISTORY_DEFAULT, commands.HISTORY_MAX),)),
        },
        device + "/commands/{command_id}": {"get": _device_op("One command with its state and result", {
            "200": _answer("Command", _data(_ref("Command")))}, params=(_COMMAND,))},
        device + "/telemetry": {"get": _device_op("Telemetry history", {
            "200": _answer("Samples", _data({"type": "array", "items": _ref("Sample")})), "422": _INVALID,
        }, params=_TELEMETRY_QUERY)},
        device + "/telemetry/latest": {"get": _device_op("The newest value of every key", {
            "200": _answer("Latest values", _data({"type": "object", "additionalProperties": _object({
                "value": {"type": ["number", "string"]}, "ts": {"type": "string", "format": "date-time"}})}))})},
        device + "/presence": {"get": _device_op("The device's changes of status, newest first", {
            "200": _answer("Events", _data({"type": "array", "items": _ref("PresenceEvent")})), "422": _INVALID,
        }, params=(_time("from", "RFC 3339 date-time or unix seconds, inclusive"),
                   _limit(health.PRESENCE_DEFAULT, health.PRESENCE_MAX)))},
        device + "/health": {"get": _device_op("The device's health score and its components", {
            "200": _answer("Health", _data(_ref("Health")))})},
        "/v1/user/stats": {"get": _operation("Your fleet in figures", {
            "200": _answer("Stats", _data(_ref("Stats")))})},
        "/v1/user/events": {"get": _operation(
            "Your live events over a WebSocket: device_status_update, command_update, ota_progress (docs/api.md)", {
                "101": {"description": "Switched to a WebSocket: each message one JSON object with a `type`"},
                "400": _message(f'Not a WebSocket upgrade: "{events.NOT_A_WEBSOCKET}"'),
            }, params=(_query("token", _STRING, "the API token, for a browser's WebSocket, which cannot send an "
                              "Authorization header"),))},
        device + "/command-buttons": {
            "get": _device_op("Saved command buttons", {
                "200": _answer("Buttons", _data({"type": "array", "items": _ref("CommandButton")}))}),
            "post": _device_op("Save a command button", {
                "201": _answer('"Command button created."', {"allOf": [
                    _ref("DeviceMessage"), _object({"data": _ref("CommandButton")})]}),
                "409": _message('"A command button with this id already exists."'),
            }, body=_json(_ref("NewCommandButton"))),
        },
        device + "/command-buttons/{button_id}": {"delete": _device_op("Delete a command button", {
            "200": _answer('"Command button deleted."', _ref("DeviceMessage"))}, params=(_BUTTON,))},
        device + "/command-buttons/{button_id}/send": {"post": _device_op("Send a saved button's payload", {
            "200": _answer('"Command sent."', _ref("CommandSent")), "409": _OFFLINE, "422": _INVALID,
            "503": _NO_BRIDGE,
        }, params=(_BUTTON, _WAIT, _TTL))},
        device + "/firmwares": {
            "get": _device_op("Firmwares uploaded for the device", {
                "200": _answer("Firmwares", _data({"type": "array", "items": _ref("Firmware")}))}),
            "post": _device_op(f"Upload a firmware image (multipart, at most {MAX_FIRMWARE_BYTES} bytes)", {
                "201": _answer("Uploaded", _data(_ref("Firmware"))),
                "409": _message('"This firmware file is already uploaded."'),
            }, body=_UPLOAD),
        },
        device + "/firmwares/set-target": {"post": _device_op("Assign the OTA target by md5", {
            "200": _answer('"Firmware assigned to device."', _object({
                "message": _STRING, "device_uid": _STRING, "md5": {"type": "string", "pattern": "^[0-9a-f]{32}$"}})),
        }, body=_json(_object({"md5": {"type": "string", "pattern": schemas.MD5_PATTERN,
                                       "description": "any case; answered in lowercase"}}, extra=_VALUE)))},
        device + "/firmwares/target": {"delete": _device_op("Clear the OTA target (the firmware can then be deleted)", {
            "200": _answer('"Target firmware cleared."', _ref("DeviceMessage"))})},
        device + "/firmwares/{firmware_id}": {
            "patch": _device_op("Edit firmware name / version / notes", {
                "200": _answer("Updated firmware", _data(_ref("Firmware"))),
            }, body=_json(_FIRMWARE_EDIT), params=(_FIRMWARE,)),
            "delete": _device_op("Delete a firmware that no device uses", {
                "200": _message('"Firmware deleted."'),
                "409": _message('"Cannot delete firmware while it is assigned to any device."'),
            }, params=(_FIRMWARE,)),
        },
        device + "/tags": {
            "get": _device_op("The device's tags, sorted", {
                "200": _answer("Tags", _data({"type": "array", "items": _ref("Tag")}))}),
            "post": _device_op("Add tags to the device (several at once)", {
                "200": _answer('"Tags added."', _ref("DeviceTags"))}, body=_json(_NEW_TAGS)),
        },
        device + "/tags/{tag}": {"delete": _device_op("Remove a tag from the device", {
            "200": _answer('"Tag removed."', _ref("DeviceTags")),
        }, params=(_path_param("tag", _ref("Tag"), "the tag"),))},
        "/v1/user/commands": {"post": _operation("Send one command to many of your devices at once (a bulk job)", {
            "202": _answer("The job, stored with a command for each device that can take one; they are being"
                           " published", _data(_ref("BulkJob"))),
            "404": _message(f'"Group not found.", or uids that are no device of yours, the first'
                            f' {groups.NAMED_AT_MOST} named: "Device not found: unix_a, unix_b (and 4 more)."'),
            "503": _NO_BRIDGE,
        }, body=_json(_BULK_REQUEST))},
        "/v1/user/commands/bulk/{bulk_id}": {"get": _operation("A bulk job: its counts and a page of its devices", {
            "200": _answer("The job and one page of its devices, in the job's order", _object({
                "data": {"allOf": [_ref("BulkJob"), _object({
                    "devices": {"type": "array", "items": _ref("BulkDevice")}})]},
                "meta": _LIST_META})),
            "404": _message(f'"{bulk.NOT_FOUND}", also for another user\'s job'),
            "422": _INVALID,
        }, params=_BULK_QUERY)},
        "/v1/user/campaigns": {
            "get": _operation("Your OTA campaigns, newest first, a page at a time", {
                "200": _answer("One page of campaigns", _object({
                    "data": {"type": "array", "items": _ref("Campaign")}, "meta": _LIST_META})),
                "422": _INVALID,
            }, params=(_query("state", _ref("CampaignState"), "only campaigns in this state"),
                       _query("limit", {"type": "integer", "minimum": 1, "maximum": schemas.CAMPAIGN_PAGE_MAX,
                                        "default": schemas.CAMPAIGN_PAGE_DEFAULT}, "campaigns on the page"),
                       _PAGE[1])),
            "post": _operation("Start an OTA campaign: one firmware to many of your devices, in waves", {
                "201": _answer("The campaign, its first wave starting", _data(_ref("CampaignDetail"))),
                "404": _message(f'"Group not found.", uids that are no device of yours, the first'
                                f' {groups.NAMED_AT_MOST} named: "Device not found: unix_a, unix_b (and 4 more).", or'
                                f' "{campaigns.NONE_WITH_FIRMWARE}"'),
            }, body=_json(_CAMPAIGN_REQUEST)),
        },
        "/v1/user/campaigns/{campaign_id}": {"get": _operation("A campaign: its counts and its waves", {
            "200": _answer("The campaign", _data(_ref("CampaignDetail"))), "404": _NO_CAMPAIGN,
        }, params=(_CAMPAIGN_ID,))},
        "/v1/user/campaigns/{campaign_id}/devices": {"get": _operation(
            "A page of the campaign's devices, in its order, each with its wave, OTA job and state", {
                "200": _answer("One page of its devices", _object({
                    "data": {"type": "array", "items": _ref("CampaignDevice")}, "meta": _LIST_META})),
                "404": _NO_CAMPAIGN, "422": _INVALID,
            }, params=(_CAMPAIGN_ID, _query("state", _ref("CampaignDeviceState"), "only the devices in this state"),
                       _query("wave", {"type": "integer", "minimum": 1, "maximum": schemas.CAMPAIGN_MAX_WAVES},
                              "only the devices of this wave"), *_PAGE))},
        "/v1/user/campaigns/{campaign_id}/pause": _campaign_change(
            "Pause a running campaign: no device gets an OTA until it is resumed", "Campaign paused.", "running"),
        "/v1/user/campaigns/{campaign_id}/resume": _campaign_change(
            "Resume a paused campaign", "Campaign resumed.", "paused"),
        "/v1/user/campaigns/{campaign_id}/cancel": _campaign_change(
            "Cancel a running or paused campaign: its devices without a job are skipped", "Campaign cancelled.",
            "running or paused"),
        "/v1/user/tags": {"get": _operation("Every tag of your devices, sorted, with how many devices have it", {
            "200": _answer("Tags", _data({"type": "array", "items": _ref("TagCount")}))})},
        "/v1/user/groups": {
            "get": _operation("Your groups of devices, by name", {
                "200": _answer("Groups", _data({"type": "array", "items": _ref("Group")}))}),
            "post": _operation("Create a group of devices", {
                "201": _answer("Created", _data(_ref("Group"))), "409": _GROUP_REFUSED,
            }, body=_json(_object(_GROUP_FIELDS, required=["name"], extra=_VALUE))),
        },
        "/v1/user/groups/{group_id}": {
            "get": _group_op("One group", {"200": _answer("Group", _data(_ref("Group")))}),
            "put": _group_op("Rename a group or change its description (the fields given)", {
                "200": _answer("Updated group", _data(_ref("Group"))), "409": _GROUP_NAME_TAKEN,
            }, body=_json(_object(_GROUP_FIELDS, required=[], extra=_VALUE))),
            "delete": _group_op("Delete a group; its devices stay", {"200": _message('"Group deleted."')}),
        },
        "/v1/user/groups/{group_id}/devices": {
            "get": _group_op("The group's devices (compact), filtered, sorted and one page at a time, as the device"
                             " list", {"200": _answer("One page of the group's devices that match", _DEVICE_PAGE),
                                       "422": _BAD_LIST_QUERY}, params=_GROUP_DEVICES_QUERY),
            "post": _group_op("Add devices to the group (several at once; all or none)", {
                "200": _answer('"Devices added to the group."', _ref("GroupMessage")),
                "404": _message(f'"Group not found.", or uids that are no device of yours, the first'
                                f' {groups.NAMED_AT_MOST} named: "Device not found: unix_a, unix_b (and 4 more)."'),
            }, body=_json(_GROUP_UIDS)),
        },
        "/v1/user/groups/{group_id}/devices/{uid}": {"delete": _group_op("Take a device out of the group", {
            "200": _answer('"Device removed from the group."', _ref("GroupMessage")),
            "404": _message('"Group not found.", "Device not found.", or "The device is not in this group."'),
        }, params=(_UID,))},
    }


@cache
def document():
    from . import openapi_alarms, openapi_configuration  # (they build on this module's helpers)

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mpfleet REST API",
            "version": "1",
            "description": "Devices, command buttons, firmwares, tags, groups and bulk commands of the authenticated"
            " user (seed 004). "
            "Every error is JSON: {\"message\"}, and for 422 also {\"errors\": {field: [messages]}}. A path without "
            "a route is 404 {\"message\": \"Not found.\"}; a known path with another method is 405 (responses/"
            "MethodNotAllowed). Text fields count their length as sent and are stripped of ASCII whitespace "
            "(space, tab, CR, LF, VT, FF); every JSON value keeps the rule of schemas/JsonValue. Every answer carries "
            "X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset (Unix seconds) for its token's reads "
            "(GET, HEAD) or writes (the rest), counted a minute at a time; past the limit, 429 with Retry-After "
            "(`mpfleet serve --rate-limit-read N --rate-limit-write N`; 0 is no limit, and no headers).",
        },
        "paths": {**_paths(), **openapi_alarms.paths(), **openapi_configuration.paths()},
        "components": {
            "schemas": {**SCHEMAS, **openapi_alarms.SCHEMAS, **openapi_configuration.SCHEMAS},
            "responses": {"MethodNotAllowed": _METHOD_NOT_ALLOWED},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
