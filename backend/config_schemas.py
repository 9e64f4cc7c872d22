"""Validation of desired configuration (docs/api.md, Configuration; docs/protocol.md, `config` and `config_report`):
the settings a PUT gives a device or a group, the effective settings a board gets, and the board's report. Each
function returns clean values or raises ValidationError (REST, in schemas.py's words) or BadMessage (MQTT).

The limits are the protocol's (a board keeps the settings in its small settings file and parses them in a 32 KB
heap); openapi_configuration.py states them from here. The telemetry period's bounds are the firmware's own
(firmware/settings.py), read from there.
"""

import re

from mpfleet.tools.firmware_build import firmware_constant

from . import jsonvalues
from .errors import ValidationError
from .schemas import BadMessage, _Fields, _message_object, compact_json

SETTINGS_MAX_KEYS = 16
SETTINGS_MAX_BYTES = 512  # the settings as compact JSON (UTF-8), what the board parses
KEY_PATTERN = "^[a-z][a-z0-9_]{0,31}$"
KEY_RULE = "a lowercase letter, then at most 31 lowercase letters, digits or underscores"
TEXT_MAX = 64  # characters of a string value
PERIOD_KEY = "telemetry_period"  # the one built-in key: the board's telemetry period, in seconds
PERIOD_MIN = firmware_constant("settings", "_PERIOD_MIN")
PERIOD_MAX = firmware_constant("settings", "_PERIOD_MAX")
# The names the board's settings file uses for itself (firmware/settings.py): a maker key of the same name would
# be confused with them, so they are refused; so is every key starting with OTA_PREFIX.
RESERVED_KEYS = ("period", "user", "config_v")
OTA_PREFIX = "ota_"
REPORT_MAX_BYTES = 2048
REASON_MAX = 200  # characters of a board's reason kept
_KEY = re.compile(KEY_PATTERN.replace("$", "\\Z"))
_QUOTED_MAX = 40  # characters of a bad key that a message quotes


def is_reserved(key):
    return key in RESERVED_KEYS or key.startswith(OTA_PREFIX)


def settings(body):
    """{settings: {...}} of a device's or a group's PUT → the settings, checked. Raises ValidationError naming
    each key that breaks a rule (`settings.<key>`), or `settings` for the object as a whole."""
    fields = _Fields(body)
    given = fields.json_object("settings")
    if given is not None:
        _check_settings(given, fields)
    fields.done()
    return given


def _check_settings(given, fields):
    if len(given) > SETTINGS_MAX_KEYS:
        fields.fail("settings", f"The settings field must not have more than {SETTINGS_MAX_KEYS} keys.")
    elif len(compact_json(given)) > SETTINGS_MAX_BYTES:
        fields.fail("settings", f"The settings field must not be larger than {SETTINGS_MAX_BYTES} bytes as"
                    " compact JSON.")
    for key, value in given.items():
        field = f"settings.{key}"
        if not _KEY.match(key):
            quoted = key if len(key) <= _QUOTED_MAX else key[:_QUOTED_MAX] + "…"
            fields.fail("settings", f'The settings field\'s keys must be {KEY_RULE}: "{quoted}" is not.')
        elif is_reserved(key):
            fields.fail(field, f"The {field} key is the board's own and cannot be set.")
        elif key == PERIOD_KEY:
            if not _is_period(value):
                fields.fail(field, f"The {field} field must be an integer from {PERIOD_MIN} to {PERIOD_MAX}.")
        elif not is_value(value):
            fields.fail(field, f"The {field} field must be true or false, a number, or a string of at most"
                        f" {TEXT_MAX} characters.")


def _is_period(value):
    return isinstance(value, int) and not isinstance(value, bool) and PERIOD_MIN <= value <= PERIOD_MAX


def is_value(value):
    """Whether `value` is one a setting may hold: a bool, a finite number within the JSON-value rule, or a short
    string."""
    if isinstance(value, str):
        return len(value) <= TEXT_MAX
    return isinstance(value, bool) or jsonvalues.is_number(value)


def effective_problem(effective):
    """Why a device's effective settings (its groups' merged, then its own) could not go to its board (the same
    bounds as one PUT's), or None."""
    if len(effective) > SETTINGS_MAX_KEYS:
        return f"more than {SETTINGS_MAX_KEYS} keys"
    if len(compact_json(effective)) > SETTINGS_MAX_BYTES:
        return f"more than {SETTINGS_MAX_BYTES} bytes as compact JSON"
    return None


def too_much(field, uid, problem):
    """The ValidationError of a change that would give device `uid` effective settings with `problem`."""
    return ValidationError({field: [f"The {field} field would give device {uid} {problem} of settings, those of"
                                    " its groups and its own together."]})


def config_report(raw):
    """A `config_report` payload → (v, applied, errors): the version the board got, the keys it runs with and
    their values, the keys it could not apply with its reason each ({} when none)."""
    message = _message_object(raw, REPORT_MAX_BYTES)
    version, applied, errors = message.get("v"), message.get("applied"), message.get("errors")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= jsonvalues.MAX_NUMBER:
        raise BadMessage("config_report without an integer `v` of 1 or more")
    if not isinstance(applied, dict) or len(applied) > SETTINGS_MAX_KEYS:
        raise BadMessage(f"config_report without an `applied` object of at most {SETTINGS_MAX_KEYS} keys")
    for key, value in applied.items():
        if not _KEY.match(key) or not is_value(value):
            raise BadMessage(f"config_report: `applied` holds a key or value no setting has ({key[:_QUOTED_MAX]!r})")
    if errors is None:
        errors = {}
    if not isinstance(errors, dict) or len(errors) > SETTINGS_MAX_KEYS:
        raise BadMessage(f"config_report: `errors` is not an object of at most {SETTINGS_MAX_KEYS} keys")
    for key, reason in errors.items():
        if not _KEY.match(key) or not isinstance(reason, str):
            raise BadMessage(f"config_report: `errors` holds a key or reason no setting has ({key[:_QUOTED_MAX]!r})")
    return version, applied, {key: reason[:REASON_MAX] for key, reason in errors.items()}
