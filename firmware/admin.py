"""The built-in commands `reboot` and `wifi_reset`: function `kind`(app, cmd_id, payload) -> result (`ping`
is answered by app.py, `set_telemetry_period` by settings.py, `ota` by ota.py).

They are rare, so app.py imports this module for one command and unloads it afterwards: its code holds
no heap while the board only publishes. A handler that acks by itself (reboot, wifi_reset: `done`, then
reset; commands.py acked `accepted`) never returns. wifi_reset leaves the change of config.json to the next boot
(start.py), where the heap has room to parse the file, the CA's PEM text included.
"""

_FORGET_WIFI = "forget_wifi"  # for the next boot: take the Wi-Fi section out of config.json (start.py)


def reboot(app, cmd_id, payload):
    app.ack(cmd_id, "done")
    print("app: reboot by command")
    app.b.reset()


def wifi_reset(app, cmd_id, payload):
    # The next boot takes the Wi-Fi section out of config.json (start.py), where the heap has room to parse the
    # file, CA included, and then finds no Wi-Fi: setup mode.
    with open(_FORGET_WIFI, "w"):
        pass
    app.b.wifi_forget()
    app.ack(cmd_id, "done")
    print("app: wifi forgotten; reboot into setup")
    app.b.reset()

