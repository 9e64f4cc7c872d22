"""The app after an OTA confirmed: app.py's status() loads this module for one call once the broker answered CONNECT,
before the `status` that says which md5 runs goes out (the backend takes the new md5 as `updated`: no power cut may
come between the two). Small on purpose: it loads in the middle of a connect.

    run(app, image)     app.trial removed (the app is confirmed: chooser.py counts its boots no more) and, with
                        `image` (ota_boot.py: the running ESP32 image is the job's; its fw.json), the image marked
                        valid (ota_partition.confirm: mark_app_valid_cancel_rollback, harmless when done already;
                        without it the bootloader goes back to the old image at the next reset) and recorded in
                        fw.json: what runs from now on (start.py)
"""

import os
import sys


def run(app, image):
    gone = False
    for name in ("app.trial", "app.trial.tmp"):
        try:
            os.remove(name)
            gone = True
        except OSError:
            pass
    if gone:
        print("ota: the broker reached on trial: the app is confirmed")
    if image:
        __import__("ota_partition").confirm(app.b)
        del sys.modules["ota_partition"]
        import json

        with open(image, "w") as f:
            json.dump(app.fw, f)
