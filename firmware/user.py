"""The maker's own code: custom command handlers and telemetry values. Edit freely.

register(commands, board) is called once at boot (never in safe mode):
  commands.custom(name, handler)   handler(payload) -> result, for a `custom` command whose payload["cmd"]
                                   is name; the result (any JSON value) is acked `done`, an exception
                                   `failed` with its text
telemetry() is called at every sample: a dict of extra values (numbers, short strings, bools).
configure(keys), if this module defines one, gets the maker's own keys of the desired configuration (`PUT
  /v1/user/devices/{uid}/configuration` and its groups': everything but telemetry_period), a dict of bools, numbers
  and strings ({} when none is desired any more), after each configuration message, also when the same one comes
  again at a connect (the backend's retained message: so after a boot too, once online). Keep what you use of
  them, not the dict (heap is short on a small board); what it raises is logged. For example:
      _greeting = "hello"
      def configure(keys):
          global _greeting
          _greeting = keys.get("greeting", "hello")
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
