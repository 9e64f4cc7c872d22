"""One command from the backend (topic `cmd`): parsed, run or handed back, acked. app.py imports this module for
each command and unloads it again: commands are rare, and none of this code holds heap in between.

    todo = commands.run(app, msg)   # None (done here), or (cmd_id, kind, payload) of a built-in for app.py

msg is the command (bytes), or the start of one refused for a full queue (a bytearray: app.py), acked `failed`.

The commands it cannot read (malformed JSON; the start of one refused for a full queue) are cmd_refused.py's,
loaded for them alone: this module is in the heap beside every command, the OTA's among them, on a board with
~4 KB free (32 KB heap). The `config` topic's messages come here too (they share the queue): one (the desired
configuration, {"v", "settings"}: no id) is handed back as the built-in `desired` with the cmd_id None (nothing is
acked; desired.py), and so is each step of applying one (a tuple, cmd_refused.py); an empty message (the retained
`config` cleared: a deleted device) is nothing (cmd_refused.py).

A command the board can run is acked `accepted` first. A `custom` command runs its maker's handler (app.custom(),
user.py) here; its return value is acked `done` with it as `result`, an exception `failed` with its text (app.ack).
A built-in type, or a `custom` command naming a built-in ({"cmd": "ping"}), is handed back: app.py runs it after
this module is unloaded (settings.py or admin.py, loaded for it alone). An unknown type or custom name, malformed
JSON or a payload that is not an object is acked `failed` (never `accepted`); a command that found the board's
queue full is acked `failed` with the error "busy: command queue full". When even the id cannot be read nothing
can be acked, and the command is only logged. Nothing here raises into the loop.
"""

import json
import sys

# The built-in command types (app.py, admin.py); they answer as `custom` commands by name too.
_BUILTIN = ("reboot", "wifi_reset", "ping", "set_telemetry_period", "ota")


def run(app, msg):
    if type(msg) is not bytes:
        return _refused().other(app, msg)
    try:
        cmd = json.loads(msg)
    except ValueError:
        return _refused().malformed(app, msg)
    if not isinstance(cmd, dict) or not isinstance(cmd.get("id"), str):
        if isinstance(cmd, dict) and "settings" in cmd:  # a `config` message (desired.py)
            return None, "desired", cmd
        print("cmd: no id, ignored")
        return None
    cmd_id = cmd["id"]
    kind = cmd.get("type")
    payload = cmd.get("payload")
    if payload is None:
        payload = {}
    try:
        if not isinstance(payload, dict):
            raise ValueError("payload must be an object")
        handler = None
        if kind == "custom":
            kind = payload.get("cmd")
            handler = app._custom.get(kind)
            if handler is None and kind not in _BUILTIN:  # built-ins by name too: {"cmd": "ping"}
                raise ValueError("unknown custom command %r" % (kind,))
        elif kind not in _BUILTIN:
            raise ValueError("unknown command type %r" % (kind,))
        app.ack(cmd_id, "accepted")  # a command the board can run: `done` / `failed` follows
        if handler is None:
            return cmd_id, kind, payload
        result = handler(payload)
    except Exception as e:
        app.ack(cmd_id, "failed", error=e)
        return None
    try:
        app.ack(cmd_id, "done", result=result)
    except (TypeError, ValueError) as e:  # a result that is no JSON value
        app.ack(cmd_id, "failed", error="result is not JSON: %s" % e)
    return None


def _refused():
    import cmd_refused

    del sys.modules["cmd_refused"]  # (gone with the call that uses it)
    return cmd_refused
