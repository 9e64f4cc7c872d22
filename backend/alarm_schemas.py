"""Validation of alarm rules, the alarm list's query and notification channels (docs/api.md, Alarms and
notifications). Each function returns clean values or raises ValidationError, in schemas.py's words ("The <field>
field ..."); the limits below are the ones openapi.py states.
"""

import re

import yarl

from . import jsonvalues, schemas
from .errors import ValidationError
from .schemas import _Fields

RULE_TYPES = ("offline", "threshold", "missing_data", "reconnect_rate")
SCOPE_TYPES = ("fleet", "device", "group", "tag")
SCOPE_FIELDS = {"device": "scope_device_id", "group": "scope_group_id", "tag": "scope_tag"}  # what each scope names
SEVERITIES = ("critical", "warning", "info")
ACTIONS = ("create_alarm", "send_webhook")  # an alarm is always kept: create_alarm is what is done anyway
THRESHOLD_OPS = (">", "<", ">=", "<=")
RULES_PER_USER = 100
SEVERITY_DEFAULT = "warning"
COOLDOWN_DEFAULT, COOLDOWN_MAX = 300, 7 * 86400
SECONDS_MAX = 7 * 86400  # offline and missing_data: how long a device may be without
SAMPLES_MAX = 100  # threshold: samples in a row (the evaluation keeps a count per rule and device)
THRESHOLD_SECONDS_MAX = 86400
WINDOW_MAX = 86400  # reconnect_rate: the window its count of disconnects reads from the presence history
DISCONNECTS_MAX = 1000
# A telemetry key, as a device's telemetry message may carry it (schemas.telemetry keeps only these).
TELEMETRY_KEY_PATTERN = "^[A-Za-z0-9_.-]{1,32}$"
_TELEMETRY_KEY = re.compile(TELEMETRY_KEY_PATTERN.replace("$", "\\Z"))
# The fields of each type's config: (name, required).
CONFIG_FIELDS = {
    "offline": (("seconds", True),),
    "threshold": (("key", True), ("op", True), ("value", True), ("samples", False), ("seconds", False)),
    "missing_data": (("seconds", True), ("key", False)),
    "reconnect_rate": (("disconnects", True), ("seconds", True)),
}
# What a rule's PUT may not change: its type and what it watches. Another rule is made for those.
FIXED_FIELDS = ("rule_type", "scope_type", *SCOPE_FIELDS.values())

ALARM_STATUSES = ("active", "acknowledged", "resolved")
ALARM_STATUS_FILTERS = (*ALARM_STATUSES, "open")  # open: active or acknowledged
ALARM_PARAMETERS = ("status", "severity", "device", "rule", "limit", "offset")
ALARM_PAGE_DEFAULT, ALARM_PAGE_MAX = 50, 100
NOTE_MAX = 1000

CHANNEL_TYPES = ("webhook",)
CHANNELS_PER_USER = 20
URL_MAX = 2048
URL_PATTERN = "^https?://[^\\x00-\\x20\\x7f]+$"  # http or https, no white space or control character
_URL = re.compile(URL_PATTERN.replace("$", "\\Z"))
SECRET_MIN, SECRET_MAX = 16, 256
DELIVERY_PAGE_DEFAULT, DELIVERY_PAGE_MAX = 50, 200


def new_rule(body):
    """{name, description?, rule_type, scope_type?, scope_device_id? | scope_group_id? | scope_tag?, config,
    severity?, actions?, cooldown_seconds?, is_enabled?, auto_resolve?} → the rule's fields, `scope_device_id` the
    device's uid as given (whether it is the caller's is for storage to say). The fields of another scope than the
    rule's must be absent or null."""
    fields = _Fields(body)
    rule = {"name": fields.text("name", required=True, max_len=schemas.NAME_MAX),
            "description": fields.text("description", max_len=schemas.DESCRIPTION_MAX, nullable=True) or None}
    rule_type = _choice(fields, "rule_type", RULE_TYPES, required=True)
    rule["rule_type"] = rule_type
    if rule_type is not None:
        rule["config"] = _config(fields, rule_type)
    rule.update(_scope(fields))
    rule.update(_settings(fields, defaults=True))
    fields.done()
    return rule


def rule_update(body, rule_type):
    """{name?, description?, config?, severity?, actions?, cooldown_seconds?, is_enabled?, auto_resolve?} of a rule
    of `rule_type` → the fields to change; `config` replaces the stored one whole, checked against the rule's type.
    A field of FIXED_FIELDS is refused."""
    fields = _Fields(body)
    changes = {}
    if fields.present("name"):
        changes["name"] = fields.text("name", required=True, max_len=schemas.NAME_MAX)
    if fields.present("description"):
        changes["description"] = fields.text("description", max_len=schemas.DESCRIPTION_MAX, nullable=True) or None
    if fields.present("config"):
        changes["config"] = _config(fields, rule_type)
    changes.update(_settings(fields, defaults=False))
    for name in FIXED_FIELDS:
        if fields.present(name):
            fields.fail(name, f"The {name} field cannot be changed: create another rule.")
    fields.done()
    return changes


