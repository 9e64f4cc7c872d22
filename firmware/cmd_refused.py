"""The commands the board cannot read (commands.py loads this module for them alone): their id found in the raw
bytes when it can be, and the command acked `failed`; when even the id cannot be read nothing can be acked, and the
command is only logged.

    malformed(app, msg)   msg (bytes) is not valid JSON; an empty one (the retained `config` cleared) is nothing
    busy(app, head)       head (a bytearray) is the start of a command that found the queue full (app.py)
    other(app, x)         busy() for a bytearray; for a tuple, a desired configuration's next step (desired.py)
                          -> (None, x[0], x) for app.py to run as a built-in
"""


def malformed(app, msg):
    if not msg:
        return
    cmd_id = _find_id(msg)
    print("cmd: malformed JSON (%d bytes)" % len(msg))
    if cmd_id:
        app.ack(cmd_id, "failed", error="malformed JSON")


def busy(app, head):
    cmd_id = _find_id(head)
    if cmd_id:
        app.ack(cmd_id, "failed", error="busy: command queue full")
    else:
        print("cmd: queue full, dropped a command without a readable id")


def other(app, x):
    """A bytearray: busy(); a tuple: a desired configuration's next step, (the built-in, ...) (desired.py)."""
    if type(x) is bytearray:
        return busy(app, x)
    return None, x[0], x


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
