"""Validation of request bodies and device messages. Each function returns clean values or raises
ValidationError (REST) or BadMessage (MQTT).

Messages follow one pattern ("The <field> field ..."), so clients can show them as they are. The limits
below are the ones openapi.py states: it imports them, so the document says what is enforced.
Every JSON value also keeps the rule of jsonvalues.py (numbers within 64 bits, nesting <= 32).
"""

import re

import orjson

from . import jsonvalues
from .errors import ValidationError

MAX_PAYLOAD_BYTES = 4096  # a command payload must fit a board's RAM (an ESP8266 has ~35 KB free)
NAME_MAX = 100
DESCRIPTION_MAX = 1000
KEY_MAX = 64  # a platform or board key
BUTTON_ID_PATTERN = "^[a-z0-9][a-z0-9_-]*$"
BUTTON_ID_MAX = 64
LABEL_MAX = 64
VERSION_MAX = 64
NOTES_MAX = 2000
MD5_PATTERN = "^[0-9a-fA-F]{32}$"  # as sent; stored in lowercase
# What is stripped from both ends of a text field; a required one must hold something else. ASCII
# only, and spelled as \xHH in the pattern, so that every regex engine reads it alike (their \s differ).
_SPACE = "\t\n\x0b\x0c\r "
NOT_BLANK_PATTERN = "[^" + "".join(f"\\x{ord(c):02x}" for c in _SPACE) + "]"
_BUTTON_ID = re.compile(BUTTON_ID_PATTERN.replace("$", "\\Z"))
_MD5 = re.compile(MD5_PATTERN.replace("$", "\\Z"))
_STORED_MD5 = re.compile(r"[0-9a-f]{32}\Z")  # how storage keeps an md5 (a device's report must match it)

_TOO_DEEP = f"The {{}} field must not be nested deeper than {jsonvalues.MAX_DEPTH} levels."
_BAD_NUMBER = "The {} field must hold only finite numbers from -(2^63-1) to 2^63-1."
_RULE_MESSAGES = {jsonvalues.TOO_DEEP: _TOO_DEEP, jsonvalues.BAD_NUMBER: _BAD_NUMBER}


class _Fields:
    """Reads fields of one body and collects every error before raising. Fields of an object inside it are read
    by a _Fields of their own (nested()), which names them `outer.field` and collects into the same errors."""

    def __init__(self, body, prefix="", errors=None):
        self.body = body
        self.prefix = prefix
        self.errors = {} if errors is None else errors

    def fail(self, field, message):
        self.errors.setdefault(self.prefix + field, []).append(message)

    def name(self, field):
        """The field as messages name it."""
        return self.prefix + field

    def present(self, field):
        return field in self.body

    def text(self, field, *, required=False, max_len, nullable=False, strip=True):
        """A string, stripped of _SPACE unless `strip` is false; None when absent (or null where allowed).

        The length counts the string as sent, as OpenAPI's maxLength does.
        """
        value, name = self.body.get(field), self.name(field)
        if value is None:
            if required:
                self.fail(field, f"The {name} field is required.")
            elif field in self.body and not nullable:
                self.fail(field, f"The {name} field must be a string.")
            return None
        if not isinstance(value, str):
            self.fail(field, f"The {name} field must be a string.")
            return None
        too_long = len(value) > max_len
        if strip:
            value = value.strip(_SPACE)
        if required and not value:
            self.fail(field, f"The {name} field is required.")
        elif too_long:
            self.fail(field, f"The {name} field must not be greater than {max_len} characters.")
        return value

    def boolean(self, field, *, default):
        value = self.body.get(field, default)
        if not isinstance(value, bool):
            self.fail(field, f"The {self.name(field)} field must be true or false.")
        return value

    def integer(self, field, *, low, high):
        """An integer (a JSON number without a fraction; not a boolean) from `low` to `high`; None when absent."""
        value = self.body.get(field)
        if value is None and field not in self.body:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(field, f"The {self.name(field)} field must be an integer from {low} to {high}.")
            return None
        return value

    def items(self, field, noun, *, most):
        """A list of 1 to `most` items (checked by the caller); [] when it is not one."""
        value, name = self.body.get(field), self.name(field)
        if value is None:
            self.fail(field, f"The {name} field is required.")
        elif not isinstance(value, list):
            self.fail(field, f"The {name} field must be a list of {noun}.")
        elif not 1 <= len(value) <= most:
            self.fail(field, f"The {name} field must hold 1 to {most} {noun}.")
        else:
            return value
        return []

    def payload(self, field):
        """A JSON object that serializes to at most MAX_PAYLOAD_BYTES."""
        value = self.json_object(field)
        if value is not None and len(compact_json(value)) > MAX_PAYLOAD_BYTES:
            self.fail(field, f"The {self.name(field)} field must not be larger than {MAX_PAYLOAD_BYTES} bytes as JSON.")
        return value

    def nested(self, field):
        """The _Fields of the object in `field` (required), or None when it is missing or no object."""
        value = self.json_object(field)
        return None if value is None else _Fields(value, f"{self.name(field)}.", self.errors)

    def json_object(self, field):
        """The JSON object in `field` (required), or None when it is missing or no object."""
        value, name = self.body.get(field), self.name(field)
        if value is None:
            self.fail(field, f"The {name} field is required.")
        elif not isinstance(value, dict):
            self.fail(field, f"The {name} field must be a JSON object.")
        else:
            return value
        return None

    def done(self):
        if self.errors:
            raise ValidationError(self.errors)


