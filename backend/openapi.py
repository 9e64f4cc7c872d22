"""The OpenAPI 3.1 description of the REST API, served at GET /v1/openapi.json.

The tests check that it names exactly the routes of routes.py and validate the
bodies the app answers against the schemas below, so the two cannot drift apart.
"""

from functools import cache

from .schemas import MAX_PAYLOAD_BYTES


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema):
    return {"anyOf": [schema, {"type": "null"}]}


def _object(properties, required=None):
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


_STRING = {"type": "string"}
_TIME = _nullable({"type": "string", "format": "date-time"})
_ID_NAME_KEY = _object({"id": {"type": ["integer", "null"]}, "name": _STRING, "key": _STRING})
_PAYLOAD = {"type": "object", "description": f"any JSON object of at most {MAX_PAYLOAD_BYTES} bytes serialized"}
_STORED_PAYLOAD = {"anyOf": [{"type": "object"}, {"type": "null"}],
                   "description": "null for a payload stored before the JSON-value rule that breaks it"}

SCHEMAS = {
    "Message": _object({"message": _STRING}),
    "DeviceMessage": _object({"message": _STRING, "device_uid": _STRING}),
    "ValidationError": _object({
        "message": _STRING,
        "errors": {"type": "object", "additionalProperties": {"type": "array", "items": _STRING}},
    }),
    "Platform": _ID_NAME_KEY,
    "Board": _object({
        "id": {"type": "integer"}, "name": _STRING, "key": _STRING, "platform": _ref("Platform"),
        "chip": _STRING, "flash_size": _nullable(_STRING), "flash_offset": _nullable(_STRING),
        "pins": {"type": "object"}, "ota": {"enum": ["partition", "bundle"]},
    }),
    "DeviceCompact": _object({
        "uid": _STRING, "name": _STRING, "status": _ref("DeviceStatus"), "last_seen_at": _TIME,
        "platform": _ref("Platform"), "board": _ref("Platform"), "board_variant": _nullable(_STRING),
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
    }),
    "MqttCredentials": _object({
        "host": _STRING, "port": {"type": "integer"}, "username": _STRING, "password": _STRING,
        "client_id": _STRING, "tls": {"type": "boolean"},
        "ca_cert": _nullable({"type": "string", "description": "PEM of the broker's CA"}),
    }),
    "RegisteredDevice": {
        "allOf": [_ref("Device"), _object({"mqtt": _ref("MqttCredentials")})],
        "description": "The device, plus its MQTT credentials. The password is shown only here.",
    },
    "Firmware": _object({
        "id": {"type": "integer"}, "name": _STRING, "version": _nullable(_STRING), "notes": _nullable(_STRING),
        "md5": {"type": "string", "pattern": "^[0-9a-f]{32}$"}, "size": {"type": "integer"},
        "kind": {"enum": ["esp32-app", "bundle", "raw"]}, "created_at": {"type": "string", "format": "date-time"},
        "is_current": {"type": "boolean"}, "is_target": {"type": "boolean"},
    }),
    "CommandState": {
        "enum": ["queued", "sent", "accepted", "done", "failed", "expired"],
        "description": "queued (held until the device has room) -> sent -> accepted -> done / failed;"
        " expired when not sent, or not answered, in time",
    },
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
        "result": {"description": "what the device returned with its final ack, or null"},
        "error": _nullable(_STRING),
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    }),
    "Sample": _object({"key": _STRING, "ts": {"type": "string", "format": "date-time"},
                       "value": {"type": ["number", "string"]}}),
    "NewCommandButton": _object({
        "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$", "maxLength": 64},
        "label": {"type": "string", "maxLength": 64},
        "payload": _PAYLOAD,
        "confirm": {"type": "boolean"},
    }, required=["id", "label", "payload"]),
    "CommandButton": _object({
        "id": _STRING, "label": _STRING, "payload": _STORED_PAYLOAD, "confirm": {"type": "boolean"},
    }),
}


def _data(schema):
    return _object({"data": schema})


def _json(schema):
    return {"content": {"application/json": {"schema": schema}}}


def _answer(description, schema):
    return {"description": description, **_json(schema)}


def _message(description):
    return _answer(description, _ref("Message"))


_UNAUTHENTICATED = _message('Missing or unknown bearer token: "Unauthenticated."')
_NO_DEVICE = _message('No such device for this user ("Device not found."), or no such button or firmware of it')
_INVALID = _answer("Validation failed", _ref("ValidationError"))
_BAD_JSON = _message("The body is not a JSON object")
_OFFLINE = _message('The device cannot take commands now: "Device is offline." or "Device is disabled."')
_TOO_LARGE = _message("The request body is larger than the server accepts")
_NO_BRIDGE = _message("The MQTT broker cannot be reached; nothing was sent")
_BROKER_FAILED = _message("The MQTT broker did not confirm the change of the device's access (yet: it is retried)")


