"""The maker's own code: custom command handlers and telemetry values. Edit freely.

register(commands, board) is called once at boot (never in safe mode):
  commands.custom(name, handler)   handler(payload) -> result, for a `custom` command whose payload["cmd"]
                                   is name; the result (any JSON value) is acked `done`, an exception
                                   `failed` with its text
telemetry() is called at every sample: a dict of extra values (numbers, short strings, bools).
"""

_board = None
_relay = False


def relay_toggle(payload):
    """{"cmd": "relay_toggle", "state": "on" | "off" | absent (toggle)} -> {"relay": "on" | "off"}."""
    global _relay
    state = payload.get("state")
    if state is None:
        on = not _relay
    elif state in ("on", "off"):
        on = state == "on"
    else:
        raise ValueError("state must be 'on' or 'off'")
    if not _board.output("relay", on):
        raise ValueError("this board has no relay pin")
    _relay = on
    return {"relay": "on" if on else "off"}


def telemetry():
    return {"relay": _relay}


def register(commands, board):
    global _board
    _board = board
    commands.custom("relay_toggle", relay_toggle)