def compact_json(value):
    """The bytes a payload takes on the wire (the bridge publishes it with orjson)."""
    return orjson.dumps(value)


def json_rule(body):
    """Check every field of a parsed JSON body against the rule of jsonvalues.py. Raises ValidationError
    naming each field that breaks it."""
    problems = jsonvalues.field_problems(body)
    if problems:
        raise ValidationError({field: [_RULE_MESSAGES[found].format(field)] for field, found in problems.items()})


def device_registration(body, boards):
    """{name, platform, board, description?} → (name, description, platform_key, board_key)."""
    fields = _Fields(body)
    name = fields.text("name", required=True, max_len=NAME_MAX)
    description = fields.text("description", max_len=DESCRIPTION_MAX, nullable=True)
    platform_key = fields.text("platform", required=True, max_len=KEY_MAX, strip=False)
    board_key = fields.text("board", required=True, max_len=KEY_MAX, strip=False)
    known_platforms = {b.platform["key"] for b in boards.values()}
    if platform_key and platform_key not in known_platforms:
        fields.fail("platform", "The selected platform is invalid.")
    elif board_key and board_key not in boards:
        fields.fail("board", "The selected board is invalid.")
    elif platform_key and board_key and boards[board_key].platform["key"] != platform_key:
        fields.fail("board", f"The selected board does not belong to the {platform_key} platform.")
    fields.done()
    return name, description or None, platform_key, board_key


def device_update(body):
    """{name?, description?, enabled?, meta?} → the columns to change, and `meta`: the merge patch (checked by
    meta_patch(); the merged result by merged_meta())."""
    fields = _Fields(body)
    changes = _name_and_description(fields)
    if fields.present("enabled"):
        changes["enabled"] = fields.boolean("enabled", default=True)
    if fields.present("meta"):
        changes["meta"] = meta_patch(fields)
    fields.done()
    return changes


def _name_and_description(fields):
    """The `name` and `description` an edit gives (a device's, a group's) → the columns to change."""
    changes = {}
    if fields.present("name"):
        changes["name"] = fields.text("name", required=True, max_len=NAME_MAX)
    if fields.present("description"):
        changes["description"] = fields.text("description", max_len=DESCRIPTION_MAX, nullable=True) or None
    return changes


# --- A device's meta: the maker's keys beside the ones the device reports ------------------
# PATCH merges `meta` into the stored meta (RFC 7396; null removes a key). The maker's keys are bounded
# after the merge, so that repeated patches cannot grow a row without bound; a value nests as deep as the
# JSON-value rule lets the `meta` field (jsonvalues.MAX_DEPTH, `meta` itself counted).

META_MAX_KEYS = 32
META_KEY_MAX = 64
META_KEY_PATTERN = "^[A-Za-z0-9_.-]+$"
META_MAX_BYTES = 4096  # the maker's keys as compact JSON, as stored
_META_KEY = re.compile(META_KEY_PATTERN.replace("$", "\\Z"))


