"""Setup mode: a tiny web form for the Wi-Fi network, when the board has no usable configuration.

On a board: an open access point "mpfleet-<id>" and the form on http://192.168.4.1/. On the unix port:
the form on 127.0.0.1 and a free port. Either way one log line says where: `setup page: <url>`.
The form's SSID and password are saved into config.json (atomically, config.save: the rest of the file,
e.g. the broker settings written at provisioning, is kept), then the board reboots. run() never returns.
"""

import json

import config
from micropython import const

_BODY_MAX = const(512)
_FORM = (
    "<!doctype html><title>mpfleet setup</title><h1>Wi-Fi</h1>%s"
    '<form method="post" action="/"><p><label>SSID <input name="ssid" maxlength="32"></label>'
    '<p><label>Password <input name="password" type="password" maxlength="64"></label>'
    '<p><button>Save and reboot</button></form>'
)


def run(board, log=print, path="config.json"):
    sock, url = board.setup_listen("mpfleet-" + board.unique_id()[-6:])
    log("setup page: " + url)
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            continue
        try:
            conn.settimeout(5)
            saved = _serve(conn, path, log)
        except Exception as e:  # a broken request costs that request only
            log("setup: request failed: %s" % e)
            saved = False
        finally:
            conn.close()
        if saved:
            log("setup: wifi saved, rebooting")
            board.reset()


def _serve(conn, path, log):
    line = conn.readline()
    method = line.split(b" ", 1)[0]
    length = 0
    while True:
        header = conn.readline()
        if not header or header in (b"\r\n", b"\n"):
            break
        name, _, value = header.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if method != b"POST":
        _answer(conn, 200, _FORM % "")
        return False
    if not 0 < length <= _BODY_MAX:
        _answer(conn, 400, _FORM % "<p>The form is too large.")
        return False
    body = conn.read(length)
    form = _parse(body)
    try:
        cfg = _raw(path)
        cfg["wifi"] = {"ssid": form.get("ssid", ""), "password": form.get("password", "")}
        config.save(cfg, path)
    except config.ConfigError as e:
        _answer(conn, 400, _FORM % ("<p>Not saved: %s" % _escape(str(e))))
        return False
    _answer(conn, 200, "<!doctype html><p>Saved. The board reboots and joins %s." % _escape(cfg["wifi"]["ssid"]))
    return True


def _raw(path):
    """config.json as it is (maybe invalid), or {} when missing or unreadable."""
    try:
        with open(path) as f:
            cfg = json.load(f)
        return cfg if isinstance(cfg, dict) else {}
    except (OSError, ValueError):
        return {}


def _answer(conn, code, html):
    data = html.encode()
    conn.write(b"HTTP/1.0 %d %s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n"
               b"Connection: close\r\n\r\n" % (code, b"OK" if code == 200 else b"Bad Request", len(data)))
    conn.write(data)


def _parse(body):
    """application/x-www-form-urlencoded -> dict of text."""
    form = {}
    for pair in body.split(b"&"):
        name, _, value = pair.partition(b"=")
        form[_unquote(name)] = _unquote(value)
    return form


def _unquote(b):
    b = b.replace(b"+", b" ")
    out = bytearray()
    i = 0
    while i < len(b):
        if b[i] == 0x25 and i + 2 < len(b):  # %XX
            out.append(int(b[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    return out.decode()


def _escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
