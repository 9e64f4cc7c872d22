"""The link's Wi-Fi join, before a connect when Wi-Fi is down: link.py imports this module for the call and unloads
it again (connect.py is loaded after it, not with it).

    run(link)   joins cfg["wifi"] (the port's wifi_connect, 20 s at most), then sets the clock (NTP on a board).
                Raises OSError when the network cannot be joined.
"""

from micropython import const

_WIFI_TIMEOUT_MS = const(20000)


def run(link):
    board = link._board
    wifi = link._cfg["wifi"]
    link._log("link: joining wifi %r" % wifi["ssid"])
    ip = board.wifi_connect(wifi["ssid"], wifi["password"], _WIFI_TIMEOUT_MS)
    link._log("link: wifi up, ip %s" % ip)
    board.sync_time()
