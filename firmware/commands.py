"""Commands from the backend (topic `cmd`) to their handlers, and their acks (topic `ack`).

    cmds = Commands(link, ("reboot", "ping"), builtin)  # builtin(cmd_id, kind, payload) -> result
    cmds.custom("relay_toggle", handler)    # a `custom` command by payload["cmd"]: handler(payload) -> result
    link.subscribe("cmd", cmds.queue)
    cmds.run()                              # in the main loop: run what arrived, ack each; True if any

The built-in types go to one function (app.py loads their code only when one arrives); a `custom` command
naming a built-in ({"cmd": "ping"}) is that built-in. A handler's return value is acked `done` with it as
`result`; an exception is acked `failed` with its text. A handler that acks by itself (reboot: `accepted`,
`done`, then reset) calls ack() and never returns. An unknown type or custom name, malformed JSON or a
payload that is not an object is acked `failed`; when even the id cannot be read nothing can be acked, and
the command is only logged. Nothing here raises into the loop.
"""

import json

from micropython import const

_QUEUE = const(4)  # commands waiting to run; more are dropped (the backend expires them)
_ERROR_MAX = const(200)  # characters of an error text


class Commands:
    def __init__(self, link, kinds, builtin, log=print):
        self._link = link
        self._kinds = kinds
        self._builtin = builtin
        self._log = log
        self._custom = {}
        self._queue = []

    def custom(self, name, handler):
        """Handle `custom` commands whose payload["cmd"] is `name`: handler(payload) -> result."""
        self._custom[name] = handler

    def queue(self, msg):
        """The link's handler for `cmd`: keep the message for run() (bounded)."""
        if len(self._queue) < _QUEUE:
            self._queue.append(bytes(msg))
        else:
            self._log("cmd: queue full, dropped a command")

    def run(self):
        ran = bool(self._queue)
        while self._queue:
            self._run(self._queue.pop(0))
        return ran

    def ack(self, cmd_id, state, result=None, error=None):
        body = {"id": cmd_id, "state": state}
        if result is not None:
            body["result"] = result
        if error is not None:
            body["error"] = error[:_ERROR_MAX]
        try:
            data = json.dumps(body)
        except (TypeError, ValueError) as e:  # a result that is no JSON value
            body.pop("result", None)
            body["state"] = "failed"
            body["error"] = "result is not JSON: %s" % e
            data = json.dumps(body)
        self._log("cmd: %s %s%s" % (cmd_id, body["state"], (": " + body["error"]) if "error" in body else ""))
        return self._link.publish("ack", data)

    def _run(self, msg):
        try:
            cmd = json.loads(msg)
        except ValueError:
            cmd_id = _find_id(msg)
            self._log("cmd: malformed JSON (%d bytes)" % len(msg))
            if cmd_id:
                self.ack(cmd_id, "failed", error="malformed JSON")
            return
        if not isinstance(cmd, dict) or not isinstance(cmd.get("id"), str):
            self._log("cmd: no id, ignored")
            return
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
                handler = self._custom.get(kind)
                if handler is None and kind not in self._kinds:  # built-ins by name too: {"cmd": "ping"}
                    raise ValueError("unknown custom command %r" % (kind,))
            elif kind not in self._kinds:
                raise ValueError("unknown command type %r" % (kind,))
            result = handler(payload) if handler else self._builtin(cmd_id, kind, payload)
        except Exception as e:
            text = " ".join(str(e).split())
            self.ack(cmd_id, "failed", error="%s: %s" % (type(e).__name__, text) if text else type(e).__name__)
            return
        self.ack(cmd_id, "done", result=result)


def _find_id(msg):
    """The id of a command that is not valid JSON, when it can be read: `"id": "<text>"`."""
    try:
        i = msg.find(b'"id"')
        if i < 0:
            return None
        i = msg.find(b'"', msg.find(b":", i)) + 1
        j = msg.find(b'"', i)
        if 0 < i < j and j - i <= 64:
            return msg[i:j].decode()
    except (ValueError, UnicodeError):
        pass
    return None