def meta_patch(fields):
    """The `meta` of a PATCH body, checked (an object of at most META_MAX_KEYS keys, each a META_KEY_PATTERN of at
    most META_KEY_MAX characters, none of DEVICE_META_KEYS: those are the device's, read-only). Errors go to
    `fields`, a key the device reports under `meta.<key>`."""
    patch = fields.body["meta"]
    if not isinstance(patch, dict):
        fields.fail("meta", "The meta field must be a JSON object.")
        return None
    if len(patch) > META_MAX_KEYS:
        fields.fail("meta", f"The meta field must not have more than {META_MAX_KEYS} keys.")
    for key in patch:
        if key in DEVICE_META_KEYS:
            fields.fail(f"meta.{key}", f"The meta.{key} key is reported by the device and cannot be changed.")
        elif len(key) > META_KEY_MAX or not _META_KEY.match(key):
            fields.fail("meta", f"The meta field's keys must be 1 to {META_KEY_MAX} letters, digits, dots, dashes"
                        " or underscores.")
    return patch


def merged_meta(meta):
    """Raise ValidationError unless the maker's keys of a merged meta keep META_MAX_KEYS and META_MAX_BYTES."""
    own = {key: value for key, value in meta.items() if key not in DEVICE_META_KEYS}
    if len(own) > META_MAX_KEYS:
        message = f"The meta field must not have more than {META_MAX_KEYS} keys, those stored already counted."
    elif len(compact_json(own)) > META_MAX_BYTES:
        message = f"The meta field must not be larger than {META_MAX_BYTES} bytes as JSON, what is stored counted."
    else:
        return
    raise ValidationError({"meta": [message]})


# --- The device list's query (GET /v1/user/devices) ----------------------------------------

LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX = 50, 100
STATUSES = ("pending", "online", "offline", "disabled")
SORT_KEYS = ("name", "last_seen_at", "created_at")  # each also with a leading `-`: descending
SEARCH_MAX = NAME_MAX
LIST_FILTERS = ("status", "online", "platform", "board", "firmware", "search", "tag", "group")
LIST_PARAMETERS = (*LIST_FILTERS, "sort", "limit", "offset")  # limit and offset: handlers/common.int_query
_DIGITS = re.compile(r"[0-9]+\Z")  # an integer as OpenAPI's is written (int() would take " 5" and "5_0")


def device_list(query, boards, *, fixed=()):
    """The filters and sort of a device list's query (a MultiDict of text) → ({DeviceFilter field: value}, sort
    key, descending). A parameter not in LIST_PARAMETERS, or given twice, is refused: a misspelt filter must
    not list every device; so are the filters named in `fixed`, which the path sets (a group's devices). A
    `group` is only checked to be an id here: whether the caller has it is the handler's to ask. Raises
    ValidationError naming each parameter that fails."""
    errors = {}

    def fail(name, message):
        errors.setdefault(name, []).append(message)

    for name in dict.fromkeys(query):
        if name not in LIST_PARAMETERS or name in fixed:
            fail(name, f"The {name} parameter is not known.")
        elif len(query.getall(name)) > 1:
            fail(name, f"The {name} parameter must be given once.")
    given = {name: query[name] for name in LIST_FILTERS if name in query and name not in fixed}
    filters = _list_filters(given, boards, fail)
    sort = query.get("sort", "created_at")
    key = sort[1:] if sort.startswith("-") else sort
    if key not in SORT_KEYS:
        fail("sort", "The selected sort is invalid.")
    if errors:
        raise ValidationError(errors)
    return filters, key, sort.startswith("-")


