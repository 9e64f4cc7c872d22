"""The OpenAPI document's part of alarm rules, alarms and notification channels (docs/api.md, Alarms and
notifications): their component schemas and their paths, merged into openapi.document(), which imports this module
once it is whole (this one builds on its helpers). The rules come from the constants that enforce them
(alarm_schemas.py, webhooks.py)."""

from . import alarm_schemas as rules, jsonvalues, schemas, webhooks
from .openapi import (_INVALID, _LIST_META, _NUMBER, _STRING, _TIME, _VALUE, _answer, _data, _json, _message,
                      _nullable, _object, _operation, _path_param, _query, _ref, _text)
from .storage import alarm_rules, alarms, notifications

_ID = {"type": "integer", "minimum": 1, "maximum": jsonvalues.MAX_NUMBER}
_AT = {"type": "string", "format": "date-time"}
_NEVER = {"not": {}}  # a field that must not be given
_KEY = {"type": "string", "pattern": rules.TELEMETRY_KEY_PATTERN,
        "description": "a telemetry key: 1 to 32 letters, digits, dots, dashes or underscores"}


def _seconds(high, description):
    return {"type": "integer", "minimum": 1, "maximum": high, "description": description}


def _config(properties, required, description, **more):
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False,
            "description": description, **more}


CONFIGS = {
    "offline": _config({"seconds": _seconds(rules.SECONDS_MAX, "offline for more than this")}, ["seconds"],
                       "the device has been offline for more than `seconds` since its last change of status"),
    "threshold": _config({
        "key": _KEY, "op": {"enum": list(rules.THRESHOLD_OPS)}, "value": _NUMBER,
        "samples": _seconds(rules.SAMPLES_MAX, "samples in a row that compare true (default 1)"),
        "seconds": _seconds(rules.THRESHOLD_SECONDS_MAX, "or: how long the samples compared true, by their times"),
    }, ["key", "op", "value"], "each sample of `key` compared with `value`: holds once `samples` in a row (or for"
       " `seconds`) compared true, clears at one that does not; a sample that is no number is passed over",
        **{"not": {"required": ["samples", "seconds"]}}),
    "missing_data": _config({
        "seconds": _seconds(rules.SECONDS_MAX, "no telemetry for more than this"),
        "key": {**_KEY, "description": "of this key only (else: any)"},
    }, ["seconds"], "the device, seen and enabled, sent no telemetry (of `key`) for more than `seconds` (since it was"
       " first seen, when it never sent any)"),
    "reconnect_rate": _config({
        "disconnects": _seconds(rules.DISCONNECTS_MAX, "more disconnects than this"),
        "seconds": _seconds(rules.WINDOW_MAX, "in the last this many seconds"),
    }, ["disconnects", "seconds"], "more than `disconnects` disconnects (the presence history's) in the last"
       " `seconds`"),
}
_SCOPE_VALUES = {"device": {"type": "string", "minLength": 1, "maxLength": schemas.UID_MAX,
                            "description": "the device's uid (one of yours: else 404)"},
                 "group": {**_ID, "description": "a group of yours (else 404)"},
                 "tag": {"allOf": [_ref("Tag")], "description": "the devices with this tag, whenever they have it"}}
_SETTINGS = {
    "severity": {"enum": list(rules.SEVERITIES), "default": rules.SEVERITY_DEFAULT},
    "actions": {"type": "array", "items": {"enum": list(rules.ACTIONS)},
                "description": "create_alarm is done always; send_webhook also posts each change of its alarms to"
                " every enabled webhook channel of yours"},
    "cooldown_seconds": {"type": "integer", "minimum": 0, "maximum": rules.COOLDOWN_MAX,
                         "default": rules.COOLDOWN_DEFAULT,
                         "description": "the condition returning within this long of an alarm's resolution reopens"
                         " it; later, it opens a new one"},
    "is_enabled": {"type": "boolean", "default": True},
    "auto_resolve": {"type": "boolean", "default": True,
                     "description": "resolve an open alarm when its condition clears (else it stays until resolved)"},
}


