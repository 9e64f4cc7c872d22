"""The board layer: what differs between ports (ESP32, ESP8266, the unix port) is decided here and only here.

Core modules ask this package; they never import machine, network, esp or esp32, nor test sys.platform.
"""

_md5 = None


def md5(data=None):
    """A new MD5 hash object: the port's hashlib.md5 where it has one, else ours (firmware/md5.py).

    The ESP8266 port is built without hashlib.md5. Use only update() and digest(): the native object
    has no hexdigest(), and after its digest() it refuses further use.
    """
    global _md5
    if _md5 is None:
        try:
            from hashlib import md5 as _md5
        except ImportError:
            from md5 import md5 as _md5
    return _md5() if data is None else _md5(data)