def _list_filters(given, boards, fail, *, name_of=str, noun="parameter"):
    """The device list's filters, {name: value as text (the query's form)} → {DeviceFilter field: value}; each bad
    value goes to `fail(name, message)`, its message naming it `name_of(name)` and calling it a `noun` (the query's
    parameters; a bulk command's target.filter fields)."""
    filters = {}

    def bad(name, rule):
        fail(name, f"The {name_of(name)} {noun} {rule}.")

    status, platform, board = given.get("status"), given.get("platform"), given.get("board")
    if status is not None:
        if status in STATUSES:
            filters["status"] = status
        else:
            fail("status", f"The selected {name_of('status')} is invalid.")
    online = given.get("online")
    if online is not None:
        if online in ("true", "false"):
            filters["online"] = online == "true"
        else:
            bad("online", "must be true or false")
    if platform is not None:
        if platform in {b.platform["key"] for b in boards.values()}:
            filters["platform"] = platform
        else:
            fail("platform", f"The selected {name_of('platform')} is invalid.")
    if board is not None:
        if board in boards:
            # A board belongs to one platform: naming both lets the list seek its indexes (another platform
            # given as well keeps both, and matches nothing).
            filters["board"] = board
            filters.setdefault("platform", boards[board].platform["key"])
        else:
            fail("board", f"The selected {name_of('board')} is invalid.")
    firmware = given.get("firmware")
    if firmware is not None:
        if _MD5.match(firmware):
            filters["firmware_md5"] = firmware.lower()
        elif 0 < len(firmware) <= VERSION_MAX:
            filters["firmware_version"] = firmware
        else:
            bad("firmware", f"must be an md5 or a version of 1 to {VERSION_MAX} characters")
    search = given.get("search")
    if search is not None:
        if len(search) > SEARCH_MAX:
            bad("search", f"must not be greater than {SEARCH_MAX} characters")
        elif search:
            filters["search"] = search
    tag = given.get("tag")
    if tag is not None:
        if _is_tag(tag):
            filters["tag"] = tag
        else:
            bad("tag", f"must be {TAG_RULE}")
    group = given.get("group")
    if group is not None:
        if _DIGITS.match(group) and 1 <= int(group) <= jsonvalues.MAX_NUMBER:
            filters["group"] = int(group)
        else:
            bad("group", f"must be an integer from 1 to {jsonvalues.MAX_NUMBER}")
    return filters


# --- Tags and groups ---------------------------------------------------------------------------
# A tag is a short label that a URL carries as it is typed (.../tags/{tag}, ?tag=): a lowercase slug. The counts
# bound what one answer holds: a device's tags, a user's tags (GET /v1/user/tags answers every one with its
# count), a user's groups (GET /v1/user/groups answers every one).

TAG_PATTERN = "^[a-z0-9][a-z0-9_.:-]*$"
TAG_MAX = 32
TAG_RULE = (f"1 to {TAG_MAX} lowercase letters, digits, dots, colons, dashes or underscores, the first a letter or"
            " a digit")
TAGS_PER_DEVICE = 32
TAGS_PER_USER = 1000  # different tags over all of a user's devices
GROUPS_PER_USER = 1000
GROUP_UIDS_MAX = 1000  # devices one request adds to a group
UID_MAX = KEY_MAX + 13  # a device uid: its platform key, `_` and 12 characters (credentials.new_device_uid)
_TAG = re.compile(TAG_PATTERN.replace("$", "\\Z"))


def _is_tag(value):
    return isinstance(value, str) and len(value) <= TAG_MAX and _TAG.match(value) is not None


def device_tags(body):
    """{tags: [tag, ...]} → the tags, each once, in the order given."""
    fields = _Fields(body)
    tags = fields.items("tags", "tags", most=TAGS_PER_DEVICE)
    for position, tag in enumerate(tags):
        if not _is_tag(tag):
            fields.fail(f"tags.{position}", f"The tags.{position} field must be {TAG_RULE}.")
    fields.done()
    return list(dict.fromkeys(tags))


def tag_totals(on_device, on_user):
    """Raise ValidationError when tags being added would give the device more than TAGS_PER_DEVICE, or its user
    more than TAGS_PER_USER different ones (`on_user` None: no tag was new to the user, so their count stays)."""
    if on_device > TAGS_PER_DEVICE:
        message = f"The tags field must not give the device more than {TAGS_PER_DEVICE} tags, those it has counted."
    elif on_user is not None and on_user > TAGS_PER_USER:
        message = f"The tags field must not give your devices more than {TAGS_PER_USER} different tags in all."
    else:
        return
    raise ValidationError({"tags": [message]})