def _operation(summary, responses, *, body=None, public=False, params=()):
    op = {"summary": summary, "responses": responses}
    if not public:
        op["security"] = [{"bearer": []}]
        op["responses"] = {**responses, "401": _UNAUTHENTICATED}
    if body is not None:
        op["requestBody"] = {"required": True, **body}
        op["responses"] = {"413": _TOO_LARGE, **op["responses"]}
    if params:
        op["parameters"] = list(params)
    return op


def _path_param(name, schema, description):
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


_UID = _path_param("uid", _STRING, "device uid, e.g. espressif8266_G8VfdNhn7jqN")
_BUTTON = _path_param("button_id", _STRING, "command button id")
_FIRMWARE = _path_param("firmware_id", {"type": "integer"}, "firmware id")
_COMMAND = _path_param("command_id", _STRING, "command id")


def _device_op(summary, responses, **kwargs):
    return _operation(summary, {**responses, "404": _NO_DEVICE}, params=(_UID, *kwargs.pop("params", ())), **kwargs)


_WAIT = {"name": "wait", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0, "maximum": 30},
         "description": "seconds to wait for the command's final state (default 0: answer at once)"}


def _command_op(summary, success, extra=None, params=(_WAIT,)):
    responses = {"200": _answer(success, _ref("CommandSent")), "409": _OFFLINE, "503": _NO_BRIDGE, **(extra or {})}
    return _device_op(summary, responses, params=params)


_REGISTRATION = _object({
    "name": {"type": "string", "maxLength": 100},
    "platform": {"type": "string", "description": "platform key, see GET /v1/platforms"},
    "board": {"type": "string", "description": "board key, see GET /v1/boards"},
    "description": _nullable({"type": "string", "maxLength": 1000}),
}, required=["name", "platform", "board"])
_DEVICE_EDIT = _object({
    "name": {"type": "string"}, "description": _nullable(_STRING),
    "enabled": {"type": "boolean", "description": "false: status `disabled`, MQTT access revoked at once"},
}, required=[])
_LIMIT = {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}}
_TELEMETRY_QUERY = (
    {"name": "key", "in": "query", "required": False, "schema": _STRING, "description": "one key only"},
    {"name": "from", "in": "query", "required": False, "schema": _STRING,
     "description": "ISO 8601 or unix seconds, inclusive"},
    {"name": "to", "in": "query", "required": False, "schema": _STRING,
     "description": "ISO 8601 or unix seconds, inclusive"},
    {**_LIMIT, "description": "newest first; default 100, at most 1000"},
)
_FIRMWARE_EDIT = _object(
    {"name": _STRING, "version": _nullable(_STRING), "notes": _nullable(_STRING)}, required=[]
)
_UPLOAD = {"content": {"multipart/form-data": {"schema": _object({
    "name": _STRING, "version": _STRING, "notes": _STRING,
    "file": {"type": "string", "format": "binary", "description": "the raw .bin image, at most 4 MB"},
}, required=["name", "file"])}}}