def _scope_branch(kind):
    """The scope `kind`'s fields: its own required (none for fleet, where scope_type may be left out), the others
    null or absent."""
    properties = {"scope_type": {"const": kind}}
    for other, field in rules.SCOPE_FIELDS.items():
        properties[field] = _SCOPE_VALUES[other] if other == kind else {"type": "null"}
    own = rules.SCOPE_FIELDS.get(kind)
    return {"type": "object", "properties": properties, "required": ["scope_type", own] if own else []}


_NEW_RULE = {"allOf": [
    _object({"name": _text(schemas.NAME_MAX, required=True),
             "description": _nullable(_text(schemas.DESCRIPTION_MAX)), **_SETTINGS},
            required=["name"], extra=_VALUE),
    {"anyOf": [{"type": "object", "properties": {"rule_type": {"const": kind}, "config": CONFIGS[kind]},
                "required": ["rule_type", "config"]} for kind in rules.RULE_TYPES]},
    {"anyOf": [_scope_branch(kind) for kind in rules.SCOPE_TYPES]},
], "description": f"at most {rules.RULES_PER_USER} rules a user (409)"}
_RULE_EDIT = _object({
    "name": _text(schemas.NAME_MAX, required=True), "description": _nullable(_text(schemas.DESCRIPTION_MAX)),
    "config": {"anyOf": list(CONFIGS.values()), "description": "the rule's type's (else 422); replaces the stored one"},
    **_SETTINGS, **{field: _NEVER for field in rules.FIXED_FIELDS},
}, required=[], extra=_VALUE)
_NOTE = {"required": False, **_json(_object({"note": _nullable(_text(rules.NOTE_MAX))}, required=[], extra=_VALUE))}
_WEBHOOK_FIELDS = {
    "url": {"type": "string", "pattern": rules.URL_PATTERN, "maxLength": rules.URL_MAX,
            "description": "http:// or https:// with a host; certificates are verified, redirects not followed"},
    "secret": _nullable({"type": "string", "minLength": rules.SECRET_MIN, "maxLength": rules.SECRET_MAX,
                         "description": "signs each body (X-Mpfleet-Signature); never answered in full. PUT: left"
                         " out keeps it, null removes it"}),
}
_WEBHOOK = {"type": "object", "properties": _WEBHOOK_FIELDS, "required": ["url"], "additionalProperties": False}
_NEW_CHANNEL = _object({
    "name": _text(schemas.NAME_MAX, required=True), "channel_type": {"enum": list(rules.CHANNEL_TYPES)},
    "config": _WEBHOOK, "is_enabled": {"type": "boolean", "default": True},
}, required=["name", "channel_type", "config"], extra=_VALUE)
_CHANNEL_EDIT = _object({
    "name": _text(schemas.NAME_MAX, required=True), "config": _WEBHOOK, "is_enabled": {"type": "boolean"},
    "channel_type": _NEVER,
}, required=[], extra=_VALUE)