def new_group(body):
    """{name, description?} → (name, description or None)."""
    fields = _Fields(body)
    name = fields.text("name", required=True, max_len=NAME_MAX)
    description = fields.text("description", max_len=DESCRIPTION_MAX, nullable=True)
    fields.done()
    return name, description or None


def group_update(body):
    """{name?, description?} → the columns to change."""
    fields = _Fields(body)
    changes = _name_and_description(fields)
    fields.done()
    return changes


def group_devices(body):
    """{uids: [uid, ...]} → the uids as given (whether they are the caller's devices is storage's to say)."""
    fields = _Fields(body)
    uids = _uids(fields, most=GROUP_UIDS_MAX)
    fields.done()
    return uids


def _uids(fields, *, most):
    """The list of 1 to `most` device uids in the field `uids`, as given (errors naming `uids.N`)."""
    uids = fields.items("uids", "device uids", most=most)
    for position, uid in enumerate(uids):
        name = fields.name(f"uids.{position}")
        if not isinstance(uid, str):
            fields.fail(f"uids.{position}", f"The {name} field must be a string.")
        elif len(uid) > UID_MAX:
            fields.fail(f"uids.{position}", f"The {name} field must not be greater than {UID_MAX} characters.")
    return uids


def command_button(body):
    """{id, label, payload, confirm?} → (id, label, payload, confirm)."""
    fields = _Fields(body)
    button_id = _button_id(fields, "id")
    label = fields.text("label", required=True, max_len=LABEL_MAX)
    payload = fields.payload("payload")
    confirm = fields.boolean("confirm", default=False)
    fields.done()
    return button_id, label, payload, confirm


def _button_id(fields, field):
    """A button's id in `field`: required, BUTTON_ID_PATTERN, at most BUTTON_ID_MAX characters."""
    button_id = fields.text(field, required=True, max_len=BUTTON_ID_MAX, strip=False)
    if button_id and not _BUTTON_ID.match(button_id):
        fields.fail(field, f"The {fields.name(field)} field must contain only lowercase letters, digits, dashes and"
                    " underscores.")
    return button_id


def command(body):
    """{payload} → the payload object."""
    fields = _Fields(body)
    payload = fields.payload("payload")
    fields.done()
    return payload


# --- Bulk commands (POST /v1/user/commands) and the offline queue -------------------------------
# A job's commands are written in one transaction and its devices answered in pages: the most devices a job takes
# bounds both. A ttl lets a command wait for its offline device, a week at most.

BULK_MAX_DEVICES = 10_000
BULK_TARGETS = ("uids", "tag", "group", "filter")
BULK_COMMAND_TYPES = ("reboot", "wifi_reset", "custom", "button")
BULK_PAGE_DEFAULT, BULK_PAGE_MAX = 100, 1000
TTL_MAX = 7 * 86400


def bulk_command(body, boards):
    """{target: {uids | tag | group | filter}, command: {type, payload?, button?}, ttl?} → the fields of a
    storage.bulk.BulkRequest, its `filters` as DeviceFilter fields (None for uids). A filter is the device list's
    (LIST_FILTERS, checked as its query is), in JSON: `online` a boolean, `group` an integer, the others strings. A
    `group` is only checked to be an id here: whether the caller has it is the handler's to ask. Fields that the
    command's type does not read are ignored."""
    fields = _Fields(body)
    request = {**_target(fields, boards), "type": None, "payload": None, "button": None}
    command = fields.nested("command")
    if command is not None:
        request.update(_bulk_command_fields(command))
    request["ttl"] = fields.integer("ttl", low=1, high=TTL_MAX)
    fields.done()
    return request


def _target(fields, boards):
    """The `target` field of a body (its _Fields) that names devices as a bulk job does → {target as a job shows it,
    uids, filters} (None each where it is not one)."""
    chosen = {"target": None, "uids": None, "filters": None}
    target = fields.nested("target")
    if target is not None:
        kinds = [kind for kind in BULK_TARGETS if target.present(kind)]
        if len(kinds) == 1 == len(target.body):
            chosen.update(_bulk_target(target, kinds[0], boards))
        else:
            fields.fail("target", f"The target field must have exactly one of {', '.join(BULK_TARGETS)}.")
    return chosen


