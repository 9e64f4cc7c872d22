"""The OpenAPI document's part of desired configuration (docs/api.md, Configuration): its component schemas and its
paths, merged into openapi.document() (this module builds on its helpers). The rules come from config_schemas.py,
which enforces them."""

from . import config_schemas as rules
from .openapi import (_GROUP, _NUMBER, _STRING, _UID, _answer, _data, _json, _message, _nullable, _object, _operation,
                      _ref)
from .storage.devices import NOT_FOUND as DEVICE_NOT_FOUND
from .storage.groups import NOT_FOUND as GROUP_NOT_FOUND

_NEVER = {"not": {}}  # a key that must not be given
_VALUE = {"anyOf": [{"type": "boolean"}, _NUMBER, {"type": "string", "maxLength": rules.TEXT_MAX}]}
_SETTINGS = {
    "type": "object",
    "maxProperties": rules.SETTINGS_MAX_KEYS,
    "propertyNames": {"pattern": rules.KEY_PATTERN},
    "properties": {
        rules.PERIOD_KEY: {"type": "integer", "minimum": rules.PERIOD_MIN, "maximum": rules.PERIOD_MAX,
                           "description": "the board's telemetry period, in seconds (absent: its default)"},
        **{key: _NEVER for key in rules.RESERVED_KEYS},
    },
    "patternProperties": {f"^{rules.OTA_PREFIX}": _NEVER},
    "additionalProperties": _VALUE,
    "description": f"at most {rules.SETTINGS_MAX_KEYS} keys and {rules.SETTINGS_MAX_BYTES} bytes as compact JSON;"
    f" each key {rules.KEY_RULE}, none of {', '.join(rules.RESERVED_KEYS)} nor starting with {rules.OTA_PREFIX} (the"
    f" board's own); `{rules.PERIOD_KEY}` the one built-in key, the others the maker's own (user.py reads them)",
}
_STORED = {"type": "object", "additionalProperties": _VALUE}
_BODY = _json(_object({"settings": _SETTINGS}, extra=_ref("JsonValue")))
_TOO_MANY = ("a device's effective settings (its groups' and its own) would be more than "
             f"{rules.SETTINGS_MAX_KEYS} keys or {rules.SETTINGS_MAX_BYTES} bytes: 422 naming the device")

SCHEMAS = {
    "DeviceConfiguration": _object({
        "desired": {**_STORED, "description": "what the board gets: its groups' settings merged in ascending group id,"
                    " then its own over them"},
        "own": {**_STORED, "description": "the device's own settings (its PUT)"},
        "version": {"type": "integer", "minimum": 0,
                    "description": "raised whenever `desired` changes (the `v` of its config message); 0: never had"
                    " any"},
        "reported": _nullable(_object({
            "v": {"type": "integer", "minimum": 1, "description": "the version the board applied"},
            "applied": {**_STORED, "description": "each key it runs with, with its value"},
            "errors": {"type": "object", "additionalProperties": _STRING,
                       "description": "each key it could not apply, with why"},
            "reported_at": {"type": "string", "format": "date-time"},
        })),
        "in_sync": {"type": "boolean", "description": "reported.v is `version` and reported.errors is empty (true for"
                    " a device without settings and without a report)"},
    }),
    "GroupConfiguration": _object({"settings": {**_STORED, "description": "the group's settings, for its members"}}),
}


def _device_op(summary, responses, **kwargs):
    return _operation(summary, {**responses, "404": _message(f'"{DEVICE_NOT_FOUND}", also for another user\'s')},
                      params=(_UID,), **kwargs)


def _group_op(summary, responses, **kwargs):
    return _operation(summary, {**responses, "404": _message(f'"{GROUP_NOT_FOUND}", also for another user\'s')},
                      params=(_GROUP,), **kwargs)


def paths():
    device = "/v1/user/devices/{uid}/configuration"
    group = "/v1/user/groups/{group_id}/configuration"
    answer = _answer("Its desired and reported configuration", _data(_ref("DeviceConfiguration")))
    settings = _answer("The group's settings", _data(_ref("GroupConfiguration")))
    return {
        device: {
            "get": _device_op("The device's desired configuration, what its board reported, and whether they agree",
                              {"200": answer}),
            "put": _device_op("Replace the device's own settings ({} removes them); its board gets the effective ones"
                              f" retained on its config topic, now or when it is back ({_TOO_MANY})",
                              {"200": answer}, body=_BODY),
        },
        group: {
            "get": _group_op("The group's settings", {"200": settings}),
            "put": _group_op("Replace the group's settings ({} removes them); each member whose effective settings"
                             f" change gets them ({_TOO_MANY})", {"200": settings}, body=_BODY),
        },
    }
