# Runs at every boot: the app (app.py) does the rest and never returns.
import sys

# The firmware's own lib/ (umqtt.simple as built and tested) before the modules frozen into the MicroPython image:
# a board's sys.path is ['', '.frozen', '/lib'], and the standard ESP32/ESP8266 images freeze another umqtt.simple.
for p in ("/lib", "lib"):
    if p in sys.path:
        sys.path.remove(p)
sys.path.insert(1, "lib")
import app

app.main()