def _bulk_target(target, kind, boards):
    """The one `kind` of a target (its _Fields) → {target as a job shows it, uids or filters}."""
    if kind == "uids":
        uids = _uids(target, most=BULK_MAX_DEVICES)
        return {"target": {"type": "uids"}, "uids": list(dict.fromkeys(uid for uid in uids if isinstance(uid, str)))}
    if kind == "tag":
        tag = target.body["tag"]
        if not _is_tag(tag):
            target.fail("tag", f"The {target.name('tag')} field must be {TAG_RULE}.")
        return {"target": {"type": "tag", "tag": tag}, "filters": {"tag": tag}}
    if kind == "group":
        group = target.integer("group", low=1, high=jsonvalues.MAX_NUMBER)
        return {"target": {"type": "group", "group": group}, "filters": {"group": group}}
    given = target.nested("filter")
    if given is None:
        return {}
    filters = _list_filters(_filter_texts(given), boards, given.fail, name_of=given.name, noun="field")
    return {"target": {"type": "filter", "filter": given.body}, "filters": filters}


def _filter_texts(given):
    """A target's filter object (its _Fields) → its values in the text of the device list's query."""
    texts = {}
    for name, value in given.body.items():
        if name not in LIST_FILTERS:
            given.fail(name, f"The {given.name(name)} field is not known.")
        elif name == "online":  # what is no boolean reads as text that is no `true` or `false`
            texts[name] = ("true" if value else "false") if isinstance(value, bool) else ""
        elif name == "group":
            texts[name] = str(value) if isinstance(value, int) and not isinstance(value, bool) else ""
        elif isinstance(value, str):
            texts[name] = value
        else:
            given.fail(name, f"The {given.name(name)} field must be a string.")
    return texts


def _bulk_command_fields(command):
    """A bulk job's command (its _Fields) → {type, payload (custom), button (button)}."""
    type_ = command.body.get("type")
    if type_ is None:
        command.fail("type", f"The {command.name('type')} field is required.")
        return {}
    if type_ not in BULK_COMMAND_TYPES:
        command.fail("type", f"The selected {command.name('type')} is invalid.")
        return {}
    if type_ == "custom":
        return {"type": type_, "payload": command.payload("payload")}
    if type_ == "button":
        return {"type": type_, "button": _button_id(command, "button")}
    return {"type": type_}


def bulk_size(count):
    """Raise ValidationError unless `count` devices (more than BULK_MAX_DEVICES: too many) make a bulk job."""
    if count == 0:
        message = "The target matches no device."
    elif count > BULK_MAX_DEVICES:
        message = f"The target must not match more than {BULK_MAX_DEVICES} devices."
    else:
        return
    raise ValidationError({"target": [message]})


# --- OTA campaigns (POST /v1/user/campaigns) -------------------------------------------------------
# A campaign's target is a bulk job's, and takes as many devices. Its waves are listed whole in its detail, so they
# are bounded: 100 waves at most, the number waves of 1 % make. Failures halt it only once enough devices were tried
# that one failure is not the whole story.

CAMPAIGN_MAX_WAVES = 100
CAMPAIGN_PAUSE_MAX = 7 * 86400  # seconds between two waves
CAMPAIGN_FAILURE_PERCENT = 10  # the default max_failure_percent
CAMPAIGN_HALT_MIN_ATTEMPTED = 5  # devices given an OTA before the failure share can halt a campaign
CAMPAIGN_PAGE_DEFAULT, CAMPAIGN_PAGE_MAX = 50, 100  # campaigns in a page of the list