def _choice(fields, field, choices, *, required=False, default=None):
    value = fields.body.get(field)
    if value is None and field not in fields.body:
        if required:
            fields.fail(field, f"The {fields.name(field)} field is required.")
        return default
    if value not in choices:  # (a list or an object is no choice either)
        fields.fail(field, f"The selected {fields.name(field)} is invalid.")
        return None
    return value


def _scope(fields):
    scope_type = _choice(fields, "scope_type", SCOPE_TYPES, default="fleet")
    scope = {"scope_type": scope_type, "scope_device_id": None, "scope_group_id": None, "scope_tag": None}
    for kind, field in SCOPE_FIELDS.items():
        if kind != scope_type and fields.body.get(field) is not None:
            fields.fail(field, f"The {field} field must be null unless scope_type is {kind}.")
    field = SCOPE_FIELDS.get(scope_type)
    if field is None:
        return scope
    if fields.body.get(field) is None:
        fields.fail(field, f"The {field} field is required when scope_type is {scope_type}.")
    elif scope_type == "device":
        scope[field] = fields.text(field, required=True, max_len=schemas.UID_MAX, strip=False)
    elif scope_type == "group":
        scope[field] = fields.integer(field, low=1, high=jsonvalues.MAX_NUMBER)
    elif schemas._is_tag(fields.body[field]):
        scope[field] = fields.body[field]
    else:
        fields.fail(field, f"The {field} field must be {schemas.TAG_RULE}.")
    return scope


def _settings(fields, *, defaults):
    """severity, actions, cooldown_seconds, is_enabled, auto_resolve: those given, with their defaults for a new
    rule (`defaults`)."""
    settings = {}
    if defaults or fields.present("severity"):
        settings["severity"] = _choice(fields, "severity", SEVERITIES, default=SEVERITY_DEFAULT)
    if defaults or fields.present("actions"):
        settings["actions"] = _actions(fields)
    if defaults or fields.present("cooldown_seconds"):
        cooldown = fields.integer("cooldown_seconds", low=0, high=COOLDOWN_MAX)
        settings["cooldown_seconds"] = COOLDOWN_DEFAULT if cooldown is None else cooldown
    for flag in ("is_enabled", "auto_resolve"):
        if defaults or fields.present(flag):
            settings[flag] = fields.boolean(flag, default=True)
    return settings


def _actions(fields):
    actions = fields.body.get("actions", ["create_alarm"])
    if not isinstance(actions, list):
        fields.fail("actions", f"The actions field must be a list of {', '.join(ACTIONS)}.")
        return []
    for position, action in enumerate(actions):
        if action not in ACTIONS:
            fields.fail(f"actions.{position}", f"The actions.{position} field must be one of {', '.join(ACTIONS)}.")
    return [action for action in ACTIONS if action in actions or action == "create_alarm"]  # each once, in order


def _config(fields, rule_type):
    """The `config` of a rule of `rule_type`: its fields (CONFIG_FIELDS), each checked; none other."""
    config = fields.nested("config")
    if config is None:
        return None
    known = dict(CONFIG_FIELDS[rule_type])
    for name in config.body:
        if name not in known:
            config.fail(name, f"The {config.name(name)} field is not known to {rule_type} rules.")
    clean = {}
    for name, required in known.items():
        if required and config.body.get(name) is None:
            config.fail(name, f"The {config.name(name)} field is required for {rule_type} rules.")
        elif name in config.body:  # (an optional one given as null is refused by its check)
            clean[name] = _CONFIG_CHECKS[(rule_type, name)](config, name)
    if rule_type == "threshold" and "samples" in clean and "seconds" in clean:
        config.fail("samples", "The config field must have samples or seconds, not both.")
    return clean


def _key(config, name):
    key = config.body[name]
    if not (isinstance(key, str) and _TELEMETRY_KEY.match(key)):
        config.fail(name, f"The {config.name(name)} field must be a telemetry key: 1 to 32 letters, digits, dots,"
                    " dashes or underscores.")
    return key


def _op(config, name):
    if config.body[name] not in THRESHOLD_OPS:
        config.fail(name, f"The {config.name(name)} field must be one of {', '.join(THRESHOLD_OPS)}.")
    return config.body[name]


def _number(config, name):
    value = config.body[name]
    if not jsonvalues.is_number(value):
        config.fail(name, f"The {config.name(name)} field must be a number.")
    return value


def _bounded(high):
    return lambda config, name: config.integer(name, low=1, high=high)