SCHEMAS = {
    "AlarmRule": _object({
        "id": {"type": "integer"}, "name": _STRING, "description": _nullable(_STRING),
        "rule_type": {"enum": list(rules.RULE_TYPES)}, "scope_type": {"enum": list(rules.SCOPE_TYPES)},
        "scope_device_id": _nullable({"type": "string", "description": "the device's uid"}),
        "scope_group_id": _nullable({"type": "integer"}), "scope_tag": _nullable(_ref("Tag")),
        "config": {"anyOf": list(CONFIGS.values())}, "severity": {"enum": list(rules.SEVERITIES)},
        "actions": {"type": "array", "items": {"enum": list(rules.ACTIONS)}},
        "cooldown_seconds": {"type": "integer", "minimum": 0}, "is_enabled": {"type": "boolean"},
        "auto_resolve": {"type": "boolean"}, "created_at": _AT, "updated_at": _AT,
    }),
    "AlarmStatus": {"enum": list(rules.ALARM_STATUSES)},
    "Alarm": _object({
        "id": {"type": "integer"}, "rule_id": {"type": "integer"}, "rule_name": _STRING,
        "rule_type": {"enum": list(rules.RULE_TYPES)}, "device_uid": _STRING, "status": _ref("AlarmStatus"),
        "severity": {"enum": list(rules.SEVERITIES)},
        "message": {"type": "string", "description": "the condition, as it was last seen to hold"},
        "condition_holds": {"type": "boolean", "description": "whether the condition held at its last evaluation"},
        "opened_at": _AT, "acknowledged_at": _TIME, "resolved_at": _TIME, "updated_at": _AT,
    }),
    "AlarmEntry": _object({
        "at": _AT, "event": {"enum": ["triggered", "cleared", "returned", "acknowledged", "resolved", "reopened"]},
        "status": _ref("AlarmStatus"), "actor": {"enum": ["rule", "user"]}, "reason": _STRING,
        "note": _nullable(_STRING),
    }),
    "AlarmDetail": {"allOf": [_ref("Alarm"), _object({"timeline": {
        "type": "array", "items": _ref("AlarmEntry"), "maxItems": alarms.TIMELINE_KEPT,
        "description": f"its changes, oldest first (the newest {alarms.TIMELINE_KEPT})"}})]},
    "NotificationChannel": _object({
        "id": {"type": "integer"}, "name": _STRING, "channel_type": {"enum": list(rules.CHANNEL_TYPES)},
        "config": _object({"url": _STRING, "secret": _nullable({
            "type": "string", "description": "its last characters after an ellipsis; null: none, bodies unsigned"})}),
        "is_enabled": {"type": "boolean"}, "created_at": _AT,
    }),
    "WebhookAttempt": _object({
        "delivery_id": {"type": "string", "description": "the same on each attempt of one body (X-Mpfleet-Delivery)"},
        "event": {"type": "string", "description": "alarm.<timeline event>, or test"},
        "alarm_id": _nullable({"type": "integer"}), "attempt": {"type": "integer", "minimum": 1}, "at": _AT,
        "status_code": _nullable({"type": "integer", "description": "the receiver's, null when it gave none"}),
        "error": _nullable(_STRING), "outcome": {"enum": ["delivered", "retrying", "failed"]},
        "duration_ms": {"type": "integer", "minimum": 0},
    }),
}


def _op(summary, responses, not_found, name, description, **kwargs):
    """An operation on one item whose id is the path's {name}; NotFound's message `not_found`."""
    params = (_path_param(name, _ID, description), *kwargs.pop("params", ()))
    return _operation(summary, {**responses, "404": _message(f'"{not_found}", also for another user\'s')},
                      params=params, **kwargs)


def _rule_op(summary, responses, **kwargs):
    return _op(summary, responses, alarm_rules.NOT_FOUND, "rule_id", "the rule's id", **kwargs)


def _alarm_op(summary, responses, **kwargs):
    return _op(summary, responses, alarms.NOT_FOUND, "alarm_id", "the alarm's id", **kwargs)


def _channel_op(summary, responses, **kwargs):
    return _op(summary, responses, notifications.NOT_FOUND, "channel_id", "the channel's id", **kwargs)


def _page(default, maximum, what):
    return (_query("limit", {"type": "integer", "minimum": 1, "maximum": maximum, "default": default}, what),
            _query("offset", {"type": "integer", "minimum": 0, "maximum": jsonvalues.MAX_NUMBER, "default": 0},
                   "skipped before the page"))


def _page_of(item):
    return _object({"data": {"type": "array", "items": _ref(item)}, "meta": _LIST_META})


_ALARM_QUERY = (
    _query("status", {"enum": list(rules.ALARM_STATUS_FILTERS)}, "only alarms of this status (open: active or"
           " acknowledged)"),
    _query("severity", {"enum": list(rules.SEVERITIES)}, "only alarms of this severity"),
    _query("device", {"type": "string", "minLength": 1, "maxLength": schemas.UID_MAX},
           "only the alarms of this device (its uid; another user's device has none)"),
    _query("rule", _ID, "only the alarms of this rule"),
    *_page(rules.ALARM_PAGE_DEFAULT, rules.ALARM_PAGE_MAX, "alarms on the page"),
)
_ALARM_ANSWER = _object({"message": _STRING, "data": _ref("AlarmDetail")})