def new_campaign(body, boards):
    """{name, md5, target, wave_size | wave_percent, pause_seconds?, max_failure_percent?} → {name, md5 (lowercase),
    target, uids, filters (as bulk_command's), wave_size, wave_percent (one of them None), pause_seconds,
    max_failure_percent}. A target group is only checked to be an id (the handler asks whether the caller has it)."""
    fields = _Fields(body)
    campaign = {
        "name": fields.text("name", required=True, max_len=NAME_MAX),
        "md5": _md5(fields, "md5"),
        **_target(fields, boards),
        "wave_size": fields.integer("wave_size", low=1, high=BULK_MAX_DEVICES),
        "wave_percent": fields.integer("wave_percent", low=1, high=100),
        "pause_seconds": fields.integer("pause_seconds", low=0, high=CAMPAIGN_PAUSE_MAX),
        "max_failure_percent": fields.integer("max_failure_percent", low=0, high=100),
    }
    if fields.present("wave_size") == fields.present("wave_percent"):
        fields.fail("wave_size", "The campaign must have exactly one of the wave_size and wave_percent fields.")
    if campaign["pause_seconds"] is None:
        campaign["pause_seconds"] = 0
    if campaign["max_failure_percent"] is None:
        campaign["max_failure_percent"] = CAMPAIGN_FAILURE_PERCENT
    fields.done()
    return campaign