_CONFIG_CHECKS = {
    ("offline", "seconds"): _bounded(SECONDS_MAX),
    ("threshold", "key"): _key,
    ("threshold", "op"): _op,
    ("threshold", "value"): _number,
    ("threshold", "samples"): _bounded(SAMPLES_MAX),
    ("threshold", "seconds"): _bounded(THRESHOLD_SECONDS_MAX),
    ("missing_data", "seconds"): _bounded(SECONDS_MAX),
    ("missing_data", "key"): _key,
    ("reconnect_rate", "disconnects"): _bounded(DISCONNECTS_MAX),
    ("reconnect_rate", "seconds"): _bounded(WINDOW_MAX),
}


def alarm_query(query):
    """The alarm list's filters (a MultiDict of text) → {status, severity, device, rule} (None: any). A parameter
    not in ALARM_PARAMETERS, or one given twice, is refused, as the device list refuses them (limit and offset are
    the handler's to read)."""
    errors = {}
    for name in dict.fromkeys(query):
        if name not in ALARM_PARAMETERS:
            errors[name] = [f"The {name} parameter is not known."]
        elif len(query.getall(name)) > 1:
            errors[name] = [f"The {name} parameter must be given once."]
    filters = {name: query.get(name) for name in ("status", "severity", "device", "rule")}
    for name, choices in (("status", ALARM_STATUS_FILTERS), ("severity", SEVERITIES)):
        if filters[name] is not None and filters[name] not in choices:
            errors.setdefault(name, []).append(f"The selected {name} is invalid.")
    if filters["device"] is not None and not 0 < len(filters["device"]) <= schemas.UID_MAX:
        errors.setdefault("device", []).append(f"The device parameter must be a uid of 1 to {schemas.UID_MAX}"
                                               " characters.")
    rule = filters["rule"]
    if rule is not None:
        if rule.isascii() and rule.isdigit() and 1 <= int(rule) <= jsonvalues.MAX_NUMBER:
            filters["rule"] = int(rule)
        else:
            errors.setdefault("rule", []).append(f"The rule parameter must be an integer from 1 to"
                                                 f" {jsonvalues.MAX_NUMBER}.")
    if errors:
        raise ValidationError(errors)
    return filters


def note(body):
    """{note?} of an acknowledge or a resolve → the note, or None."""
    fields = _Fields(body)
    text = fields.text("note", max_len=NOTE_MAX, nullable=True) or None
    fields.done()
    return text


def new_channel(body):
    """{name, channel_type, config: {url, secret?}, is_enabled?} → {name, channel_type, url, secret, is_enabled}."""
    fields = _Fields(body)
    channel = {"name": fields.text("name", required=True, max_len=schemas.NAME_MAX),
               "channel_type": _choice(fields, "channel_type", CHANNEL_TYPES, required=True),
               "is_enabled": fields.boolean("is_enabled", default=True)}
    config = fields.nested("config")
    if config is not None:
        channel.update(_webhook(config, keep_secret=False))
    fields.done()
    return channel


def channel_update(body):
    """{name?, config?: {url, secret?}, is_enabled?} → the fields to change; a config without `secret` keeps the
    stored one, `secret: null` removes it."""
    fields = _Fields(body)
    changes = {}
    if fields.present("name"):
        changes["name"] = fields.text("name", required=True, max_len=schemas.NAME_MAX)
    if fields.present("is_enabled"):
        changes["is_enabled"] = fields.boolean("is_enabled", default=True)
    if fields.present("config"):
        config = fields.nested("config")
        if config is not None:
            changes.update(_webhook(config, keep_secret=True))
    if fields.present("channel_type"):
        fields.fail("channel_type", "The channel_type field cannot be changed: create another channel.")
    fields.done()
    return changes


def _webhook(config, *, keep_secret):
    """A webhook's {url, secret?} → {url, secret} (no secret: no `secret` with `keep_secret`, else None)."""
    for name in config.body:
        if name not in ("url", "secret"):
            config.fail(name, f"The {config.name(name)} field is not known for a webhook.")
    url = config.text("url", required=True, max_len=URL_MAX, strip=False)
    if url and not _valid_url(url):
        config.fail("url", f"The {config.name('url')} field must be an http:// or https:// URL with a host.")
    clean = {"url": url}
    if config.present("secret") or not keep_secret:
        secret = config.text("secret", max_len=SECRET_MAX, nullable=True, strip=False)
        if secret is not None and len(secret) < SECRET_MIN:
            config.fail("secret", f"The {config.name('secret')} field must be {SECRET_MIN} to {SECRET_MAX}"
                        " characters.")
        clean["secret"] = secret
    return clean


def _valid_url(url):
    """Whether `url` is one the webhook client can post to: http(s), a host, a port that is one."""
    if not _URL.match(url):
        return False
    try:
        parsed = yarl.URL(url)
        return parsed.is_absolute() and bool(parsed.host) and parsed.port is not None
    except ValueError:
        return False