def _paths():
    device = "/v1/user/devices/{uid}"
    return {
        "/v1/openapi.json": {"get": _operation("This document", {"200": {"description": "OpenAPI 3.1"}}, public=True)},
        "/v1/platforms": {"get": _operation(
            "Supported platforms", {"200": _answer("Platforms", _data({"type": "array", "items": _ref("Platform")}))},
            public=True)},
        "/v1/boards": {"get": _operation(
            "Supported boards", {"200": _answer("Boards", _data({"type": "array", "items": _ref("Board")}))},
            public=True)},
        "/v1/user/devices": {
            "get": _operation("List the caller's devices (compact)", {
                "200": _answer("Devices", _data({"type": "array", "items": _ref("DeviceCompact")}))}),
            "post": _operation("Register a device and receive its MQTT credentials (shown once)", {
                "201": _answer("Registered", _data(_ref("RegisteredDevice"))), "400": _BAD_JSON, "422": _INVALID,
                "503": _message("The broker could not create the device's account; nothing was registered"),
            }, body=_json(_REGISTRATION)),
        },
        device: {
            "get": _device_op("One device in detail", {"200": _answer("Device", _data(_ref("Device")))}),
            "patch": _device_op("Edit name / description; enable or disable", {
                "200": _answer("Updated device", _data(_ref("Device"))), "400": _BAD_JSON, "422": _INVALID,
                "503": _BROKER_FAILED,
            }, body=_json(_DEVICE_EDIT)),
            "delete": _device_op("Delete a device with its buttons, firmwares, commands and telemetry", {
                "200": _answer('"Device deleted."', _ref("DeviceMessage")), "503": _BROKER_FAILED}),
        },
        device + "/reboot": {"post": _command_op("Reboot the device", '"Reboot command sent."', {"422": _INVALID})},
        device + "/wifi-reset": {"post": _command_op("Forget Wi-Fi and start setup", '"Wi-Fi reset command sent."',
                                                     {"422": _INVALID})},
        device + "/ota": {"post": _command_op("Deliver the target firmware", '"OTA check triggered."', {
            "422": _message('No target firmware: "Assign firmware first to trigger OTA."')}, params=())},
        device + "/commands": {
            "post": _device_op("Send a user-defined JSON command", {
                "200": _answer('"Command sent."', _ref("CommandSent")), "400": _BAD_JSON, "422": _INVALID,
                "409": _OFFLINE, "503": _NO_BRIDGE,
            }, body=_json(_object({"payload": _PAYLOAD})), params=(_WAIT,)),
            "get": _device_op("Commands sent to the device, newest first", {
                "200": _answer("Commands", _data({"type": "array", "items": _ref("Command")})), "422": _INVALID,
            }, params=({**_LIMIT, "description": "default 50, at most 500"},)),
        },
        device + "/commands/{command_id}": {"get": _device_op("One command with its state and result", {
            "200": _answer("Command", _data(_ref("Command")))}, params=(_COMMAND,))},
        device + "/telemetry": {"get": _device_op("Telemetry history", {
            "200": _answer("Samples", _data({"type": "array", "items": _ref("Sample")})), "422": _INVALID,
        }, params=_TELEMETRY_QUERY)},
        device + "/telemetry/latest": {"get": _device_op("The newest value of every key", {
            "200": _answer("Latest values", _data({"type": "object", "additionalProperties": _object({
                "value": {"type": ["number", "string"]}, "ts": {"type": "string", "format": "date-time"}})}))})},
        device + "/command-buttons": {
            "get": _device_op("Saved command buttons", {
                "200": _answer("Buttons", _data({"type": "array", "items": _ref("CommandButton")}))}),
            "post": _device_op("Save a command button", {
                "201": _answer('"Command button created."', {"allOf": [
                    _ref("DeviceMessage"), _object({"data": _ref("CommandButton")})]}),
                "400": _BAD_JSON, "422": _INVALID,
                "409": _message('"A command button with this id already exists."'),
            }, body=_json(_ref("NewCommandButton"))),
        },
        device + "/command-buttons/{button_id}": {"delete": _device_op("Delete a command button", {
            "200": _answer('"Command button deleted."', _ref("DeviceMessage"))}, params=(_BUTTON,))},
        device + "/command-buttons/{button_id}/send": {"post": _device_op("Send a saved button's payload", {
            "200": _answer('"Command sent."', _ref("CommandSent")), "409": _OFFLINE, "422": _INVALID,
            "503": _NO_BRIDGE,
        }, params=(_BUTTON, _WAIT))},
        device + "/firmwares": {
            "get": _device_op("Firmwares uploaded for the device", {
                "200": _answer("Firmwares", _data({"type": "array", "items": _ref("Firmware")}))}),
            "post": _device_op("Upload a firmware image (multipart, at most 4 MB)", {
                "201": _answer("Uploaded", _data(_ref("Firmware"))),
                "400": _message("Not a well-formed multipart/form-data body"),
                "409": _message('"This firmware file is already uploaded."'),
                "413": _message("The file is larger than 4 MB"), "422": _INVALID,
            }, body=_UPLOAD),
        },
        device + "/firmwares/set-target": {"post": _device_op("Assign the OTA target by md5", {
            "200": _answer('"Firmware assigned to device."', _object({
                "message": _STRING, "device_uid": _STRING, "md5": _STRING})),
            "400": _BAD_JSON, "422": _INVALID,
        }, body=_json(_object({"md5": {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"}})))},
        device + "/firmwares/target": {"delete": _device_op("Clear the OTA target (the firmware can then be deleted)", {
            "200": _answer('"Target firmware cleared."', _ref("DeviceMessage"))})},
        device + "/firmwares/{firmware_id}": {
            "patch": _device_op("Edit firmware name / version / notes", {
                "200": _answer("Updated firmware", _data(_ref("Firmware"))), "400": _BAD_JSON, "422": _INVALID,
            }, body=_json(_FIRMWARE_EDIT), params=(_FIRMWARE,)),
            "delete": _device_op("Delete a firmware that no device uses", {
                "200": _message('"Firmware deleted."'),
                "409": _message('"Cannot delete firmware while it is assigned to any device."'),
            }, params=(_FIRMWARE,)),
        },
    }


@cache
def document():
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mpfleet REST API",
            "version": "1",
            "description": "Devices, command buttons and firmwares of the authenticated user (seed 004). "
            "Errors are JSON: {\"message\"}, and for 422 also {\"errors\": {field: [messages]}}.",
        },
        "paths": _paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