def campaign_wave_size(to_update, *, wave_size, wave_percent):
    """The devices a wave of a campaign takes, for `to_update` devices that need its update: `wave_size`, or
    `wave_percent` of them (rounded up; at least one). Raises ValidationError when the waves would be more than
    CAMPAIGN_MAX_WAVES."""
    size = wave_size if wave_size is not None else max(1, -(-to_update * wave_percent // 100))
    least = -(-to_update // CAMPAIGN_MAX_WAVES)
    if size < least:
        raise ValidationError({"wave_size": [
            f"The wave_size field must be at least {least} for the {to_update} devices to update: a campaign has at"
            f" most {CAMPAIGN_MAX_WAVES} waves."]})
    return size


def firmware_upload(form, *, has_file):
    """Multipart text fields {name, version?, notes?} → keyword arguments for storage."""
    fields = _Fields(form)
    values = {
        "name": fields.text("name", required=True, max_len=NAME_MAX),
        "version": fields.text("version", max_len=VERSION_MAX) or None,
        "notes": fields.text("notes", max_len=NOTES_MAX) or None,
    }
    if not has_file:
        fields.fail("file", "The file field is required.")
    fields.done()
    return values


def firmware_update(body):
    """{name?, version?, notes?} → the columns to change."""
    fields = _Fields(body)
    changes = {}
    if fields.present("name"):
        changes["name"] = fields.text("name", required=True, max_len=NAME_MAX)
    for field, max_len in (("version", VERSION_MAX), ("notes", NOTES_MAX)):
        if fields.present(field):
            changes[field] = fields.text(field, max_len=max_len, nullable=True) or None
    fields.done()
    return changes


def firmware_md5(body):
    """{md5} → the md5 in lowercase hex."""
    fields = _Fields(body)
    md5 = _md5(fields, "md5")
    fields.done()
    return md5


def _md5(fields, field):
    """An md5 in `field` (required, 32 hexadecimal characters in any case) → in lowercase (None when it fails)."""
    md5 = fields.text(field, required=True, max_len=32, strip=False)
    if md5 and not _MD5.match(md5):
        fields.fail(field, f"The {fields.name(field)} field must be 32 hexadecimal characters.")
        return None
    return md5 and md5.lower()


# --- Device messages (MQTT, docs/protocol.md) ------------------------------------------
# A message that breaks the contract raises BadMessage; the bridge counts and drops it.

STATUS_MAX_BYTES = 1024
TELEMETRY_MAX_BYTES = 2048
ACK_MAX_BYTES = 2048
_TELEMETRY_KEY = re.compile(r"[A-Za-z0-9_.-]{1,32}\Z")
_TELEMETRY_MAX_KEYS = 32
_TELEMETRY_MAX_TEXT = 64
_EARLIEST_TS = 1577836800  # 2020-01-01: anything older is a board whose clock was never set
_STATUS_META = ("fw", "boot", "free_mem", "tls_verified", "safe_mode", "platform", "board", "cmd_queue")
# The meta keys that are the device's own: its status report's, and the broker port the detail adds.
DEVICE_META_KEYS = frozenset(_STATUS_META + ("mqtt_port",))
_ACK_STATES = ("accepted", "done", "failed")


class BadMessage(ValueError):
    """A device message that does not follow docs/protocol.md."""


def _message_object(raw, limit, *, whole=True):
    """The JSON object of a device message. With `whole`, every field keeps the rule of jsonvalues.py;
    without it only the nesting is checked, and cheaply (telemetry checks the values it keeps itself)."""
    if len(raw) > limit:
        raise BadMessage(f"larger than {limit} bytes")
    try:
        value = jsonvalues.loads(raw)
    except jsonvalues.NotJson:
        raise BadMessage("not JSON") from None
    if not isinstance(value, dict):
        raise BadMessage("not a JSON object")
    if whole or not jsonvalues.shallow(raw):
        problems = jsonvalues.field_problems(value, numbers=whole)
        if problems:
            field, found = next(iter(problems.items()))
            raise BadMessage(f"`{field}`: {found}")
    return value


def device_status(raw):
    """A `status` payload → {online, ip, rssi, meta}; None for an empty (cleared) retained message."""
    if not raw:
        return None
    message = _message_object(raw, STATUS_MAX_BYTES)
    if not isinstance(message.get("online"), bool):
        raise BadMessage("status without a boolean `online`")
    ip, rssi = message.get("ip"), message.get("rssi")
    meta = {key: message[key] for key in _STATUS_META if key in message}
    fw = meta.get("fw")
    if fw is not None and not (isinstance(fw, dict) and _STORED_MD5.match(str(fw.get("md5", "")))):
        del meta["fw"]  # a report we cannot match to a firmware is not kept
    return {
        "online": message["online"],
        "ip": ip if isinstance(ip, str) and len(ip) <= 45 else None,
        "rssi": int(rssi) if jsonvalues.is_number(rssi) and -150 <= rssi <= 0 else None,
        "meta": meta,
    }


def telemetry(raw, received_at):
    """A `telemetry` payload → [(key, ts, value)]. Bad entries are skipped (a number beyond the rule of
    jsonvalues.py among them); none left is BadMessage, and so is a message nested too deep.

    A missing, null or implausible `ts` (before 2020, or over a day ahead) becomes `received_at`.
    """
    message = _message_object(raw, TELEMETRY_MAX_BYTES, whole=False)
    ts = message.get("ts")
    if not (jsonvalues.is_number(ts) and _EARLIEST_TS <= ts <= received_at + 86400):
        ts = received_at
    values = message.get("values")
    if not isinstance(values, dict) or not values:
        raise BadMessage("telemetry without `values`")
    samples = []
    for key, value in list(values.items())[:_TELEMETRY_MAX_KEYS]:
        if not _TELEMETRY_KEY.match(key):
            continue
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, str):
            if len(value) > _TELEMETRY_MAX_TEXT:
                continue
        elif not jsonvalues.is_number(value):
            continue
        samples.append((key, float(ts), value))
    if not samples:
        raise BadMessage("telemetry without a usable value")
    return samples


def ack(raw):
    """An `ack` payload → (command id, state, result, error)."""
    message = _message_object(raw, ACK_MAX_BYTES)
    command_id, state, error = message.get("id"), message.get("state"), message.get("error")
    if not isinstance(command_id, str) or not 0 < len(command_id) <= 64:
        raise BadMessage("ack without a command id")
    if state not in _ACK_STATES:
        raise BadMessage(f"ack state {state!r} is not one of {_ACK_STATES}")
    if error is not None:
        error = str(error)[:500]
    elif state == "failed":
        error = "failed"
    return command_id, state, message.get("result"), error


_OTA_STATES = ("downloading", "verified", "applying", "updated", "failed", "rolled_back")  # docs/protocol.md


def ota_progress(raw):
    """An `ota` payload → (command id, state, progress or None, error or None)."""
    message = _message_object(raw, ACK_MAX_BYTES)
    command_id, state, progress, error = (message.get(k) for k in ("id", "state", "progress", "error"))
    if not isinstance(command_id, str) or not 0 < len(command_id) <= 64:
        raise BadMessage("ota progress without a command id")
    if state not in _OTA_STATES:
        raise BadMessage(f"ota state {state!r} is not one of {_OTA_STATES}")
    progress = int(progress) if jsonvalues.is_number(progress) and 0 <= progress <= 100 else None
    return command_id, state, progress, None if error is None else str(error)[:500]
