from ssl import *  # noqa: F403 -- umqtt.simple 1.3.4 imports `ussl`, which MicroPython >= 1.21 no longer has