def paths():
    rule, alarm = "/v1/user/rules/{rule_id}", "/v1/user/alarms/{alarm_id}"
    channels = "/v1/user/notifications/channels"
    channel = channels + "/{channel_id}"
    return {
        "/v1/user/rules": {
            "get": _operation("Your alarm rules", {
                "200": _answer("Rules, oldest first", _data({"type": "array", "items": _ref("AlarmRule")}))}),
            "post": _operation("Make an alarm rule", {
                "201": _answer("The rule", _data(_ref("AlarmRule"))),
                "404": _message('The scope names no device or group of yours: "Device not found.", "Group not'
                                ' found."'),
                "409": _message(f'"{alarm_rules.TOO_MANY.format(rules.RULES_PER_USER)}"'),
            }, body=_json(_NEW_RULE)),
        },
        rule: {
            "get": _rule_op("One alarm rule", {"200": _answer("The rule", _data(_ref("AlarmRule")))}),
            "put": _rule_op("Change an alarm rule (the fields given; not its type nor its scope)", {
                "200": _answer("The rule", _data(_ref("AlarmRule")))}, body=_json(_RULE_EDIT)),
            "delete": _rule_op("Delete an alarm rule and its alarms", {
                "200": _message('"Alarm rule deleted."')}),
        },
        "/v1/user/alarms": {"get": _operation("Your alarms, newest first, filtered, a page at a time", {
            "200": _answer("One page of alarms", _page_of("Alarm")), "422": _INVALID,
        }, params=_ALARM_QUERY)},
        alarm: {"get": _alarm_op("One alarm with its timeline", {
            "200": _answer("The alarm", _data(_ref("AlarmDetail")))})},
        alarm + "/acknowledge": {"post": _alarm_op("Acknowledge an active alarm", {
            "200": _answer('"Alarm acknowledged."', _ALARM_ANSWER),
            "409": _message(f'"{alarms.ALREADY_ACKNOWLEDGED}", "{alarms.RESOLVED_NOT_ACKNOWLEDGED}"'),
        }, body=_NOTE)},
        alarm + "/resolve": {"post": _alarm_op("Resolve an alarm", {
            "200": _answer('"Alarm resolved."', _ALARM_ANSWER), "409": _message(f'"{alarms.ALREADY_RESOLVED}"'),
        }, body=_NOTE)},
        channels: {
            "get": _operation("Your notification channels", {
                "200": _answer("Channels", _data({"type": "array", "items": _ref("NotificationChannel")}))}),
            "post": _operation("Make a notification channel (a webhook)", {
                "201": _answer("The channel", _data(_ref("NotificationChannel"))),
                "409": _message(f'"{notifications.TOO_MANY.format(rules.CHANNELS_PER_USER)}"'),
            }, body=_json(_NEW_CHANNEL)),
        },
        channel: {
            "get": _channel_op("One notification channel", {
                "200": _answer("The channel", _data(_ref("NotificationChannel")))}),
            "put": _channel_op("Change a notification channel (the fields given)", {
                "200": _answer("The channel", _data(_ref("NotificationChannel")))}, body=_json(_CHANNEL_EDIT)),
            "delete": _channel_op("Delete a notification channel and its delivery log", {
                "200": _message('"Notification channel deleted."')}),
        },
        channel + "/test": {"post": _channel_op(
            f"Post a test event to the channel now, once (at most {webhooks.TEST_TIMEOUT_SECONDS:g} s)", {
                "200": _answer('"Test notification delivered." or "Test notification failed.", with the attempt (in'
                               " the delivery log too)",
                               _object({"message": _STRING, "data": _ref("WebhookAttempt")}))})},
        channel + "/deliveries": {"get": _channel_op("The channel's delivery attempts, newest first", {
            "200": _answer(f"One page of attempts (the newest {notifications.DELIVERIES_KEPT} are kept)",
                           _page_of("WebhookAttempt")), "422": _INVALID,
        }, params=_page(rules.DELIVERY_PAGE_DEFAULT, rules.DELIVERY_PAGE_MAX, "attempts on the page"))},
    }
